"""idempotency keys: no token at rest, and an index for purging expired keys

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02

Responses stored before this revision may hold API token secrets (a self sign-up's user token,
a minted token): each is rewritten with its tokens replaced by ``null``, as the service now
stores them (:func:`meridian.http.idempotency.redact`; the rule is copied here, so the
migration keeps its meaning whatever that module becomes). A body that is not JSON but mentions
a token is emptied.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_keys = sa.table(
    "idempotency_keys",
    sa.column("caller", sa.String),
    sa.column("key", sa.String),
    sa.column("body", sa.LargeBinary),
)


_SECRET = re.compile(r"^mrd_[a-z]+_[A-Za-z0-9_-]{16,}$")


def _redact(body: bytes) -> bytes:
    if b"mrd_" not in body and b'"token"' not in body:
        return body
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return b""

    def walk(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and (key == "token" or _SECRET.match(value)):
            return None
        return value

    cleaned = walk(data)
    if cleaned == data:
        return body
    return json.dumps(cleaned, separators=(",", ":"), ensure_ascii=False).encode()


def upgrade() -> None:
    op.create_index(
        op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"], unique=False
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_keys.c.caller, _keys.c.key, _keys.c.body).where(_keys.c.body.is_not(None))
    ).all()
    for caller, key, body in rows:
        cleaned = _redact(bytes(body))
        if cleaned != bytes(body):
            conn.execute(
                _keys.update()
                .where(_keys.c.caller == caller, _keys.c.key == key)
                .values(body=cleaned)
            )


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
