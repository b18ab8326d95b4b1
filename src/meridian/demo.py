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
from .identity.tokens import Caller, create_token
from .runtime import Runtime
from .storage.models import Account, Partner, Token

__all__ = ["DEMO_CONTACTS", "DEMO_HOSTS", "DEMO_IPS", "seed_demo"]

#: Placeholder contacts on reserved example domains (RFC 2606): the public record gives none.
DEMO_CONTACTS = {
    "bizconf": "https://bizconf.example/meridian (demo contact)",
    "suirui-zhumu": "https://zhumu.example/meridian (demo contact)",
    "systec-umeet": "https://umeet.example/meridian (demo contact)",
}

#: the demo's account holders with a token, by the name of the token file ``make run`` writes
#: for each: two paid hosts, and the CN company whose direct subscription the end of direct sales
#: left ``transfer_required`` (it chooses a partner, who takes it over)
DEMO_HOSTS = {
    "us-host": "Riverside Clinic LLC",
    "cn-host": "Shenzhen Harbour Robotics Ltd.",
    "cn-direct": "Hangzhou Lakeside Design Co.",
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
    _june_2020(rt, say, account, buy)
    summary = renew_due(rt, rt.now(), actor=SYSTEM)
    say(
        f"renewals due by now: {summary.renewed} renewed, {summary.transfer_required} moved to transfer_required"
    )
    return True


#: the demo's simulated network: an address in each place (the embedded IP table places it so).
#: The June 2020 participants connect from these, and so may a browser on this machine when the
#: service runs with ``--demo`` (the meeting page's "connect as if from"; see api/routes/meetings)
DEMO_IPS = {
    "CN": "114.114.114.114",
    "DE": "80.81.192.1",
    "HK": "1.64.0.1",
    "TW": "168.95.1.1",
    "US": "8.8.8.8",
}
#: the four meetings about June 4th (DOMAIN.md §1): host, topic, where its participants were
_JUNE_MEETINGS = (
    ("us", "June 4th commemoration", ("CN", "CN", "US", "HK")),
    ("hk", "Candlelight vigil, online", ("CN", "HK", "HK")),
    ("us", "Tiananmen: thirty-one years on", ("CN", "US", "TW")),
    ("hk", "Remembering June 4th", ("HK", "US", "TW")),
)


def _june_2020(
    rt: Runtime,
    say: Callable[[str], None],
    account: Callable[..., str],
    buy: Callable[..., None],
) -> None:
    """The June 2020 requests as Meridian handles them (DOMAIN.md §1, §6).

    Four meetings about June 4th, hosted from the US and Hong Kong; three have participants in
    mainland China. A request from mainland China to end the four and to suspend their hosts is
    recorded by one operator and approved by another: the mainland participants of the three
    are blocked, the fourth meeting and both suspensions are rejected as out of jurisdiction.
    The transparency report for May–December 2020 counts them.
    """
    from .legal import workflow
    from .legal.model import LegalRequestCreate
    from .meetings.placement import Occupancy
    from .meetings.regions import region_table
    from .meetings.service import admit, create_meeting, end_meeting

    hosts = {
        "us": account(
            "2020-05-20T09:00:00-04:00",
            type="organization",
            name="June Fourth Memorial Society",
            country="US",
        ),
        "hk": account(
            "2020-05-21T10:00:00+08:00",
            type="organization",
            name="Victoria Park Vigil Committee",
            country="HK",
        ),
    }
    buy("2020-05-20T09:10:00-04:00", hosts["us"], "pro", "online", "year")
    buy("2020-05-21T10:10:00+08:00", hosts["hk"], "pro", "online", "year")
    alex = _token_caller(rt, "demo: Alex (trust and safety)", create=True)
    sam = _token_caller(rt, "demo: Sam (legal)", create=True)
    evening = _at(rt, "2020-06-04T20:00:00+08:00")
    meetings = []
    for host, topic, places in _JUNE_MEETINGS:
        meeting, _, _ = create_meeting(
            evening,
            caller=_OPERATOR,
            host_account_id=hosts[host],
            topic=topic,
            countries=None,
            client_ip=None,
        )
        table = region_table(evening.engine.bundle)
        occupancy = Occupancy(table)
        uses: dict[str, int] = {}
        for n, place in enumerate(places):
            admit(
                evening,
                meeting_id=meeting.id,
                name=f"participant {n + 1}",
                caller=None,
                client_ip=DEMO_IPS[place],
                occupancy=occupancy,
                uses=uses,
            )
        meetings.append(meeting.id)
    asked = _at(rt, "2020-06-04T21:00:00+08:00")
    base = {
        "authority": "Beijing Municipal Public Security Bureau (demo)",
        "jurisdiction": "CN",
        "legal_type": "court_order",
        "reference": "demo/2020-06",
    }
    received = [
        workflow.receive(
            asked,
            caller=alex,
            body=LegalRequestCreate.model_validate(
                {**base, "action": "end_meeting", "target": {"kind": "meeting", "id": m}}
            ),
        )
        for m in meetings
    ] + [
        workflow.receive(
            asked,
            caller=alex,
            body=LegalRequestCreate.model_validate(
                {**base, "action": "suspend_account", "target": {"kind": "account", "id": h}}
            ),
        )
        for h in hosts.values()
    ]
    approving = _at(rt, "2020-06-04T21:30:00+08:00")
    for row in received:
        if row.state == "pending":
            workflow.approve(approving, caller=sam, request_id=row.id)
    done = _at(rt, "2020-06-04T23:00:00+08:00")
    for m in meetings:
        end_meeting(done, caller=None, meeting_id=m, actor=SYSTEM)
    with rt.db.read() as session:
        states = [workflow.get_request(session, r.id).state for r in received]
    say(
        f"  2020-06-04  June 4th: {len(received)} requests from mainland China, "
        f"{states.count('applied')} narrowed to blocks of mainland participants, "
        f"{states.count('rejected')} rejected as out of jurisdiction"
    )


def _token_caller(rt: Runtime, name: str, *, create: bool = False) -> Caller:
    """An operator token's caller, by the token's name (created first with ``create``)."""
    with rt.db.write() as session:
        if create:
            create_token(
                session, role="operator", name=name, at=rt.now(), actor=SYSTEM, digest=rt.digest
            )
        token_id = session.scalars(select(Token.id).where(Token.name == name)).one()
    return Caller(token_id, "operator")
