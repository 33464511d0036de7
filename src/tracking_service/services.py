"""The runtime of a service process: everything long-lived, opened and closed in one place.

`open_services` is used by the API's lifespan (`app.py`) and by the `worker` command, so both
kinds of process hold the same objects built the same way: the engine (schema upgraded when
behind), its session factory, the clock, the estimator (compiled rules), the delivery-history
runtime with its first snapshot, the carrier adapters (their calls counted by `carrier_calls`,
which this process flushes to the database every few seconds, and admitted by `carrier_gate`,
the carriers' limits for all processes together) and, when there is something to run, the
scheduler. Nothing of it is built lazily later, inside a request or a job.

Two kinds of scheduled work differ in where they must run:

- process upkeep keeps this process's own in-memory state fresh (the delivery-history snapshot
  the estimate route serves): it runs in every process that holds such state, so each of N API
  processes refreshes its own snapshot;
- shared jobs act on the shared database and carriers (carrier polling, webhooks, customer
  email: each adds itself to `SHARED_JOBS`): they run only where `run_jobs` is true (one
  `serve` process, or the `worker` beside `serve --workers N`), never N times. Before they
  start, the process that runs them places the customer-email cursor at the outbox's end when
  email was never on (`notifications.jobs.start`), so nothing old is mailed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.carrier_quotas import SqlCallGate
from tracking_service.carrier_tokens import SqlTokenStore
from tracking_service.carrier_usage import SqlCallRecorder
from tracking_service.carriers.registry import CarrierRegistry, build_registry
from tracking_service.clock import Clock, open_clock
from tracking_service.db import create_engine, session_factory
from tracking_service.estimator.estimate import Estimator
from tracking_service.estimator.rules import load_rules
from tracking_service.history.runtime import HistoryRuntime
from tracking_service.migrate import upgrade_if_behind
from tracking_service.notifications import jobs as mail_jobs
from tracking_service.scheduler import add_history_refresh, create_scheduler, stop_scheduler
from tracking_service.settings import Settings
from tracking_service.tracking.jobs import add_tracking_jobs
from tracking_service.webhooks.jobs import add_webhook_jobs

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What a service process holds while it runs (see the module docstring)."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    estimator: Estimator
    history: HistoryRuntime
    carriers: CarrierRegistry
    scheduler: AsyncIOScheduler | None
    carrier_calls: SqlCallRecorder | None = None  # counts every carrier call (carrier_usage)
    carrier_gate: SqlCallGate | None = None  # carrier limits for all processes together


SharedJob = Callable[[AsyncIOScheduler, Services], bool]
"""Adds one shared job to the scheduler (False: not configured, nothing added)."""

SHARED_JOBS: list[SharedJob] = []
"""The jobs that run once per deployment, only where `run_jobs` is true."""
SHARED_JOBS.append(add_tracking_jobs)
SHARED_JOBS.append(add_webhook_jobs)
SHARED_JOBS.append(mail_jobs.add_mail_jobs)


def _scheduler(services: Services, *, run_jobs: bool) -> AsyncIOScheduler | None:
    """A scheduler with this process's jobs, or None when it has none."""
    scheduler = create_scheduler()
    add_history_refresh(scheduler, services.history, services.settings.history_refresh_seconds)
    if run_jobs:
        for add in SHARED_JOBS:
            add(scheduler, services)
    return scheduler if scheduler.get_jobs() else None


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    run_jobs: bool,
    clock: Clock | None = None,
    carrier_transport: httpx.AsyncBaseTransport | None = None,
    estimator: Estimator | None = None,
) -> AsyncIterator[Services]:
    """Open the runtime; close everything (jobs first, engine last) on exit.

    `estimator`: an estimator already built from `settings.rules_file` (the app loads the rules
    before it listens, so a broken rules file stops it early); built here otherwise.
    """
    if estimator is None:
        estimator = Estimator(load_rules(settings.rules_file))
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        await upgrade_if_behind(engine)
        clock = clock or await open_clock(engine, settings.clock_speed, settings.clock_anchor)
        history = HistoryRuntime(
            engine, estimator.rules, clock=clock.now, recalibrate=settings.recalibrate
        )
        stack.push_async_callback(history.close)
        await history.refresh_logged()
        carrier_calls, carrier_gate = SqlCallRecorder(engine), SqlCallGate(engine)
        carrier_calls.start(settings.carrier_usage_flush_seconds, carrier_gate)
        stack.push_async_callback(carrier_calls.close)  # after the carriers: their last calls
        carriers = build_registry(
            settings.carrier_configs(),
            SqlTokenStore(engine),
            transport=carrier_transport,
            observer=carrier_calls,
            gate=carrier_gate,
        )
        stack.push_async_callback(carriers.aclose)
        services = Services(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            clock=clock,
            estimator=estimator,
            history=history,
            carriers=carriers,
            scheduler=None,
            carrier_calls=carrier_calls,
            carrier_gate=carrier_gate,
        )
        if run_jobs:
            await mail_jobs.start(services)
        services.scheduler = _scheduler(services, run_jobs=run_jobs)
        if services.scheduler is not None:
            services.scheduler.start()
            stack.push_async_callback(stop_scheduler, services.scheduler)
        yield services
