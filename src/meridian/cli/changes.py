"""``meridian policy replay|propose|approve|refuse|activate|rollback|changes``: the bundle's
two-person change on the database, through the same service functions as ``/v1/policy/changes``.

Every command but ``replay`` and ``changes`` acts as the operator whose API token it is given
(``--token``, or ``MERIDIAN_TOKEN``): the two-person rule compares people, so a change proposed
with one operator's token is approved only with another's. ``activate --due`` needs none: it does
what the service's policy poll does, on this command's clock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import AuthenticationError
from .app import ClockOption, door, policy_app
from .service import DatabaseOption, _runtime

__all__ = ["render_change", "render_replay"]

TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Your operator API token (the two-person rule compares people).",
        envvar="MERIDIAN_TOKEN",
        show_envvar=True,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DaysOption = Annotated[
    int, typer.Option("--days", help="The days of the log to judge again.", min=1, max=3660)
]
AtOption = Annotated[
    str | None,
    typer.Option("--at", help="The activation instant (ISO 8601 with a zone); default: now."),
]


def _caller(rt: Any, token: str | None) -> Any:
    from ..identity.tokens import authenticate

    if not token:
        raise AuthenticationError(
            "this command acts as an operator: pass `--token` or set MERIDIAN_TOKEN"
        )
    with rt.db.read() as session:
        caller = authenticate(session, token, at=rt.now())
    if caller is None:
        raise AuthenticationError("api token is unknown or revoked")
    return caller


def _instant(text: str | None, what: str) -> Any:
    from ..clock import parse_instant

    return None if text is None else parse_instant(text, what)


def render_replay(report: dict[str, Any]) -> list[str]:
    """A replay (``workflow.replay``) as lines: the counts, then each decision that changed."""
    log = report["log"]
    lines = [
        f"replay of {log['since']} to {log['until']} under {log['bundle']['name']} "
        f"{log['bundle']['version']} ({log['bundle']['digest']})",
        f"{log['examined']} decisions examined, {log['rejudged']} judged again, "
        f"{log['changed_count']} decided differently, {log['not_rejudged_count']} not judged again; "
        f"{log['advisory']['entries']} advisory entries ({log['advisory']['decisions']} decisions) "
        "are tallies and cannot be judged again",
    ]
    for action, counts in sorted(log["by_action"].items()):
        lines.append(
            f"  {action}: {counts['examined']} examined, {counts['allow_to_deny']} allow → deny, "
            f"{counts['deny_to_allow']} deny → allow, {counts['not_rejudged']} not judged again"
        )
    for item in log["changed"]:
        subject = item["subject"]
        lines.append(
            f"  #{item['seq']} {item['action']} {item['before']} → {item['after']}  "
            f"{subject['kind']} {subject['id']}  "
            f"({', '.join(item['rules_before']) or 'default deny'} → "
            f"{', '.join(item['rules_after']) or 'default deny'})"
        )
    for item in log["not_rejudged"]:
        lines.append(f"  #{item['seq']} {item['log_action']} not judged again: {item['why']}")
    transition = report["transition"]
    lines.append(
        f"at {transition['at']}: {transition['accounts_examined']} accounts examined, "
        f"{len(transition['items'])} answers change for the customers of today"
    )
    for item in transition["items"]:
        what = item.get("subscription") or "hosting"
        lines.append(
            f"  {item['kind']} {item['change']}: {item['account']} ({item['account_name']}, "
            f"{item['country']}) {what}: {item['message']}"
        )
    return lines


def render_change(change: dict[str, Any]) -> list[str]:
    """One change as lines: its state, who moved it, its diff digest and replay's counts."""
    bundle = change["bundle"]
    lines = [
        f"change {change['id']}: {change['state']}",
        f"  bundle {bundle['name']} {bundle['version']} ({bundle['digest']})",
        f"  against {change['base_digest']}",
        f"  diff {change['diff_digest']}",
        f"  comes into force {change['activate_at'] or 'as soon as it is approved'}",
        f"  proposed by {change['proposed_by_name']} ({change['proposed_by']}) at {change['proposed_at']}",
    ]
    if change["decided_by"]:
        verb = "refused" if change["state"] == "refused" else "approved"
        lines.append(f"  {verb} by {change['decided_by']} at {change['decided_at']}")
    if change["reason"]:
        lines.append(f"  reason: {change['reason']}")
    if change["activated_at"]:
        lines.append(f"  in force from {change['activated_at']} ({change['activated_by']})")
    if change["rolled_back_at"]:
        lines.append(f"  rolled back at {change['rolled_back_at']} ({change['rolled_back_by']})")
    for broken in change["broken_invariants"]:
        lines.append(f"  breaks invariant `{broken['id']}`: {broken.get('explanation', '')}")
    if "diff" in change:
        counts = change["diff"].get("counts", {})
        lines.append(
            f"  diff: {counts.get('classes', 0)} classes of request decided differently "
            f"({counts.get('differing', 0)} of {counts.get('examined', 0)} examined)"
        )
        for c in change["diff"].get("classes", []):
            window = c["window"]
            lines.append(
                f"    {c['action']} {c['change']} judged under {'/'.join(c['judged_under']['new'])}"
                f" from {window['from_local'] or 'the start'} until {window['until_local'] or 'the end'}"
                f" ({window['from_utc'] or '-'} to {window['until_utc'] or '-'} UTC)"
            )
        lines.extend(render_replay(change["replay"]))
    return lines


