"""replicas: each control-plane process's lease on the database

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meridian.storage.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    instant = meridian.storage.models.UtcDateTime(timezone=True)
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", instant, nullable=False),
        sa.Column("heartbeat_at", instant, nullable=False),
        sa.Column("expires_at", instant, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replicas")),
    )
    op.create_index(op.f("ix_replicas_expires_at"), "replicas", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_replicas_expires_at"), table_name="replicas")
    op.drop_table("replicas")
