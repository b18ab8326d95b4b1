"""What changes when: every rule and partner window boundary, in local time and in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from .compiled import CompiledBundle, expand_jurisdictions, window_epochs

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


def timeline(bundle: CompiledBundle, jurisdiction: str | None = None) -> list[Change]:
    """Every boundary in the bundle, oldest first; only ``jurisdiction``'s when one is given."""
    doc = bundle.document
    changes: list[Change] = []
    for rule in doc.rules:
        window = rule.effective
        if window.from_ is None and window.until is None:
            continue
        for jur in expand_jurisdictions(doc, rule.jurisdictions):
            if jurisdiction is not None and jur != jurisdiction:
                continue
            zone = doc.jurisdictions[jur].zone
            start, end = window_epochs(doc, window, jur)
            actions = tuple(a.value for a in rule.actions)
            for epoch, event in ((start, "starts"), (end, "ends")):
                if epoch is not None:
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
                            window.approximate,
                            rule.message,
                        )
                    )
    for pid, partner in doc.partners.items():
        window = partner.effective
        if window.from_ is None and window.until is None:
            continue
        for jur in expand_jurisdictions(doc, partner.jurisdictions):
            if jurisdiction is not None and jur != jurisdiction:
                continue
            zone = doc.jurisdictions[jur].zone
            start, end = window_epochs(doc, window, jur)
            for epoch, event in ((start, "starts"), (end, "ends")):
                if epoch is not None:
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
                            window.approximate,
                            f"{partner.name} authorised",
                        )
                    )
    changes.sort(key=lambda c: (c.epoch, c.jurisdiction, c.subject))
    return changes
