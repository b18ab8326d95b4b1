"""Orders between control-plane replicas: what one committed and every other must act on now.

Several ``meridian serve`` replicas share one PostgreSQL database. What one of them changes
there (a token revoked, a participant removed, a meeting ended, a key epoch moved on) the others
must act on within a second, and only once the change is committed. PostgreSQL's
``LISTEN``/``NOTIFY`` gives exactly that: :func:`publish` runs ``pg_notify`` inside the
transaction that makes the change, and PostgreSQL delivers a notification to every listener when
(and only if) that transaction commits, in commit order. No second engine is needed for it:
Redis pub/sub or NATS would deliver an order even when the transaction that made it rolled
back, unless an outbox table and a relay process were added, which is what ``NOTIFY`` already
is.

:class:`OrderListener` is each replica's ``LISTEN`` on a connection of its own. It calls its
handlers with every order (its own included, marked :attr:`Received.own`), checks its connection
every :data:`CHECK_SECONDS` and, while it cannot listen, says so (:attr:`OrderListener.listening`
is false) and calls its ``lost`` handlers: whoever caches what an order would invalidate stops
trusting the cache until the listener is back (fail closed). Each time it starts listening
(again) it calls its ``listening`` handlers: orders committed while it was away never arrive, so
whoever acts on them reads from the database what they would have said (fail closed again).

On SQLite there is one process, which acts on what it commits itself: :func:`publish` sends
nothing and :attr:`OrderListener.listening` is always true.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ..wire import Order
from .database import ORIGIN, Database

__all__ = ["APPLICATION_NAME", "CHANNEL", "CHECK_SECONDS", "OrderListener", "Received", "publish"]

log = logging.getLogger("meridian.storage.orders")

#: the one channel every replica listens on
CHANNEL = "meridian_orders"
#: the listeners' connections' ``application_name`` (in ``pg_stat_activity``)
APPLICATION_NAME = "meridian-orders"
#: how often an idle listener checks that its connection still answers, and how long it waits
#: before connecting again after losing it
CHECK_SECONDS = 1.0
#: PostgreSQL refuses a payload of 8000 bytes or more; a longer list of ids is sent in parts
_PAYLOAD_BYTES = 7000
#: the fields of an order that hold a list of ids, which may be split between parts: a removal's
#: ``participants``, a roster's ``left`` (every stale participation of a meeting at once)
_SPLITTABLE = ("participants", "left")


def _payloads(kind: Order, origin: str, fields: dict[str, Any]) -> list[str]:
    def encoded(part: dict[str, Any]) -> str:
        return json.dumps({"kind": str(kind), "origin": origin, **part}, separators=(",", ":"))

    whole = encoded(fields)
    size = len(whole.encode())
    if size <= _PAYLOAD_BYTES:
        return [whole]
    name = next(
        (f for f in _SPLITTABLE if isinstance(fields.get(f), list) and len(fields[f]) > 1), None
    )
    if name is None:
        raise ValueError(f"order `{kind}` is too large to send ({size} bytes)")
    ids = fields[name]
    half = len(ids) // 2
    return _payloads(kind, origin, {**fields, name: ids[:half]}) + _payloads(
        kind, origin, {**fields, name: ids[half:]}
    )


def publish(session: Session, kind: Order, **fields: Any) -> None:
    """Send ``kind`` (with JSON ``fields``) to every replica when ``session``'s transaction
    commits; nothing is sent if it rolls back. On SQLite nothing is sent at all."""
    if session.get_bind().dialect.name != "postgresql":
        return
    origin = str(session.info.get(ORIGIN, ""))
    for payload in _payloads(kind, origin, fields):
        session.execute(select(func.pg_notify(CHANNEL, payload)))


@dataclass(frozen=True, slots=True)
class Received:
    """One order as a replica received it."""

    kind: Order
    #: the replica that committed it (:attr:`Database.replica`)
    origin: str
    #: sent by this replica itself (it usually acted already)
    own: bool
    data: dict[str, Any]


Handler = Callable[[Received], Awaitable[None] | None]


class OrderListener:
    """One replica's ``LISTEN``: ``on`` registers a handler (plain or ``async``) for orders,
    ``on_lost`` one for when orders may have been missed. :meth:`run` listens until cancelled."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._handlers: list[Handler] = []
        self._lost: list[Callable[[], None]] = []
        self._regained: list[Callable[[], Awaitable[None]]] = []
        self._listening = db.dialect != "postgresql"
        #: orders received, for the tests and the logs
        self.received = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def listening(self) -> bool:
        """Whether every order committed from now on reaches this replica (always on SQLite)."""
        return self._listening

    def on(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def on_lost(self, handler: Callable[[], None]) -> None:
        self._lost.append(handler)

    def on_listening(self, handler: Callable[[], Awaitable[None]]) -> None:
        """``handler`` runs each time the listener starts listening, the first time included:
        orders committed before then were not (or may not have been) received."""
        self._regained.append(handler)

    def _conninfo(self) -> str:
        url = make_url(self.db.url).set(drivername="postgresql")
        # named, so an operator (or a test) finds the listeners in pg_stat_activity
        url = url.update_query_dict({"application_name": APPLICATION_NAME})
        return url.render_as_string(hide_password=False)

    async def run(self) -> None:
        """Listen until cancelled (returns at once on SQLite), connecting again when the
        connection is lost."""
        if self.db.dialect != "postgresql":
            return
        import psycopg  # only a PostgreSQL deployment needs it

        try:
            while True:
                try:
                    conn = await psycopg.AsyncConnection.connect(
                        self._conninfo(), autocommit=True, connect_timeout=5
                    )
                    async with conn:
                        await conn.execute(f"LISTEN {CHANNEL}")
                        self._listening = True
                        self._caught_up()
                        while True:
                            async for notify in conn.notifies(timeout=CHECK_SECONDS):
                                self._dispatch(notify.payload)
                            await asyncio.wait_for(conn.execute("SELECT 1"), CHECK_SECONDS * 5)
                except asyncio.CancelledError:
                    raise
                except (psycopg.Error, OSError, TimeoutError) as exc:
                    # the connection is gone: orders may be missed from now
                    if self._listening:
                        log.warning("orders: listening stopped: %s", str(exc) or type(exc).__name__)
                    self._lose()
                except Exception:
                    # not expected: listen again rather than end, and trust nothing meanwhile
                    log.exception("orders: the listener failed; listening again")
                    self._lose()
                await asyncio.sleep(CHECK_SECONDS)
        finally:
            # however this ends (cancelled at shutdown included), orders no longer arrive
            self._listening = False

    def _lose(self) -> None:
        self._listening = False
        for handler in self._lost:
            try:
                handler()
            except Exception:
                log.exception("orders: a lost-orders handler failed")

    def _caught_up(self) -> None:
        """Run the ``listening`` handlers in the background; what they read from the database
        was committed before this LISTEN, and what commits from now on arrives as orders."""
        for handler in self._regained:
            task = asyncio.ensure_future(handler())
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _dispatch(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            if not isinstance(data, dict):
                raise TypeError("an order is a JSON object")
            kind = Order(data.pop("kind"))
            origin = str(data.pop("origin"))
        except (ValueError, KeyError, TypeError):
            log.warning("orders: a malformed order was ignored: %.200s", payload)
            return
        self.received += 1
        order = Received(kind, origin, origin == self.db.replica, data)
        for handler in self._handlers:
            try:
                outcome = handler(order)
            except Exception:
                log.exception("orders: handling `%s` failed", kind)
                continue
            if inspect.isawaitable(outcome):
                task = asyncio.ensure_future(outcome)
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("orders: handling an order failed", exc_info=task.exception())

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
