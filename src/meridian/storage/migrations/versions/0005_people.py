"""operators are people; tokens may expire; page sessions end server-side

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Upgrading turns every existing operator token into a person of its own, named as the token was
(revoked tokens give people already removed). Tokens that were one person's in practice become
separate people: review them after the upgrade (``meridian admin list-operators``) and remove the
extra ones (``meridian admin remove-operator``). Requests recorded before the upgrade name the
recording token; the two-person rule resolves that token to its person.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

import meridian.storage.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("created_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person_id", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column(
                "expires_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("demo", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_tokens_person_id"), ["person_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_tokens_person_id_people"), "people", ["person_id"], ["id"]
        )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name=op.f("fk_web_sessions_token_id_tokens")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_expires_at"), ["expires_at"])
        batch_op.create_index(batch_op.f("ix_web_sessions_token_id"), ["token_id"])
    _people_from_operator_tokens()


def _people_from_operator_tokens() -> None:
    """Each existing operator token becomes its own person (see the module's docstring)."""
    conn = op.get_bind()
    tokens = sa.table(
        "tokens",
        sa.column("id", sa.String),
        sa.column("role", sa.String),
        sa.column("name", sa.String),
        sa.column("created_at", meridian.storage.models.UtcDateTime(timezone=True)),
        sa.column("revoked_at", meridian.storage.models.UtcDateTime(timezone=True)),
        sa.column("person_id", sa.String),
    )
    people = sa.table(
        "people",
        sa.column("id", sa.String),
        sa.column("role", sa.String),
        sa.column("name", sa.String),
        sa.column("email", sa.String),
        sa.column("created_at", meridian.storage.models.UtcDateTime(timezone=True)),
        sa.column("disabled_at", meridian.storage.models.UtcDateTime(timezone=True)),
    )
    rows = conn.execute(
        sa.select(tokens.c.id, tokens.c.name, tokens.c.created_at, tokens.c.revoked_at)
        .where(tokens.c.role == "operator")
        .order_by(tokens.c.created_at, tokens.c.id)
    ).all()
    for token_id, name, created_at, revoked_at in rows:
        person_id = f"psn_{secrets.token_hex(8)}"
        conn.execute(
            people.insert().values(
                id=person_id,
                role="operator",
                name=name,
                email=None,
                created_at=created_at,
                disabled_at=revoked_at,
            )
        )
        conn.execute(tokens.update().where(tokens.c.id == token_id).values(person_id=person_id))


def downgrade() -> None:
    op.drop_table("web_sessions")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tokens_person_id_people"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_tokens_person_id"))
        batch_op.drop_column("demo")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("person_id")
    op.drop_table("people")
