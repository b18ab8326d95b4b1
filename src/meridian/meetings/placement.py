"""Placement: which data centre carries each participant, and which key server keys the meeting.

The rule, for each participant in turn: judge the ``join`` under the bundle in force (the
participant's country comes from its connection address, as for every decision); refuse a
country the meeting's approve or deny list keeps out; then, among the meeting's allowed regions
that are open and have room, take the one nearest to the participant's country — unless the
meeting already uses a region with room in the same region group, which is taken instead (one
relay per group keeps a meeting's cascade small, as jicofo's region-based selection does). When
no allowed region has room, the participant is refused: placement never looks outside the
allowed set, under any load.

The meeting's links are every pair of the regions it uses (a full mesh: each relay forwards a
frame once to each other relay, nothing takes two hops, so no frame passes through a region the
meeting does not use).

INVARIANT: every region a :class:`Placement` names and every link end is in
:attr:`MeetingPlan.regions`, and :attr:`MeetingPlan.key_region` is in it too
(tests/meetings/test_placement.py checks it over random meetings, settings and loads).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from ..errors import InputError, shown
from ..geography.jurisdictions import check_jurisdiction
from ..policy.decision import Decision, Reason
from ..policy.engine import Engine
from ..policy.request import parse_request
from .regions import RegionTable

__all__ = [
    "CountryList",
    "MeetingPlan",
    "Occupancy",
    "Placement",
    "links_between",
    "place",
    "plan_meeting",
    "refuse_placed",
]


@dataclass(frozen=True, slots=True)
class CountryList:
    """A meeting's approve list or deny list of participant countries (never both)."""

    mode: Literal["approve", "deny"] | None = None
    countries: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, data: object, *, field_name: str = "countries") -> CountryList:
        """From ``{"approve": [...]}`` or ``{"deny": [...]}``; ``None`` or ``{}`` is no list."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InputError(
                f'`{field_name}` must be an object such as `{{"deny": ["KP"]}}`, got `{shown(data)}`'
            )
        keys = set(data)
        unknown = keys - {"approve", "deny"}
        if unknown:
            raise InputError(
                f"unknown field `{field_name}.{shown(sorted(unknown)[0])}`: use `approve` or `deny`"
            )
        if keys == {"approve", "deny"}:
            raise InputError(f"`{field_name}`: give `approve` or `deny`, not both")
        if not keys:
            return cls()
        mode: Literal["approve", "deny"] = "approve" if "approve" in keys else "deny"
        values = data[mode]
        if not isinstance(values, list | tuple):
            raise InputError(f"`{field_name}.{mode}` must be a list of country codes")
        return cls(mode, frozenset(check_jurisdiction(v) for v in values))

    def admits(self, country: str) -> bool:
        if self.mode == "approve":
            return country in self.countries
        if self.mode == "deny":
            return country not in self.countries
        return True

    def to_dict(self) -> dict[str, list[str]] | None:
        return None if self.mode is None else {self.mode: sorted(self.countries)}


@dataclass(frozen=True, slots=True)
class MeetingPlan:
    """Where one meeting may go: its allowed regions (open at the instant) and its key region."""

    host_country: str
    regions: frozenset[str]
    key_region: str
    countries: CountryList = CountryList()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"regions": sorted(self.regions), "key_region": self.key_region}
        if self.countries.mode is not None:
            out["countries"] = self.countries.to_dict()
        return out


def plan_meeting(
    table: RegionTable,
    *,
    host_country: str,
    paid: bool,
    at: datetime,
    chosen: Iterable[str] | None = None,
    opted_in: Iterable[str] = (),
    countries: CountryList = CountryList(),
) -> MeetingPlan:
    """The plan of a meeting hosted from ``host_country`` at ``at`` (see ``RegionTable``)."""
    check_jurisdiction(host_country)
    allowed = table.allowed_set(host_country, paid=paid, chosen=chosen, opted_in=opted_in)
    home = table.home_at(host_country, at)
    regions = table.open_at(allowed, at) | {home}
    return MeetingPlan(host_country, regions, home, countries)


class Occupancy:
    """Participants each data centre carries, from a load fraction plus what placement adds."""

    def __init__(
        self,
        table: RegionTable,
        load: Mapping[str, float] | None = None,
        *,
        down: Iterable[str] = (),
    ) -> None:
        # A region that is down (no node serving it) has no room at all.
        off = frozenset(down)
        self.capacity = {
            code: 0 if code in off else dc.capacity for code, dc in table.datacentres.items()
        }
        self.used = dict.fromkeys(self.capacity, 0)
        for code, fraction in (load or {}).items():
            self.used[code] = math.ceil(fraction * self.capacity[code])
        self._full = {code: dc.capacity for code, dc in table.datacentres.items()}
        self._off = off
        #: regions whose node the health checker marked down: no room until it answers again
        self.down: set[str] = set()

    def set_down(self, code: str, down: bool) -> None:
        """Mark a region's node down (no room) or up again (its capacity back)."""
        if code not in self.capacity:
            return
        if down:
            self.down.add(code)
            self.capacity[code] = 0
        else:
            self.down.discard(code)
            self.capacity[code] = 0 if code in self._off else self._full[code]

    def has_room(self, code: str) -> bool:
        return self.used[code] < self.capacity[code]

    def take(self, code: str) -> None:
        self.used[code] += 1

    def release(self, code: str) -> None:
        self.used[code] = max(0, self.used[code] - 1)

    def load(self, code: str) -> float:
        capacity = self.capacity[code]
        return 1.0 if capacity == 0 else self.used[code] / capacity


