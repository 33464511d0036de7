"""Stopping the scheduler waits for the job runs in progress (they hold database connections)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tracking_service.scheduler import create_scheduler, stop_scheduler


async def test_stop_lets_a_running_job_finish() -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def job() -> None:
        started.set()
        await asyncio.sleep(0.2)
        finished.set()

    scheduler = create_scheduler()
    scheduler.add_job(job, "interval", seconds=60, next_run_time=None)
    scheduler.start()
    scheduler.get_jobs()[0].modify(next_run_time=datetime.now(UTC))
    await asyncio.wait_for(started.wait(), 5)
    await stop_scheduler(scheduler, grace_seconds=5)
    assert finished.is_set()
    assert not scheduler.running


async def test_stop_cancels_a_job_that_outlives_the_grace_and_waits_for_it() -> None:
    started, cleaned_up = asyncio.Event(), asyncio.Event()

    async def job() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # the cancelled run still gets to clean up
            cleaned_up.set()

    scheduler = create_scheduler()
    scheduler.add_job(job, "interval", seconds=60, next_run_time=None)
    scheduler.start()
    scheduler.get_jobs()[0].modify(next_run_time=datetime.now(UTC))
    await asyncio.wait_for(started.wait(), 5)
    await stop_scheduler(scheduler, grace_seconds=0.1)
    assert cleaned_up.is_set()
