"""How the CLI shows decisions, bundles and timelines to a person (rich).

Every table goes through :func:`show`: ids, instants and rule names are never cut. On a
terminal a table too wide for it is printed as records instead (one ``field: value`` line per
cell); piped, it is plain text (no box, no colour) as wide as its rows, so nothing wraps.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..geography.jurisdictions import jurisdiction_name
from ..policy.compiled import CompiledBundle
from ..policy.decision import Decision
from ..policy.engine import Engine
from ..policy.request import parse_request
from ..policy.timeline import timeline as bundle_timeline

__all__ = [
    "bundle_summary",
    "explain",
    "invariants",
    "policy_diff",
    "replay",
    "show",
    "timeline",
    "transition",
]

#: the columns (by header) whose values are ids, instants or rule names: never cut
_WHOLE = frozenset(
    {"account", "subscription", "partner", "rule", "value", "local time", "UTC", "paid until"}
)
#: the width piped output is laid out at: wider than any row, so no cell wraps
_PIPED_WIDTH = 10_000


def _plain(cell: object) -> str:
    return Text.from_markup(cell).plain if isinstance(cell, str) else str(cell)


def show(console: Console, table: Table) -> None:
    """Print ``table`` with its id, instant and rule columns whole (see the module's docstring)."""
    whole = [c for c in table.columns if _plain(c.header) in _WHOLE]
    if not console.is_terminal:
        table.box = None
        plain = Console(
            file=console.file,
            width=_PIPED_WIDTH,
            force_terminal=False,
            color_system=None,
            highlight=False,
        )
        plain.print(table, crop=False)
        return
    for column in whole:
        column.no_wrap = True
    # the table fits when every whole value and every word of the other cells shows uncut
    values = [line for c in whole for cell in c.cells for line in _plain(cell).splitlines()]
    values += [
        word
        for c in table.columns
        if c not in whole
        for cell in (c.header, *c.cells)
        for word in _plain(cell).split()
    ]
    with console.capture() as captured:
        console.print(table)
    if all(v in Text.from_ansi(captured.get()).plain for v in values):
        console.print(table)
        return
    _records(console, table)


def _records(console: Console, table: Table) -> None:
    """Each row of ``table`` as ``field: value`` lines, a blank line between rows."""
    if table.title:
        console.print(table.title)
    headers = [_plain(c.header) for c in table.columns]
    cells = [list(c.cells) for c in table.columns]
    for row in range(table.row_count):
        console.print()
        for header, column in zip(headers, cells, strict=True):
            value = column[row]
            text = value.replace("\n", " ") if isinstance(value, str) else value
            console.print(f"[bold]{header}[/]: ", text, sep="", soft_wrap=True)


def _zone(engine_or_bundle: CompiledBundle, jurisdiction: str) -> ZoneInfo:
    info = engine_or_bundle.document.jurisdictions.get(jurisdiction)
    return ZoneInfo(info.zone if info is not None else "UTC")


def explain(console: Console, engine: Engine, decision: Decision) -> None:
    """A decision for a person: the verdict, where the subject was placed and why, the rules."""
    colour = "green" if decision.allowed else "red"
    local = decision.at.astimezone(_zone(engine.bundle, decision.location.country))
    console.print(
        f"[bold {colour}]{decision.decision.upper()}[/] {decision.action} at {decision.at:%Y-%m-%d %H:%M:%S} UTC ({local:%Y-%m-%d %H:%M:%S %Z} local)"
    )
    loc = decision.location
    judged = ", ".join(f"{jurisdiction_name(j)} ({j})" for j in loc.judged_under)
    console.print(f"Judged under: {judged}")
    evidence = Table(
        "signal", "value", "points to", title="Location evidence", title_justify="left"
    )
    for e in loc.evidence:
        evidence.add_row(e.signal.value, e.value, e.country or "[yellow]unknown[/]")
    if not loc.evidence:
        evidence.add_row("—", "no signal in the request", "[yellow]unknown[/]")
    show(console, evidence)
    if decision.reasons:
        reasons = Table(
            "rule", "effect", "where", "why", title="Deciding rules", title_justify="left"
        )
        for r in decision.reasons:
            effect = f"[green]{r.effect}[/]" if r.effect == "permit" else f"[red]{r.effect}[/]"
            why = r.message + (" [dim](date approximate)[/]" if r.approximate else "")
            reasons.add_row(r.rule, effect, r.jurisdiction, why)
        show(console, reasons)
    else:
        console.print("[red]No rule permits this request[/] (default deny).")
    for error in decision.errors:
        console.print(f"[red]rule error (counted as forbid):[/] {error}")
    if decision.obligations:
        console.print("Obligations: " + ", ".join(decision.obligations))
    if decision.alternatives.partners:
        offered = decision.alternatives.partners
        contacts = any(p.contact for p in offered)
        columns = ["partner", "name", "contact"] if contacts else ["partner", "name"]
        partners = Table(
            *columns, title="Buy through an authorised partner instead", title_justify="left"
        )
        for p in offered:
            partners.add_row(p.id, p.name, *([p.contact or ""] if contacts else []))
        show(console, partners)
    b = decision.bundle
    console.print(f"[dim]bundle {b.name} {b.version} {b.digest}[/]")


def bundle_summary(console: Console, bundle: CompiledBundle) -> None:
    doc = bundle.document
    console.print(
        f"[bold]Meridian[/] — bundle [bold]{doc.bundle}[/] version {doc.version} ({len(doc.rules)} rules)"
    )
    console.print(f"[dim]{bundle.ref.digest}[/]")
    if doc.description:
        console.print(doc.description)


def timeline(console: Console, bundle: CompiledBundle, jurisdiction: str | None) -> None:
    """The bundle's changes as a table, local time first."""
    changes = bundle_timeline(bundle, jurisdiction)
    where = f" in {jurisdiction_name(jurisdiction)}" if jurisdiction else ""
    table = Table(
        "local time",
        "UTC",
        "where",
        "change",
        "rule",
        "actions",
        title=f"What changes when{where}",
        title_justify="left",
    )
    table.columns[0].no_wrap = True
    table.columns[4].no_wrap = True
    for c in changes:
        approx = " [yellow]≈[/]" if c.approximate else ""
        table.add_row(
            f"{c.local:%Y-%m-%d %H:%M %Z}{approx}",
            f"{c.utc:%Y-%m-%d %H:%M}Z",
            c.jurisdiction,
            f"{c.effect} {c.event}",
            c.subject,
            ", ".join(c.actions),
        )
    if not changes:
        table.add_row("—", "—", jurisdiction or "all", "nothing dated", "", "")
    show(console, table)
    if any(c.approximate for c in changes):
        console.print("[yellow]≈[/] the date is an approximation: the exact day is not public")


#: Typical requests, replayed just before and at each change (the subject's IP is added per
#: jurisdiction).
_PROBES: list[tuple[str, dict[str, Any]]] = [
    ("individual signs up", {"action": "register", "subject": {"type": "individual"}}),
    (
        "organisation signs up (valid USCC)",
        {"action": "register", "subject": {"type": "organization", "org_id": "91110000600037341L"}},
    ),
    ("free user hosts", {"action": "host", "subject": {"type": "individual", "plan": "free"}}),
    ("free user joins", {"action": "join", "subject": {"type": "individual", "plan": "free"}}),
    (
        "buys online",
        {
            "action": "purchase",
            "subject": {"type": "organization", "plan": "pro"},
            "resource": {"channel": "online"},
        },
    ),
    (
        "buys direct",
        {
            "action": "purchase",
            "subject": {"type": "organization", "plan": "business"},
            "resource": {"channel": "direct"},
        },
    ),
    (
        "buys through bizconf",
        {
            "action": "purchase",
            "subject": {"type": "organization", "plan": "business"},
            "resource": {"channel": "partner", "partner": "bizconf"},
        },
    ),
]


def replay(console: Console, engine: Engine, jurisdiction: str) -> None:
    """Replay typical requests from ``jurisdiction`` just before and at each change."""
    changes = bundle_timeline(engine.bundle, jurisdiction)
    instants = sorted({c.epoch for c in changes})
    if not instants:
        console.print(f"Nothing changes in {jurisdiction_name(jurisdiction)} in this bundle.")
        return
    zone = _zone(engine.bundle, jurisdiction)
    moments = [datetime.fromtimestamp(instants[0], UTC) - timedelta(days=1)]
    moments += [datetime.fromtimestamp(e, UTC) for e in instants]
    table = Table(
        "request",
        *(f"{m.astimezone(zone):%Y-%m-%d}" for m in moments),
        title=f"Replay: {jurisdiction_name(jurisdiction)}, day by day",
        title_justify="left",
    )
    for label, base in _PROBES:
        cells = []
        for moment in moments:
            wire = {
                **base,
                "at": moment.isoformat(),
                "subject": {**base["subject"], "country": jurisdiction},
            }
            decision = engine.decide(parse_request(wire))
            rule = decision.reasons[0].rule if decision.reasons else "default deny"
            mark = "[green]allow[/]" if decision.allowed else "[red]deny[/]"
            cells.append(mark if decision.allowed else f"{mark}\n[dim]{rule}[/]")
        table.add_row(label, *cells)
    show(console, table)


_KIND_TITLES = {
    "subscription_transfer": "subscriptions to move to a partner (paid time kept)",
    "open_checkout": "open checkouts that the change refuses",
    "hosting_lost": "accounts without a paid plan that lose hosting",
}


def transition(console: Console, report: dict[str, Any]) -> None:
    """The transition report as tables, one per kind of item, and a one-line summary."""
    console.print(
        f"[bold]Transition in {report['jurisdiction']} at {report['at']}[/bold]  "
        f"(bundle {report['bundle']['name']} {report['bundle']['version']})",
        soft_wrap=True,  # the instant stays whole: the terminal wraps the line, never rich
    )
    for kind, title in _KIND_TITLES.items():
        items = [i for i in report["items"] if i["kind"] == kind]
        if not items:
            continue
        table = Table(title=title, title_justify="left", show_lines=False)
        table.add_column("account")
        table.add_column("name")
        if kind != "hosting_lost":
            table.add_column("subscription")
            table.add_column("plan / channel")
            table.add_column("paid until")
        table.add_column("rule")
        table.add_column("state")
        for i in items:
            state = "marked" if i["applied"] else "to mark"
            if kind == "hosting_lost":
                state = "notice queued" if i["applied"] else "to notify"
                table.add_row(i["account"], i["account_name"], ", ".join(i["rules"]), state)
            else:
                table.add_row(
                    i["account"],
                    i["account_name"],
                    i["subscription"],
                    f"{i['plan']} / {i['channel']}",
                    i["paid_until"][:10],
                    ", ".join(i["rules"]),
                    state,
                )
        show(console, table)
    counts = report["counts"]
    mode = "applied" if report["applied"] else "dry run: nothing changed (--apply to act)"
    console.print(
        f"{report['accounts_examined']} accounts examined: {counts['subscription_transfer']} subscriptions to move, "
        f"{counts['open_checkout']} open checkouts, {counts['hosting_lost']} free hosts losing hosting — {mode}"
    )


def _side(side: dict[str, Any]) -> str:
    rules = ", ".join(f"{r['rule']}@{r['jurisdiction']}" for r in side["rules"]) or "no rule"
    text = f"{side['decision']}: {rules}"
    if side["decision"] == "malformed":
        text = f"malformed: {side['message']}"
    if side["alternatives"]:
        text += "; offers " + ", ".join(side["alternatives"])
    if side["obligations"]:
        text += "; obliges " + ", ".join(side["obligations"])
    return text


def _bound(local: str | None, utc: str | None, zone: str) -> tuple[str, str]:
    if local is None or utc is None:
        return "…", "…"
    at = datetime.fromisoformat(local).astimezone(ZoneInfo(zone))
    return f"{at:%Y-%m-%d %H:%M} {at.tzname()}", utc.replace("T", " ").replace("Z", " UTC")


def policy_diff(console: Console, diff: dict[str, Any]) -> None:
    """A policy diff as one table of differing request classes and a one-line count."""
    old, new = diff["old"], diff["new"]
    console.print(
        f"[bold]Policy diff[/bold] {old['name']} {old['version']} → {new['name']} {new['version']}",
        soft_wrap=True,
    )
    counts = diff["counts"]
    if not diff["classes"]:
        console.print(
            f"no difference: {counts['examined']} request classes decided alike  [dim]{diff['digest']}[/]",
            soft_wrap=True,
        )
        return
    table = Table(title="Request classes decided differently", title_justify="left")
    for header in ("action", "judged under", "facts", "local time", "UTC", "old", "new"):
        table.add_column(header)
    for c in diff["classes"]:
        w = c["window"]
        start_local, start_utc = _bound(w["from_local"], w["from_utc"], w["zone"])
        end_local, end_utc = _bound(w["until_local"], w["until_utc"], w["zone"])
        under = " / ".join(", ".join(c["judged_under"][side]) for side in ("old", "new"))
        if c["judged_under"]["old"] == c["judged_under"]["new"]:
            under = ", ".join(c["judged_under"]["old"])
        facts = [f"{k}={'|'.join(v)}" for k, v in c["facts"].items() if v != ["*"]]
        if c["org_code"] != "*":
            facts.append(f"org_id={c['org_code']}")
        table.add_row(
            c["action"],
            under,
            " ".join(facts) or "any",
            f"{start_local} → {end_local}",
            f"{start_utc} → {end_utc}",
            _side(c["old"]),
            _side(c["new"]),
        )
    show(console, table)
    by_change = ", ".join(f"{n} {k}" for k, n in sorted(counts["by_change"].items()))
    console.print(
        f"{counts['classes']} classes differ ({by_change}); {counts['differing']} of "
        f"{counts['examined']} elementary request classes  [dim]{diff['digest']}[/]",
        soft_wrap=True,
    )
    console.print("[dim]each class's example request: --json[/]")


def invariants(console: Console, report: dict[str, Any]) -> None:
    """An invariant check: one line per invariant, and each counterexample in full."""
    b = report["bundle"]
    console.print(f"[bold]Invariants[/bold] of {b['name']} {b['version']}", soft_wrap=True)
    for r in report["results"]:
        if r["holds"]:
            console.print(
                f"[green]holds[/]  {r['id']}: {r['description']}  [dim]({r['examined']} request classes)[/]",
                soft_wrap=True,
            )
            continue
        console.print(f"[red]FAILS[/]  {r['id']}: {r['description']}", soft_wrap=True)
        console.print(f"  counterexample: {json.dumps(r['counterexample'])}", soft_wrap=True)
        console.print(f"  decided: {r['explanation']}", soft_wrap=True)
        if "other" in r:
            console.print(f"  other request: {json.dumps(r['other'])}", soft_wrap=True)
    broken = sum(1 for r in report["results"] if not r["holds"])
    total = len(report["results"])
    console.print(
        f"{total - broken} of {total} invariants hold" + (f"; {broken} fail" if broken else "")
    )
