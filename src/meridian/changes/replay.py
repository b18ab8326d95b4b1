"""Replay: the decisions in the log, judged again under a proposed bundle.

Every log entry that carries a decision is rebuilt into the request it answered and decided again
by an :class:`~meridian.policy.engine.Engine` over the proposed bundle. Location evidence is taken
as the entry recorded it (the IP address's country as it was located then, the declared
country, the organisation code), so only the bundle changes, never the geography.

What an entry holds of its request:

* the decision: the action, the instant, and the evidence of every signal the bundle that
  decided it counted for that action (a signal it counted and the entry does not list was
  absent);
* the entry's details: the type, country and code of a sign-up; the plan, channel and partner
  of a purchase; the plan of a hosting;
* what the entry's subject names in the database and never changes afterwards: an account's type,
  country and organisation code, a subscription's plan, channel and partner, the account of a
  joiner's user token.

Fail closed: when the proposed bundle reads a fact the entry cannot give (a signal the deciding
bundle did not count, the plan of a joiner, the bundle that decided it gone), the decision is
reported as **not re-judged**, with the missing input named, and counted apart; so is each
advisory entry (``decision.advisory``), which keeps a tally of its decisions, not their requests
(:mod:`meridian.http.journal`). Nothing in the window is skipped without a word.

The transition part (:func:`meridian.commerce.transition.compare_bundles`) answers the other
question: what changes at the activation instant for the customers of today.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import BundleError, InputError, RequestError
from ..geography.ipgeo import IpAddress, parse_ip
from ..geography.uscc import OrgForm, normalise_uscc, org_form
from ..policy.compiled import CompiledBundle, compile_bundle
from ..policy.engine import Engine
from ..policy.loader import LoadedBundle, load_bundle_text
from ..policy.request import Request, Resource, Subject, epoch_seconds
from ..storage.models import Account, PolicyBundle, Record, Subscription, Token

__all__ = [
    "ADVISORY",
    "DECIDED_ACTIONS",
    "LIST_LIMIT",
    "LoggedDecision",
    "Replay",
    "Replayer",
    "logged_decisions",
    "replay_log",
    "replay_rows",
    "replayer_for",
]

#: the log actions whose entries carry a gating decision, and the request action each answered
DECIDED_ACTIONS: dict[str, str] = {
    "account.register": "register",
    "subscription.purchase": "purchase",
    "subscription.take_over": "purchase",
    "subscription.renew": "renew",
    "meeting.host": "host",
    "meeting.join": "join",
}
#: advisory decisions: recorded as tallies, without their requests
ADVISORY = "decision.advisory"
#: the most changed and not re-judged decisions a replay lists one by one (counts are complete)
LIST_LIMIT = 200
_ROWS_PER_FETCH = 5000

#: a fact the entry cannot give
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    """One log entry with a decision, as the replay reads it (``entry`` parsed lazily)."""

    seq: int
    action: str
    subject_kind: str
    subject_id: str | None
    actor: str
    bundle_digest: str
    entry: bytes


def logged_decisions(
    session: Session, since: datetime, until: datetime
) -> Iterator[LoggedDecision]:
    """The log's entries judged at ``since <= at < until``, in log order, fetched in batches."""
    query = (
        select(
            Record.seq,
            Record.action,
            Record.subject_kind,
            Record.subject_id,
            Record.actor,
            Record.bundle_digest,
            Record.entry,
        )
        .where(Record.at >= since, Record.at < until)
        .order_by(Record.seq)
        .execution_options(yield_per=_ROWS_PER_FETCH)
    )
    for row in session.execute(query):
        yield LoggedDecision(*row)


