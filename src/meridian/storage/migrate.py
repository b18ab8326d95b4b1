"""Bring a database's schema up to date with Alembic, from code (no ``alembic.ini`` needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from ..errors import StorageUnavailableError, shown
from .database import Database, _first_line
from .locks import xact_lock

__all__ = ["alembic_config", "current_revision", "head_revision", "migrate"]

_SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory(str(_SCRIPTS)).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(db: Database) -> None:
    """Apply every migration the database has not had yet (idempotent).

    Safe to call from several processes at once (replicas starting together on an empty
    PostgreSQL database): each takes the ``migrate`` advisory lock in its transaction first, so
    one migrates while the others wait, then find the schema at the head and do nothing.
    """
    config = alembic_config(db)
    try:
        conn = db.engine.connect()
    except (OperationalError, InterfaceError) as exc:
        # the first connection of a start-up: one line naming the database (without its password)
        where = make_url(db.url).render_as_string(hide_password=True)
        raise StorageUnavailableError(
            f"cannot reach the database `{shown(where, 200)}`: {_first_line(exc)}"
        ) from None
    with conn, conn.begin():
        xact_lock(conn, "migrate")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
