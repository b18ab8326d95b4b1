"""Tokens over HTTP: an operator mints only for themselves, the log names people, tokens expire."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from meridian.storage.models import Record, Token

from .test_legal import body

pytestmark = pytest.mark.storage


def person_of(live, who: str) -> str:
    """The person id of the token ``live.tokens[who]`` (read from the database)."""
    from meridian.identity.tokens import hash_token

    with live.runtime.db.read() as session:
        token = session.scalars(
            select(Token).where(Token.hash == hash_token(live.tokens[who]))
        ).one()
        assert token.person_id is not None
        return token.person_id


@pytest.fixture
def cn_request(live):
    """A pending request from mainland China to suspend a mainland account, recorded by `operator`."""
    live.clock.set("2020-06-04T12:00:00Z")
    fields = {
        "type": "organization",
        "name": "Lakeside Ltd.",
        "country": "CN",
        "org_id": "91110000600037341L",
    }
    account = live.client("operator").post("/v1/accounts", json=fields).json()["account"]["id"]
    target = {"kind": "account", "id": account}
    r = live.client("operator").post(
        "/v1/legal-requests", json=body(action="suspend_account", target=target)
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_token_an_operator_mints_is_its_own_and_cannot_be_the_second_reviewer(live, cn_request):
    # the attack: mint an operator token named for someone else, and approve with it
    r = live.client("operator").post(
        "/v1/tokens", json={"role": "operator", "name": "Second Reviewer"}
    )
    assert r.status_code == 201, r.text
    minted = r.json()
    live.tokens["minted"] = minted["token"]
    r = live.client("minted").post(f"/v1/legal-requests/{cn_request}/approve")
    assert r.status_code == 403, r.text
    assert minted["person_id"] == person_of(live, "operator")
    assert r.json()["error"]["message"] == (
        f"legal request `{cn_request}` was recorded by this operator, `operator` "
        f"(`{person_of(live, 'operator')}`): a second operator must approve it"
    )
    state = live.client("operator2").get(f"/v1/legal-requests/{cn_request}").json()["state"]
    assert state == "pending"


def test_a_second_operator_person_added_out_of_band_can_approve(live, cn_request):
    from meridian.audit import SYSTEM
    from meridian.identity.people import add_operator

    with live.runtime.db.write() as session:
        person, _, secret = add_operator(
            session,
            name="Sam (legal)",
            email="sam@example.org",
            at=live.clock(),
            actor=SYSTEM,
            digest=live.runtime.digest,
        )
    live.tokens["sam"] = secret
    r = live.client("sam").post(f"/v1/legal-requests/{cn_request}/approve")
    assert r.status_code == 200, r.text
    approved = r.json()["request"]
    assert approved["state"] == "applied"
    assert approved["approved_by"] == {"actor": f"operator:{person.id}", "name": "Sam (legal)"}


def test_an_operator_cannot_mint_a_token_for_another_person(live):
    other = person_of(live, "operator2")
    r = live.client("operator").post(
        "/v1/tokens", json={"role": "operator", "name": "as operator2", "person": other}
    )
    assert r.status_code == 403, r.text
    assert r.json()["error"]["message"] == (
        f"an operator mints tokens only for themselves, not for `{other}`: "
        "another operator is added out of band (`meridian admin add-operator`)"
    )
    # nor can it mint for a person that does not exist (a new person is out of band too)
    r = live.client("operator").post(
        "/v1/tokens", json={"role": "operator", "name": "x", "person": "psn_0000000000000000"}
    )
    assert r.status_code == 403, r.text
    from meridian.storage.models import Person

    with live.runtime.db.read() as session:
        assert session.scalars(select(Token).where(Token.name == "as operator2")).first() is None
        assert len(session.scalars(select(Person)).all()) == 2


def test_log_entries_name_the_person_not_the_token(live, cn_request):
    me = person_of(live, "operator")
    minted = live.client("operator").post("/v1/tokens", json={"role": "operator", "name": "laptop"})
    assert minted.status_code == 201, minted.text
    live.tokens["laptop"] = minted.json()["token"]
    r = live.client("laptop").post(
        f"/v1/legal-requests/{cn_request}/reject", json={"reason": "not sealed"}
    )
    assert r.status_code == 200, r.text
    with live.runtime.db.read() as session:
        entries = {
            r.action: r
            for r in session.scalars(
                select(Record).where(Record.action.in_(["legal.received", "legal.rejected"]))
            )
        }
        created = session.scalars(
            select(Record).where(
                Record.action == "token.create", Record.subject_id == minted.json()["id"]
            )
        ).one()
    assert entries["legal.received"].actor == f"operator:{me}"
    assert entries["legal.rejected"].actor == f"operator:{me}"  # the other token: the same person
    assert created.actor == f"operator:{me}"
    assert created.details["person"] == me
    received = live.client("operator2").get(f"/v1/legal-requests/{cn_request}").json()
    assert received["recorded_by"] == {"actor": f"operator:{me}", "name": "operator"}


def test_an_expired_token_is_refused_with_one_line(live):
    now = live.clock()
    later = (now + timedelta(hours=1)).isoformat()
    r = live.client("operator").post(
        "/v1/tokens",
        json={"role": "partner", "name": "short", "partner": "bizconf", "expires_at": later},
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["expires_at"] == later.replace("+00:00", "Z")
    live.tokens["short"] = made["token"]
    assert live.client("short").get("/v1/policy").status_code == 200  # and now cached
    live.clock.set(now + timedelta(hours=1))
    r = live.client("short").get("/v1/policy")
    assert r.status_code == 401
    assert r.json()["error"]["message"] == (
        f"api token `{made['id']}` expired at {(now + timedelta(hours=1)).isoformat()}: "
        "ask for a new one"
    )
    # an expiry in the past is bad input
    r = live.client("operator").post(
        "/v1/tokens", json={"role": "operator", "name": "x", "expires_at": now.isoformat()}
    )
    assert r.status_code == 422
    assert "is not after now" in r.json()["error"]["message"]


def test_a_user_token_expires_by_default_after_the_configured_days(live_factory):
    live = live_factory(user_token_days=30)
    acct = live.client("operator").post(
        "/v1/accounts", json={"type": "individual", "name": "Jo", "country": "US"}
    )
    account_id = acct.json()["account"]["id"]
    r = live.client("operator").post(
        "/v1/tokens", json={"role": "user", "name": "jo", "account": account_id}
    )
    assert r.status_code == 201, r.text
    expected = live.clock() + timedelta(days=30)
    assert r.json()["expires_at"] == expected.isoformat().replace("+00:00", "Z")
    # a self sign-up's token too
    signup = live.client().post(
        "/v1/accounts", json={"type": "individual", "name": "Ann", "country": "US"}
    )
    assert signup.status_code == 201, signup.text
    with live.runtime.db.read() as session:
        token = session.scalars(
            select(Token).where(Token.account_id == signup.json()["account"]["id"])
        ).one()
    assert token.expires_at == expected
