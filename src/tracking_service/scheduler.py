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
