"""Orders between replicas (meridian.storage.orders) on a real PostgreSQL server: delivered when
their transaction commits, never when it rolls back, in commit order, split when long; on
SQLite nothing is sent and the listener counts as listening."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from meridian.storage import Database
from meridian.storage.orders import OrderListener, Received, publish
from meridian.wire import Order

pytestmark = pytest.mark.storage


@pytest.fixture
def pg_url(postgres: Any) -> Iterator[str]:
    if postgres is None:
        pytest.skip("no PostgreSQL at 127.0.0.1:5432 (set MERIDIAN_TEST_POSTGRES_URL)")
    name = postgres.new()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop(name)


async def _listen(
    db: Database,
) -> tuple[OrderListener, asyncio.Queue[Received], asyncio.Task[None]]:
    listener = OrderListener(db)
    got: asyncio.Queue[Received] = asyncio.Queue()
    listener.on(got.put_nowait)
    task = asyncio.create_task(listener.run())
    while not listener.listening:
        await asyncio.sleep(0.01)
    return listener, got, task


@pytest.mark.postgres
def test_an_order_arrives_only_if_its_transaction_commits(pg_url: str) -> None:
    sender, receiver = Database(pg_url), Database(pg_url)

    async def scenario() -> list[Received]:
        _, got, task = await _listen(receiver)

        def change() -> None:
            with sender.write() as session:
                publish(session, Order.REVOKE, token="tok_rolled_back")
                session.execute(text("SELECT 1"))
                raise RuntimeError("the change fails after the order was written")

        def rolled_back() -> None:
            with pytest.raises(RuntimeError):
                change()

        def committed() -> None:
            with sender.write() as session:
                publish(session, Order.REVOKE, token="tok_committed")

        await asyncio.to_thread(rolled_back)
        await asyncio.to_thread(committed)
        # PostgreSQL delivers in commit order: had the first gone out, it would come first
        first = await asyncio.wait_for(got.get(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return [first]

    try:
        (first,) = asyncio.run(scenario())
    finally:
        sender.dispose()
        receiver.dispose()
    assert (first.kind, first.data, first.origin, first.own) == (
        Order.REVOKE,
        {"token": "tok_committed"},
        sender.replica,
        False,
    )


@pytest.mark.postgres
def test_a_long_list_of_participants_is_sent_in_parts(pg_url: str) -> None:
    db = Database(pg_url)
    ids = [f"p_{n:016x}" for n in range(1500)]  # about 30 kB of ids: over NOTIFY's 8000 bytes

    async def scenario() -> list[Received]:
        _, got, task = await _listen(db)

        def send() -> None:
            with db.write() as session:
                publish(session, Order.REMOVE, meeting="mtg_1", participants=ids, reason="r")

        await asyncio.to_thread(send)
        parts: list[Received] = []
        while sum(len(p.data["participants"]) for p in parts) < len(ids):
            parts.append(await asyncio.wait_for(got.get(), 10))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return parts

    try:
        parts = asyncio.run(scenario())
    finally:
        db.dispose()
    assert len(parts) > 1
    assert [i for p in parts for i in p.data["participants"]] == ids
    assert all(p.own and p.data["meeting"] == "mtg_1" for p in parts)


def test_on_sqlite_nothing_is_sent_and_the_one_process_counts_as_listening(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path / 'one.db'}")
    with db.write() as session:
        publish(session, Order.END, meeting="mtg_1", reason=None)  # no error, nothing to send
    listener = OrderListener(db)
    assert listener.listening
    asyncio.run(listener.run())  # returns at once
    db.dispose()


@pytest.mark.postgres
def test_a_long_list_of_participants_who_left_is_sent_in_parts(pg_url: str) -> None:
    # close_stale sends every stale participation of a meeting as one `left` list: a replica
    # killed with a few hundred participants must not make the sweep fail (ValueError) for
    # every meeting, again at each run
    db = Database(pg_url)
    ids = [f"p_{n:016x}" for n in range(1500)]

    async def scenario() -> list[Received]:
        _, got, task = await _listen(db)

        def send() -> None:
            with db.write() as session:
                publish(session, Order.ROSTER, meeting="mtg_1", left=ids, all=True)

        await asyncio.to_thread(send)
        parts: list[Received] = []
        while sum(len(p.data["left"]) for p in parts) < len(ids):
            parts.append(await asyncio.wait_for(got.get(), 10))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return parts

    try:
        parts = asyncio.run(scenario())
    finally:
        db.dispose()
    assert len(parts) > 1
    assert [i for p in parts for i in p.data["left"]] == ids
    assert all(p.data["meeting"] == "mtg_1" and p.data["all"] is True for p in parts)


@pytest.mark.postgres
def test_a_payload_that_is_not_an_object_is_ignored_and_listening_goes_on(pg_url: str) -> None:
    # anyone who may NOTIFY on the channel can send any text; a JSON string or number there
    # killed the listener's task (AttributeError) while it still said it was listening, so the
    # token cache stayed trusted with no order reaching it (fail open)
    db = Database(pg_url)

    async def scenario() -> tuple[Received, bool, bool]:
        listener, got, task = await _listen(db)

        def send() -> None:
            with db.write() as session:
                for junk in ('"x"', "1", "[1]", "null", "{}", '{"kind": "nonsense"}'):
                    session.execute(text("SELECT pg_notify('meridian_orders', :p)"), {"p": junk})
                publish(session, Order.REVOKE, token="tok_after_junk")

        await asyncio.to_thread(send)
        after = await asyncio.wait_for(got.get(), 10)
        alive = not task.done()
        listening = listener.listening
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return after, alive, listening

    try:
        after, alive, listening = asyncio.run(scenario())
    finally:
        db.dispose()
    assert (after.kind, after.data) == (Order.REVOKE, {"token": "tok_after_junk"})
    assert alive
    assert listening


@pytest.mark.postgres
def test_a_listener_that_stops_is_not_listening(pg_url: str) -> None:
    # whatever ends its task (cancelled, or an error no handler expected), the replica must
    # not go on trusting what orders would have invalidated
    db = Database(pg_url)

    async def scenario() -> bool:
        listener, _, task = await _listen(db)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return listener.listening

    try:
        assert asyncio.run(scenario()) is False
    finally:
        db.dispose()
