"""The public placement contract: one JSON request in, the meeting's placements out.

``POST /v1/placements`` and ``meridian route`` both call :func:`route`; it changes nothing. The
request names the host (country, plan, any opt-in), optionally the meeting's regions and its
country list, the participants (``ip`` and/or ``country`` each) and the current load of each
data centre as a fraction of its capacity::

    {"at": "2021-03-01T10:00:00Z",
     "meeting": {"host": {"country": "US", "plan": "pro"}, "regions": ["US", "DE", "HK"],
                 "countries": {"deny": ["KP"]}},
     "participants": [{"id": "p1", "ip": "8.8.8.8"}, {"id": "p2", "country": "CN"}],
     "load": {"HK": 0.5}}
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InputError, format_validation_error, shown
from ..policy.engine import Engine
from .placement import CountryList, Occupancy, links_between, place, plan_meeting
from .regions import region_table

__all__ = ["MAX_PARTICIPANTS", "PlacementRequest", "route", "route_request"]

_EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)

#: participants one placement request may name
MAX_PARTICIPANTS = 10_000


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Host(_Wire):
    country: str = Field(max_length=8)
    plan: str = Field(default="free", max_length=100)
    opt_in: tuple[str, ...] = Field(default=(), max_length=64)


class _Meeting(_Wire):
    host: _Host
    regions: tuple[str, ...] | None = Field(default=None, max_length=64)
    countries: dict[str, list[str]] | None = None


class _Participant(_Wire):
    id: str = Field(min_length=1, max_length=200)
    ip: str | None = Field(default=None, max_length=64)
    country: str | None = Field(default=None, max_length=8)
    type: str | None = Field(default=None, max_length=20)
    plan: str | None = Field(default=None, max_length=100)


class PlacementRequest(_Wire):
    """The placement request (see the module docstring)."""

    at: AwareDatetime | None = None

    @field_validator("at")
    @classmethod
    def _bounded(cls, value: datetime | None) -> datetime | None:
        # Far from datetime's ends, so converting to UTC never overflows.
        if value is not None and not (_EARLIEST <= value < _LATEST):
            raise ValueError("must lie between the years 1000 and 9000")
        return value

    meeting: _Meeting
    participants: tuple[_Participant, ...] = Field(max_length=MAX_PARTICIPANTS)
    load: dict[str, float] = {}


def route(engine: Engine, data: object) -> dict[str, Any]:
    """Place every participant of the described meeting; :class:`InputError` on bad input."""
    try:
        body = PlacementRequest.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, "placement request")) from exc
    return route_request(engine, body)


def route_request(engine: Engine, body: PlacementRequest) -> dict[str, Any]:
    """:func:`route` for a request already validated."""
    table = region_table(engine.bundle)
    at = (body.at or engine.clock()).astimezone(UTC)
    host = body.meeting.host
    plans = engine.bundle.document.plans
    plan = plans.get(host.plan)
    if plan is None:
        raise InputError(
            f"unknown plan `{shown(host.plan)}` in `meeting.host.plan`: expected one of "
            + ", ".join(plans)
        )
    if body.meeting.regions is not None and not plan.paid:
        raise InputError(
            f"plan `{host.plan}` is free: its meetings use the host's default regions, "
            "so `meeting.regions` cannot be chosen"
        )
    opted_in = table.check_regions(host.opt_in, field="meeting.host.opt_in")
    meeting = plan_meeting(
        table,
        host_country=host.country,
        paid=plan.paid,
        at=at,
        chosen=body.meeting.regions,
        opted_in=opted_in,
        countries=CountryList.parse(body.meeting.countries, field_name="meeting.countries"),
    )
    for code, fraction in body.load.items():
        if code not in table.codes:
            table.check_regions([code], field="load")
        if not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0):
            raise InputError(
                f"load of `{code}` is `{shown(fraction)}`: expected a fraction from 0 to 1"
            )
    seen: set[str] = set()
    for p in body.participants:
        if p.id in seen:
            raise InputError(f"participant `{shown(p.id)}` is listed twice")
        seen.add(p.id)
    occupancy = Occupancy(table, body.load)
    uses: dict[str, int] = {}
    placements = [
        place(
            engine,
            table,
            meeting,
            p.id,
            {"ip": p.ip, "country": p.country, "type": p.type, "plan": p.plan},
            at,
            occupancy,
            uses,
        ).to_dict()
        for p in body.participants
    ]
    ref = engine.bundle.ref
    return {
        "meeting": meeting.to_dict(),
        "placements": placements,
        "links": [list(pair) for pair in links_between(uses)],
        "at": at.isoformat().replace("+00:00", "Z"),
        "bundle": {"name": ref.name, "version": ref.version, "digest": ref.digest},
    }
