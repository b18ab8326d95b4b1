"""Scoping as a pure function: worked cases, and the promise checked over a large random world.

The promise (DOMAIN.md §6): a request from jurisdiction J may only affect people in J. Checked
over 10,000 accounts and 3,000 meetings with participants in CN, HK, MO, TW, US and elsewhere,
for 2,000 seeded random requests: nothing outside J is ever affected, a meeting is ended only
when its host and everyone in it are in J, and everyone in J that the target names is affected
unless the action's own rules hold it back (content without a warrant; a block leaves the
meeting itself alone; participants as a target leave the meeting's own records alone).
"""

from __future__ import annotations

import random

import pytest

from meridian.legal import (
    ACTIONS,
    CONTENT_BASES,
    LEGAL_TYPES,
    TARGETS_BY_ACTION,
    AccountFacts,
    MeetingFacts,
    ParticipantFacts,
    ScopeAsk,
    scope,
)

COUNTRIES = ["CN", "CN", "CN", "HK", "HK", "MO", "TW", "US", "US", "DE", "JP", "SG"]
JURISDICTIONS = ["CN", "HK", "MO", "TW", "US"]


def meeting(host="US", *countries, live=True, mid="mtg_1"):
    return MeetingFacts(
        mid,
        AccountFacts("acct_host", host),
        host,
        live,
        tuple(
            ParticipantFacts(f"p_{i}", c, f"acct_{i}" if i % 2 == 0 else None)
            for i, c in enumerate(countries)
        ),
    )


def ask(action, *, j="CN", legal_type="court_order", target="meeting"):
    return ScopeAsk(j, legal_type, action, target)


def effects(result):
    return [(e.kind, e.id, e.effect) for e in result.effects]


# -- worked cases ----------------------------------------------------------------------------


def test_a_cn_request_against_a_us_meeting_blocks_only_the_cn_participants():
    result = scope(ask("end_meeting"), meeting("US", "CN", "HK", "US"))
    assert result.outcome == "narrowed"
    assert effects(result) == [
        ("meeting", "mtg_1", "none"),
        ("participant", "p_0", "block"),
        ("participant", "p_1", "none"),
        ("participant", "p_2", "none"),
    ]
    meeting_effect, _, hk, us = result.effects
    assert meeting_effect.why.startswith("out of jurisdiction: host in US")
    assert hk.why == "out of jurisdiction: participant in HK (Hong Kong), request from CN"
    assert not us.in_scope


def test_a_meeting_entirely_in_the_jurisdiction_is_ended():
    result = scope(ask("end_meeting"), meeting("CN", "CN", "CN"))
    assert result.outcome == "full"
    assert effects(result) == [
        ("meeting", "mtg_1", "end"),
        ("participant", "p_0", "end"),
        ("participant", "p_1", "end"),
    ]


def test_one_participant_outside_keeps_a_cn_hosted_meeting_going():
    result = scope(ask("end_meeting"), meeting("CN", "CN", "TW"))
    assert result.outcome == "narrowed"
    assert effects(result) == [
        ("meeting", "mtg_1", "none"),
        ("participant", "p_0", "block"),
        ("participant", "p_1", "none"),
    ]
    assert "participants outside CN (TW)" in result.effects[0].why


def test_a_past_participant_outside_counts_as_much_as_a_live_one():
    facts = meeting("CN", "CN")
    facts = MeetingFacts(
        facts.id,
        facts.host,
        facts.host_country,
        True,
        (*facts.participants, ParticipantFacts("p_gone", "US", None, live=False)),
    )
    assert scope(ask("end_meeting"), facts).outcome == "narrowed"


@pytest.mark.parametrize(
    ("host", "countries", "outcome"),
    [
        ("US", ("HK", "US", "TW"), "none"),  # June 2020's fourth meeting: nobody in CN
        ("CN", ("US",), "none"),
        ("US", (), "none"),
        ("CN", (), "full"),
    ],
    ids=["no-mainland-participant", "cn-host-only", "empty-us", "empty-cn"],
)
def test_end_meeting_outcomes(host, countries, outcome):
    assert scope(ask("end_meeting"), meeting(host, *countries)).outcome == outcome


def test_hk_mo_and_tw_are_never_mainland_china():
    for place in ("HK", "MO", "TW"):
        result = scope(ask("suspend_account", target="account"), AccountFacts("acct_x", place))
        assert result.outcome == "none"
        assert result.effects[0].why.startswith(f"out of jurisdiction: account in {place}")


def test_suspension_in_and_out_of_jurisdiction():
    inside = scope(ask("suspend_account", target="account"), AccountFacts("acct_cn", "CN"))
    outside = scope(ask("suspend_account", target="account"), AccountFacts("acct_us", "US"))
    assert (inside.outcome, inside.effects[0].effect) == ("full", "suspend")
    assert (outside.outcome, outside.effects[0].effect) == ("none", "none")
    assert outside.effects[0].why == (
        "out of jurisdiction: account in US (United States), request from CN: it is not suspended"
    )
    assert outside.why.startswith("nothing in scope: out of jurisdiction")


def test_block_participants_leaves_the_meeting_alone():
    result = scope(ask("block_participants"), meeting("CN", "CN", "CN"))
    assert result.outcome == "full"
    assert effects(result)[0] == ("meeting", "mtg_1", "none")
    assert {e.effect for e in result.effects[1:]} == {"block"}


def test_an_ended_meeting_has_nothing_to_end_or_block():
    for action in ("end_meeting", "block_participants"):
        result = scope(ask(action), meeting("CN", "CN", live=False))
        assert result.outcome == "none"
        assert "already ended" in result.effects[0].why


