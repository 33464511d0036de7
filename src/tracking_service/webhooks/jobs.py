"""The webhook jobs of a service process: fan the outbox out, dispatch due deliveries.

Registered in `services.SHARED_JOBS`, so they run once per deployment (the one `serve`
process, or `tracking-service worker`; several workers may share PostgreSQL: the fan-out's
cursor lock and the dispatcher's SKIP LOCKED claims keep them apart). Both run every
`TRACKING_WEBHOOK_DISPATCH_EVERY_SECONDS` real seconds; 0 turns them off.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN, SchedulerEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tracking_service.tracking.jobs import WORKER_ID
from tracking_service.webhooks.dispatcher import Dispatcher

if TYPE_CHECKING:
    from tracking_service.services import Services

log = logging.getLogger(__name__)

FANOUT_JOB = "webhook-fanout"
DISPATCH_JOB = "webhook-dispatch"


def dispatcher_for(services: Services, *, worker: str = WORKER_ID) -> Dispatcher:
    """A dispatcher on this process's engine, clock and webhook settings (its sender opens
    on first use; `close()` it when done)."""
    return Dispatcher(
        services.engine, services.clock, services.settings.webhook_config(), worker=worker
    )


def add_webhook_jobs(scheduler: AsyncIOScheduler, services: Services) -> bool:
    """Schedule the fan-out and dispatch passes; False when the interval is 0."""
    config = services.settings.webhook_config()
    every = config.dispatch_every_seconds
    if every <= 0:
        return False
    dispatcher = dispatcher_for(services)
    scheduler.add_job(
        dispatcher.fanout_pass,
        "interval",
        seconds=every,
        id=FANOUT_JOB,
        name="fan the outbox out to webhook endpoints",
        replace_existing=True,
    )
    scheduler.add_job(
        dispatcher.dispatch_pass,
        "interval",
        seconds=every,
        id=DISPATCH_JOB,
        name="send due webhook deliveries",
        replace_existing=True,
    )

    closing: set[asyncio.Task[None]] = set()

    def close_sender(_: SchedulerEvent) -> None:
        try:
            task = asyncio.get_running_loop().create_task(dispatcher.close())
        except RuntimeError:
            return
        closing.add(task)
        task.add_done_callback(closing.discard)

    scheduler.add_listener(close_sender, EVENT_SCHEDULER_SHUTDOWN)
    log.info(
        "webhook jobs: fan-out and dispatch every %g s, %d per claim, %d POSTs in flight",
        every,
        config.batch_size,
        config.concurrency,
    )
    return True
