"""The decision: one frozen value that the API returns, the CLI prints and the log stores.

The values here are ``NamedTuple`` classes rather than frozen dataclasses: they are built on every
decision, and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) measured
about 3.5 times slower than a named tuple's on this machine (670 ns against 190 ns for nine
fields), a large share of the decision budget in ``bench/decisions.py``. They are just as
immutable.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple

from ..geography.evidence import Evidence, Signal

__all__ = [
    "Alternatives",
    "BundleRef",
    "Decision",
    "Location",
    "PartnerRef",
    "Reason",
    "Verdict",
]

#: a decision's answer
Verdict = Literal["allow", "deny"]


class Reason(NamedTuple):
    """A rule that determined a decision, as the person affected should read it."""

    rule: str
    effect: str  # "permit" or "forbid"
    message: str
    jurisdiction: str
    approximate: bool = False  # the rule's effective date is an approximation

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "effect": self.effect,
            "message": self.message,
            "jurisdiction": self.jurisdiction,
        }
        if self.approximate:
            out["approximate"] = True
        return out


class Location(NamedTuple):
    """Where the subject was judged to be, and every piece of evidence that was weighed."""

    country: str  # an ISO code, or "unknown"
    evidence: tuple[Evidence, ...]
    #: every jurisdiction the subject was judged under (more than one when signals disagree)
    judged_under: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        # Evidence.to_dict written out (``_value_`` is what the ``value`` property returns,
        # without the property's cost): a third off this method, which every decision runs.
        return {
            "country": self.country,
            "evidence": [
                {"signal": signal._value_, "value": value, "country": country}
                if source is None
                else {
                    "signal": signal._value_,
                    "value": value,
                    "country": country,
                    "source": source,
                }
                for signal, value, country, source in self.evidence
            ],
            "judged_under": list(self.judged_under),
        }


class PartnerRef(NamedTuple):
    """An authorised partner offered as an alternative, with how to reach it."""

    id: str
    name: str
    contact: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "contact": self.contact}


class Alternatives(NamedTuple):
    """What the subject can do instead: for a refused purchase, the authorised partners."""

    partners: tuple[PartnerRef, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"partners": [p.to_dict() for p in self.partners]}


class BundleRef(NamedTuple):
    """Which bundle decided: its name, version and content digest."""

    name: str
    version: str
    digest: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "digest": self.digest}


NO_ALTERNATIVES = Alternatives()


class Decision(NamedTuple):
    """The answer to "may this subject do this, here, now — and why?".

    ``reasons`` lists every rule that determined the answer: for a deny, every forbid that
    matched (or none, when no rule permitted: default deny); for an allow, every permit that
    matched. ``errors`` lists rules that failed to evaluate; each counted as a forbid.
    """

    decision: Verdict
    action: str
    reasons: tuple[Reason, ...]
    obligations: tuple[str, ...]
    location: Location
    alternatives: Alternatives
    bundle: BundleRef
    at: datetime  # UTC
    errors: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """The ids of the deciding rules, in order, without repeats."""
        return tuple(dict.fromkeys(r.rule for r in self.reasons))

    def to_dict(self) -> dict[str, Any]:
        """The public JSON form (fields may be added over time, never renamed)."""
        # Every HTTP decision goes through here (bench/api.py), so it reads the fields by
        # unpacking and writes the instant with ``isoformat`` (see ``_instant``).
        decision, action, reasons, obligations, location, alternatives, bundle, at, errors = self
        out: dict[str, Any] = {
            "decision": decision,
            "action": action,
            "reasons": [r.to_dict() for r in reasons],
            "obligations": list(obligations),
            "location": location.to_dict(),
            "alternatives": {"partners": [p.to_dict() for p in alternatives.partners]},
            "bundle": {"name": bundle.name, "version": bundle.version, "digest": bundle.digest},
            "at": _instant(at),
        }
        if errors:
            out["errors"] = list(errors)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """The decision :meth:`to_dict` wrote, read back (a client reading a refusal's decision).

        Raises ``KeyError``, ``TypeError`` or ``ValueError`` for anything :meth:`to_dict` does not
        write.
        """
        where, bundle = data["location"], data["bundle"]
        verdict = data["decision"]
        if verdict not in ("allow", "deny"):
            raise ValueError(f"a decision is `allow` or `deny`, not `{verdict}`")
        return cls(
            decision="allow" if verdict == "allow" else "deny",
            action=str(data["action"]),
            reasons=tuple(
                Reason(
                    str(r["rule"]),
                    str(r["effect"]),
                    str(r["message"]),
                    str(r["jurisdiction"]),
                    bool(r.get("approximate", False)),
                )
                for r in data["reasons"]
            ),
            obligations=tuple(str(o) for o in data["obligations"]),
            location=Location(
                str(where["country"]),
                tuple(
                    Evidence(Signal(e["signal"]), str(e["value"]), e["country"], e.get("source"))
                    for e in where["evidence"]
                ),
                tuple(str(j) for j in where["judged_under"]),
            ),
            alternatives=Alternatives(
                tuple(
                    PartnerRef(str(p["id"]), str(p["name"]), p["contact"])
                    for p in data["alternatives"]["partners"]
                )
            ),
            bundle=BundleRef(str(bundle["name"]), str(bundle["version"]), str(bundle["digest"])),
            at=datetime.fromisoformat(str(data["at"])),
            errors=tuple(str(e) for e in data.get("errors", ())),
        )


def _instant(at: datetime) -> str:
    """``at`` (UTC) as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``.

    ``isoformat`` writes the same text as ``strftime`` plus the optional fraction in about 40 %
    of the time (0.7 µs against 1.7 µs here), except for years before 1000, which ``strftime``
    leaves unpadded; those, and an instant not in UTC, take the ``strftime`` path unchanged.
    """
    text = at.isoformat()
    if text.endswith("+00:00") and at.year >= 1000:
        return text[:-6] + "Z"
    return (
        at.strftime("%Y-%m-%dT%H:%M:%S")
        + (f".{at.microsecond:06d}" if at.microsecond else "")
        + "Z"
    )
