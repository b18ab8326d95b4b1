"""What a running Meridian holds: its settings, database, clock, IP locator and the engine in force.

One :class:`Runtime` is built by ``create_app(settings)`` or by a CLI command and handed to the
service functions; nothing here runs at import.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from .audit.records import attach_log
from .clock import Clock, set_clock
from .cluster import Replica
from .geography.ipgeo import IpLocator, default_locator, parse_ip
from .policy.engine import Engine
from .policy.loader import LoadedBundle, default_bundle_path, load_bundle_text
from .policy.store import activate_bundle, active_bundle, active_digest
from .settings import Settings
from .storage import Database, migrate
from .storage.migrate import current_revision, head_revision

if TYPE_CHECKING:
    from .audit.log import AuditLog
    from .audit.thinning import Thinning
    from .audit.witnessing import Witnessing

__all__ = ["Readiness", "Runtime"]


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether this process can serve requests now, and if not, the first reason why."""

    ready: bool
    reason: str | None
    #: the schema revision the database is at (``None`` when it could not be read)
    schema: str | None


#: what a driver's message may say of where the database is: a quoted name (role, database,
#: host), an address in brackets, a port
_WHERE = re.compile(r'"[^"]*"|\([^)]*\)|\bport \d+', re.IGNORECASE)


def _unplaced(message: str, url: str) -> str:
    """``message`` without any part of the database ``url`` (host, port, user, password,
    database) or anything quoted: /readyz is public, and says what failed, not where."""
    parsed = make_url(url)
    for part in (parsed.password, parsed.username, parsed.host, parsed.database, parsed.port):
        if part is not None and str(part):
            message = re.sub(re.escape(str(part)), "…", message, flags=re.IGNORECASE)
    return _WHERE.sub(
        lambda m: '"…"' if m.group().startswith('"') else "port …" if m.group()[0] in "pP" else "",
        message,
    )


class Runtime:
    """The service's state outside the database: the engine in force can be swapped atomically."""

    def __init__(
        self,
        settings: Settings,
        *,
        db: Database | None = None,
        clock: Clock | None = None,
        locator: IpLocator | None = None,
    ) -> None:
        self.settings = settings
        self.db = attach_log(db if db is not None else Database(settings.database_url))
        self.clock = clock if clock is not None else set_clock(settings.clock)
        self.locator = locator if locator is not None else default_locator(settings.geoip)
        self._engine: Engine | None = None
        self._log: AuditLog | None = None
        self._witnessing: Witnessing | None = None
        self._lock = threading.Lock()
        #: this process as a replica of the control plane: registered (and heartbeated) by the
        #: server's start-up only; a CLI command's runtime never is
        self.replica = Replica(self.db, lease=settings.replica_lease)

    def now(self) -> datetime:
        return self.clock()

    @property
    def engine(self) -> Engine:
        """The engine for the bundle in force (read once per action: a swap never splits one)."""
        engine = self._engine
        if engine is None:
            raise RuntimeError("Runtime.start() has not run")
        return engine

    @property
    def digest(self) -> str:
        return self.engine.bundle.ref.digest

    @property
    def log(self) -> AuditLog:
        """The tamper-evident log, with the checkpoint signer (built on first use).

        The signing key comes from ``settings.log_key``: created there in development mode,
        a :class:`~meridian.errors.ConfigurationError` in production when it is missing.
        """
        with self._lock:
            if self._log is None:
                from .audit.log import AuditLog
                from .audit.note import NoteSigner, load_or_create_log_key

                key = load_or_create_log_key(
                    self.settings.log_key, create=self.settings.mode == "development"
                )
                self._log = AuditLog(self.db, NoteSigner(self.settings.log_origin, key))
            return self._log

    @property
    def witnessing(self) -> Witnessing:
        """The log's witnesses (``settings.witnesses``; none configured is a valid, empty set)."""
        log = self.log
        with self._lock:
            if self._witnessing is None:
                from .audit.witnessing import Witnessing, parse_witnesses

                self._witnessing = Witnessing(
                    log,
                    parse_witnesses(self.settings.witnesses),
                    timeout=self.settings.witness_timeout,
                )
            return self._witnessing

    @property
    def thinning(self) -> Thinning:
        """Which checkpoints listings and exports keep (``checkpoint_keep_*`` settings)."""
        from .audit.thinning import Thinning

        keep_all = timedelta(seconds=self.settings.checkpoint_keep_all)
        hourly = timedelta(seconds=max(self.settings.checkpoint_keep_hourly, 0))
        return Thinning(keep_all=keep_all, keep_hourly=max(hourly, keep_all))

    def checkpoint_and_witness(self) -> None:
        """The schedule's step: sign a checkpoint if the log grew (and is whole), then offer the
        latest to every witness that has not cosigned it (a witness down only logs a warning)."""
        self.log.scheduled_checkpoint()
        if self.settings.witnesses:
            self.witnessing.submit()

    def start(self, *, migrate_schema: bool = True) -> None:
        """Migrate, make sure a bundle is in force (the built-in one on a new database), load it."""
        from .audit import SYSTEM

        if migrate_schema:
            migrate(self.db)
        with self.db.write() as session:
            loaded = active_bundle(session)
            if loaded is None:
                text = default_bundle_path().read_text(encoding="utf-8")
                loaded = load_bundle_text(text, "default.yaml")
                activate_bundle(session, loaded, text, actor=SYSTEM, at=self.now())
        self.use(loaded)
        if self.settings.witnesses:
            self.witnessing  # noqa: B018 -- a witness key that does not parse stops the start
        # Load the IP table now rather than on the first request that carries an address.
        self.locator.country(parse_ip("1.1.1.1"))

    def use(self, loaded: LoadedBundle) -> None:
        """Decide with ``loaded`` from now on."""
        engine = Engine(loaded, locator=self.locator, clock=self.clock)
        with self._lock:
            self._engine = engine

    def refresh(self) -> bool:
        """Pick up a bundle another process put in force; ``True`` if the engine changed."""
        with self.db.read() as session:
            digest = active_digest(session)
            if digest is None or (self._engine is not None and digest == self.digest):
                return False
            loaded = active_bundle(session)
        if loaded is None:
            return False
        self.use(loaded)
        return True

    def readiness(self) -> Readiness:
        """Ready when the database answers, its schema is at this release's head, and a bundle
        is loaded; otherwise the first of those that fails, as one lowercase line."""
        head = head_revision()
        try:
            schema = current_revision(self.db)
        except SQLAlchemyError as exc:
            first = (str(getattr(exc, "orig", exc)) or type(exc).__name__).splitlines()[0]
            first = _unplaced(first, self.db.url)
            return Readiness(False, f"the database does not answer: {first.lower()}", None)
        if schema != head:
            return Readiness(
                False, f"the database schema is at `{schema}`, this release needs `{head}`", schema
            )
        if self._engine is None:
            return Readiness(False, "no policy bundle is loaded yet", schema)
        return Readiness(True, None, schema)

    def close(self) -> None:
        if self._witnessing is not None:
            self._witnessing.close()
        self.db.dispose()
