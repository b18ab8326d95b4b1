"""live meetings across replicas: who serves each participation, and the meeting's shared session

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("participations") as batch:
        # the replica serving its signalling socket; rows from before have none, and are closed
        # at the next start-up as before (their process is gone)
        batch.add_column(sa.Column("replica", sa.String(length=100), nullable=True))
        # its Ed25519 signing key (base64url) and whether its relay said it is connected: the
        # signed roster every replica hands out is built from these
        batch.add_column(sa.Column("signing_key", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("connected", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_index("ix_participations_replica", ["replica"])
    with op.batch_alter_table("meetings") as batch:
        # the live session every replica asks the key server for keys of, and the sequence of
        # the last signed roster (receivers never go back)
        batch.add_column(sa.Column("session", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("roster_seq", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.drop_column("roster_seq")
        batch.drop_column("session")
    with op.batch_alter_table("participations") as batch:
        batch.drop_index("ix_participations_replica")
        batch.drop_column("connected")
        batch.drop_column("signing_key")
        batch.drop_column("replica")
