"""lawful requests and the meeting blocks they leave

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meridian.storage.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "legal_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("jurisdiction", sa.String(length=8), nullable=False),
        sa.Column("legal_type", sa.String(length=30), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("target_kind", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column(
            "notice_delay_until",
            meridian.storage.models.UtcDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("documents", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column(
            "received_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("recorded_by_name", sa.String(length=200), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.Column("approved_by_name", sa.String(length=200), nullable=True),
        sa.Column("approved_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("rejected_by", sa.String(length=100), nullable=True),
        sa.Column("rejected_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("applied", sa.JSON(), nullable=True),
        sa.Column("applied_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("notice", sa.String(length=10), nullable=True),
        sa.Column("notified_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_requests")),
    )
    op.create_index(op.f("ix_legal_requests_jurisdiction"), "legal_requests", ["jurisdiction"])
    op.create_index(op.f("ix_legal_requests_notice"), "legal_requests", ["notice"])
    op.create_index(op.f("ix_legal_requests_state"), "legal_requests", ["state"])
    op.create_index(op.f("ix_legal_requests_target_id"), "legal_requests", ["target_id"])
    op.create_table(
        "legal_blocks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("meeting_id", sa.String(length=40), nullable=False),
        sa.Column("jurisdiction", sa.String(length=8), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_legal_blocks_meeting_id_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["legal_requests.id"],
            name=op.f("fk_legal_blocks_request_id_legal_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_blocks")),
    )
    op.create_index(op.f("ix_legal_blocks_meeting_id"), "legal_blocks", ["meeting_id"])
    op.create_index(op.f("ix_legal_blocks_request_id"), "legal_blocks", ["request_id"])


def downgrade() -> None:
    op.drop_table("legal_blocks")
    op.drop_table("legal_requests")
