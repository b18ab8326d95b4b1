"""What the control plane says on the signalling socket: its address, ``admitted`` and ``refused``.

Joining follows docs/data-plane.md §Signalling; :meth:`meridian.client.Participant.join` drives
it, and this module reads the control plane's answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..errors import (
    AuthenticationError,
    ConflictError,
    DeniedError,
    ForbiddenError,
    InputError,
    MeridianError,
    NotFoundError,
)
from ..policy.decision import Decision
from ..wire import ErrorCode

__all__ = ["Admission", "signal_url"]

#: how long a guest waits in a meeting's waiting room for a host (the control plane's own limit)
_WAIT_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Admission:
    """What the control plane said when it admitted this participant."""

    participant: str
    meeting: str
    dc: str
    relay: str
    grant: str
    notices: tuple[str, ...]
    key_region: str
    epoch: int
    placement: dict[str, Any] = field(default_factory=dict)


def _ws_base(url: str) -> str:
    url = url.rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if url.startswith(http):
            return ws + url[len(http) :]
    return url


def signal_url(control_url: str, meeting: str) -> str:
    """The signalling WebSocket of ``meeting`` on the control plane at ``control_url``."""
    return f"{_ws_base(control_url)}/v1/meetings/{quote(meeting, safe='')}/signal"


def _refusal(message: dict[str, Any]) -> MeridianError:
    """The error a ``refused`` message stands for."""
    text = str(message.get("message") or "refused by the control plane")
    code = message.get("code")
    decision = message.get("decision")
    if code == ErrorCode.DENIED or isinstance(decision, dict):
        return DeniedError(text, _decision(decision))
    by_code: dict[str, type[MeridianError]] = {
        ErrorCode.UNAUTHENTICATED: AuthenticationError,
        ErrorCode.FORBIDDEN: ForbiddenError,
        ErrorCode.NOT_FOUND: NotFoundError,
        ErrorCode.INVALID: InputError,
        ErrorCode.CONFLICT: ConflictError,
    }
    error = by_code.get(str(code))
    return DeniedError(text, None) if error is None else error(text)


def _decision(data: object) -> Decision | None:
    """The decision a refusal carried, read back; ``None`` if it carried none readable."""
    if not isinstance(data, dict):
        return None
    try:
        return Decision.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _admission(message: dict[str, Any]) -> tuple[Admission, dict[str, Any]]:
    """The admission and its ``key`` message; :class:`InputError` if either is malformed."""
    try:
        key = message["key"]
        admission = Admission(
            participant=str(message["participant"]),
            meeting=str(message["meeting"]),
            dc=str(message["dc"]),
            relay=str(message["relay"]),
            grant=str(message["grant"]),
            notices=tuple(str(n) for n in message.get("notices") or ()),
            key_region=str(key["region"]),
            epoch=int(key["epoch"]),
            placement=dict(message.get("placement") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"the control plane's `admitted` message is malformed: missing or bad {exc}"
        ) from None
    return admission, key
