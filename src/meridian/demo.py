"""The demo world ``make run`` serves: the 2020 case, replayed through the real service functions.

Each step runs on a clock set to the day it happened, so every account and subscription was
admitted by the same decisions a live request would get. Nothing is written straight into a
table. Seeding happens once, on a database with no accounts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import func, select

from .audit import SYSTEM, Actor
from .clock import fixed_clock, parse_instant
from .commerce.renewal import renew_due
from .commerce.subscriptions import checkout
from .identity.accounts import register
from .identity.people import add_operator, find_operator
from .identity.tokens import Caller, create_token, revoke_token
from .keyfiles import write_private
from .runtime import Runtime
from .storage.models import Account, Partner, Token

__all__ = [
    "DEMO_CONTACTS",
    "DEMO_HOSTS",
    "DEMO_IPS",
    "DEMO_OPERATORS",
    "demo_tokens",
    "save_demo_tokens",
    "seed_demo",
]

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
    alex = _operator_caller(rt, "demo: Alex (trust and safety)")
    sam = _operator_caller(rt, "demo: Sam (legal)")
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
    with rt.db.write() as session:
        states = [workflow.get_request(session, r.id).state for r in received]
        for seeder in (alex, sam):  # their tokens were for seeding only: no one holds them
            revoke_token(
                session, token_id=seeder.token_id, at=rt.now(), actor=SYSTEM, digest=rt.digest
            )
    say(
        f"  2020-06-04  June 4th: {len(received)} requests from mainland China, "
        f"{states.count('applied')} narrowed to blocks of mainland participants, "
        f"{states.count('rejected')} rejected as out of jurisdiction"
    )


def _operator_caller(rt: Runtime, name: str) -> Caller:
    """A demo operator person named ``name`` and the caller of a demo token of theirs (which the
    next demo start revokes, as it revokes every earlier demo token)."""
    with rt.db.write() as session:
        person = find_operator(session, name)
        if person is None:
            person, token, _ = add_operator(
                session, name=name, at=rt.now(), actor=SYSTEM, digest=rt.digest, demo=True
            )
        else:
            token, _ = create_token(
                session,
                role="operator",
                name=name,
                person_id=person.id,
                at=rt.now(),
                actor=SYSTEM,
                digest=rt.digest,
                demo=True,
            )
        return Caller(token.id, "operator", person_id=person.id)


#: the demo's operators, two people: one records a government request, the other approves it
DEMO_OPERATORS = {"operator": "Demo operator", "operator2": "Demo second operator"}


def demo_tokens(rt: Runtime, actor: Actor) -> tuple[dict[str, str], int]:
    """Fresh tokens to try the demo with, by the name of the file ``make run`` keeps each in,
    and how many earlier demo tokens were revoked.

    Every earlier demo token is revoked first (a restart leaves only the tokens it prints): the
    two demo operators' (always the same two people), the bizconf partner's and the demo hosts'.
    Only ever called in development: ``meridian serve --demo`` is refused in production.
    """
    at = rt.now()
    with rt.db.write() as session:
        earlier = session.scalars(
            select(Token.id).where(Token.demo.is_(True), Token.revoked_at.is_(None))
        ).all()
        for token_id in earlier:
            revoke_token(session, token_id=token_id, at=at, actor=actor, digest=rt.digest)
    secrets: dict[str, str] = {}
    for key, name in DEMO_OPERATORS.items():
        caller = _operator_caller(rt, name)
        with rt.db.write() as session:
            # the caller's token was only for acting here: the printed one is a new one
            revoke_token(session, token_id=caller.token_id, at=at, actor=actor, digest=rt.digest)
            _, secrets[key] = create_token(
                session,
                role="operator",
                name=f"make run ({key})",
                person_id=caller.person_id,
                at=at,
                actor=actor,
                digest=rt.digest,
                demo=True,
            )
    with rt.db.write() as session:
        _, secrets["bizconf"] = create_token(
            session,
            role="partner",
            name="make run (bizconf)",
            partner_id="bizconf",
            at=at,
            actor=actor,
            digest=rt.digest,
            demo=True,
        )
        for key, account_name in DEMO_HOSTS.items():
            account_id = session.scalars(
                select(Account.id).where(Account.name == account_name)
            ).first()
            if account_id is not None:
                _, secrets[key] = create_token(
                    session,
                    role="user",
                    name=f"make run ({key})",
                    account_id=account_id,
                    default_user_days=rt.settings.user_token_days,
                    at=at,
                    actor=actor,
                    digest=rt.digest,
                    demo=True,
                )
    return secrets, len(earlier)


def save_demo_tokens(tokens: Mapping[str, str], directory: Path = Path("var")) -> dict[str, Path]:
    """Keep each token of :func:`demo_tokens` in ``directory/<name>.token`` (mode 0600), the
    directory made (mode 0700) if missing; the files written, by name."""
    directory.mkdir(mode=0o700, exist_ok=True)
    written: dict[str, Path] = {}
    for name, secret in tokens.items():
        path = directory / f"{name}.token"
        # mode 0600 from the first byte (never written, then chmod-ed)
        write_private(path, (secret + "\n").encode("utf-8"))
        written[name] = path
    return written
