"""How fast an order reaches another replica: PostgreSQL NOTIFY against Redis pub/sub.

Usage::

    .venv/bin/python bench/orders.py            # one JSON object on stdout
    .venv/bin/python bench/orders.py --orders 500

One replica commits a write transaction that publishes a ``revoke`` order
(:func:`meridian.storage.orders.publish`, ``pg_notify`` inside the transaction); another
replica's :class:`~meridian.storage.orders.OrderListener` (its own connection, ``LISTEN``)
receives it. The figure is the time from just before the commit to the order's arrival, p50 and
p99 over ``--orders`` (300) orders sent one at a time. The peer, in the same run: the same
transaction committed, then the order published on Redis pub/sub after the commit (what Redis
would need, since it cannot take part in the transaction), received by a subscriber. Needs a
PostgreSQL server (``MERIDIAN_TEST_POSTGRES_URL`` or 127.0.0.1:5432) and Redis
(``MERIDIAN_REDIS_URL`` or 127.0.0.1:6379); a temporary database is made and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from typing import Any

PG = os.environ.get(
    "MERIDIAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS = os.environ.get("MERIDIAN_REDIS_URL", "redis://127.0.0.1:6379/0")


def _quantiles(ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(ms, n=100)
    return {"p50_ms": round(statistics.median(ms), 3), "p99_ms": round(cuts[98], 3)}


async def _notify(db_url: str, n: int) -> list[float]:
    from sqlalchemy import text

    from meridian.storage import Database
    from meridian.storage.orders import OrderListener, Received, publish
    from meridian.wire import Order

    sender, receiver = Database(db_url), Database(db_url)
    listener = OrderListener(receiver)
    arrived: asyncio.Queue[float] = asyncio.Queue()

    def on(order: Received) -> None:
        arrived.put_nowait(time.perf_counter())

    listener.on(on)
    task = asyncio.create_task(listener.run())
    while not listener.listening:
        await asyncio.sleep(0.01)

    def commit() -> float:
        with sender.write() as session:
            session.execute(text("SELECT 1"))
            publish(session, Order.REVOKE, token="tok_bench")
            started = time.perf_counter()
        return started

    out = []
    for _ in range(n):
        started = await asyncio.to_thread(commit)
        out.append((await asyncio.wait_for(arrived.get(), 10) - started) * 1000)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    sender.dispose()
    receiver.dispose()
    return out


async def _redis(db_url: str, n: int) -> list[float]:
    import redis.asyncio as aioredis
    from sqlalchemy import text

    from meridian.storage import Database

    db = Database(db_url)
    channel = "meridian_bench_" + secrets.token_hex(4)
    pub, sub_client = aioredis.from_url(REDIS), aioredis.from_url(REDIS)
    sub = sub_client.pubsub()
    await sub.subscribe(channel)
    await sub.get_message(timeout=1)  # the subscription's confirmation

    def commit() -> float:
        with db.write() as session:
            session.execute(text("SELECT 1"))
            started = time.perf_counter()
        return started

    out = []
    payload = json.dumps({"kind": "revoke", "token": "tok_bench"})
    for _ in range(n):
        started = await asyncio.to_thread(commit)
        await pub.publish(channel, payload)
        while True:
            message = await sub.get_message(ignore_subscribe_messages=True, timeout=10)
            if message is not None:
                break
        out.append((time.perf_counter() - started) * 1000)
    await sub.aclose()
    await pub.aclose()
    await sub_client.aclose()
    db.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    args = parser.parse_args(argv)

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(PG)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"meridian_bench_orders_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        notify = asyncio.run(_notify(url, args.orders))
        peer = asyncio.run(_redis(url, args.orders))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    ours, theirs = _quantiles(notify), _quantiles(peer)
    result: dict[str, Any] = {
        "bench": "orders",
        "orders": args.orders,
        "notify": ours,
        "redis_after_commit": theirs,
        "ratio_p50_notify_over_redis": round(ours["p50_ms"] / theirs["p50_ms"], 3),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