def test_content_needs_a_warrant_and_there_is_no_content_anyway():
    facts = meeting("CN", "CN", "US")
    warrant = scope(ask("disclose_content", legal_type="warrant"), facts)
    subpoena = scope(ask("disclose_content", legal_type="subpoena"), facts)
    assert [e.effect for e in warrant.effects] == [
        "disclose_content",  # the meeting's own records (host in CN)
        "disclose_content",  # the host's account
        "disclose_content",
        "none",
    ]
    assert warrant.outcome == "narrowed"  # the US participant is held back
    assert "end-to-end encrypted" in warrant.effects[0].why
    assert [e.effect for e in subpoena.effects] == [
        "disclose_non_content",
        "disclose_non_content",
        "disclose_non_content",
        "none",
    ]
    assert "narrowed to non-content: content needs a warrant" in subpoena.effects[0].why
    only_cn = scope(ask("disclose_content", legal_type="subpoena"), meeting("CN", "CN"))
    assert only_cn.outcome == "narrowed"
    assert frozenset({"warrant"}) == CONTENT_BASES


def test_disclosure_about_a_us_hosted_meeting_gives_only_the_cn_participants():
    result = scope(ask("disclose_non_content"), meeting("US", "CN", "HK"))
    assert effects(result) == [
        ("meeting", "mtg_1", "none"),
        ("account", "acct_host", "none"),
        ("participant", "p_0", "disclose_non_content"),
        ("participant", "p_1", "none"),
    ]
    participants = scope(ask("disclose_non_content", target="participants"), meeting("CN", "CN"))
    assert effects(participants) == [
        ("meeting", "mtg_1", "none"),
        ("participant", "p_0", "disclose_non_content"),
    ]
    assert participants.outcome == "full"


def test_the_recorded_scope_has_exactly_the_promised_shape():
    recorded = scope(ask("end_meeting"), meeting("US", "CN")).to_dict()
    assert set(recorded) == {"jurisdiction", "requested", "outcome", "effects"}
    assert set(recorded["effects"][0]) == {"kind", "id", "country", "in_scope", "effect", "why"}


# -- the promise, over a random world ----------------------------------------------------------


def _world(rng, *, accounts=10_000, meetings=3_000):
    people = [AccountFacts(f"acct_{i}", rng.choice(COUNTRIES)) for i in range(accounts)]
    rooms = []
    for m in range(meetings):
        host = rng.choice(people)
        size = rng.choice([0, 1, 2, 3, 5, 8, 13])
        if rng.random() < 0.25:  # a meeting entirely in one place, so ending is possible
            place = host.country
            countries = [place] * size
        else:
            countries = [rng.choice(COUNTRIES) for _ in range(size)]
        participants = tuple(
            ParticipantFacts(
                f"p_{m}_{k}",
                country,
                rng.choice(people).id if rng.random() < 0.6 else None,
                live=rng.random() < 0.8,
            )
            for k, country in enumerate(countries)
        )
        rooms.append(MeetingFacts(f"mtg_{m}", host, host.country, rng.random() < 0.9, participants))
    return people, rooms


def _expected(a: ScopeAsk, subject) -> list[str]:
    """What each entity should get, written out rule by rule (independently of the code)."""
    j = a.jurisdiction
    if a.action == "suspend_account":
        return ["suspend" if subject.country == j else "none"]
    if a.action in ("end_meeting", "block_participants"):
        n = len(subject.participants)
        if not subject.live:
            return ["none"] * (n + 1)
        everyone_in = subject.host_country == j and all(
            p.country == j for p in subject.participants
        )
        if a.action == "end_meeting" and everyone_in:
            return ["end"] * (n + 1)
        return ["none"] + ["block" if p.country == j else "none" for p in subject.participants]
    kind = (
        "disclose_content"
        if a.action == "disclose_content" and a.legal_type in CONTENT_BASES
        else "disclose_non_content"
    )
    if isinstance(subject, AccountFacts):
        return [kind if subject.country == j else "none"]
    out = []
    if a.target_kind == "meeting":
        out.append(kind if subject.host_country == j else "none")
        out.append(kind if subject.host.country == j else "none")
    else:
        out.append("none")
    return out + [kind if p.country == j else "none" for p in subject.participants]


def test_no_request_ever_affects_anyone_outside_its_jurisdiction():
    rng = random.Random(20200611)
    people, rooms = _world(rng)
    assert len(people) >= 10_000
    seen = {"full": 0, "narrowed": 0, "none": 0}
    for _ in range(2_000):
        action = rng.choice(ACTIONS)
        kind = rng.choice(TARGETS_BY_ACTION[action])
        a = ScopeAsk(rng.choice(JURISDICTIONS), rng.choice(LEGAL_TYPES), action, kind)
        subject = rng.choice(people) if kind == "account" else rng.choice(rooms)
        result = scope(a, subject)
        seen[result.outcome] += 1
        for e in result.effects:
            assert e.in_scope == (e.country == a.jurisdiction)
            if e.effect != "none":
                # nothing outside the requesting jurisdiction is ever affected
                assert e.country == a.jurisdiction, (a, e)
        if any(e.effect == "end" for e in result.effects):
            assert subject.host_country == a.jurisdiction
            assert all(p.country == a.jurisdiction for p in subject.participants)
        # everyone inside is affected unless the action's rules narrow it
        assert [e.effect for e in result.effects] == _expected(a, subject), a
        assert (result.outcome == "none") == all(e.effect == "none" for e in result.effects)
    # the random requests reach every outcome, many times over
    assert min(seen.values()) > 100, seen
