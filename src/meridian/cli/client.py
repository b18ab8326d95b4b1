"""``meridian client join``: take part in a meeting from a terminal or a script.

Scripted (any of --say, --media, --stream, --expect, --stay): send what was asked, wait for what was
expected, leave. Interactive (none of them): each line on stdin is sent as chat, each line from
others is printed as ``[sender] text``, end of input leaves. Status lines (notices, joined, left)
go to stderr and chat to stdout, or everything to stdout as JSON lines with --json.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, unquote, urlsplit

import typer

from ..errors import InputError, MeridianError, shown
from .app import app, door

if TYPE_CHECKING:
    from ..client import Participant, Received
    from ..client.media import MediaTally

__all__ = ["client_app", "join"]

client_app = typer.Typer(help="Take part in meetings as a participant.", no_args_is_help=True)
app.add_typer(client_app, name="client")

_EPILOG = """Examples:

    meridian client join 'http://127.0.0.1:8000/meet/mtg_123#k=SECRET' --name alice --say "hello"
    meridian client join mtg_123 --invite SECRET --name bob   # interactive: Ctrl-D leaves

A guest needs the meeting's invite: the whole join link, or the id with --invite (the host's
own account joins with --token and no invite).

    meridian client join LINK --name script --stream 10 --json   # 10 s of a synthetic call

It is interactive when none of --say, --media, --stream, --expect and --stay is given. --stream
sends what a meeting page sends (video at both qualities at 30 fps, audio every 20 ms), sealed
and signed like the page's chunks, but carrying a test pattern that pages count and do not
decode. Media received (the pages' VP8 and Opus, or others' test patterns) is counted by type in
the last line, with the glass-to-glass latency of video (from the capture time sealed in it). Every frame
received is checked against the roster the control plane signs; what is dropped (a bad
signature, an unknown sender, an old epoch) is counted in the last line. --control-key pins the
control plane's key (the one `meridian node --control-key` takes): any other signer is refused.

Exit codes: 0 done; 1 fewer lines than --expect arrived; 3 refused by the policy in force
(the reason on stderr); 77 a token or grant refused; 78 the control plane or relay unreachable.
"""


class _Events:
    """Prints what happens: JSON lines on stdout, or text (chat on stdout, the rest on stderr)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, event: str, line: str | None = None, /, **fields: Any) -> None:
        """One event: ``fields`` as a JSON line, or ``line`` as text (none: not shown as text)."""
        if self.as_json:
            typer.echo(json.dumps({"event": event, **fields}, ensure_ascii=False))
        elif line is not None:
            typer.echo(line, err=event != "chat")

    def notice(self, notice: str) -> None:
        self.emit("notice", f"notice: {notice}", text=notice)

    def key(self, epoch: int) -> None:
        self.emit("key", f"key rotated: epoch {epoch}", epoch=epoch)


_DEFAULT_CONTROL = "http://127.0.0.1:8000"


def _target(meeting: str, invite: str | None, control: str | None) -> tuple[str, str, str | None]:
    """The control plane, meeting id and invite from the argument: an id, or a join link
    (``http(s)://host/meet/<id>#k=<invite>``; ``--invite`` and ``--control`` win over it)."""
    if not meeting.startswith(("http://", "https://")):
        return control or _DEFAULT_CONTROL, meeting, invite
    link = urlsplit(meeting)
    head, _, meeting_id = link.path.rstrip("/").rpartition("/meet/")
    if not meeting_id or "/" in meeting_id or not link.netloc:
        raise InputError(
            f"`{shown(meeting)}` is not a join link: expected http(s)://host/meet/<meeting>#k=<invite>"
        )
    found = parse_qs(link.fragment).get("k") or parse_qs(link.query).get("k") or []
    base = f"{link.scheme}://{link.netloc}{head}"
    return control or base, unquote(meeting_id), invite or next(iter(found), None)