def _echo(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


@policy_app.command("replay")
@door
def replay_command(
    file: Annotated[Path, typer.Argument(help="The proposed bundle (YAML).")],
    days: DaysOption = 30,
    at: AtOption = None,
    database: DatabaseOption = None,
    clock: ClockOption = None,
    as_json: JsonOption = False,
) -> None:
    """Judge the log's decisions of the last --days days again under a bundle, and today's
    customers at --at; reads only. A decision that cannot be judged again is listed with why."""
    from ..changes.workflow import replay_bundle
    from ..policy.loader import read_bundle_file

    text = read_bundle_file(file)
    rt = _runtime(database, clock)
    try:
        report = replay_bundle(rt, text=text, source=str(file), days=days, at=_instant(at, "--at"))
    finally:
        rt.close()
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _echo(render_replay(report))


@policy_app.command("propose")
@door
def propose_command(
    file: Annotated[Path, typer.Argument(help="The proposed bundle (YAML).")],
    at: AtOption = None,
    days: DaysOption = 30,
    note: Annotated[str, typer.Option("--note", help="Why (shown to the approver).")] = "",
    token: TokenOption = None,
    database: DatabaseOption = None,
    clock: ClockOption = None,
    as_json: JsonOption = False,
) -> None:
    """Propose a bundle to replace the one in force (at --at, or once approved); a second
    operator approves it with `meridian policy approve`."""
    from ..changes.workflow import propose
    from ..policy.loader import read_bundle_file

    text = read_bundle_file(file)
    rt = _runtime(database, clock)
    try:
        change = propose(
            rt,
            caller=_caller(rt, token),
            text=text,
            source=str(file),
            activate_at=_instant(at, "--at"),
            days=days,
            note=note,
        ).to_dict()
    finally:
        rt.close()
    if as_json:
        typer.echo(json.dumps(change, indent=2, ensure_ascii=False))
    else:
        _echo(render_change(change))


@policy_app.command("changes")
@door
def changes_command(
    change_id: Annotated[str | None, typer.Argument(help="One change to show in full.")] = None,
    state: Annotated[
        str | None, typer.Option("--state", help="Only changes in this state.")
    ] = None,
    database: DatabaseOption = None,
    clock: ClockOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the bundle changes, newest first, or show one with its diff and replay."""
    from ..changes.workflow import get_change, list_changes

    rt = _runtime(database, clock)
    try:
        if change_id is not None:
            shown: Any = get_change(rt, change_id).to_dict()
        else:
            shown = [c.summary() for c in list_changes(rt, state=state)]
    finally:
        rt.close()
    if as_json:
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    elif change_id is not None:
        _echo(render_change(shown))
    else:
        for c in shown:
            typer.echo(
                f"{c['id']}  {c['state']:<11}  {c['bundle']['name']} {c['bundle']['version']}  "
                f"at {c['activate_at'] or 'approval'}  by {c['proposed_by_name']}"
            )


@policy_app.command("approve")
@door
def approve_command(
    change_id: Annotated[str, typer.Argument(help="The change to approve.")],
    diff: Annotated[str, typer.Option("--diff", help="The diff digest you read (`diff_digest`).")],
    token: TokenOption = None,
    database: DatabaseOption = None,
    clock: ClockOption = None,
) -> None:
    """Approve a change as the second operator (never the proposer)."""
    from ..changes.workflow import approve

    rt = _runtime(database, clock)
    try:
        change = approve(rt, caller=_caller(rt, token), change_id=change_id, diff_digest=diff)
    finally:
        rt.close()
    when = (
        "in force now"
        if change.state == "active"
        else f"comes into force {change.activate_at.isoformat() if change.activate_at else 'now'}"
    )
    typer.echo(f"ok: change {change.id} approved: {when}")


@policy_app.command("refuse")
@door
def refuse_command(
    change_id: Annotated[str, typer.Argument(help="The change to refuse.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    token: TokenOption = None,
    database: DatabaseOption = None,
    clock: ClockOption = None,
) -> None:
    """Refuse a change not yet in force."""
    from ..changes.workflow import refuse

    rt = _runtime(database, clock)
    try:
        change = refuse(rt, caller=_caller(rt, token), change_id=change_id, reason=reason)
    finally:
        rt.close()
    typer.echo(f"ok: change {change.id} refused")


@policy_app.command("activate")
@door
def activate_command(
    change_id: Annotated[
        str | None, typer.Argument(help="The approved change to put in force now.")
    ] = None,
    due: Annotated[
        bool,
        typer.Option("--due", help="Put in force every approved change whose instant has come."),
    ] = False,
    token: TokenOption = None,
    database: DatabaseOption = None,
    clock: ClockOption = None,
) -> None:
    """Put an approved change in force now, or (--due) those whose instant has come on the clock."""
    from ..changes.workflow import activate, activate_due
    from ..errors import InputError

    if (change_id is None) == (not due):
        raise InputError("name one change to activate now, or pass `--due`: not both, not neither")
    rt = _runtime(database, clock)
    try:
        if due:
            done = activate_due(rt)
        else:
            done = [activate(rt, caller=_caller(rt, token), change_id=change_id or "").id]
    finally:
        rt.close()
    if not done:
        typer.echo("ok: no change is due")
    for chg in done:
        typer.echo(f"ok: change {chg} in force")


@policy_app.command("rollback")
@door
def rollback_command(
    change_id: Annotated[str, typer.Argument(help="The change in force to undo.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    token: TokenOption = None,
    database: DatabaseOption = None,
    clock: ClockOption = None,
) -> None:
    """Put back the bundle that was in force before the change in force now."""
    from ..changes.workflow import rollback

    rt = _runtime(database, clock)
    try:
        change = rollback(rt, caller=_caller(rt, token), change_id=change_id, reason=reason)
    finally:
        rt.close()
    typer.echo(f"ok: change {change.id} rolled back: {change.previous_digest} is in force again")
