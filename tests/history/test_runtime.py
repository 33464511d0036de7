"""The history refresh: unchanged table -> no rebuild; new rows -> rebuild (both backends)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from history_helpers import sp_to_rio
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.db import unit_of_work
from tracking_service.estimator.option_history import OptionHistories
from tracking_service.estimator.records import Delivery
from tracking_service.estimator.rules import load_rules
from tracking_service.history import store as history_store
from tracking_service.history.runtime import HistoryRuntime, TableState, table_state
from tracking_service.scheduler import HISTORY_REFRESH_JOB, add_history_refresh, create_scheduler
from tracking_service.settings import bundled_rules_path

SP = ZoneInfo("America/Sao_Paulo")
RULES = load_rules(bundled_rules_path("br_shop.toml"))


def parcels(start: int, n: int) -> list[Delivery]:
    """Parcels `start` to `start + n - 1`, one ordered every 13 hours, 2 to 5 days on the way."""
    return sp_to_rio(
        (2, 3, 4, 5),
        n,
        from_index=start,
        first_order=datetime(2024, 1, 2, 11, tzinfo=SP),
        every=timedelta(hours=13),
    )


async def insert(engine: AsyncEngine, records: list[Delivery]) -> None:
    async with unit_of_work(engine) as session:
        await history_store.insert_deliveries(session, "olist", records)


async def state_of(engine: AsyncEngine) -> TableState:
    async with unit_of_work(engine) as session:
        return await table_state(session)


def runtime(engine: AsyncEngine, published: list[OptionHistories]) -> HistoryRuntime:
    return HistoryRuntime(engine, RULES, publish=published.append)


async def test_unchanged_table_is_not_rebuilt(engine: AsyncEngine) -> None:
    published: list[OptionHistories] = []
    rt = runtime(engine, published)
    empty = await rt.refresh()
    assert empty.rebuilt and empty.state == TableState(0, None)
    assert not empty.snapshot.options
    assert not (await rt.refresh()).rebuilt
    assert len(published) == 1

    await insert(engine, parcels(0, 150))
    grown = await rt.refresh()
    assert grown.rebuilt
    assert grown.state.rows == 150
    assert grown.snapshot.options["standard"].records == 150
    assert published[-1] is grown.snapshot
    again = await rt.refresh()
    assert not again.rebuilt and again.snapshot is grown.snapshot
    assert rt.builds == 2

    await insert(engine, parcels(150, 10))
    assert (await rt.refresh()).snapshot.options["standard"].records == 160
    assert (await rt.refresh(force=True)).rebuilt
    assert rt.builds == 4


async def test_concurrent_refreshes_build_once(engine: AsyncEngine) -> None:
    await insert(engine, parcels(0, 60))
    rt = runtime(engine, [])
    results = await asyncio.gather(rt.refresh(), rt.refresh(), rt.refresh())
    assert [r.rebuilt for r in results].count(True) == 1
    assert rt.builds == 1


async def test_table_state_sees_new_rows(engine: AsyncEngine) -> None:
    assert await state_of(engine) == TableState(0, None)
    await insert(engine, parcels(0, 3))
    state = await state_of(engine)
    assert state.rows == 3 and state.max_id is not None
    await insert(engine, parcels(0, 3))  # already there
    assert await state_of(engine) == state


async def test_refresh_failure_keeps_the_snapshot(engine: AsyncEngine) -> None:
    await insert(engine, parcels(0, 40))
    rt = runtime(engine, [])
    first = await rt.refresh_logged()
    assert first is not None and first.rebuilt
    await engine.dispose()
    rt.engine = _Broken()  # type: ignore[assignment]
    assert await rt.refresh_logged() is None
    assert rt.snapshot is first.snapshot


async def test_closed_runtime_does_not_refresh(engine: AsyncEngine) -> None:
    rt = runtime(engine, [])
    await rt.close()
    result = await rt.refresh()
    assert not result.rebuilt and rt.builds == 0


class _Broken:
    def connect(self) -> object:
        raise OSError("database is gone")


async def test_scheduler_job(engine: AsyncEngine) -> None:
    rt = runtime(engine, [])
    scheduler = create_scheduler()
    assert not add_history_refresh(scheduler, rt, 0)
    assert scheduler.get_jobs() == []
    assert add_history_refresh(scheduler, rt, 0.05)
    (job,) = scheduler.get_jobs()
    assert job.id == HISTORY_REFRESH_JOB
    scheduler.start()
    try:
        for _ in range(100):
            if rt.builds:
                break
            await asyncio.sleep(0.05)
    finally:
        scheduler.shutdown(wait=False)
        await rt.close()
    assert rt.builds == 1  # the job ran; later runs found the table unchanged
