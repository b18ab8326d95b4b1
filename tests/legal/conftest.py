"""A small world for the lawful-request tests: operators, accounts, meetings and their joiners."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from meridian.audit import SYSTEM
from meridian.commerce.subscriptions import checkout
from meridian.identity.accounts import register
from meridian.identity.people import add_operator, find_operator
from meridian.identity.tokens import Caller, create_token
from meridian.legal.model import LegalRequestCreate
from meridian.meetings.placement import Occupancy
from meridian.meetings.regions import region_table
from meridian.meetings.service import Admission, admit, create_meeting
from meridian.storage.models import Record

VALID_USCC = "91110000600037341L"
#: a connection address in each place (the embedded IP table places them so)
IPS = {
    "CN": "114.114.114.114",
    "HK": "203.198.7.66",
    "MO": "202.175.3.3",
    "TW": "168.95.1.1",
    "US": "8.8.8.8",
    "DE": "80.81.192.1",
}
DOC = {"name": "order.pdf", "sha256": "ab" * 32, "size": 48213}


@dataclass
class World:
    """Service-level helpers over one started runtime."""

    rt: Any

    def operator(self, name: str) -> Caller:
        """A new token of the operator person named ``name`` (added first if there is none)."""
        with self.rt.db.write() as session:
            person = find_operator(session, name)
            if person is None:
                person, row, _ = add_operator(
                    session, name=name, at=self.rt.now(), actor=SYSTEM, digest=self.rt.digest
                )
            else:
                row, _ = create_token(
                    session,
                    role="operator",
                    name=name,
                    person_id=person.id,
                    at=self.rt.now(),
                    actor=SYSTEM,
                    digest=self.rt.digest,
                )
        return Caller(row.id, "operator", person_id=person.id)

    def account(self, country: str, name: str = "Account") -> str:
        admin = Caller("tok_setup", "operator")
        if country == "CN":
            kind, org = "organization", VALID_USCC
        else:
            kind, org = "individual", None
        reg = register(self.rt, caller=admin, type=kind, name=name, country=country, org_id=org)
        return reg.account.id

    def paid(self, account: str) -> str:
        """``account`` on a Pro plan through an authorised partner (a mainland host needs one)."""
        checkout(
            self.rt,
            caller=Caller("tok_setup", "operator"),
            account_id=account,
            plan="pro",
            channel="partner",
            partner="bizconf",
        )
        return account

    def meeting(self, host: str, topic: str = "meeting") -> str:
        admin = Caller("tok_setup", "operator")
        meeting, _, _ = create_meeting(
            self.rt, caller=admin, host_account_id=host, topic=topic, countries=None, client_ip=None
        )
        return meeting.id

    def join(self, meeting_id: str, country: str, account: str | None = None) -> Admission:
        caller = None if account is None else Caller("tok_user", "user", account_id=account)
        return admit(
            self.rt,
            meeting_id=meeting_id,
            name=f"from {country}",
            caller=caller,
            client_ip=IPS[country],
            occupancy=Occupancy(region_table(self.rt.engine.bundle)),
            uses={},
        )

    def joined(self, meeting_id: str, country: str, account: str | None = None) -> str:
        admission = self.join(meeting_id, country, account)
        assert admission.participation is not None, admission.placement
        return admission.participation.id

    def entries(self, subject_id: str, prefix: str = "legal.") -> list[Record]:
        with self.rt.db.read() as session:
            return list(
                session.scalars(
                    select(Record)
                    .where(Record.subject_id == subject_id, Record.action.startswith(prefix))
                    .order_by(Record.seq)
                )
            )


def request(**fields: Any) -> LegalRequestCreate:
    """A request body with sensible defaults (a CN court order to end a meeting)."""
    body: dict[str, Any] = {
        "authority": "Beijing Municipal Public Security Bureau",
        "jurisdiction": "CN",
        "legal_type": "court_order",
        "reference": "(2020) Jing 01 No. 604",
        "action": "end_meeting",
        "documents": [DOC],
        **fields,
    }
    return LegalRequestCreate.model_validate(body)


@pytest.fixture
def world(runtime: Any, clock: Any) -> World:
    clock.set("2020-06-04T12:00:00Z")
    return World(runtime)