@dataclass(frozen=True, slots=True)
class Replay:
    """What judging the window's decisions again under ``bundle`` gives. Counts are complete;
    ``changed`` and ``not_rejudged`` list the first :data:`LIST_LIMIT` of each."""

    bundle: dict[str, str]
    since: datetime
    until: datetime
    examined: int
    rejudged: int
    #: per request action: examined, rejudged, changed, allow_to_deny, deny_to_allow, not_rejudged
    by_action: dict[str, dict[str, int]]
    changed_count: int
    reasons_changed: int
    not_rejudged_count: int
    #: advisory entries (and the decisions they tally), which cannot be judged again
    advisory: dict[str, int]
    accounts: tuple[str, ...]
    subscriptions: tuple[str, ...]
    meetings: tuple[str, ...]
    changed: tuple[dict[str, Any], ...]
    not_rejudged: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": dict(self.bundle),
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "examined": self.examined,
            "rejudged": self.rejudged,
            "changed_count": self.changed_count,
            "reasons_changed": self.reasons_changed,
            "not_rejudged_count": self.not_rejudged_count,
            "by_action": {a: dict(c) for a, c in self.by_action.items()},
            "advisory": dict(self.advisory),
            "accounts": list(self.accounts),
            "subscriptions": list(self.subscriptions),
            "meetings": list(self.meetings),
            "changed": [dict(i) for i in self.changed],
            "not_rejudged": [dict(i) for i in self.not_rejudged],
        }


class _LoggedLocator:
    """Answers with the country the entry recorded for the address (set per decision)."""

    def __init__(self) -> None:
        self.answers: dict[str, str | None] = {}

    def country(self, ip: IpAddress) -> str | None:
        return self.answers.get(ip.text)


#: what the entry gives of a request's subject and resource, by field (``type``, ``country``,
#: ``ip``, ``org_id``, ``phone``, ``plan``, ``channel``, ``partner``): a value, ``None`` (absent);
#: a field not in it is missing. A plain dict, filled with ``setdefault``: this runs per row.
_Facts = dict[str, Any]


_SIGNAL_FIELD = {"country": "country", "ip": "ip", "org_id": "org_id", "phone": "phone"}
_READ_NAMES = ("type", "plan", "channel", "partner", "org_id")


