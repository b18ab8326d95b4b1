"""The two-person change of the bundle in force: propose, approve or refuse, activate, roll back.

States (``policy_changes.state``)::

    proposed ──approve (a second operator)──▶ approved ──its instant, or now──▶ active
       │                                        │                                │
       └──refuse (any operator)──▶ refused ◀────┘                 rollback ──▶ rolled_back
                                                      (a later change in force: superseded)

A proposal stores the proposed bundle (a ``policy_bundles`` row, not in force), the bundle in
force it was made against (its *base*), the diff between the two and its digest, the replay of
the log's recent decisions under it, what changes at its instant for the customers of today, and
the invariants it breaks. Each step is a log entry (``policy.proposed``, ``policy.approved``,
``policy.approval_refused``, ``policy.refused``, ``policy.activated``,
``policy.activation_refused``, ``policy.rolled_back``) carrying the diff's digest, written in the
transaction that makes the step.

Two people, always: the operator who proposed a change cannot approve it, through any of their
tokens (the rule compares people, :mod:`meridian.identity.people`); a partner's or a user's token
can do nothing here. The approver names the diff digest they read: approval is refused when it is
not the change's, and when the bundle in force is no longer the change's base (its diff and replay
would be about another bundle). A scheduled instant already past is refused at proposal and at
approval. Refusing needs one operator (the proposer may withdraw their own); so does rolling back,
which is the way out of a bad change and must not wait for a second person — it is recorded.

Activation is idempotent across replicas: every move is a conditional ``UPDATE … WHERE state =
…`` inside the transaction that takes the bundle lock (:func:`meridian.policy.store.lock_activation`),
so two replicas activating the same change at once record it once, and an activation racing a
rollback is serialised: whichever commits second sees the other's outcome and refuses.
:func:`activate_due` is what the service's policy poll runs (``server.py``), each replica
on its own clock: a change activates at the first poll at or after its instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..audit import SYSTEM, Actor, record
from ..commerce.transition import compare_bundles
from ..errors import (
    BundleError,
    BundleProblem,
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    shown,
)
from ..identity.people import operator_in_office
from ..identity.tokens import Caller
from ..policy.diff import diff_bundles
from ..policy.engine import Engine
from ..policy.invariants import broken_invariants
from ..policy.loader import LoadedBundle, load_bundle_text
from ..policy.store import activate_bundle, active_bundle, check_storable, lock_activation
from ..runtime import Runtime
from ..storage.models import (
    Person,
    PolicyBundle,
    PolicyChange,
    PolicyChangeState,
    new_id,
)
from .replay import replay_log

__all__ = [
    "DEFAULT_DAYS",
    "Change",
    "activate",
    "activate_due",
    "approve",
    "get_change",
    "list_changes",
    "poll",
    "propose",
    "refuse",
    "replay_bundle",
    "rollback",
]

#: the days of the log a proposal replays unless told otherwise
DEFAULT_DAYS = 30
_KIND = "policy_change"


@dataclass(frozen=True, slots=True)
class Change:
    """A change as the doors show it (a snapshot of its row)."""

    id: str
    state: str
    bundle: dict[str, str]
    base_digest: str
    diff_digest: str
    diff: dict[str, Any]
    replay: dict[str, Any]
    broken: tuple[dict[str, Any], ...]
    note: str
    activate_at: datetime | None
    proposed_by: str
    proposed_by_name: str
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    previous_digest: str | None
    activated_by: str | None
    activated_at: datetime | None
    rolled_back_by: str | None
    rolled_back_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return None if at is None else at.isoformat()

        return {
            "id": self.id,
            "state": self.state,
            "bundle": dict(self.bundle),
            "base_digest": self.base_digest,
            "diff_digest": self.diff_digest,
            "diff": self.diff,
            "replay": self.replay,
            "broken_invariants": [dict(b) for b in self.broken],
            "note": self.note,
            "activate_at": iso(self.activate_at),
            "proposed_by": self.proposed_by,
            "proposed_by_name": self.proposed_by_name,
            "proposed_at": iso(self.proposed_at),
            "decided_by": self.decided_by,
            "decided_at": iso(self.decided_at),
            "reason": self.reason,
            "previous_digest": self.previous_digest,
            "activated_by": self.activated_by,
            "activated_at": iso(self.activated_at),
            "rolled_back_by": self.rolled_back_by,
            "rolled_back_at": iso(self.rolled_back_at),
        }

    def summary(self) -> dict[str, Any]:
        """The list form: without the diff and the replay's items."""
        out = self.to_dict()
        replay = out.pop("replay")
        out.pop("diff")
        log = replay.get("log", {})
        out["replay"] = {
            "days": replay.get("days"),
            "examined": log.get("examined"),
            "changed": log.get("changed_count"),
            "not_rejudged": log.get("not_rejudged_count"),
        }
        return out


