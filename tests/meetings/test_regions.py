"""Data-centre rows: the bundle's regions with the live load, meeting ids only for whom may see them."""

from __future__ import annotations

from typing import Any

import pytest

from meridian.identity.accounts import register
from meridian.identity.tokens import Caller
from meridian.meetings.regions import DataCentreRow, datacentre_rows
from meridian.meetings.service import create_meeting, visible_meetings
from meridian.policy import Engine, load_bundle

OPERATOR = Caller("tok_op", "operator")


@pytest.fixture(scope="module")
def bundle() -> Any:
    return Engine(load_bundle()).bundle


def _load(meetings: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "participants": 3,
        "capacity": 15000,
        "load": 0.0002,
        "node": "http://127.0.0.1:9001",
        "state": "up",
        "down_since": None,
        "meeting_count": len(meetings),
        "meetings": meetings,
        **extra,
    }


def test_every_region_is_a_row_and_an_idle_one_says_so(bundle: Any) -> None:
    rows = datacentre_rows(bundle, {}, visible=None)
    assert [r.region for r in rows] == sorted(bundle.document.datacentres)
    us = next(r for r in rows if r.region == "US")
    assert us == DataCentreRow(
        region="US",
        name="United States",
        jurisdiction="US",
        group="americas",
        capacity=60000,
        opened=None,
        notice=None,
        opt_in=False,
        latitude=39.74,
        longitude=-104.99,
    )
    assert (us.participants, us.state, us.node, us.meetings, us.in_use) == (
        0,
        "none",
        None,
        (),
        False,
    )
    cn = next(r for r in rows if r.region == "CN")
    assert cn.opt_in is True
    assert "mainland China" in (cn.notice or "")
    assert next(r for r in rows if r.region == "SG").opened == "2020-08-18"


def test_live_figures_are_shown_to_all_and_meeting_ids_only_to_whom_may_see_them(
    bundle: Any,
) -> None:
    live = {
        "HK": _load(["mtg_a", "mtg_b"]),
        "DE": _load([], state="down", down_since="2020-09-01T00:00:00+00:00"),
    }
    everyone = {r.region: r for r in datacentre_rows(bundle, live, visible=None)}
    assert everyone["HK"].meetings == ("mtg_a", "mtg_b")
    assert everyone["HK"].in_use
    some = {r.region: r for r in datacentre_rows(bundle, live, visible={"mtg_b"})}
    assert some["HK"].meetings == ("mtg_b",)
    none = {r.region: r for r in datacentre_rows(bundle, live, visible=set())}
    hk = none["HK"]
    # the load and the counts are public; the ids are not
    assert (hk.meetings, hk.meeting_count, hk.participants, hk.in_use) == ((), 2, 3, True)
    assert (none["DE"].state, none["DE"].down_since, none["DE"].in_use) == (
        "down",
        "2020-09-01T00:00:00+00:00",
        False,
    )
    row = hk.to_dict()
    assert row["meetings"] == []
    assert (row["region"], row["latitude"], row["longitude"], row["in_use"]) == (
        "HK",
        22.32,
        114.17,
        True,
    )
    assert set(row) >= {
        "name",
        "jurisdiction",
        "group",
        "capacity",
        "opened",
        "notice",
        "opt_in",
        "load",
        "node",
        "state",
    }


@pytest.mark.storage
def test_the_ids_are_for_operators_the_host_account_and_its_partner(
    runtime: Any, clock: Any
) -> None:
    clock.set("2020-03-01T10:00:00+08:00")
    partner = Caller("tok_bizconf", "partner", partner_id="bizconf")
    customer = register(
        runtime,
        caller=partner,
        type="organization",
        name="Harbour",
        country="CN",
        org_id="91110000600037341L",
    ).account
    other = register(
        runtime, caller=OPERATOR, type="organization", name="Other", country="US"
    ).account
    meeting, _, _ = create_meeting(
        runtime,
        caller=OPERATOR,
        host_account_id=customer.id,
        topic="t",
        countries=None,
        client_ip=None,
    )
    live = {"CN": _load([meeting.id])}
    readers = {
        "operator": OPERATOR,
        "host": Caller("tok_host", "user", account_id=customer.id),
        "partner": partner,
        "other account": Caller("tok_other", "user", account_id=other.id),
        "other partner": Caller("tok_suirui", "partner", partner_id="suirui-zhumu"),
    }
    shown = {}
    for who, caller in readers.items():
        with runtime.db.read() as session:
            visible = visible_meetings(session, caller, [meeting.id])
        cn = next(
            r
            for r in datacentre_rows(runtime.engine.bundle, live, visible=visible)
            if r.region == "CN"
        )
        shown[who] = cn.meetings
        assert cn.meeting_count == 1
    assert shown == {
        "operator": (meeting.id,),
        "host": (meeting.id,),
        "partner": (meeting.id,),
        "other account": (),
        "other partner": (),
    }