class Replayer:
    """Judges logged decisions again under one proposed bundle.

    ``accounts``, ``subscriptions`` and ``tokens`` are the rows entries name (see the module's
    docstring), read once by :func:`replay_log`; ``bundle_text`` gives the text of a bundle that
    decided, by digest, or ``None`` when it is gone.
    """

    def __init__(
        self,
        proposed: LoadedBundle | CompiledBundle,
        *,
        accounts: dict[str, tuple[str, str, str | None]],
        subscriptions: dict[str, tuple[str, str, str, str | None]],
        tokens: dict[str, str | None],
        bundle_text: Callable[[str], str | None],
    ) -> None:
        self.locator = _LoggedLocator()
        self.engine = Engine(proposed, locator=self.locator)
        self.accounts = accounts
        self.subscriptions = subscriptions
        self.tokens = tokens
        self._bundle_text = bundle_text
        self._signals: dict[str, dict[str, frozenset[str]] | None] = {}
        self._ips: dict[str, IpAddress] = {}
        self._orgs: dict[str, tuple[str, OrgForm, str | None]] = {}
        self._counts_by_action: dict[str, tuple[str, ...]] = {}

    # -- what the deciding bundle counted -------------------------------------------------------

    def counted(self, digest: str, action: str) -> frozenset[str] | None:
        """The signals the bundle ``digest`` counted for ``action`` (``None``: bundle gone)."""
        by_action = self._signals.get(digest, _MISSING)
        if by_action is _MISSING:
            text = self._bundle_text(digest)
            by_action = None
            if text is not None:
                try:
                    doc = load_bundle_text(text, digest).document
                    by_action = {
                        a.value: frozenset(s.value for s in rule.signals)
                        for a, rule in doc.location.items()
                    }
                except (BundleError, InputError):
                    by_action = None
            self._signals[digest] = by_action
        return None if by_action is None else by_action.get(action, frozenset())

    # -- rebuilding one request -------------------------------------------------------------------

    def facts(
        self, row: LoggedDecision, decision: dict[str, Any], details: dict[str, Any]
    ) -> tuple[_Facts, dict[str, str | None], str | None]:
        """What ``row`` gives of its request, the countries its addresses were located in, and
        the country of its phone number."""
        facts: _Facts = {}
        ips: dict[str, str | None] = {}
        phone_country = None
        action = decision["action"]
        for item in decision["location"]["evidence"]:
            name = _SIGNAL_FIELD.get(item["signal"])
            if name is None:
                continue
            facts[name] = item["value"]
            if name == "ip":
                ips[item["value"]] = item["country"]
            elif name == "phone":
                phone_country = item["country"]
        counted = self.counted(row.bundle_digest, action)
        if counted is not None:
            for signal in counted:
                name = _SIGNAL_FIELD.get(signal)
                if name is not None:
                    facts.setdefault(name, None)  # counted, not listed: the request had none
        fill = facts.setdefault
        kind, sid, log_action = row.subject_kind, row.subject_id, row.action
        if log_action == "account.register":
            for name in ("type", "country"):
                if name in details:
                    fill(name, details[name])
            fill("org_id", details.get("org_id"))
            for name in ("phone", "plan", "channel", "partner"):
                fill(name, None)
        elif log_action == "subscription.purchase":
            self._account(facts, sid if kind == "account" else None)
            for name in ("plan", "channel", "partner"):
                if name in details:
                    fill(name, details[name])
            fill("phone", None)
        elif log_action in ("subscription.renew", "subscription.take_over"):
            sub = self.subscriptions.get(sid or "") if kind == "subscription" else None
            if sub is not None:
                account_id, plan, channel, partner = sub
                self._account(facts, account_id)
                fill("plan", plan)
                fill("ip", None)
                if log_action == "subscription.renew":
                    fill("channel", channel)
                    fill("partner", partner)
                else:
                    fill("channel", "partner")
                    if "partner" in details:
                        fill("partner", details["partner"])
            fill("phone", None)
        elif log_action == "meeting.host":
            self._account(facts, sid if kind == "account" else None)
            if "plan" in details:
                fill("plan", details["plan"])
            for name in ("channel", "partner", "phone"):
                fill(name, None)
        elif log_action == "meeting.join":
            # the join request carries the address, and the type and plan of a user's account
            for name in ("country", "org_id", "phone", "channel", "partner"):
                fill(name, None)
            role, _, who = row.actor.partition(":")
            if role == "user":
                account = self.accounts.get(self.tokens.get(who) or "")
                if account is not None:
                    fill("type", account[0])
            else:
                fill("type", "individual")
                fill("plan", None)
        return facts, ips, phone_country

    def _account(self, facts: _Facts, account_id: str | None) -> None:
        account = None if account_id is None else self.accounts.get(account_id)
        if account is not None:
            type_, country, org_id = account
            facts.setdefault("type", type_)
            facts.setdefault("country", country)
            facts.setdefault("org_id", org_id)

    def _counts(self, action: str) -> tuple[str, ...]:
        """The fields of the signals the proposed bundle counts for ``action``."""
        found = self._counts_by_action.get(action)
        if found is None:
            rule = self.engine.bundle.location.get(action)
            found = () if rule is None else tuple(_SIGNAL_FIELD[s.value] for s in rule.signals)
            self._counts_by_action[action] = found
        return found

    def request(
        self,
        action: str,
        at: datetime,
        facts: _Facts,
        ips: dict[str, str | None],
        phone_country: str | None,
    ) -> tuple[Request | None, str | None]:
        """The request ``facts`` make, or the input the proposed bundle needs and they lack."""
        engine = self.engine
        for name in self._counts(action):
            if name not in facts:
                return None, (
                    f"the proposed bundle counts `{name}` for `{action}`, "
                    "which the entry does not record"
                )
        if "type" not in facts:
            return None, "the entry does not record the subject's type"
        get = facts.get
        ip_text = get("ip")
        ip = None
        if ip_text is not None:
            ip = self._ips.get(ip_text)
            if ip is None:
                ip = self._ips[ip_text] = parse_ip(ip_text)
        org_text = get("org_id")
        code, form, org_country = None, OrgForm.ABSENT, None
        if org_text:
            found = self._orgs.get(org_text)
            if found is None:
                normal = normalise_uscc(org_text)
                shape = org_form(normal)
                found = self._orgs[org_text] = (
                    normal,
                    shape,
                    None if shape is OrgForm.MALFORMED else "CN",
                )
            code, form, org_country = found
        request = Request(
            action=action,
            subject=Subject(
                type=facts["type"],
                country=get("country"),
                ip=ip,
                plan=get("plan"),
                org_id=code,
                org_form=form,
                org_country=org_country,
                phone=get("phone"),
                phone_country=phone_country,
            ),
            resource=Resource(channel=get("channel"), partner=get("partner")),
            at=at,
            epoch=epoch_seconds(at),
        )
        self.locator.answers = ips
        missing = [name for name in _READ_NAMES if name not in facts]
        if not missing:
            return request, None
        # Some fact is unknown: it matters only if a rule where the subject is judged reads it.
        try:
            _, candidates = engine.locate(request)
        except Exception as exc:  # noqa: BLE001 - a look-up that fails refuses to re-judge
            return None, f"the evidence could not be read again: {exc!r}"
        for jurisdiction in candidates:
            placed = engine.bundle.classes.get((action, jurisdiction))
            if placed is None:
                continue
            for name, reads in zip(_READ_NAMES, placed.reads, strict=True):
                if reads and name in missing:
                    return None, (
                        f"the proposed bundle reads `{name}` for `{action}` in {jurisdiction}, "
                        "which the entry does not record"
                    )
        return request, None

    def judge(self, row: LoggedDecision) -> dict[str, Any]:
        """One entry judged again: ``{"outcome": "same" | "changed" | "reasons" | "not_rejudged", …}``."""
        content = orjson.loads(row.entry)
        decision = content.get("decision")
        if not isinstance(decision, dict):
            return {"outcome": "not_rejudged", "why": "the entry holds no decision"}
        try:
            at = datetime.fromisoformat(decision["at"].replace("Z", "+00:00"))
            action = decision["action"]
            facts, ips, phone_country = self.facts(row, decision, content.get("details") or {})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return {
                "outcome": "not_rejudged",
                "why": f"the entry's decision is not readable: {exc!r}",
            }
        request, missing = self.request(action, at, facts, ips, phone_country)
        if request is None:
            return {"outcome": "not_rejudged", "action": action, "why": missing}
        before = decision.get("decision")
        rules_before = list(dict.fromkeys(r.get("rule") for r in decision.get("reasons", ())))
        try:
            after = self.engine.decide(request)
        except RequestError as exc:
            # the proposed catalogue refuses the request as it was made (a plan or partner gone)
            return {
                "outcome": "changed" if before == "allow" else "same",
                "action": action,
                "before": before,
                "after": "deny",
                "rules_before": rules_before,
                "rules_after": [],
                "why": exc.message,
            }
        rules_after = list(after.rule_ids)
        if after.decision != before:
            outcome = "changed"
        elif rules_after != rules_before:
            outcome = "reasons"
        else:
            outcome = "same"
        return {
            "outcome": outcome,
            "action": action,
            "before": before,
            "after": after.decision,
            "rules_before": rules_before,
            "rules_after": rules_after,
        }


