"""The bundle in force, kept in the database with its digest, and the partner registry it feeds.

Loading a bundle is one transaction: the bundle row, the switch of the active flag, the partner
registry brought in line, and the record of who did it. A bundle that fails validation never
reaches this module (:func:`~meridian.policy.loader.load_bundle_text` refuses it whole first), and
one that validates but cannot be stored (:func:`check_storable`) is refused here, for the CLI and
the API alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from ..audit import Actor, record
from ..errors import BundleError, BundleProblem, shown
from ..storage.models import Partner, PolicyBundle
from ..storage.orders import publish
from ..wire import Order
from .compiled import expand_jurisdictions, window_epochs
from .loader import LoadedBundle, load_bundle_text

__all__ = [
    "activate_bundle",
    "active_bundle",
    "active_digest",
    "check_storable",
    "lock_activation",
]


def _instant(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def active_bundle(session: Session) -> LoadedBundle | None:
    """The bundle in force, validated again from its stored text; ``None`` before the first load."""
    row = session.scalars(select(PolicyBundle).where(PolicyBundle.active)).first()
    if row is None:
        return None
    return load_bundle_text(row.text, row.source)


def active_digest(session: Session) -> str | None:
    """The digest of the bundle in force (a cheap check for a change made by another process)."""
    return session.scalars(select(PolicyBundle.digest).where(PolicyBundle.active)).first()


def check_storable(loaded: LoadedBundle) -> None:
    """Refuse what validates as a bundle but cannot be stored: NUL (PostgreSQL refuses it in
    text), lone surrogates (not UTF-8), partner names and contacts longer than their columns."""
    problems: list[str] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str):
            bad = next((c for c in value if c == "\x00" or "\ud800" <= c <= "\udfff"), None)
            if bad is not None:
                problems.append(f"`{shown(where)}`: character U+{ord(bad):04X} is not allowed")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key, where)
                walk(item, f"{where}.{key}")
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")

    walk(loaded.document.model_dump(), "bundle")
    for pid, spec in loaded.document.partners.items():
        for name, value in (("name", spec.name), ("contact", spec.contact)):
            column = Partner.__table__.c[name].type
            limit = column.length if isinstance(column, String) else None
            if value is not None and limit is not None and len(value) > limit:
                problems.append(f"`partners.{pid}.{name}`: longer than {limit} characters")
    if problems:
        raise BundleError([BundleProblem(p, loaded.source) for p in problems])


#: the PostgreSQL advisory lock that serialises putting bundles in force (any constant works;
#: this is the first 8 bytes of SHA-256 of "meridian.policy.activate", as a signed integer)
_ACTIVATION_LOCK = int.from_bytes(bytes.fromhex("77f9ae08fca66afc"), "big", signed=True)


def lock_activation(session: Session) -> None:
    """Wait for any other transaction putting a bundle in force to end (released at commit).

    Without it two PostgreSQL transactions both read the same bundle in force, both switch it
    off and both switch theirs on: two bundles in force (the partial unique index on ``active``
    would then refuse the second with an error rather than let it wait). A SQLite write
    transaction holds the database's write lock from its start (``BEGIN IMMEDIATE``) already.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sql_text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ACTIVATION_LOCK})


def activate_bundle(
    session: Session, loaded: LoadedBundle, text: str, *, actor: Actor, at: datetime
) -> bool:
    """Put ``loaded`` in force (``text`` is its YAML). Returns ``False`` if it already was.

    Atomic: concurrent calls are serialised (:func:`lock_activation`), each replacing the one
    before it, and the database holds at most one bundle in force (a partial unique index).
    """
    check_storable(loaded)
    lock_activation(session)
    current = active_digest(session)
    if current == loaded.digest:
        return False
    doc = loaded.document
    row = session.get(PolicyBundle, loaded.digest)
    session.execute(update(PolicyBundle).where(PolicyBundle.active).values(active=False))
    if row is None:
        session.add(
            PolicyBundle(
                digest=loaded.digest,
                name=doc.bundle,
                version=doc.version,
                source=loaded.source[:500],
                text=text,
                loaded_at=at,
                loaded_by=str(actor),
                active=True,
            )
        )
    else:
        row.active = True
    try:
        _sync_partners(session, loaded, at)
    except (OverflowError, ValueError) as exc:  # a partner window beyond what an instant holds
        raise BundleError(
            [BundleProblem(f"the bundle cannot be put in force: {exc}", loaded.source)]
        ) from None
    record(
        session,
        actor=actor,
        action="policy.load",
        subject_kind="bundle",
        subject_id=loaded.digest,
        at=at,
        bundle_digest=loaded.digest,
        details={"bundle": doc.bundle, "version": doc.version, "previous": current},
    )
    # every replica loads it as this commits, not at its next poll
    publish(session, Order.BUNDLE, digest=loaded.digest)
    return True


def _sync_partners(session: Session, loaded: LoadedBundle, at: datetime) -> None:
    doc = loaded.document
    existing = {p.id: p for p in session.scalars(select(Partner))}
    for pid, spec in doc.partners.items():
        jurisdictions = expand_jurisdictions(doc, spec.jurisdictions)
        start, end = window_epochs(doc, spec.effective, jurisdictions[0])
        row = existing.pop(pid, None)
        if row is None:
            row = Partner(id=pid, contact=spec.contact)
            session.add(row)
        elif spec.contact is not None:
            row.contact = spec.contact
        row.name = spec.name
        row.jurisdictions = jurisdictions
        row.effective_from = _instant(start)
        row.effective_until = _instant(end)
        row.status = spec.status
        row.updated_at = at
    for row in existing.values():  # no longer in the bundle: kept for history, never authorised
        row.status = "withdrawn"
        row.updated_at = at
