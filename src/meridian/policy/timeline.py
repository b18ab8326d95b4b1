"""What changes when: every rule and partner window boundary, in local time and in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from .compiled import CompiledBundle, expand_jurisdictions, window_epochs
from .model import Window

__all__ = ["Change", "timeline"]


class Change(NamedTuple):
    """One moment at which something a decision reads starts or stops."""

    epoch: int
    jurisdiction: str
    zone: str
    kind: str  # "rule" or "partner"
    subject: str  # the rule or partner id
    event: str  # "starts" or "ends"
    effect: str  # permit / forbid for rules, "authorised" for partners
    actions: tuple[str, ...]
    approximate: bool
    summary: str

    @property
    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.epoch, UTC)

    @property
    def local(self) -> datetime:
        return self.utc.astimezone(ZoneInfo(self.zone))

    def to_dict(self) -> dict[str, Any]:
        return {
            "jurisdiction": self.jurisdiction,
            "local": self.local.isoformat(),
            "utc": self.utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kind": self.kind,
            "id": self.subject,
            "event": self.event,
            "effect": self.effect,
            "actions": list(self.actions),
            "approximate": self.approximate,
            "summary": self.summary,
        }


def _moments(
    bundle: CompiledBundle, window: Window, names: tuple[str, ...], only: str | None
) -> Iterator[tuple[str, str, int, str]]:
    """(jurisdiction, zone, epoch, "starts"/"ends") for each bound of ``window`` where it applies."""
    doc = bundle.document
    if window.from_ is None and window.until is None:
        return
    for jur in expand_jurisdictions(doc, names):
        if only is not None and jur != only:
            continue
        start, end = window_epochs(doc, window, jur)
        for epoch, event in ((start, "starts"), (end, "ends")):
            if epoch is not None:
                yield jur, doc.jurisdictions[jur].zone, epoch, event


def timeline(bundle: CompiledBundle, jurisdiction: str | None = None) -> list[Change]:
    """Every boundary in the bundle, oldest first; only ``jurisdiction``'s when one is given."""
    doc = bundle.document
    changes: list[Change] = []
    for rule in doc.rules:
        actions = tuple(a.value for a in rule.actions)
        for jur, zone, epoch, event in _moments(
            bundle, rule.effective, rule.jurisdictions, jurisdiction
        ):
            changes.append(
                Change(
                    epoch,
                    jur,
                    zone,
                    "rule",
                    rule.id,
                    event,
                    rule.effect.value,
                    actions,
                    rule.effective.approximate,
                    rule.message,
                )
            )
    for pid, partner in doc.partners.items():
        for jur, zone, epoch, event in _moments(
            bundle, partner.effective, partner.jurisdictions, jurisdiction
        ):
            changes.append(
                Change(
                    epoch,
                    jur,
                    zone,
                    "partner",
                    pid,
                    event,
                    "authorised",
                    ("purchase", "renew"),
                    partner.effective.approximate,
                    f"{partner.name} authorised",
                )
            )
    changes.sort(key=lambda c: (c.epoch, c.jurisdiction, c.subject))
    return changes
