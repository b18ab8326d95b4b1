"""the record becomes a Merkle log: entries' canonical bytes and leaf hashes, the head, checkpoints

Existing records are numbered from 0 in their order and given the bytes and leaf hash of the
entry they hold, so the log starts with everything recorded before it. The decision and details
columns go: the entry holds them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import meridian.storage.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _instant(at: datetime) -> str:
    text = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _entry(row: Any) -> bytes:
    # The version-1 entry's shape, written out here so that this migration keeps producing
    # the same entries whatever later versions of the application's entry code do; the bytes
    # come from the canonical form (RFC 8785), which does not change.
    obj = {
        "v": 1,
        "at": _instant(row.at),
        "recorded_at": _instant(row.recorded_at),
        "actor": row.actor,
        "action": row.action,
        "subject": {"kind": row.subject_kind, "id": row.subject_id},
        "bundle": row.bundle_digest,
        "decision": row.decision,
        "details": row.details,
    }
    from meridian.audit.entry import canonical

    return canonical(obj)


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("entry", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("leaf", sa.LargeBinary(length=32), nullable=True))

    records = sa.table(
        "records",
        sa.column("seq", sa.BigInteger()),
        sa.column("at", meridian.storage.models.UtcDateTime()),
        sa.column("recorded_at", meridian.storage.models.UtcDateTime()),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("subject_kind", sa.String()),
        sa.column("subject_id", sa.String()),
        sa.column("bundle_digest", sa.String()),
        sa.column("decision", sa.JSON()),
        sa.column("details", sa.JSON()),
        sa.column("entry", sa.LargeBinary()),
        sa.column("leaf", sa.LargeBinary()),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(records).order_by(records.c.seq)).all()
    # Ascending order: the new position of the i-th row is i, below its old seq (which started
    # at 1), and any row that held seq i has already moved lower — no key is ever taken twice.
    for index, row in enumerate(rows):
        data = _entry(row)
        bind.execute(
            sa.update(records)
            .where(records.c.seq == row.seq)
            .values(seq=index, entry=data, leaf=hashlib.sha256(b"\x00" + data).digest())
        )

    with op.batch_alter_table("records") as batch:
        batch.alter_column("entry", existing_type=sa.LargeBinary(), nullable=False)
        batch.alter_column("leaf", existing_type=sa.LargeBinary(length=32), nullable=False)
        batch.drop_column("decision")
        batch.drop_column("details")

    op.create_table(
        "log_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_head")),
    )
    op.bulk_insert(
        sa.table("log_head", sa.column("id", sa.Integer()), sa.column("size", sa.BigInteger())),
        [{"id": 1, "size": len(rows)}],
    )
    op.create_table(
        "checkpoints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("issued_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
    )
    with op.batch_alter_table("checkpoints") as batch:
        batch.create_index(batch.f("ix_checkpoints_size"), ["size"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_index(batch.f("ix_checkpoints_size"))
    op.drop_table("checkpoints")
    op.drop_table("log_head")
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("decision", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))
    records = sa.table(
        "records",
        sa.column("seq", sa.BigInteger()),
        sa.column("entry", sa.LargeBinary()),
        sa.column("decision", sa.JSON()),
        sa.column("details", sa.JSON()),
    )
    bind = op.get_bind()
    for seq, data in bind.execute(sa.select(records.c.seq, records.c.entry)).all():
        entry = json.loads(bytes(data))
        bind.execute(
            sa.update(records)
            .where(records.c.seq == seq)
            .values(decision=entry["decision"], details=entry["details"])
        )
    with op.batch_alter_table("records") as batch:
        batch.alter_column("details", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("leaf")
        batch.drop_column("entry")
