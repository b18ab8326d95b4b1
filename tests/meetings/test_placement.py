"""Placement through the public contract (``route``): the fence holds for every meeting and load."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meridian.errors import InputError
from meridian.meetings.regions import region_table
from meridian.meetings.route import route
from meridian.policy.engine import Engine
from meridian.policy.loader import default_bundle_path, load_bundle_text

AT = "2021-03-01T10:00:00Z"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="module")
def small_engine() -> Engine:
    """The default bundle with every data centre holding three participants: full is easy."""
    text = default_bundle_path().read_text(encoding="utf-8")
    text = re.sub(r"capacity: \d+", "capacity: 3", text)
    return Engine(load_bundle_text(text, "small.yaml"))


def body(
    participants,
    *,
    host="US",
    plan="pro",
    regions=None,
    opt_in=(),
    countries=None,
    load=None,
    at=AT,
):
    meeting: dict = {"host": {"country": host, "plan": plan}}
    if opt_in:
        meeting["host"]["opt_in"] = list(opt_in)
    if regions is not None:
        meeting["regions"] = regions
    if countries is not None:
        meeting["countries"] = countries
    return {"at": at, "meeting": meeting, "participants": participants, "load": load or {}}


def placed(result) -> dict[str, str | None]:
    return {p["participant"]: p.get("dc") for p in result["placements"]}


def test_the_contract_example(engine):
    result = route(
        engine,
        body(
            [{"id": "p1", "ip": "8.8.8.8"}, {"id": "p2", "country": "CN"}],
            regions=["US", "DE", "HK"],
            countries={"deny": ["KP"]},
            load={"HK": 0.5},
        ),
    )
    assert result["meeting"]["regions"] == ["DE", "HK", "US"]
    assert result["meeting"]["key_region"] == "US"
    assert [(p["participant"], p["decision"], p["dc"]) for p in result["placements"]] == [
        ("p1", "allow", "US"),
        ("p2", "allow", "HK"),
    ]
    assert result["links"] == [["HK", "US"]]
    assert all(p["reasons"] for p in result["placements"])


def test_a_us_host_by_default_never_uses_cn_and_cn_participants_go_to_hong_kong(engine):
    result = route(
        engine, body([{"id": "cn", "country": "CN"}, {"id": "us", "country": "US"}], plan="free")
    )
    assert "CN" not in result["meeting"]["regions"]
    assert placed(result) == {"cn": "HK", "us": "US"}


@pytest.mark.parametrize("country", ["HK", "MO", "TW"])
def test_hong_kong_macao_and_taiwan_are_not_mainland_china(engine, country):
    us_hosted = route(engine, body([{"id": "p", "country": country}], plan="free"))
    assert placed(us_hosted)["p"] != "CN"
    assert "notices" not in us_hosted["placements"][0]
    cn_hosted = route(engine, body([{"id": "p", "country": country}], host="CN", plan="pro"))
    assert cn_hosted["meeting"]["regions"] == ["CN"]
    (p,) = cn_hosted["placements"]
    assert p["dc"] == "CN"
    assert p["country"] == country
    assert p["notices"] == [
        "this meeting is processed in mainland China, under the law of mainland China"
    ]


def test_a_cn_hosted_meeting_tells_only_participants_from_elsewhere(engine):
    result = route(
        engine, body([{"id": "cn", "country": "CN"}, {"id": "de", "country": "DE"}], host="CN")
    )
    by_id = {p["participant"]: p for p in result["placements"]}
    assert "notices" not in by_id["cn"]
    assert "mainland China" in by_id["de"]["notices"][0]
    assert result["meeting"]["key_region"] == "CN"


def test_cn_needs_an_explicit_opt_in_and_then_carries_cn_participants(engine):
    with pytest.raises(InputError, match="region `CN` needs an explicit opt-in"):
        route(engine, body([], regions=["US", "CN"]))
    result = route(
        engine, body([{"id": "cn", "country": "CN"}], regions=["US", "CN"], opt_in=["CN"])
    )
    assert placed(result) == {"cn": "CN"}
    assert result["meeting"]["key_region"] == "US"


def test_the_home_region_is_always_in(engine):
    result = route(engine, body([{"id": "p", "country": "US"}], host="DE", regions=["IE"]))
    assert result["meeting"]["regions"] == ["DE", "IE"]
    assert result["meeting"]["key_region"] == "DE"


def test_a_full_region_spills_only_to_another_allowed_one_and_never_outside(small_engine):
    people = [{"id": f"p{i}", "country": "DE"} for i in range(7)]
    result = route(small_engine, body(people, regions=["US", "DE"], load={"DE": 1 / 3}))
    dcs = Counter(placed(result).values())
    # DE had room for two, US for three; the last two are refused rather than carried elsewhere
    assert dcs == Counter({"DE": 2, "US": 3, None: 2})
    refused = [p for p in result["placements"] if p["decision"] == "deny"]
    assert "every data centre this meeting may use is full" in refused[0]["reasons"][0]["message"]
    assert "never carried elsewhere" in refused[0]["reasons"][0]["message"]


def test_every_allowed_region_full_refuses_everyone(small_engine):
    result = route(
        small_engine,
        body([{"id": "p", "country": "DE"}], regions=["US", "DE"], load={"US": 1, "DE": 1}),
    )
    (p,) = result["placements"]
    assert (p["decision"], "dc" in p, p["reasons"][0]["rule"]) == ("deny", False, "capacity")
    assert result["links"] == []


def test_a_region_the_meeting_uses_in_the_same_group_is_preferred(engine):
    # An Irish participant first: the meeting uses IE; a Dutch one joins the same European relay.
    result = route(engine, body([{"id": "ie", "country": "IE"}, {"id": "nl", "country": "NL"}]))
    assert placed(result) == {"ie": "IE", "nl": "IE"}
    assert "already carries this meeting" in result["placements"][1]["reasons"][-1]["message"]


def test_country_lists(engine):
    approve = route(
        engine,
        body(
            [{"id": "de", "country": "DE"}, {"id": "fr", "country": "FR"}],
            countries={"approve": ["DE"]},
        ),
    )
    assert placed(approve) == {"de": "DE", "fr": None}
    refusal = approve["placements"][1]["reasons"][0]
    assert refusal["rule"] == "meeting-countries"
    assert "not reachable from FR" in refusal["message"]
    with pytest.raises(InputError, match="not both"):
        route(engine, body([], countries={"approve": ["DE"], "deny": ["KP"]}))


def test_an_unplaceable_location_is_refused(engine):
    result = route(engine, body([{"id": "p", "ip": "10.0.0.1"}]))
    (p,) = result["placements"]
    assert (p["decision"], p["country"], p["reasons"][0]["rule"]) == (
        "deny",
        "unknown",
        "location-unknown",
    )


def test_singapore_carries_nothing_before_it_opened(engine):
    before = route(
        engine, body([{"id": "sg", "country": "SG"}], host="SG", at="2020-08-01T00:00:00Z")
    )
    after = route(
        engine, body([{"id": "sg", "country": "SG"}], host="SG", at="2020-09-01T00:00:00Z")
    )
    assert "SG" not in before["meeting"]["regions"]
    assert before["meeting"]["key_region"] in before["meeting"]["regions"]
    assert placed(after) == {"sg": "SG"}
    assert after["meeting"]["key_region"] == "SG"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"meeting": {"host": {"country": "US", "plan": "free"}, "regions": ["US"]}}, "is free"),
        ({"load": {"ZZ": 0.5}}, "unknown data-centre region `ZZ`"),
        ({"load": {"US": 1.5}}, "expected a fraction from 0 to 1"),
        (
            {"participants": [{"id": "a", "country": "US"}, {"id": "a", "country": "US"}]},
            "listed twice",
        ),
        ({"meeting": {"host": {"country": "XX"}}}, "unknown jurisdiction `XX`"),
        ({"meeting": {"host": {"country": "US", "plan": "gold"}}}, "unknown plan `gold`"),
        ({"at": "2021-03-01T10:00:00"}, "needs a time zone"),
        ({"extra": 1}, "unknown field `extra`"),
    ],
    ids=[
        "free-plan-regions",
        "unknown-region",
        "load-range",
        "duplicate",
        "bad-country",
        "bad-plan",
        "naive-at",
        "extra",
    ],
)
def test_bad_requests_are_one_line_errors(engine, change, message):
    data = body([])
    data.update(change)
    with pytest.raises(InputError, match=re.escape(message)) as err:
        route(engine, data)
    assert "\n" not in str(err.value)


COUNTRIES = [
    "US",
    "CN",
    "HK",
    "MO",
    "TW",
    "DE",
    "FR",
    "GB",
    "IE",
    "NL",
    "JP",
    "SG",
    "IN",
    "AU",
    "BR",
    "MX",
    "CA",
    "KP",
    "RU",
    "ZA",
    "NG",
    "EG",
    "NZ",
    "FJ",
]
REGIONS = ["AU", "LA", "CA", "CN", "DE", "HK", "IN", "IE", "TY", "MX", "NL", "SG", "US"]


@st.composite
def meetings(draw):
    host = draw(st.sampled_from(COUNTRIES))
    plan = draw(st.sampled_from(["free", "pro", "business"]))
    data = body([], host=host, plan=plan, at=draw(st.sampled_from([AT, "2020-06-01T00:00:00Z"])))
    opted = False
    if plan != "free" and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(REGIONS), max_size=6, unique=True))
        if "CN" in chosen and host != "CN":
            opted = draw(st.booleans())
            if opted:
                data["meeting"]["host"]["opt_in"] = ["CN"]
            else:
                chosen.remove("CN")
        data["meeting"]["regions"] = chosen
    mode = draw(st.sampled_from([None, "approve", "deny"]))
    if mode:
        data["meeting"]["countries"] = {
            mode: draw(st.lists(st.sampled_from(COUNTRIES), max_size=5, unique=True))
        }
    data["load"] = draw(
        st.dictionaries(
            st.sampled_from(REGIONS), st.sampled_from([0.0, 0.34, 0.67, 1.0]), max_size=13
        )
    )
    data["participants"] = [
        {"id": f"p{i}", "country": c}
        for i, c in enumerate(draw(st.lists(st.sampled_from(COUNTRIES), max_size=12)))
    ]
    return data, opted


@pytest.mark.slow  # 2000 generated meetings: about 16 s
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meetings())
def test_every_placement_and_link_lies_inside_the_allowed_set(small_engine, case):
    data, opted = case
    result = route(small_engine, data)
    allowed = set(result["meeting"]["regions"])
    host = data["meeting"]["host"]["country"]
    assert result["meeting"]["key_region"] in allowed
    if host != "CN" and not opted:
        assert "CN" not in allowed
    home = region_table(small_engine.bundle).home_at(host, datetime.fromisoformat(data["at"]))
    assert home in allowed
    assert result["meeting"]["key_region"] == home
    if "regions" in data["meeting"]:
        assert allowed <= set(data["meeting"]["regions"]) | {home}
    used = Counter()
    for p in result["placements"]:
        if p["decision"] == "allow":
            assert p["dc"] in allowed
            used[p["dc"]] += 1
        else:
            assert "dc" not in p
            if p["reasons"][0]["rule"] == "capacity":
                # refused for room only when no allowed region had any left
                for region in allowed:
                    start = -(-data["load"].get(region, 0.0) * 3 // 1)
                    assert start + used[region] >= 3
    for region, n in used.items():
        assert -(-data["load"].get(region, 0.0) * 3 // 1) + n <= 3
    for a, b in result["links"]:
        assert a in allowed
        assert b in allowed
        assert a < b
    assert {x for pair in result["links"] for x in pair} <= set(used)
