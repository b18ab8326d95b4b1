"""policy changes: proposed bundles with their diff and replay, approved by a second person

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meridian.storage.models

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    instant = meridian.storage.models.UtcDateTime(timezone=True)
    op.create_table(
        "policy_changes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("bundle_digest", sa.String(length=80), nullable=False),
        sa.Column("base_digest", sa.String(length=80), nullable=False),
        sa.Column("diff_digest", sa.String(length=80), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("replay", sa.JSON(), nullable=False),
        sa.Column("broken", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("activate_at", instant, nullable=True),
        sa.Column("proposed_by", sa.String(length=100), nullable=False),
        sa.Column("proposed_by_name", sa.String(length=200), nullable=False),
        sa.Column("proposed_at", instant, nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", instant, nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("previous_digest", sa.String(length=80), nullable=True),
        sa.Column("activated_by", sa.String(length=100), nullable=True),
        sa.Column("activated_at", instant, nullable=True),
        sa.Column("rolled_back_by", sa.String(length=100), nullable=True),
        sa.Column("rolled_back_at", instant, nullable=True),
        sa.ForeignKeyConstraint(
            ["bundle_digest"],
            ["policy_bundles.digest"],
            name=op.f("fk_policy_changes_bundle_digest_policy_bundles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_changes")),
    )
    op.create_index(op.f("ix_policy_changes_state"), "policy_changes", ["state"])
    op.create_index(op.f("ix_policy_changes_activate_at"), "policy_changes", ["activate_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_policy_changes_activate_at"), table_name="policy_changes")
    op.drop_index(op.f("ix_policy_changes_state"), table_name="policy_changes")
    op.drop_table("policy_changes")
