"""Commerce at the service level: accounts registered and bought for on a started runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from meridian.identity.accounts import register
from meridian.identity.tokens import Caller
from meridian.storage.models import Notice, Record, Subscription

OPERATOR = Caller("tok_ops", "operator")
BIZCONF = Caller("tok_bizconf", "partner", partner_id="bizconf")
VALID_USCC = "91110000600037341L"
OTHER_USCC = "91330100MA27XL0R42"
#: mainland China goes partner-only at midnight on 23 August 2020 in Asia/Shanghai
CUTOVER = "2020-08-23T00:00:00+08:00"


_USCC = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def uscc(body: str) -> str:
    """A valid Unified Social Credit Code: ``body`` (17 characters) and its check character."""
    total = sum(_USCC.index(c) * pow(3, i, 31) for i, c in enumerate(body))
    return body + _USCC[(31 - total % 31) % 31]


@dataclass
class Shop:
    """Helpers over one started runtime."""

    rt: Any

    def account(
        self,
        country: str = "CN",
        *,
        org_id: str = VALID_USCC,
        name: str = "Org",
        by: Caller = OPERATOR,
    ) -> str:
        """A new organisation's account, registered by ``by`` (a partner's is its customer)."""
        fields: dict[str, Any] = {"type": "organization", "name": name, "country": country}
        if country == "CN":
            fields["org_id"] = org_id
        return str(register(self.rt, caller=by, **fields).account.id)

    def user(self, account_id: str) -> Caller:
        return Caller(f"tok_{account_id}", "user", account_id=account_id)

    def subscription(self, sub_id: str) -> Subscription:
        with self.rt.db.read() as session:
            sub = session.get(Subscription, sub_id)
            assert sub is not None
            session.expunge(sub)
            return sub

    def subscriptions(self, account_id: str) -> list[Subscription]:
        with self.rt.db.read() as session:
            rows = list(
                session.scalars(
                    select(Subscription)
                    .where(Subscription.account_id == account_id)
                    .order_by(Subscription.created_at, Subscription.id)
                )
            )
            for row in rows:
                session.expunge(row)
            return rows

    def notices(self, account_id: str) -> list[Notice]:
        with self.rt.db.read() as session:
            rows = list(session.scalars(select(Notice).where(Notice.account_id == account_id)))
            for row in rows:
                session.expunge(row)
            return rows

    def records(self, action: str) -> list[Record]:
        with self.rt.db.read() as session:
            rows = list(
                session.scalars(select(Record).where(Record.action == action).order_by(Record.seq))
            )
            for row in rows:
                session.expunge(row)
            return rows


@pytest.fixture
def shop(runtime: Any) -> Shop:
    return Shop(runtime)
