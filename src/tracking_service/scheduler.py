"""Background jobs of a service process, on APScheduler's `AsyncIOScheduler`.

The scheduler only triggers work on the process's event loop; the work itself lives with its
edge module, which adds its own jobs (`add_history_refresh` here for the history runtime;
`tracking.jobs`, `webhooks.jobs` and `notifications.jobs` for carrier polling and checks, the
webhook fan-out and dispatch, and customer email, through `services.SHARED_JOBS`). Every job
runs at most once at a time, and a run missed while the loop was busy is coalesced into one,
never replayed in a burst.

Which jobs a process gets, and starting and stopping them, is `services.open_services`'s
business (the API lifespan and the `worker` command both use it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tracking_service.history.runtime import HistoryRuntime

log = logging.getLogger(__name__)

HISTORY_REFRESH_JOB = "refresh-history"
_JOB_DEFAULTS: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}


def create_scheduler() -> AsyncIOScheduler:
    """A scheduler in UTC with the common job defaults; not started."""
    return AsyncIOScheduler(timezone="UTC", job_defaults=_JOB_DEFAULTS)


async def stop_scheduler(scheduler: AsyncIOScheduler, grace_seconds: float = 10.0) -> None:
    """Stop triggering jobs, let the runs in progress end (cancelled after `grace_seconds`), and
    return only when none is left.

    APScheduler's `shutdown()` cannot wait for coroutine jobs: it cancels them and returns, so
    the caller would dispose of the database engine (or end the event loop) under a job still
    holding a connection, which can hang the loop's shutdown. The running jobs are the asyncio
    executors' pending futures (APScheduler 3's own bookkeeping; absent: nothing to wait for).
    """
    scheduler.pause()
    running: list[asyncio.Future[Any]] = [
        future
        for executor in getattr(scheduler, "_executors", {}).values()
        for future in getattr(executor, "_pending_futures", ())
        if not future.done()
    ]
    if running:
        _, late = await asyncio.wait(running, timeout=grace_seconds)
        if late:
            log.warning("%d background job(s) still running at shutdown: cancelled", len(late))
    scheduler.shutdown(wait=False)  # cancels what is left
    if running:
        await asyncio.gather(*running, return_exceptions=True)


def add_history_refresh(
    scheduler: AsyncIOScheduler, runtime: HistoryRuntime, every_seconds: float
) -> bool:
    """Refresh the delivery history every `every_seconds` (0: no job). True if added."""
    if every_seconds <= 0:
        return False
    scheduler.add_job(
        runtime.refresh_logged,
        "interval",
        seconds=every_seconds,
        id=HISTORY_REFRESH_JOB,
        name="refresh delivery history",
        replace_existing=True,
    )
    log.info("delivery history refresh every %g s", every_seconds)
    return True
