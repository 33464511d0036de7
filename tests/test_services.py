"""The process runtime: what `open_services` opens, which jobs it schedules, what it closes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tracking_service import services
from tracking_service.carriers.registry import CarrierRegistry
from tracking_service.clock import FixedClock
from tracking_service.migrate import current_revision, head_revision
from tracking_service.scheduler import HISTORY_REFRESH_JOB
from tracking_service.services import Services, open_services
from tracking_service.settings import Settings, bundled_rules_path

SHARED_JOB = "test-shared-job"


def settings_for(database_url: str, refresh: float = 0) -> Settings:
    return Settings(
        database_url=database_url,
        rules_file=bundled_rules_path("br_shop.toml"),
        history_refresh_seconds=refresh,
    )


def add_shared_job(scheduler: AsyncIOScheduler, _services: Services) -> bool:
    async def tick() -> None:
        pass

    scheduler.add_job(tick, "interval", seconds=3600, id=SHARED_JOB)
    return True


@pytest.fixture
def shared_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """One shared job, as the tracking pipeline's carrier polling will be."""
    monkeypatch.setattr(services, "SHARED_JOBS", [add_shared_job])


def job_ids(s: Services) -> set[str]:
    return {job.id for job in s.scheduler.get_jobs()} if s.scheduler is not None else set()


async def test_opens_a_ready_runtime_on_an_empty_database(empty_database_url: str) -> None:
    clock = FixedClock(datetime(2027, 2, 5, 19, tzinfo=UTC))
    async with open_services(settings_for(empty_database_url), run_jobs=False, clock=clock) as s:
        assert await current_revision(s.engine) == head_revision()
        assert s.clock is clock
        assert s.history.builds == 1  # the first snapshot is there before any request
        assert s.history.snapshot.built_at == clock.now()
        assert "simulated" in s.carriers.codes
        assert s.estimator.rules.shipping_options


@pytest.mark.usefixtures("shared_job")
async def test_no_jobs_without_run_jobs(database_url: str) -> None:
    async with open_services(settings_for(database_url), run_jobs=False) as s:
        assert s.scheduler is None


@pytest.mark.usefixtures("shared_job")
async def test_run_jobs_starts_the_shared_jobs(database_url: str) -> None:
    async with open_services(settings_for(database_url), run_jobs=True) as s:
        assert s.scheduler is not None and s.scheduler.running
        assert job_ids(s) == {SHARED_JOB}
        scheduler = s.scheduler
    assert not scheduler.running


@pytest.mark.usefixtures("shared_job")
async def test_history_upkeep_runs_in_every_process(database_url: str) -> None:
    """Each process keeps its own snapshot fresh (N API processes, N snapshots); only the
    shared jobs depend on `run_jobs`."""
    async with open_services(settings_for(database_url, refresh=60), run_jobs=False) as s:
        assert s.scheduler is not None and s.scheduler.running
        assert job_ids(s) == {HISTORY_REFRESH_JOB}
    async with open_services(settings_for(database_url, refresh=60), run_jobs=True) as s:
        assert job_ids(s) == {HISTORY_REFRESH_JOB, SHARED_JOB}


async def test_everything_is_closed_on_exit(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []
    build = services.build_registry

    def recording_build(*args: Any, **kw: Any) -> CarrierRegistry:
        registry = build(*args, **kw)
        original = registry.aclose

        async def aclose() -> None:
            closed.append("carriers")
            await original()

        registry.aclose = aclose  # type: ignore[method-assign]
        return registry

    monkeypatch.setattr(services, "build_registry", recording_build)
    async with open_services(settings_for(database_url, refresh=60), run_jobs=True) as s:
        history, scheduler = s.history, s.scheduler
        assert closed == []
    assert closed == ["carriers"]
    assert scheduler is not None and not scheduler.running
    assert (await history.refresh()).rebuilt is False  # closed: refreshes do nothing
