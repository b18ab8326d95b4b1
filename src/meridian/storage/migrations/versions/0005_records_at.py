"""an index on the instant each log entry was judged at, for questions over a time window

The console's overview counts the decisions of the last hour; with this index it reads that
hour's entries alone instead of the whole log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_records_at"), "records", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_records_at"), table_name="records")
