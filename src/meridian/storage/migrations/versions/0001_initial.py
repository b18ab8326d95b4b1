"""the first schema: bundles, partners, accounts, tokens, subscriptions, notices, records, idempotency keys

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meridian.storage.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "lease_until", meridian.storage.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("caller", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "partners",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("jurisdictions", sa.JSON(), nullable=False),
        sa.Column(
            "effective_from", meridian.storage.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "effective_until", meridian.storage.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("contact", sa.String(length=300), nullable=True),
        sa.Column("updated_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
    )
    op.create_table(
        "policy_bundles",
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("loaded_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_policy_bundles")),
    )
    with op.batch_alter_table("policy_bundles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policy_bundles_active"), ["active"], unique=False)

    op.create_table(
        "records",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "recorded_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("subject_kind", sa.String(length=30), nullable=False),
        sa.Column("subject_id", sa.String(length=100), nullable=True),
        sa.Column("bundle_digest", sa.String(length=80), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_records")),
    )
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_records_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_records_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("country", sa.String(length=8), nullable=False),
        sa.Column("plan", sa.String(length=100), nullable=False),
        sa.Column("home_region", sa.String(length=4), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("org_id", sa.String(length=100), nullable=True),
        sa.Column("org_id_status", sa.String(length=20), nullable=True),
        sa.Column("partner_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_accounts_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_country"), ["country"], unique=False)
        batch_op.create_index(batch_op.f("ix_accounts_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_accounts_status"), ["status"], unique=False)

    op.create_table(
        "notices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_notices_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_account_id"), ["account_id"], unique=False)

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("plan", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("partner_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("term", sa.String(length=10), nullable=False),
        sa.Column(
            "period_start", meridian.storage.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("period_end", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("chosen_partner_id", sa.String(length=100), nullable=True),
        sa.Column("replaces_id", sa.String(length=40), nullable=True),
        sa.Column("bundle_digest", sa.String(length=80), nullable=False),
        sa.Column("created_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_subscriptions_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["chosen_partner_id"],
            ["partners.id"],
            name=op.f("fk_subscriptions_chosen_partner_id_partners"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_subscriptions_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscriptions_replaces_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscriptions_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_subscriptions_chosen_partner_id"), ["chosen_partner_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_subscriptions_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(
            "ix_subscriptions_status_period_end", ["status", "period_end"], unique=False
        )

    op.create_table(
        "tokens",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("partner_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", meridian.storage.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_tokens_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_tokens_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokens")),
        sa.UniqueConstraint("hash", name=op.f("uq_tokens_hash")),
    )


def downgrade() -> None:
    op.drop_table("tokens")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriptions_status_period_end")
        batch_op.drop_index(batch_op.f("ix_subscriptions_partner_id"))
        batch_op.drop_index(batch_op.f("ix_subscriptions_chosen_partner_id"))
        batch_op.drop_index(batch_op.f("ix_subscriptions_account_id"))

    op.drop_table("subscriptions")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_account_id"))

    op.drop_table("notices")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_status"))
        batch_op.drop_index(batch_op.f("ix_accounts_partner_id"))
        batch_op.drop_index(batch_op.f("ix_accounts_country"))

    op.drop_table("accounts")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_records_subject_id"))
        batch_op.drop_index(batch_op.f("ix_records_action"))

    op.drop_table("records")
    with op.batch_alter_table("policy_bundles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_bundles_active"))

    op.drop_table("policy_bundles")
    op.drop_table("partners")
    op.drop_table("idempotency_keys")