def _view(session: Session, row: PolicyChange) -> Change:
    bundle = session.get(PolicyBundle, row.bundle_digest)
    ref = {
        "name": "" if bundle is None else bundle.name,
        "version": "" if bundle is None else bundle.version,
        "digest": row.bundle_digest,
    }
    return Change(
        id=row.id,
        state=row.state,
        bundle=ref,
        base_digest=row.base_digest,
        diff_digest=row.diff_digest,
        diff=row.diff,
        replay=row.replay,
        broken=tuple(row.broken),
        note=row.note,
        activate_at=row.activate_at,
        proposed_by=row.proposed_by,
        proposed_by_name=row.proposed_by_name,
        proposed_at=row.proposed_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        reason=row.reason,
        previous_digest=row.previous_digest,
        activated_by=row.activated_by,
        activated_at=row.activated_at,
        rolled_back_by=row.rolled_back_by,
        rolled_back_at=row.rolled_back_at,
    )


# -- who may act ----------------------------------------------------------------------------


def _operator(session: Session, caller: Caller) -> tuple[Actor, str]:
    """The caller as an operator in office (:func:`~meridian.identity.people.operator_in_office`)."""
    return operator_in_office(
        session, caller, may="change the policy bundle", work="bundle changes are made by people"
    )


def _same_person(session: Session, caller: Caller, row: PolicyChange) -> str | None:
    """Why ``caller`` counts as the proposer of ``row``, in words, if they do."""
    if str(caller.actor) == row.proposed_by:
        return f"this operator, `{shown(row.proposed_by_name)}` (`{caller.person_id}`)"
    me = None if caller.person_id is None else session.get(Person, caller.person_id)
    # failing closed, as the lawful-request workflow does: a namesake counts as the same person
    if me is not None and me.name.casefold() == row.proposed_by_name.casefold():
        return f"an operator of the same name, `{shown(me.name)}`"
    return None


def _get(session: Session, change_id: str, *, lock: bool = False) -> PolicyChange:
    query = select(PolicyChange).where(PolicyChange.id == change_id)
    row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFoundError(f"no policy change `{shown(change_id)}`")
    return row


def _record(
    session: Session,
    row: PolicyChange,
    action: str,
    at: datetime,
    actor: Actor,
    in_force: str,
    **details: Any,
) -> None:
    record(
        session,
        actor=actor,
        action=action,
        subject_kind=_KIND,
        subject_id=row.id,
        at=at,
        bundle_digest=in_force,
        details={"diff": row.diff_digest, "bundle": row.bundle_digest, **details},
    )


