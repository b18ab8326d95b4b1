"""meetings and participations; each account's chosen data-centre regions and opt-ins

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meridian.storage.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("meeting_regions", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("regions_opt_in", sa.JSON(), nullable=True))
    op.create_table(
        "meetings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("host_account_id", sa.String(length=40), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("host_country", sa.String(length=8), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("key_region", sa.String(length=4), nullable=False),
        sa.Column("countries", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("bundle_digest", sa.String(length=80), nullable=False),
        sa.Column("created_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_account_id"], ["accounts.id"], name=op.f("fk_meetings_host_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meetings")),
    )
    op.create_index(op.f("ix_meetings_host_account_id"), "meetings", ["host_account_id"])
    op.create_index(op.f("ix_meetings_status"), "meetings", ["status"])
    op.create_table(
        "participations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("meeting_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("country", sa.String(length=8), nullable=False),
        sa.Column("dc", sa.String(length=4), nullable=False),
        sa.Column("joined_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("left_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_participations_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_participations_meeting_id_meetings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participations")),
    )
    op.create_index(op.f("ix_participations_account_id"), "participations", ["account_id"])
    op.create_index(op.f("ix_participations_country"), "participations", ["country"])
    op.create_index(op.f("ix_participations_meeting_id"), "participations", ["meeting_id"])


def downgrade() -> None:
    op.drop_table("participations")
    op.drop_table("meetings")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("regions_opt_in")
        batch.drop_column("meeting_regions")
