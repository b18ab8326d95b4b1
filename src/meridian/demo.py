"""The demo world ``make run`` serves: the 2020 case, replayed through the real service functions.

Each step runs on a clock set to the day it happened, so every account and subscription was
admitted by the same decisions a live request would get. Nothing is written straight into a
table. Seeding happens once, on a database with no accounts.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from .audit import SYSTEM
from .clock import fixed_clock, parse_instant
from .commerce.renewal import renew_due
from .commerce.subscriptions import checkout
from .identity.accounts import register
from .identity.tokens import Caller
from .runtime import Runtime
from .storage.models import Account, Partner

__all__ = ["DEMO_CONTACTS", "DEMO_HOSTS", "seed_demo"]

#: Placeholder contacts on reserved example domains (RFC 2606): the public record gives none.
DEMO_CONTACTS = {
    "bizconf": "https://bizconf.example/meridian (demo contact)",
    "suirui-zhumu": "https://zhumu.example/meridian (demo contact)",
    "systec-umeet": "https://umeet.example/meridian (demo contact)",
}

#: the demo's paid hosts, by the name of the token file ``make run`` writes for each
DEMO_HOSTS = {
    "us-host": "Riverside Clinic LLC",
    "cn-host": "Shenzhen Harbour Robotics Ltd.",
}

_OPERATOR = Caller("tok_demo_seed", "operator")


def _at(rt: Runtime, when: str) -> Runtime:
    past = Runtime(
        rt.settings, db=rt.db, clock=fixed_clock(parse_instant(when)), locator=rt.locator
    )
    past.use(rt.engine.bundle.loaded)
    return past


def seed_demo(rt: Runtime, say: Callable[[str], None] = lambda _: None) -> bool:
    """Create the demo world unless the database already has accounts. ``True`` if it did."""
    with rt.db.read() as session:
        if (session.scalar(select(func.count()).select_from(Account)) or 0) > 0:
            return False
    with rt.db.write() as session:
        for pid, contact in DEMO_CONTACTS.items():
            row = session.get(Partner, pid)
            if row is not None and row.contact is None:
                row.contact = contact

    def account(when: str, **fields: str) -> str:
        reg = register(_at(rt, when), caller=_OPERATOR, **fields)  # type: ignore[arg-type]
        say(
            f"  {when[:10]}  {reg.account.id}  {fields['country']}  {fields['name']} ({reg.account.status})"
        )
        return reg.account.id

    def buy(
        when: str,
        account_id: str,
        plan: str,
        channel: str,
        term: str = "month",
        partner: str | None = None,
    ) -> None:
        sub, _ = checkout(
            _at(rt, when),
            caller=_OPERATOR,
            account_id=account_id,
            plan=plan,
            channel=channel,
            term=term,
            partner=partner,
        )
        via = channel if partner is None else f"{partner}"
        say(f"  {when[:10]}  {sub.id}  {plan} via {via}, paid until {sub.period_end.date()}")

    say("demo world (each step decided on the day it happened):")
    cn_direct = account(
        "2020-03-02T10:00:00+08:00",
        type="organization",
        name="Hangzhou Lakeside Design Co.",
        country="CN",
        org_id="91330100MA27XL0R42",
    )
    buy("2020-07-15T10:00:00+08:00", cn_direct, "business", "direct", "year")
    cn_partner = account(
        "2020-06-10T10:00:00+08:00",
        type="organization",
        name="Shenzhen Harbour Robotics Ltd.",
        country="CN",
        org_id="91440300MA5G2YJ775",
    )
    buy("2020-09-01T10:00:00+08:00", cn_partner, "business", "partner", "year", "bizconf")
    account(
        "2020-06-12T10:00:00+08:00",
        type="organization",
        name="Fuzhou Minjiang Trading (pilot-era code)",
        country="CN",
        org_id="91350100M0001TGQXM",
    )
    account(
        "2020-04-20T10:00:00+08:00",
        type="individual",
        name="Li Wei",
        country="CN",
    )
    hk = account("2020-06-01T10:00:00+08:00", type="individual", name="Chan Tai Man", country="HK")
    buy("2020-06-01T10:05:00+08:00", hk, "pro", "online", "year")
    us = account(
        "2020-02-03T09:00:00-05:00", type="organization", name="Riverside Clinic LLC", country="US"
    )
    buy("2020-02-03T09:30:00-05:00", us, "enterprise", "direct", "year")
    account("2020-09-01T09:00:00+02:00", type="individual", name="Jonas Becker", country="DE")
    summary = renew_due(rt, rt.now(), actor=SYSTEM)
    say(
        f"renewals due by now: {summary.renewed} renewed, {summary.transfer_required} moved to transfer_required"
    )
    return True
