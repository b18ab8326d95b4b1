"""the log checks itself: one checkpoint per size, one bundle in force, verified position, problems

Duplicate checkpoints (concurrent signers once inserted several at one size) are reduced to the
first issued at each size before the unique index goes on. A database that was left with more
than one bundle active keeps the one loaded last. ``log_verified`` remembers how far start-up
verification got; ``log_problems`` records each mismatch a self-check found.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meridian.storage.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    bind = op.get_bind()
    checkpoints = sa.table("checkpoints", sa.column("id", _ID), sa.column("size", _ID))
    first = sa.select(sa.func.min(checkpoints.c.id)).group_by(checkpoints.c.size)
    bind.execute(sa.delete(checkpoints).where(checkpoints.c.id.not_in(first.scalar_subquery())))
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_index(batch.f("ix_checkpoints_size"))
        batch.create_index(batch.f("ix_checkpoints_size"), ["size"], unique=True)

    bundles = sa.table(
        "policy_bundles",
        sa.column("digest", sa.String()),
        sa.column("active", sa.Boolean()),
        sa.column("loaded_at", meridian.storage.models.UtcDateTime()),
    )
    active = (
        bind.execute(
            sa.select(bundles.c.digest)
            .where(bundles.c.active)
            .order_by(bundles.c.loaded_at.desc(), bundles.c.digest)
        )
        .scalars()
        .all()
    )
    if len(active) > 1:
        bind.execute(
            sa.update(bundles).where(bundles.c.digest.in_(active[1:])).values(active=False)
        )
    op.create_index(
        "uq_policy_bundles_active",
        "policy_bundles",
        ["active"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "log_verified",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", _ID, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column(
            "verified_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_verified")),
    )
    op.create_table(
        "log_problems",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("found_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("position", _ID, nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("resolved_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_problems")),
    )
    op.create_index(op.f("ix_log_problems_resolved_at"), "log_problems", ["resolved_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_log_problems_resolved_at"), table_name="log_problems")
    op.drop_table("log_problems")
    op.drop_table("log_verified")
    op.drop_index("uq_policy_bundles_active", table_name="policy_bundles")
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_index(batch.f("ix_checkpoints_size"))
        batch.create_index(batch.f("ix_checkpoints_size"), ["size"], unique=False)
