"""Meetings: data-centre regions, placement, grants, and the live meetings of the control plane.

The pure parts are re-exported here; :mod:`.service` (the database) and :mod:`.live` (the
signalling of a running control plane) are imported where they are used, so a region node that
only checks grants never loads them.
"""

from ..keys.grants import Grant, GrantSigner, GrantVerifier
from .placement import CountryList, MeetingPlan, Occupancy, Placement, place, plan_meeting
from .regions import RegionTable, region_table
from .route import PlacementRequest, route

__all__ = [
    "CountryList",
    "Grant",
    "GrantSigner",
    "GrantVerifier",
    "MeetingPlan",
    "Occupancy",
    "Placement",
    "PlacementRequest",
    "RegionTable",
    "place",
    "plan_meeting",
    "region_table",
    "route",
]
