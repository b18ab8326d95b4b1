"""The data-centre regions of the bundle in force, compiled for placement.

A :class:`RegionTable` answers the routing questions placement asks: which regions exist and are
open at an instant, a host's home region and default set, which regions need an explicit opt-in,
and — for each participant country — every region in order of distance, computed once.

INVARIANT: the allowed set :meth:`RegionTable.allowed_set` returns always holds the host's home
region, holds only listed regions, and holds an opt-in region only when the host opted in (or is
in that region's own jurisdiction).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any, NamedTuple

from ..errors import ConfigurationError, InputError, shown
from ..geography.positions import Vector, country_position, distance_km, vector
from ..geography.regions import home_region
from ..policy.compiled import CompiledBundle, expand_jurisdictions
from ..policy.model import Bundle

__all__ = ["DataCentreInfo", "DataCentreRow", "RegionTable", "datacentre_rows", "region_table"]


class DataCentreInfo(NamedTuple):
    code: str
    name: str
    jurisdiction: str
    position: Vector
    capacity: int
    group: str
    opened: datetime | None


class RegionTable:
    """Routing facts of one bundle; build with :func:`region_table`."""

    def __init__(self, doc: Bundle) -> None:
        if not doc.datacentres or doc.routing is None:
            raise ConfigurationError(
                f"bundle `{doc.bundle}` lists no data centres: meetings cannot be placed"
            )
        self.datacentres: dict[str, DataCentreInfo] = {
            code: DataCentreInfo(
                code,
                dc.name,
                dc.jurisdiction,
                vector(*dc.coordinates),
                dc.capacity,
                dc.group,
                None if dc.opened is None else datetime.combine(dc.opened, time(), tzinfo=UTC),
            )
            for code, dc in doc.datacentres.items()
        }
        self.codes = frozenset(self.datacentres)
        self._defaults: list[tuple[frozenset[str], frozenset[str]]] = []
        for entry in doc.routing.defaults:
            hosts = frozenset(expand_jurisdictions(doc, entry.hosts))
            spec = entry.regions
            if spec.all_except is not None:
                regions = self.codes - set(spec.all_except)
            else:
                regions = frozenset(spec.include) & self.codes
            self._defaults.append((hosts, regions))
        self.opt_in = frozenset(doc.routing.opt_in)
        self.notices = dict(doc.routing.notices)
        self._by_distance: dict[str, tuple[tuple[str, float], ...]] = {}

    # -- the host's side ---------------------------------------------------------------------

    def home(self, host_country: str) -> str:
        """The host's home region; a home region missing from the bundle is a configuration error."""
        region = home_region(host_country)
        if region not in self.codes:
            raise ConfigurationError(
                f"home region `{region}` of hosts in `{host_country}` is not a data centre "
                "of the bundle in force"
            )
        return region

    def default_set(self, host_country: str) -> frozenset[str]:
        """The host's default regions: the first routing default naming its jurisdiction, plus home.

        A host no default names gets its home region alone (fail closed: nothing is widened).
        """
        for hosts, regions in self._defaults:
            if host_country in hosts:
                return regions | {self.home(host_country)}
        return frozenset({self.home(host_country)})

    def needs_opt_in(self, region: str, host_country: str) -> bool:
        """Whether a host in ``host_country`` may use ``region`` only by explicit opt-in."""
        return region in self.opt_in and self.datacentres[region].jurisdiction != host_country

    def check_regions(self, regions: Iterable[object], *, field: str = "regions") -> list[str]:
        """Region codes a client sent, checked against the table; sorted, without repeats."""
        out: set[str] = set()
        for region in regions:
            if not isinstance(region, str) or region not in self.codes:
                raise InputError(
                    f"unknown data-centre region `{shown(region)}` in `{field}`: expected one of "
                    + ", ".join(sorted(self.codes))
                )
            out.add(region)
        return sorted(out)

    def allowed_set(
        self,
        host_country: str,
        *,
        paid: bool,
        chosen: Iterable[str] | None = None,
        opted_in: Iterable[str] = (),
    ) -> frozenset[str]:
        """The regions meetings of this host may use.

        Free hosts, and paid hosts who chose nothing, get the default set. A chosen set keeps
        the home region whatever was sent. An opt-in region outside the host's jurisdiction is
        kept only if it is in ``opted_in``; otherwise choosing it is an error, never a silent
        widening.
        """
        if not paid or chosen is None:
            return self.default_set(host_country)
        opted = frozenset(opted_in)
        regions = set(self.check_regions(chosen))
        for region in sorted(regions):
            if self.needs_opt_in(region, host_country) and region not in opted:
                raise InputError(
                    f"region `{region}` needs an explicit opt-in for a host in `{host_country}`: "
                    f"add `{region}` to `opt_in`"
                )
        return frozenset(regions | {self.home(host_country)})

    def open_at(self, regions: Iterable[str], at: datetime) -> frozenset[str]:
        """Those of ``regions`` already open at ``at``."""
        return frozenset(r for r in regions if (o := self.datacentres[r].opened) is None or o <= at)

    def home_at(self, host_country: str, at: datetime) -> str:
        """The host's home region as of ``at``: its home region once open; before that (Singapore
        before 2020-08-18), the open region nearest to it, which is where such hosts were homed."""
        home = self.home(host_country)
        opened = self.datacentres[home].opened
        if opened is None or opened <= at:
            return home
        origin = self.datacentres[home].position
        candidates = sorted(self.open_at(self.codes - self.opt_in, at))
        return min(candidates, key=lambda r: distance_km(origin, self.datacentres[r].position))

    # -- the participant's side --------------------------------------------------------------

    def by_distance(self, country: str) -> tuple[tuple[str, float], ...]:
        """Every region with its distance in km from ``country``'s people, nearest first.

        A country with no known position is measured from its home region's data centre.
        """
        cached = self._by_distance.get(country)
        if cached is not None:
            return cached
        origin = country_position(country)
        if origin is None:
            fallback = home_region(country)
            origin = self.datacentres[fallback].position if fallback in self.codes else None
        if origin is None:
            order = tuple((code, 0.0) for code in sorted(self.codes))
        else:
            here = origin
            order = tuple(
                sorted(
                    (
                        (code, distance_km(here, dc.position))
                        for code, dc in self.datacentres.items()
                    ),
                    key=lambda item: (item[1], item[0]),
                )
            )
        self._by_distance[country] = order
        return order