def _subjects(row: LoggedDecision, replayer: Replayer) -> tuple[str | None, str | None, str | None]:
    """The account, subscription and meeting an entry is about, where it names them."""
    account = subscription = meeting = None
    if row.subject_kind == "account":
        account = row.subject_id
    elif row.subject_kind == "subscription":
        subscription = row.subject_id
        sub = replayer.subscriptions.get(row.subject_id or "")
        account = None if sub is None else sub[0]
    elif row.subject_kind == "meeting":
        meeting = row.subject_id
        role, _, who = row.actor.partition(":")
        if role == "user":
            account = replayer.tokens.get(who)
    return account, subscription, meeting


def replay_rows(
    replayer: Replayer,
    rows: Iterable[LoggedDecision],
    *,
    since: datetime,
    until: datetime,
) -> Replay:
    """Judge every row again and gather the report."""
    by_action: dict[str, dict[str, int]] = {}
    accounts: set[str] = set()
    subscriptions: set[str] = set()
    meetings: set[str] = set()
    changed: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    examined = rejudged = changed_count = reasons = unjudged = 0
    advisory_entries = advisory_decisions = 0
    for row in rows:
        if row.action == ADVISORY:
            advisory_entries += 1
            with suppress(KeyError, TypeError, ValueError, AttributeError):
                advisory_decisions += int(orjson.loads(row.entry)["details"].get("count", 0))
            continue
        if row.action not in DECIDED_ACTIONS:
            # an entry of another kind: the decision it may carry has no known request form
            if b'"decision":{' not in row.entry:
                continue
            result: dict[str, Any] = {
                "outcome": "not_rejudged",
                "why": f"entries of `{row.action}` do not say what request was decided",
            }
        else:
            result = replayer.judge(row)
        examined += 1
        action = result.get("action") or DECIDED_ACTIONS.get(row.action, row.action)
        counts = by_action.setdefault(
            action,
            {
                "examined": 0,
                "rejudged": 0,
                "changed": 0,
                "allow_to_deny": 0,
                "deny_to_allow": 0,
                "not_rejudged": 0,
            },
        )
        counts["examined"] += 1
        outcome = result["outcome"]
        if outcome == "not_rejudged":
            unjudged += 1
            counts["not_rejudged"] += 1
            if len(problems) < LIST_LIMIT:
                problems.append({"seq": row.seq, "log_action": row.action, "why": result["why"]})
            continue
        rejudged += 1
        counts["rejudged"] += 1
        if outcome == "reasons":
            reasons += 1
        if outcome != "changed":
            continue
        changed_count += 1
        counts["changed"] += 1
        counts["allow_to_deny" if result["before"] == "allow" else "deny_to_allow"] += 1
        account, subscription, meeting = _subjects(row, replayer)
        for value, into in (
            (account, accounts),
            (subscription, subscriptions),
            (meeting, meetings),
        ):
            if value is not None:
                into.add(value)
        if len(changed) < LIST_LIMIT:
            item = {
                "seq": row.seq,
                "log_action": row.action,
                "subject": {"kind": row.subject_kind, "id": row.subject_id},
                **{k: v for k, v in result.items() if k != "outcome"},
            }
            changed.append(item)
    return Replay(
        bundle=replayer.engine.bundle.ref.to_dict(),
        since=since,
        until=until,
        examined=examined,
        rejudged=rejudged,
        by_action=by_action,
        changed_count=changed_count,
        reasons_changed=reasons,
        not_rejudged_count=unjudged,
        advisory={"entries": advisory_entries, "decisions": advisory_decisions},
        accounts=tuple(sorted(accounts)),
        subscriptions=tuple(sorted(subscriptions)),
        meetings=tuple(sorted(meetings)),
        changed=tuple(changed),
        not_rejudged=tuple(problems),
    )