def _move(session: Session, row: PolicyChange, expected: str, **values: Any) -> bool:
    """Move ``row`` out of ``expected`` with a conditional UPDATE; ``False`` if it had left it."""
    result = session.execute(
        update(PolicyChange)
        .where(PolicyChange.id == row.id, PolicyChange.state == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    moved = bool(result.rowcount == 1)  # type: ignore[attr-defined]
    session.refresh(row)
    return moved


# -- reading ---------------------------------------------------------------------------------


def get_change(rt: Runtime, change_id: str) -> Change:
    """One change, or 404."""
    with rt.db.read() as session:
        return _view(session, _get(session, change_id))


def list_changes(rt: Runtime, *, state: str | None = None, limit: int = 100) -> list[Change]:
    """The changes, newest first (at most ``limit``), optionally in one state."""
    if state is not None and state not in set(PolicyChangeState):
        raise InputError(
            f"unknown change state `{shown(state)}`: expected one of "
            + ", ".join(s.value for s in PolicyChangeState)
        )
    with rt.db.read() as session:
        query = select(PolicyChange).order_by(PolicyChange.proposed_at.desc(), PolicyChange.id)
        if state is not None:
            query = query.where(PolicyChange.state == state)
        return [_view(session, row) for row in session.scalars(query.limit(limit))]


# -- proposing -------------------------------------------------------------------------------


def propose(
    rt: Runtime,
    *,
    caller: Caller,
    text: str,
    source: str,
    activate_at: datetime | None = None,
    days: int = DEFAULT_DAYS,
    note: str = "",
) -> Change:
    """Propose ``text`` (a bundle's YAML) to replace the bundle in force, at ``activate_at``
    (``None``: as soon as it is approved). Nothing changes in force.

    Raises :class:`~meridian.errors.BundleError` for a bundle that does not validate,
    :class:`InputError` for an instant already past, :class:`ConflictError` for the bundle in
    force itself.
    """
    loaded = load_bundle_text(text, source)
    check_storable(loaded)
    if len(note) > 500:
        raise InputError(f"a change's note is {len(note)} characters: at most 500")
    at = rt.now()
    if activate_at is not None and activate_at < at:
        raise InputError(
            f"`activate_at` is `{activate_at.isoformat()}`, before now (`{at.isoformat()}`): "
            "a change comes into force at a later instant, or as soon as it is approved"
        )
    with rt.db.read() as session:
        _operator(session, caller)
    base, report = _preview(rt, loaded, days=days, at=activate_at, now=at)
    try:
        diff = diff_bundles(base, loaded, locator=rt.locator)
    except (OverflowError, ValueError) as exc:  # a window at the edge of what an instant holds
        raise BundleError(
            [BundleProblem(f"the bundle cannot be compared with the one in force: {exc}", source)]
        ) from None
    replayed = report["log"]
    # A bundle that decides every request class as its base does (an empty exact diff) breaks
    # exactly the invariants the base breaks, which are checked once per process.
    broken = _broken(rt, base if diff.same else loaded)
    with rt.db.write() as session:
        actor, name = _operator(session, caller)
        if session.get(PolicyBundle, loaded.digest) is None:
            doc = loaded.document
            session.add(
                PolicyBundle(
                    digest=loaded.digest,
                    name=doc.bundle,
                    version=doc.version,
                    source=loaded.source[:500],
                    text=text,
                    loaded_at=at,
                    loaded_by=str(actor),
                    active=False,
                )
            )
            session.flush()
        row = PolicyChange(
            id=new_id("chg"),
            state=PolicyChangeState.PROPOSED,
            bundle_digest=loaded.digest,
            base_digest=base.digest,
            diff_digest=diff.digest,
            diff=diff.to_dict(),
            replay=report,
            broken=broken,
            note=note,
            activate_at=activate_at,
            proposed_by=str(actor),
            proposed_by_name=name,
            proposed_at=at,
        )
        session.add(row)
        session.flush()
        _record(
            session,
            row,
            "policy.proposed",
            at,
            actor,
            base.digest,
            base=base.digest,
            activate_at=None if activate_at is None else activate_at.isoformat(),
            changed=replayed["changed_count"],
            not_rejudged=replayed["not_rejudged_count"],
            broken=len(broken),
        )
        return _view(session, row)


def _preview(
    rt: Runtime, loaded: LoadedBundle, *, days: int, at: datetime | None, now: datetime
) -> tuple[LoadedBundle, dict[str, Any]]:
    """The bundle in force, and the replay of ``loaded`` against it: the log's last ``days``
    days judged again, and the customers of today judged at ``at`` (default ``now``)."""
    with rt.db.read() as session:
        base = active_bundle(session)
        if base is None:
            raise ConflictError("no bundle is in force yet: start the service once first")
        if base.digest == loaded.digest:
            raise ConflictError(f"bundle `{loaded.digest}` is the one in force already")
        replayed = replay_log(session, loaded, days=days, now=now)
    current = Engine(base, locator=rt.locator, clock=rt.clock)
    proposed = Engine(loaded, locator=rt.locator, clock=rt.clock)
    transition = compare_bundles(
        rt, current=current, proposed=proposed, at=at if at is not None else now
    )
    return base, {"days": days, "log": replayed.to_dict(), "transition": transition}


def replay_bundle(
    rt: Runtime, *, text: str, source: str, days: int = DEFAULT_DAYS, at: datetime | None = None
) -> dict[str, Any]:
    """What ``text`` (a bundle's YAML) would change, without proposing it: the replay of the
    log's last ``days`` days under it, and what changes at ``at`` (default: now) for the
    customers of today. Reads only."""
    loaded = load_bundle_text(text, source)
    _, report = _preview(rt, loaded, days=days, at=at, now=rt.now())
    return report


#: the invariants each bundle breaks, by digest: a pure function of the bundle's text and the
#: built-in invariants, so never stale; a few entries (the bundles in force lately)
_BROKEN: dict[str, list[dict[str, Any]]] = {}
_BROKEN_KEPT = 8


def _broken(rt: Runtime, loaded: LoadedBundle) -> list[dict[str, Any]]:
    """The built-in invariants ``loaded`` breaks, each with its counterexample
    (:func:`meridian.policy.invariants.broken_invariants`): shown before anyone approves it."""
    found = _BROKEN.get(loaded.digest)
    if found is None:
        found = [r.to_dict() for r in broken_invariants(loaded, locator=rt.locator)]
        if len(_BROKEN) >= _BROKEN_KEPT:
            _BROKEN.clear()
        _BROKEN[loaded.digest] = found
    return found


# -- deciding on a proposal ------------------------------------------------------------------


def approve(rt: Runtime, *, caller: Caller, change_id: str, diff_digest: str) -> Change:
    """Approve a proposed change as the second operator; one without an instant comes into force
    at once (then call ``rt.refresh()``).

    Raises :class:`ForbiddenError` for the proposer (the refusal is recorded) and for any
    non-operator, :class:`ConflictError` when the change is not ``proposed``, when
    ``diff_digest`` is not its diff's, when the bundle in force is no longer its base, and when its
    instant has passed.
    """
    at = rt.now()
    failure: ForbiddenError | None = None
    with rt.db.write() as session:
        actor, _ = _operator(session, caller)
        lock_activation(session)
        row = _get(session, change_id, lock=True)
        in_force = _in_force(session)
        if row.state != PolicyChangeState.PROPOSED:
            raise ConflictError(f"policy change `{row.id}` is `{row.state}`: it cannot be approved")
        same = _same_person(session, caller, row)
        if same is not None:
            message = (
                f"policy change `{row.id}` was proposed by {same}: "
                "a second operator must approve it"
            )
            _record(session, row, "policy.approval_refused", at, actor, in_force, reason=message)
            failure = ForbiddenError(message)
        else:
            if diff_digest != row.diff_digest:
                raise ConflictError(
                    f"diff `{shown(diff_digest)}` is not policy change `{row.id}`'s "
                    f"(`{row.diff_digest}`): read its diff again before approving"
                )
            if in_force != row.base_digest:
                raise ConflictError(
                    f"the bundle in force changed since policy change `{row.id}` was proposed "
                    f"(`{row.base_digest}` then, `{in_force}` now): its diff and replay are out "
                    "of date; propose it again"
                )
            if row.activate_at is not None and row.activate_at < at:
                raise ConflictError(
                    f"policy change `{row.id}` was to come into force at "
                    f"{row.activate_at.isoformat()}, which has passed: propose it again"
                )
            if not _move(
                session,
                row,
                PolicyChangeState.PROPOSED,
                state=PolicyChangeState.APPROVED,
                decided_by=str(actor),
                decided_at=at,
            ):
                raise ConflictError(f"policy change `{row.id}` was decided meanwhile")
            _record(session, row, "policy.approved", at, actor, in_force)
            if row.activate_at is None:
                _activate(session, row, actor, at)
            view = _view(session, row)
    if failure is not None:
        raise failure
    return view


def refuse(rt: Runtime, *, caller: Caller, change_id: str, reason: str) -> Change:
    """Refuse a change not yet in force (any operator; the proposer withdraws it so)."""
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise InputError("a refusal needs a reason of 1 to 500 characters")
    at = rt.now()
    with rt.db.write() as session:
        actor, _ = _operator(session, caller)
        row = _get(session, change_id, lock=True)
        state = row.state
        if state not in (PolicyChangeState.PROPOSED, PolicyChangeState.APPROVED) or not _move(
            session,
            row,
            state,
            state=PolicyChangeState.REFUSED,
            decided_by=str(actor),
            decided_at=at,
            reason=reason,
        ):
            raise ConflictError(f"policy change `{row.id}` is `{row.state}`: it cannot be refused")
        _record(session, row, "policy.refused", at, actor, _in_force(session), reason=reason)
        return _view(session, row)


# -- coming into force -----------------------------------------------------------------------


def _in_force(session: Session) -> str:
    digest = session.scalars(select(PolicyBundle.digest).where(PolicyBundle.active)).first()
    return "" if digest is None else digest


def _loaded(session: Session, digest: str) -> tuple[LoadedBundle, str]:
    row = session.get(PolicyBundle, digest)
    if row is None:
        raise ConflictError(f"bundle `{shown(digest)}` is not stored: it cannot be put in force")
    return load_bundle_text(row.text, row.source), row.text


def _activate(session: Session, row: PolicyChange, actor: Actor, at: datetime) -> bool:
    """Put an approved change in force in ``session`` (the bundle lock held). ``False``: another
    transaction did first, or its base is no longer in force (then it is refused, and recorded)."""
    in_force = _in_force(session)
    if in_force != row.base_digest:
        why = (
            f"the bundle in force is `{in_force}`, not `{row.base_digest}` it was proposed "
            "against: propose it again"
        )
        if _move(
            session,
            row,
            PolicyChangeState.APPROVED,
            state=PolicyChangeState.REFUSED,
            reason=why[:500],
            decided_at=at,
            decided_by=str(SYSTEM),
        ):
            _record(session, row, "policy.activation_refused", at, SYSTEM, in_force, reason=why)
        return False
    if not _move(
        session,
        row,
        PolicyChangeState.APPROVED,
        state=PolicyChangeState.ACTIVE,
        activated_by=str(actor),
        activated_at=at,
        previous_digest=in_force,
    ):
        return False
    session.execute(
        update(PolicyChange)
        .where(PolicyChange.state == PolicyChangeState.ACTIVE, PolicyChange.id != row.id)
        .values(state=PolicyChangeState.SUPERSEDED)
    )
    loaded, text = _loaded(session, row.bundle_digest)
    activate_bundle(session, loaded, text, actor=actor, at=at)
    _record(session, row, "policy.activated", at, actor, row.bundle_digest, previous=in_force)
    return True


def activate(rt: Runtime, *, caller: Caller, change_id: str) -> Change:
    """Put an approved change in force now, before its instant (then call ``rt.refresh()``)."""
    at = rt.now()
    with rt.db.write() as session:
        actor, _ = _operator(session, caller)
        lock_activation(session)
        row = _get(session, change_id, lock=True)
        if row.state != PolicyChangeState.APPROVED:
            raise ConflictError(
                f"policy change `{row.id}` is `{row.state}`: only an approved change comes into force"
            )
        if not _activate(session, row, actor, at):
            raise ConflictError(
                f"policy change `{row.id}` did not come into force: {row.reason or row.state}"
            )
        return _view(session, row)


def activate_due(rt: Runtime) -> list[str]:
    """Put in force every approved change whose instant has come on ``rt``'s clock; their ids.

    Safe to run on every replica at once: each change is activated, and recorded, once.
    """
    at = rt.now()
    with rt.db.read() as session:
        due = list(
            session.scalars(
                select(PolicyChange.id)
                .where(
                    PolicyChange.state == PolicyChangeState.APPROVED,
                    PolicyChange.activate_at.is_not(None),
                    PolicyChange.activate_at <= at,
                )
                .order_by(PolicyChange.activate_at, PolicyChange.id)
            )
        )
    done: list[str] = []
    for change_id in due:
        with rt.db.write() as session:
            lock_activation(session)
            row = _get(session, change_id, lock=True)
            if row.state == PolicyChangeState.APPROVED and _activate(session, row, SYSTEM, at):
                done.append(change_id)
    return done


def poll(rt: Runtime) -> bool:
    """The service's policy poll: activate the changes now due, then pick up the bundle in force
    (this replica's engine may be up to one poll interval behind the database). ``True`` if the
    engine changed."""
    activate_due(rt)
    return rt.refresh()


def rollback(rt: Runtime, *, caller: Caller, change_id: str, reason: str) -> Change:
    """Put back the bundle that was in force before the change in force now (one operator).

    Raises :class:`ConflictError` when ``change_id`` is not the change in force.
    """
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise InputError("a rollback needs a reason of 1 to 500 characters")
    at = rt.now()
    with rt.db.write() as session:
        actor, _ = _operator(session, caller)
        lock_activation(session)
        row = _get(session, change_id, lock=True)
        in_force = _in_force(session)
        if row.state != PolicyChangeState.ACTIVE or in_force != row.bundle_digest:
            raise ConflictError(
                f"policy change `{row.id}` is `{row.state}`, not the change in force: "
                "only the change in force is rolled back"
            )
        assert row.previous_digest is not None
        loaded, text = _loaded(session, row.previous_digest)
        if not _move(
            session,
            row,
            PolicyChangeState.ACTIVE,
            state=PolicyChangeState.ROLLED_BACK,
            rolled_back_by=str(actor),
            rolled_back_at=at,
            reason=reason,
        ):
            raise ConflictError(f"policy change `{row.id}` was rolled back meanwhile")
        # the change it replaced is the one in force again, so a second rollback goes further
        replaced = session.scalars(
            select(PolicyChange.id)
            .where(
                PolicyChange.state == PolicyChangeState.SUPERSEDED,
                PolicyChange.bundle_digest == row.previous_digest,
            )
            .order_by(PolicyChange.activated_at.desc())
            .limit(1)
        ).first()
        if replaced is not None:
            session.execute(
                update(PolicyChange)
                .where(PolicyChange.id == replaced)
                .values(state=PolicyChangeState.ACTIVE)
            )
        activate_bundle(session, loaded, text, actor=actor, at=at)
        _record(
            session,
            row,
            "policy.rolled_back",
            at,
            actor,
            row.previous_digest,
            restored=row.previous_digest,
            reason=reason,
        )
        return _view(session, row)