_TABLES: dict[str, RegionTable] = {}


def region_table(bundle: CompiledBundle) -> RegionTable:
    """The region table of a compiled bundle, built once per bundle digest."""
    digest = bundle.ref.digest
    table = _TABLES.get(digest)
    if table is None:
        if len(_TABLES) >= 16:
            _TABLES.clear()
        table = _TABLES[digest] = RegionTable(bundle.document)
    return table


@dataclass(frozen=True, slots=True)
class DataCentreRow:
    """One data-centre region as ``GET /v1/datacentres`` and the console's map show it.

    The region's facts from the bundle, then its live figures: participants carried, capacity and
    load, its node and that node's health (``up``, ``down`` since ``down_since``, or ``none``: no
    node configured), how many live meetings use it and the ids of those the reader may see.
    """

    region: str
    name: str
    jurisdiction: str
    group: str
    capacity: int
    opened: str | None  # a date
    notice: str | None
    opt_in: bool
    latitude: float
    longitude: float
    participants: int = 0
    load: float = 0.0
    node: str | None = None
    state: str = "none"
    down_since: str | None = None
    meeting_count: int = 0
    meetings: tuple[str, ...] = ()

    @property
    def in_use(self) -> bool:
        """Whether a live meeting has a participant on this region's relay right now."""
        return self.meeting_count > 0

    def to_dict(self) -> dict[str, Any]:
        """The public JSON form (fields may be added over time, never renamed)."""
        return {
            "region": self.region,
            "name": self.name,
            "jurisdiction": self.jurisdiction,
            "group": self.group,
            "capacity": self.capacity,
            "opened": self.opened,
            "notice": self.notice,
            "opt_in": self.opt_in,
            "participants": self.participants,
            "load": self.load,
            "node": self.node,
            "state": self.state,
            "down_since": self.down_since,
            "meeting_count": self.meeting_count,
            "meetings": list(self.meetings),
            "latitude": self.latitude,
            "longitude": self.longitude,
            "in_use": self.in_use,
        }


def datacentre_rows(
    bundle: CompiledBundle,
    live: Mapping[str, Mapping[str, Any]],
    *,
    visible: Collection[str] | None,
) -> tuple[DataCentreRow, ...]:
    """Every data-centre region of ``bundle``, by code, with the live figures in ``live``.

    ``live`` is the control plane's load per region (``Signalling.live_load()``: every live
    meeting's id included); a region it does not mention is idle. Load and counts are shown to
    everyone; a meeting's id only to whom may see the meeting: ``visible`` is the set of those
    ids (:func:`meridian.meetings.service.visible_meetings`: every one for an operator, the host
    account's own and its partner's customers'), ``None`` for a reader who sees them all.
    """
    table = region_table(bundle)
    document = bundle.document
    out = []
    for code, dc in sorted(table.datacentres.items()):
        now = live.get(code, {})
        using = tuple(now.get("meetings", ()))
        latitude, longitude = document.datacentres[code].coordinates
        out.append(
            DataCentreRow(
                region=code,
                name=dc.name,
                jurisdiction=dc.jurisdiction,
                group=dc.group,
                capacity=now.get("capacity", dc.capacity),
                opened=None if dc.opened is None else dc.opened.date().isoformat(),
                notice=table.notices.get(code),
                opt_in=code in table.opt_in,
                latitude=latitude,
                longitude=longitude,
                participants=now.get("participants", 0),
                load=now.get("load", 0.0),
                node=now.get("node"),
                state=now.get("state", "none"),
                down_since=now.get("down_since"),
                meeting_count=now.get("meeting_count", len(using)),
                meetings=using if visible is None else tuple(m for m in using if m in visible),
            )
        )
    return tuple(out)