def replayer_for(session: Session, proposed: LoadedBundle | CompiledBundle) -> Replayer:
    """A :class:`Replayer` over ``proposed`` with the rows entries name, read from ``session``.

    The accounts, subscriptions and tokens are read whole, once: a replay's memory grows with the
    number of customers, not with the number of decisions.
    """
    accounts = {
        a: (t, c, o)
        for a, t, c, o in session.execute(
            select(Account.id, Account.type, Account.country, Account.org_id)
        )
    }
    subscriptions = {
        s: (a, p, c, partner)
        for s, a, p, c, partner in session.execute(
            select(
                Subscription.id,
                Subscription.account_id,
                Subscription.plan,
                Subscription.channel,
                Subscription.partner_id,
            )
        )
    }
    tokens = {t: a for t, a in session.execute(select(Token.id, Token.account_id))}
    texts: dict[str, str | None] = {}

    def bundle_text(digest: str) -> str | None:
        if digest not in texts:
            texts[digest] = session.scalars(
                select(PolicyBundle.text).where(PolicyBundle.digest == digest)
            ).first()
        return texts[digest]

    return Replayer(
        proposed if isinstance(proposed, CompiledBundle) else compile_bundle(proposed),
        accounts=accounts,
        subscriptions=subscriptions,
        tokens=tokens,
        bundle_text=bundle_text,
    )


def replay_log(
    session: Session,
    proposed: LoadedBundle | CompiledBundle,
    *,
    days: int,
    now: datetime,
) -> Replay:
    """The decisions of the ``days`` days before ``now`` in the log, judged again under ``proposed``."""
    if not 1 <= days <= 3660:
        raise InputError(f"replay over `{days}` days: expected 1 to 3660")
    since = now - timedelta(days=days)
    replayer = replayer_for(session, proposed)
    return replay_rows(replayer, logged_decisions(session, since, now), since=since, until=now)