class Placement(NamedTuple):
    """One participant's placement: allowed with a data centre, or refused, with the reasons."""

    participant: str
    decision: str  # "allow" or "deny"
    dc: str | None
    country: str
    reasons: tuple[Reason, ...]
    notices: tuple[str, ...] = ()
    join: Decision | None = None

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"participant": self.participant, "decision": self.decision}
        if self.dc is not None:
            out["dc"] = self.dc
        out["country"] = self.country
        out["reasons"] = [r.to_dict() for r in self.reasons]
        if self.notices:
            out["notices"] = list(self.notices)
        return out


def place(
    engine: Engine,
    table: RegionTable,
    plan: MeetingPlan,
    participant: str,
    subject: Mapping[str, Any],
    at: datetime,
    occupancy: Occupancy,
    uses: dict[str, int],
) -> Placement:
    """Place one participant of the meeting ``plan``; ``uses`` counts the meeting's participants
    per region and is updated, as is ``occupancy``, when the participant is admitted.

    ``subject`` is the join request's subject (``ip`` and/or ``country``, optionally ``type`` and
    ``plan``); the participant's country is the one the engine judged the join under.
    """
    request = parse_request(
        {
            "action": "join",
            "at": at.isoformat(),
            "subject": {
                "type": "individual",
                **{k: v for k, v in subject.items() if v is not None},
            },
        }
    )
    decision = engine.decide(request)
    country = decision.location.country
    if not decision.allowed:
        return Placement(participant, "deny", None, country, decision.reasons, (), decision)
    if not plan.countries.admits(country):
        reason = Reason(
            "meeting-countries",
            "forbid",
            f"this meeting is not reachable from {country}: its host "
            + ("admits only listed countries" if plan.countries.mode == "approve" else "blocks it"),
            country,
        )
        return Placement(participant, "deny", None, country, (reason,), (), decision)
    regions = plan.regions
    order = table.by_distance(country)
    nearest: str | None = None
    for code, _km in order:
        if code in regions and occupancy.has_room(code):
            nearest = code
            break
    if nearest is None:
        down = sorted(regions & occupancy.down)
        reason = Reason(
            "capacity",
            "forbid",
            "every data centre this meeting may use is full or unavailable ("
            + ", ".join(sorted(regions))
            + (f"; region node down: {', '.join(down)}" if down else "")
            + "); it is never carried elsewhere, try again shortly",
            country,
        )
        return Placement(participant, "deny", None, country, (reason,), (), decision)
    chosen, why = nearest, f"nearest allowed data centre with room to {country}: {nearest}"
    if uses and nearest not in uses:
        group = table.datacentres[nearest].group
        for code, _km in order:
            if (
                code in uses
                and code in regions
                and table.datacentres[code].group == group
                and occupancy.has_room(code)
            ):
                chosen = code
                why = f"already carries this meeting in region group {group}: {code}"
                break
    occupancy.take(chosen)
    uses[chosen] = uses.get(chosen, 0) + 1
    notices: tuple[str, ...] = ()
    notice = table.notices.get(chosen)
    if notice is not None and table.datacentres[chosen].jurisdiction != country:
        notices = (notice,)
    reasons = (*decision.reasons, Reason("placement", "permit", why, country))
    return Placement(participant, "allow", chosen, country, reasons, notices, decision)


def links_between(uses: Iterable[str]) -> list[tuple[str, str]]:
    """The cascade links of a meeting using ``uses``: every pair, each sorted, in order."""
    regions = sorted(set(uses))
    return [(a, b) for i, a in enumerate(regions) for b in regions[i + 1 :]]


def refuse_placed(
    placement: Placement, occupancy: Occupancy, uses: dict[str, int], reason: Reason
) -> Placement:
    """``placement``, allowed and already counted, turned into a refusal for ``reason``: its
    place in ``occupancy`` and its count in ``uses`` are given back."""
    assert placement.dc is not None
    occupancy.release(placement.dc)
    left = uses.get(placement.dc, 0) - 1
    if left > 0:
        uses[placement.dc] = left
    else:
        uses.pop(placement.dc, None)
    return placement._replace(decision="deny", dc=None, reasons=(reason,), notices=())
