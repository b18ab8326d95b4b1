"""Scoping: what a lawful request may touch, computed from what Meridian knows — never judged.

The rule Meridian enforces in code: **a request from jurisdiction J may only affect people
located in or subject to J.** Where a person is comes from the record, never from the request:
an account is where it is registered (``account.country``), a meeting where its host is
(``meeting.host_country``), a participant where it joined from (``participations.country``, the
country its join was judged under). Live and past participations both count.

Per action, for a request from J:

* ``suspend_account`` (an account): suspended if the account is in J; refused otherwise.
* ``end_meeting`` (a meeting or its participants): ended if its host and *every* participant are
  in J; otherwise narrowed to a block of the participants in J (everyone else stays). A meeting
  with no participant in J is out of scope entirely.
* ``block_participants``: the participants in J are blocked; the meeting itself goes on.
* ``disclose_content`` / ``disclose_non_content``: the records of the people in J only — the
  account; for a meeting, the participations of those who joined from J, and the meeting and its
  host's account if the host is in J. Content only on a legal type in
  :data:`~.model.CONTENT_BASES` (a warrant), otherwise narrowed to non-content; and Meridian
  holds no meeting content (meetings are end-to-end encrypted), so a content disclosure hands
  over the non-content records and nothing else.

A meeting that already ended has nothing left to end or block.

The result lists every entity with whether it is in J, its effect and why; its ``outcome`` is
``full`` when nothing asked for was held back, ``narrowed`` when something was but an effect
remains, and ``none`` when nothing remains.

INVARIANT: every effect other than ``none`` is on an entity whose country is the requesting
jurisdiction (tests/legal/test_scoping.py checks it over random worlds and requests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..geography.jurisdictions import jurisdiction_name
from .model import CONTENT_BASES

__all__ = [
    "AccountFacts",
    "Effect",
    "EffectKind",
    "EntityKind",
    "MeetingFacts",
    "Outcome",
    "ParticipantFacts",
    "Scope",
    "ScopeAsk",
    "scope",
]

EntityKind = Literal["account", "meeting", "participant"]
EffectKind = Literal["suspend", "end", "block", "disclose_content", "disclose_non_content", "none"]
Outcome = Literal["full", "narrowed", "none"]

_NO_CONTENT = (
    "Meridian holds no meeting content (meetings are end-to-end encrypted): "
    "only non-content records exist to hand over"
)


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """An account as scoping sees it: where it is registered."""

    id: str
    country: str


@dataclass(frozen=True, slots=True)
class ParticipantFacts:
    """One participation: where it joined from, its account if it had one, and whether it is live."""

    id: str
    country: str
    account_id: str | None = None
    live: bool = True


@dataclass(frozen=True, slots=True)
class MeetingFacts:
    """A meeting: its host (account and country), whether it is live, and every participation."""

    id: str
    host: AccountFacts
    host_country: str
    live: bool
    participants: tuple[ParticipantFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class ScopeAsk:
    """What scoping needs of a request: who asks, on what basis, for what, about which target."""

    jurisdiction: str
    legal_type: str
    action: str
    target_kind: str


@dataclass(frozen=True, slots=True)
class Effect:
    """One entity of the target: where it is, whether it is in scope, what happens to it and why.

    ``wanted`` is the effect the request asked for on this entity, before the jurisdiction and
    the legal basis were applied; it decides the outcome and is not part of the record.
    """

    kind: EntityKind
    id: str
    country: str
    in_scope: bool
    effect: EffectKind
    why: str
    wanted: EffectKind = "none"
    #: the participation's account (participants only): whom a notice could reach
    account_id: str | None = None
    #: the participation is live (participants only): it is disconnected when blocked
    live: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "country": self.country,
            "in_scope": self.in_scope,
            "effect": self.effect,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class Scope:
    """The computed scope of a request: every entity of its target, and the outcome."""

    jurisdiction: str
    requested: str
    outcome: Outcome
    effects: tuple[Effect, ...]

    def to_dict(self) -> dict[str, Any]:
        """The scope as ``legal.scoped`` records it."""
        return {
            "jurisdiction": self.jurisdiction,
            "requested": self.requested,
            "outcome": self.outcome,
            "effects": [e.to_dict() for e in self.effects],
        }

    def affected(self, *kinds: EntityKind) -> list[Effect]:
        """The entities with an effect (of ``kinds``, if given), in order."""
        return [e for e in self.effects if e.effect != "none" and (not kinds or e.kind in kinds)]

    @property
    def why(self) -> str:
        """One line saying why nothing is in scope (for an automatic rejection)."""
        reasons = list(dict.fromkeys(e.why for e in self.effects))
        return "nothing in scope: " + ("; ".join(reasons) if reasons else "the target is empty")


def _outcome(effects: tuple[Effect, ...]) -> Outcome:
    if all(e.effect == "none" for e in effects):
        return "none"
    if all(e.effect == e.wanted for e in effects):
        return "full"
    return "narrowed"


def _out(what: str, country: str, j: str) -> str:
    return (
        f"out of jurisdiction: {what} in {country} ({jurisdiction_name(country)}), request from {j}"
    )


def scope(ask: ScopeAsk, subject: AccountFacts | MeetingFacts) -> Scope:
    """The scope of ``ask`` over ``subject`` (the target: an account, or a meeting with its
    participants). Pure: the same facts give the same scope."""
    j = ask.jurisdiction
    if ask.action == "suspend_account":
        assert isinstance(subject, AccountFacts)
        effects: tuple[Effect, ...] = (_suspend(subject, j),)
    elif ask.action in ("end_meeting", "block_participants"):
        assert isinstance(subject, MeetingFacts)
        effects = _end_or_block(ask.action, subject, j)
    else:
        content = ask.action == "disclose_content"
        if content and ask.legal_type in CONTENT_BASES:
            kind: EffectKind = "disclose_content"
            basis = f"a {ask.legal_type} reaches content, but {_NO_CONTENT}"
        elif content:
            kind = "disclose_non_content"
            basis = (
                f"narrowed to non-content: content needs a "
                f"{' or '.join(sorted(CONTENT_BASES))}, not a {ask.legal_type}"
            )
        else:
            kind, basis = "disclose_non_content", "non-content records"
        wanted: EffectKind = "disclose_content" if content else "disclose_non_content"
        effects = _disclose(ask, subject, j, kind, wanted, basis)
    return Scope(j, ask.action, _outcome(effects), effects)


def _suspend(account: AccountFacts, j: str) -> Effect:
    if account.country == j:
        why = f"account registered in {j}, inside the requesting jurisdiction"
        return Effect("account", account.id, account.country, True, "suspend", why, "suspend")
    why = _out("account", account.country, j) + ": it is not suspended"
    return Effect("account", account.id, account.country, False, "none", why, "suspend")


def _participant(
    p: ParticipantFacts, j: str, effect: EffectKind, why: str, wanted: EffectKind
) -> Effect:
    return Effect(
        "participant", p.id, p.country, p.country == j, effect, why, wanted, p.account_id, p.live
    )


def _end_or_block(action: str, meeting: MeetingFacts, j: str) -> tuple[Effect, ...]:
    host_in = meeting.host_country == j
    mine: EffectKind = "end" if action == "end_meeting" else "none"
    if not meeting.live:
        why = "the meeting already ended: there is nothing to end or block"
        return (
            Effect("meeting", meeting.id, meeting.host_country, host_in, "none", why, "none"),
            *(_participant(p, j, "none", why, "none") for p in meeting.participants),
        )
    outside = sorted({p.country for p in meeting.participants if p.country != j})
    if action == "end_meeting" and host_in and not outside:
        why = f"hosted from {j} and every participant joined from {j}: the meeting is ended"
        return (
            Effect("meeting", meeting.id, meeting.host_country, True, "end", why, "end"),
            *(
                _participant(p, j, "end", f"joined from {j}: the meeting ends for everyone", "end")
                for p in meeting.participants
            ),
        )
    wanted_p: EffectKind = "end" if action == "end_meeting" else "block"
    if action == "block_participants":
        why = f"the meeting goes on: only its participants in {j} are blocked"
    elif not host_in:
        why = _out("host", meeting.host_country, j) + ": the meeting is not ended"
    else:
        why = (
            f"participants outside {j} ({', '.join(outside)}): the meeting is not ended, "
            f"only its participants in {j} are blocked"
        )
    effects = [Effect("meeting", meeting.id, meeting.host_country, host_in, "none", why, mine)]
    for p in meeting.participants:
        if p.country == j:
            effects.append(
                _participant(
                    p,
                    j,
                    "block",
                    f"joined from {j}: removed if live, and refused if it joins again",
                    wanted_p,
                )
            )
        else:
            effects.append(_participant(p, j, "none", _out("participant", p.country, j), wanted_p))
    return tuple(effects)


def _disclose(
    ask: ScopeAsk,
    subject: AccountFacts | MeetingFacts,
    j: str,
    kind: EffectKind,
    wanted: EffectKind,
    basis: str,
) -> tuple[Effect, ...]:
    def one(
        entity: EntityKind,
        id_: str,
        country: str,
        what: str,
        p: ParticipantFacts | None = None,
    ) -> Effect:
        inside = country == j
        effect: EffectKind = kind if inside else "none"
        why = f"{what} in {j}: {basis}" if inside else _out(what, country, j)
        if p is not None:
            return _participant(p, j, effect, why, wanted)
        return Effect(entity, id_, country, inside, effect, why, wanted)

    if isinstance(subject, AccountFacts):
        return (one("account", subject.id, subject.country, "account"),)
    effects: list[Effect] = []
    if ask.target_kind == "meeting":
        effects.append(one("meeting", subject.id, subject.host_country, "meeting host"))
        effects.append(one("account", subject.host.id, subject.host.country, "host account"))
    else:
        why = (
            "the target is the meeting's participants: the meeting's own records are not asked for"
        )
        effects.append(
            Effect(
                "meeting", subject.id, subject.host_country, subject.host_country == j, "none", why
            )
        )
    for p in subject.participants:
        effects.append(one("participant", p.id, p.country, "participant", p))
    return tuple(effects)