async def _run(
    control: str,
    meeting: str,
    *,
    invite: str | None,
    name: str,
    token: str | None,
    forwarded_for: str | None,
    say: list[str],
    media: int,
    size: int,
    expect: int | None,
    stay: float | None,
    wait_for: int | None,
    events: _Events,
    control_key: str | None = None,
    stream: float | None = None,
    layer: str | None = None,
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ..client import Participant
    from ..keys import from_b64url
    from ..keys.media import check_signing_key

    pinned = None
    if control_key is not None:
        raw = check_signing_key(from_b64url(control_key.strip(), "--control-key"))
        pinned = Ed25519PublicKey.from_public_bytes(raw)
    # several replicas' addresses, comma-separated: a join again after one goes away tries the next
    controls = [url.strip() for url in control.split(",") if url.strip()]
    p = await Participant.join(
        controls,
        meeting,
        name=name,
        token=token,
        forwarded_for=forwarded_for,
        on_notice=events.notice,
        on_key=events.key,
        control_key=pinned,
        invite=invite,
    )
    events.emit(
        "joined",
        f"joined {p.meeting} as {p.participant} via relay {p.dc} (key epoch {p.epoch})",
        meeting=p.meeting,
        participant=p.participant,
        dc=p.dc,
        epoch=p.epoch,
    )
    from ..client.media import MediaTally

    tally = {"chat": 0, "media": 0, "media_bytes": 0}
    counted = MediaTally()
    try:
        if layer is not None:
            await p.choose_layer(layer)
        if wait_for:
            events.emit("waiting", f"waiting for {wait_for} others to connect…", others=wait_for)
            try:
                await p.wait_for_others(wait_for, stay)
            except (TimeoutError, EOFError):
                why = p.ended or f"within {stay:g} s"
                raise MeridianError(
                    f"{len(p.roster)} of {wait_for} others connected: {why}"
                ) from None
        if say or media or stream or expect is not None or stay is not None:
            await _scripted(p, say, media, size, expect, stay, events, tally, counted, stream)
        else:
            await _interactive(p, events, tally, counted)
    finally:
        await p.leave()
        dropped = p.dropped
        events.emit(
            "left",
            f"left: {tally['chat']} chat lines, {tally['media']} media frames "
            f"({tally['media_bytes']} bytes), {p.undecryptable} undecryptable, dropped "
            f"{dropped['bad_signature']} with a bad signature, {dropped['unknown_sender']} from "
            f"unknown senders, {dropped['old_epoch']} of old epochs",
            received_chat=tally["chat"],
            received_media=tally["media"],
            media=counted.to_dict(),
            undecryptable=p.undecryptable,
            dropped=dropped,
        )


async def _show(
    p: Participant,
    received: Received,
    events: _Events,
    tally: dict[str, int],
    counted: MediaTally,
) -> None:
    from ..keys import FrameKind

    if received.kind == FrameKind.CHAT:
        tally["chat"] += 1
        name = await p.sender_name(received.sender)
        events.emit(
            "chat",
            f"[{name}] {received.text}",
            sender=received.sender,
            name=name,
            epoch=received.epoch,
            text=received.text,
        )
    else:
        tally["media"] += 1
        tally["media_bytes"] += len(received.payload)
        chunk = counted.add(received)
        if chunk is None or chunk.key or chunk.type > 2:  # not every chunk: keyframes and signals
            events.emit(
                "media",
                None,
                sender=received.sender,
                epoch=received.epoch,
                bytes=len(received.payload),
                type=None if chunk is None else chunk.type.name.lower(),
            )


async def _scripted(
    p: Participant,
    say: list[str],
    media: int,
    size: int,
    expect: int | None,
    stay: float | None,
    events: _Events,
    tally: dict[str, int],
    counted: MediaTally,
    stream: float | None = None,
) -> None:
    from ..client.media import send_stream

    streaming = None
    if stream:
        # the call goes out while what others send is received (below)
        streaming = asyncio.create_task(send_stream(p, stream))
        if stay is None and expect is None:
            stay = stream
    # media first: a chat line after it can tell the others that the media is all sent
    for _ in range(media):
        await p.send_media(size)
    if media:
        events.emit("sent_media", None, frames=media, bytes=size)
    for line in say:
        await p.send_chat(line)
        events.emit("sent", None, text=line)
    if expect is None and stay is None:
        return  # said what there was to say: leave
    deadline = None if stay is None else time.monotonic() + stay
    while expect is None or tally["chat"] < expect:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        try:
            received = await p.receive(left)
        except (TimeoutError, EOFError):
            break
        await _show(p, received, events, tally, counted)
    if streaming is not None:
        sent = await streaming
        events.emit("sent_stream", None, **sent)
    if expect is not None and tally["chat"] < expect:
        why = p.ended or (f"within {stay:g} s" if stay is not None else "")
        raise MeridianError(f"received {tally['chat']} of {expect} chat lines: {why}")


async def _interactive(
    p: Participant, events: _Events, tally: dict[str, int], counted: MediaTally
) -> None:
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:  # a daemon thread: a blocked read never holds the process open
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read, name="stdin", daemon=True).start()

    async def show_all() -> None:
        while True:
            try:
                received = await p.receive()
            except EOFError:
                return
            await _show(p, received, events, tally, counted)

    shower = asyncio.create_task(show_all())
    try:
        while True:
            getter = asyncio.create_task(lines.get())
            done, _ = await asyncio.wait({getter, shower}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:  # the meeting ended under us
                getter.cancel()
                return
            line = getter.result()
            if line is None:
                return
            if line.strip():
                await p.send_chat(line)
    finally:
        shower.cancel()


@client_app.command("join", epilog=_EPILOG)
@door
def join(
    meeting: Annotated[
        str, typer.Argument(help="The meeting's join link, or its id (then give --invite).")
    ],
    invite: Annotated[
        str | None,
        typer.Option(
            "--invite",
            help="The meeting's invite (the k=… of its join link); not needed with the link.",
            envvar="MERIDIAN_INVITE",
            show_default=False,
        ),
    ] = None,
    control: Annotated[
        str | None,
        typer.Option(
            "--control",
            help="The control plane's URL (default: the join link's, else http://127.0.0.1:8000); "
            "several replicas' URLs, comma-separated, to join again through the next when one "
            "goes away.",
            envvar="MERIDIAN_CONTROL_URL",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="The name others see (default: your user name).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="An API token to join as.", envvar="MERIDIAN_TOKEN", show_default=False),
    ] = None,
    forwarded_for: Annotated[
        str | None,
        typer.Option(
            "--forwarded-for",
            metavar="IP",
            help="Send X-Forwarded-For: IP; only believed when the control plane and relay "
            "trust this machine as a proxy.",
        ),
    ] = None,
    say: Annotated[
        list[str] | None,
        typer.Option(
            "--say", help="Send this chat line after joining, after any media (repeatable)."
        ),
    ] = None,
    media: Annotated[
        int, typer.Option("--media", min=0, help="Send this many synthetic media frames.")
    ] = 0,
    size: Annotated[
        int, typer.Option("--size", min=1, help="Bytes of each synthetic media frame.")
    ] = 1200,
    stream: Annotated[
        float | None,
        typer.Option(
            "--stream",
            min=0.1,
            max=86400,
            metavar="SECONDS",
            help="Send a synthetic call this long: video at both qualities and audio, a test "
            "pattern sealed like a page's chunks (stays as long, unless --stay).",
        ),
    ] = None,
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer",
            metavar="high|low",
            help="Ask the relay for this video quality (default: high).",
        ),
    ] = None,
    expect: Annotated[
        int | None,
        typer.Option("--expect", min=1, help="Wait until this many chat lines from others arrive."),
    ] = None,
    stay: Annotated[
        float | None,
        typer.Option(
            "--stay", min=0, help="Stay this many seconds (with --expect: at most this long)."
        ),
    ] = None,
    wait_for: Annotated[
        int | None,
        typer.Option(
            "--wait-for",
            min=1,
            metavar="N",
            help="Before sending, wait until N others are connected (with --stay: at most "
            "that long).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per event line.")
    ] = False,
    control_key: Annotated[
        str | None,
        typer.Option(
            "--control-key",
            metavar="KEY",
            envvar="MERIDIAN_CONTROL_KEY",
            help="Pin the control plane's public key (base64url Ed25519): rosters it did not "
            "sign are refused (default: the key its `admitted` message names).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Join a meeting through the control plane, then chat and send media through its relay."""
    from ..client.sockets import MAX_FRAME_BYTES

    if size > MAX_FRAME_BYTES - 1024:  # room for the header and tag
        raise InputError(f"--size {size} is more than a relay carries in one frame")
    if layer is not None and layer not in ("high", "low"):
        raise InputError(f"--layer `{shown(layer)}` is not `high` or `low`")
    who = name
    if who is None:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "participant"
    control_url, meeting_id, invite = _target(meeting, invite, control)
    try:
        asyncio.run(
            _run(
                control_url,
                meeting_id,
                invite=invite,
                name=who,
                token=token,
                forwarded_for=forwarded_for,
                say=list(say or ()),
                media=media,
                size=size,
                expect=expect,
                stay=stay,
                wait_for=wait_for,
                events=_Events(as_json),
                control_key=control_key,
                stream=stream,
                layer=layer,
            )
        )
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
