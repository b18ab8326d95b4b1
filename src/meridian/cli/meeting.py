"""``meridian meeting end``: end a live meeting through the control plane's API, with a token.

It calls ``POST /v1/meetings/{id}/end`` as the token's holder (a host ends its own account's
meetings, a partner its customers', an operator any): the meeting is recorded as ended, everyone
in it is told and every relay drops them.
"""

from __future__ import annotations

import contextlib
import json
from typing import Annotated
from urllib.parse import quote

import httpx
import typer

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    InputError,
    MeridianError,
    NotFoundError,
    shown,
)
from .app import app, door

__all__ = ["meeting_app"]

meeting_app = typer.Typer(help="Meetings on a running control plane.", no_args_is_help=True)
app.add_typer(meeting_app, name="meeting")

_EPILOG = """Examples:

    MERIDIAN_TOKEN=mrd_… meridian meeting end mtg_123
    meridian meeting end mtg_123 --control https://meridian.example --token mrd_…

Exit codes: 0 ended; 1 no such meeting (or not one the token may see), or already ended;
2 no token; 77 the token refused; 78 the control plane unreachable.
"""

_BY_STATUS: dict[int, type[MeridianError]] = {
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: InputError,
}


def _error(response: httpx.Response) -> MeridianError:
    """The error a refusal of the API stands for, with its own message."""
    message = f"the control plane answered status {response.status_code}"
    with contextlib.suppress(ValueError, KeyError, TypeError):
        message = str(json.loads(response.content)["error"]["message"])
    return _BY_STATUS.get(response.status_code, ConfigurationError)(message)


@meeting_app.command("end", epilog=_EPILOG)
@door
def end(
    meeting: Annotated[str, typer.Argument(help="The meeting to end.")],
    control: Annotated[
        str,
        typer.Option("--control", help="The control plane's URL.", envvar="MERIDIAN_CONTROL_URL"),
    ] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None,
        typer.Option(
            help="An API token of the host, its partner or an operator.",
            envvar="MERIDIAN_TOKEN",
            show_default=False,
        ),
    ] = None,
) -> None:
    """End a live meeting: everyone in it is told, every relay drops them, it is recorded."""
    if not token:
        raise InputError("missing token: give `--token` or set `MERIDIAN_TOKEN`")
    base = control.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InputError(f"control plane address `{shown(control)}` is not an http:// URL")
    url = f"{base}/v1/meetings/{quote(meeting, safe='')}/end"
    try:
        response = httpx.post(
            url, headers={"Authorization": f"Bearer {token}"}, timeout=30, trust_env=False
        )
    except httpx.HTTPError as exc:
        why = str(exc) or type(exc).__name__
        raise ConfigurationError(f"cannot reach the control plane at `{base}`: {why}") from None
    if response.status_code != 200:
        raise _error(response)
    try:
        ended = response.json()
        typer.echo(f"meeting `{ended['id']}` ended at {ended['ended_at']}")
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError("the control plane sent a malformed answer") from None
