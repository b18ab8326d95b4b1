"""meeting access: the hashed join secret, lock and waiting room, and the persisted key epoch

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        # meetings made before have no invite: only their host's own users join until it is
        # rotated (fail closed)
        batch.add_column(sa.Column("invite_hash", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("waiting_room", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.drop_column("epoch")
        batch.drop_column("waiting_room")
        batch.drop_column("locked")
        batch.drop_column("invite_hash")
