"""witnesses: the cosignatures each checkpoint gathered, and what the log knows of each witness

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meridian.storage.models

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "checkpoint_cosignatures",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("size", _ID, nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("received_at", meridian.storage.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoint_cosignatures")),
        sa.UniqueConstraint(
            "size", "witness", name=op.f("uq_checkpoint_cosignatures_size_witness")
        ),
    )
    op.create_index(
        op.f("ix_checkpoint_cosignatures_size"), "checkpoint_cosignatures", ["size"], unique=False
    )
    op.create_table(
        "witness_states",
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("size", _ID, nullable=False),
        sa.Column("checked_at", meridian.storage.models.UtcDateTime(), nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("witness", name=op.f("pk_witness_states")),
    )


def downgrade() -> None:
    op.drop_table("witness_states")
    op.drop_index(op.f("ix_checkpoint_cosignatures_size"), table_name="checkpoint_cosignatures")
    op.drop_table("checkpoint_cosignatures")
