"""The composition root: ``create_app(settings)`` builds the service, never at import.

It mounts the doors as peers on one FastAPI app: the API (:func:`meridian.api.install_api`) and
the pages (:func:`meridian.web.install_web`), over what every HTTP door shares
(:mod:`meridian.http`: callers, client addresses, errors, limits, idempotency, the journal).

Start-up (the lifespan) migrates the database, puts the built-in bundle in force on a new one,
builds the engine, loads the grant-signing key (creating it in development mode only), and
starts three background jobs: the advisory-decision journal, the renewal
job (every ``renew_interval`` seconds; lawful-request notices whose delayed-notice order has
ended go out on the same cadence, and at start-up), the check for a bundle loaded by another
process, the region nodes' health checks (:mod:`meridian.meetings.health`) and the meeting timer
(plan minutes and empty meetings, :mod:`meridian.meetings.lifecycle`).

Each process is a replica (:mod:`meridian.cluster`): it registers a lease and heartbeats it,
and tries for the lead. What must happen once for the whole service runs on the leader only:
checkpoints, renewals, notices, the timer's meeting ends and the record of a node going down or
up. What each replica needs for itself runs everywhere: the journal, the bundle poll, node
health (for its own placement and participants) and the timer's warnings to its participants.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from typing import Any

from fastapi import FastAPI

from . import __version__
from .api import API_DESCRIPTION, install_api
from .audit import SYSTEM
from .changes.workflow import poll as change_poll
from .cluster import Leadership, every_as_leader
from .commerce.renewal import renew_due
from .geography.positions import country_position
from .http.bodylimit import BodyLimitMiddleware
from .http.deps import TokenCache
from .http.errors import install_error_handlers
from .http.idempotency import IdempotencyMiddleware
from .http.journal import DecisionJournal
from .http.network import TrustedProxies
from .http.ratelimit import RateLimits
from .keys.grants import GrantSigner, load_or_create_signing_key
from .legal.workflow import notify_due
from .meetings.health import NodeHealth, watch_nodes
from .meetings.lifecycle import MeetingTimer
from .meetings.live import Signalling
from .meetings.nodes import check_nodes
from .meetings.regions import region_table
from .meetings.service import close_stale
from .runtime import Runtime
from .settings import Settings, get_settings
from .storage.orders import OrderListener, Received
from .web import install_web, start_sessions
from .wire import Order

__all__ = ["create_app"]

log = logging.getLogger("meridian.server")


async def _every(seconds: float, job: Any, name: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(job)
        except Exception:
            log.exception("background job %s failed", name)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment) or a ready ``runtime``."""
    rt = runtime if runtime is not None else Runtime(settings or get_settings())
    config = rt.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(rt.start)
        # this process is a replica of the control plane from now on: its lease row, renewed
        # by the heartbeat below (meridian.cluster.replicas)
        await asyncio.to_thread(rt.replica.register)
        # beating from now on: the rest of start-up may take longer than a lease on a busy host
        heartbeat = asyncio.create_task(rt.replica.run())
        # the jobs that run once for the whole service run on the leader only; the first
        # replica up leads at once (meridian.cluster.leader)
        leadership = Leadership(rt.db, replica_id=rt.replica.id, retry=config.leader_retry)
        app.state.leadership = leadership
        await asyncio.to_thread(leadership.look)
        # The log's key is read (or, in development, created) now, and the tree built from the
        # database: a service that cannot sign its log does not start. The stored log is
        # verified from the position last verified; a mismatch is recorded and shown, and
        # reports, proofs and checkpoints are refused until it is mended (docs/audit.md).
        check = await asyncio.to_thread(rt.log.self_check)
        for problem in check.problems:
            log.error("the log failed its self-check: %s", problem)
        if not check.problems:
            log.info(
                "log self-check: entries %d to %d verified in %.3f s (%.0f entries/s)",
                check.start,
                check.size,
                check.seconds,
                check.rate,
            )
        app.state.log_check = check
        if leadership.is_leader:
            await asyncio.to_thread(rt.log.scheduled_checkpoint)
        # the pages' session key: read, or in development created, before the first sign-in
        await asyncio.to_thread(start_sessions, app, config)
        signer = GrantSigner(
            load_or_create_signing_key(config.grant_key, create=config.mode == "development"),
            seconds=config.grant_seconds,
        )
        check_nodes(config.node_urls, region_table(rt.engine.bundle).codes)
        # participations of replicas whose lease ran out (never of a live one)
        await asyncio.to_thread(lambda: close_stale(rt, starting=True))
        # lawful-request notices whose delayed-notice order ended while the service was down
        if leadership.is_leader:
            await asyncio.to_thread(notify_due, rt)
        # Read the city table placement measures distance from now, not on the first join.
        await asyncio.to_thread(country_position, "US")
        signalling = Signalling(rt, signer, config.node_urls)
        app.state.signalling = signalling
        # what other replicas on the same PostgreSQL database commit, acted on here at once
        orders = OrderListener(rt.db)
        tokens: TokenCache = app.state.tokens
        tokens.listening = lambda: orders.listening

        def forget_callers(order: Received) -> None:
            if order.kind in (Order.REVOKE, Order.SUSPEND):
                tokens.clear()

        async def load_bundle(order: Received) -> None:
            if order.kind is Order.BUNDLE and not order.own:
                await asyncio.to_thread(rt.refresh)

        orders.on(forget_callers)
        orders.on(load_bundle)
        orders.on(signalling.follow)
        orders.on_lost(tokens.clear)
        orders.on_listening(signalling.catch_up)
        app.state.orders = orders
        journal = DecisionJournal(rt)
        journal.start()
        app.state.journal = journal
        tasks = [
            asyncio.create_task(orders.run()),
            heartbeat,
            asyncio.create_task(leadership.run()),
            asyncio.create_task(
                _every(config.policy_poll_interval, partial(change_poll, rt), "policy-poll")
            ),
        ]
        # region node health (placement skips a node that is down) and the meeting timer
        health = NodeHealth(
            config.node_urls,
            failures=config.node_failures,
            timeout=min(config.node_check_interval, 2.0),
        )
        app.state.node_health = health
        tasks.append(
            asyncio.create_task(
                watch_nodes(
                    signalling, health, config.node_check_interval, records=leadership.confirm
                )
            )
        )
        timer = MeetingTimer(
            rt,
            signalling,
            empty_after=timedelta(seconds=config.meeting_empty_timeout),
            warn_before=timedelta(seconds=config.meeting_warning),
            ends=leadership.confirm,
        )
        tasks.append(asyncio.create_task(timer.run(config.meeting_check_interval)))
        # the participations of a replica that died are closed once its lease has run out
        tasks.append(
            asyncio.create_task(
                every_as_leader(
                    leadership, rt.replica.interval, lambda: close_stale(rt), "stale-participations"
                )
            )
        )
        if config.checkpoint_interval > 0:
            tasks.append(
                asyncio.create_task(
                    every_as_leader(
                        leadership,
                        config.checkpoint_interval,
                        rt.checkpoint_and_witness,
                        "checkpoint",
                    )
                )
            )
        if config.renew_interval > 0:
            tasks.append(
                asyncio.create_task(
                    every_as_leader(
                        leadership,
                        config.renew_interval,
                        lambda: renew_due(rt, rt.now(), actor=SYSTEM),
                        "renewal",
                    )
                )
            )
            # ... and on the same cadence, notices whose delayed-notice order has ended
            tasks.append(
                asyncio.create_task(
                    every_as_leader(
                        leadership, config.renew_interval, lambda: notify_due(rt), "legal-notices"
                    )
                )
            )
        # Everything built at start-up lives as long as the process: keep it out of the
        # collector's way (the engine's tables and memos are large and never garbage).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            journal.stop()
            await orders.aclose()
            await health.aclose()
            await signalling.aclose()
            # a clean stop ends the lease at once: the others need not wait for it to run out
            with contextlib.suppress(Exception):
                await asyncio.to_thread(rt.replica.release)
            rt.close()

    app = FastAPI(
        title="Meridian",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # /docs and /redoc come from vendored assets (api/docs.py), not FastAPI's CDN pages
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = rt
    app.state.tokens = TokenCache()
    app.state.trusted_proxies = TrustedProxies(config.trusted_proxies)
    install_error_handlers(app)
    app.add_middleware(IdempotencyMiddleware)
    # limits (docs/security.md, "Limits"): rate limits, and one body limit outside everything
    # that reads a body, idempotency included
    app.state.rate_limits = RateLimits(config)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    # the doors, as peers: the API (with its docs) and the pages
    install_api(app)
    install_web(app, config)
    return app
