"""Carrier limits for all processes together: daily quotas and per-second windows in the DB."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.carrier_quotas import (
    MAX_BATCH,
    RateWindows,
    SqlCallGate,
    granted,
    seconds_to_next_day,
)
from tracking_service.db import create_engine
from tracking_service.models import CarrierQuota, CarrierRateWindow

DAY = date(2026, 12, 1)
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Time:
    """A wall clock that only moves when the gate sleeps."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_rate_windows_and_batches() -> None:
    assert RateWindows.of(2000.0) == RateWindows(seconds=1, capacity=2000, batch=MAX_BATCH)
    assert RateWindows.of(100.0) == RateWindows(seconds=1, capacity=100, batch=10)
    assert RateWindows.of(1.0) == RateWindows(seconds=1, capacity=1, batch=1)
    assert RateWindows.of(0.25) == RateWindows(seconds=4, capacity=1, batch=1)
    assert RateWindows.of(0.25).start(1_000_003.5) == 1_000_000
    with pytest.raises(ValueError):
        RateWindows.of(0)


def test_granted_positions_within_capacity() -> None:
    assert granted(capacity=10, total=4, asked=4) == 4
    assert granted(capacity=10, total=12, asked=4) == 2  # positions 9..12: 9 and 10
    assert granted(capacity=10, total=20, asked=4) == 0


def test_seconds_to_next_utc_midnight() -> None:
    assert seconds_to_next_day(NOON) == 12 * 3600
    assert seconds_to_next_day(datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC)) == 1


async def test_daily_quota_refuses_past_the_limit(engine: AsyncEngine) -> None:
    gate = SqlCallGate(engine)
    assert [await gate.take_daily("dhl", DAY, 1, 3) for _ in range(4)] == [True] * 3 + [False]
    assert await gate.take_daily("dhl", DAY, 5, 3) is False
    assert await gate.take_daily("dhl", DAY + timedelta(days=1), 1, 3) is True  # a new day
    assert await gate.take_daily("ups", DAY, 1, 3) is True  # another carrier
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(CarrierQuota.__table__))).all()  # type: ignore[attr-defined]
    assert sorted((r.carrier, r.day, r.calls) for r in rows) == [
        ("dhl", DAY, 3),
        ("dhl", DAY + timedelta(days=1), 1),
        ("ups", DAY, 1),
    ]


async def test_daily_quota_holds_for_several_processes_at_once(
    engine: AsyncEngine, database_url: str
) -> None:
    """Three "processes" (engines of their own) race for 25 calls: exactly 25 are granted."""
    others = [create_engine(database_url) for _ in range(2)]
    try:
        gates = [SqlCallGate(e) for e in (engine, *others)]
        results = await asyncio.gather(
            *(gates[i % 3].take_daily("dhl", DAY, 1, 25) for i in range(60))
        )
    finally:
        for other in others:
            await other.dispose()
    assert sum(results) == 25


async def test_admit_refuses_until_midnight_once_the_day_is_spent(engine: AsyncEngine) -> None:
    time = Time(NOON)
    gate = SqlCallGate(engine, now=time, sleep=time.sleep)
    for _ in range(2):
        assert await gate.admit("dhl", per_second=1000.0, daily_limit=2) is None
    assert await gate.admit("dhl", per_second=1000.0, daily_limit=2) == 12 * 3600
    time.now += timedelta(hours=1)
    assert await gate.admit("dhl", per_second=1000.0, daily_limit=2) == 11 * 3600
    time.now = datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC)  # a new UTC day
    assert await gate.admit("dhl", per_second=1000.0, daily_limit=2) is None
    # No daily limit: nothing is counted per day.
    assert await gate.admit("simulated", per_second=1000.0, daily_limit=None) is None
    async with engine.connect() as conn:
        carriers = (await conn.execute(sa.select(CarrierQuota.__table__.c.carrier))).scalars()  # type: ignore[attr-defined]
        assert set(carriers) == {"dhl"}


async def test_window_permits_never_exceed_the_capacity_across_processes(
    engine: AsyncEngine, database_url: str
) -> None:
    other = create_engine(database_url)
    try:
        gates = [SqlCallGate(engine), SqlCallGate(other)]
        got = await asyncio.gather(
            *(gates[i % 2].take_window("simulated", 1_000, 30, 200) for i in range(12))
        )
    finally:
        await other.dispose()
    assert sum(got) == 200  # 12 x 30 asked, the window holds 200
    assert all(0 <= g <= 30 for g in got)
    gate = SqlCallGate(engine)
    assert await gate.take_window("simulated", 1_001, 30, 200) == 30  # the next window


async def test_permits_are_taken_in_batches_and_wait_for_the_next_window(
    engine: AsyncEngine,
) -> None:
    """At 2 calls a second: the third call in a second waits for the next one."""
    time = Time(NOON)
    gate = SqlCallGate(engine, now=time, sleep=time.sleep)
    for _ in range(3):
        assert await gate.admit("dhl", per_second=2.0, daily_limit=None) is None
    assert time.slept == [pytest.approx(1.0)]
    async with engine.connect() as conn:
        rows = (
            await conn.execute(sa.select(CarrierRateWindow.__table__))  # type: ignore[attr-defined]
        ).all()
    start = int(NOON.timestamp())
    # Batches of 1 at this rate: 2 permits, 1 refused ask, then 1 in the next window.
    assert sorted((r.window_start, r.requested) for r in rows) == [(start, 3), (start + 1, 1)]


async def test_a_fast_carrier_costs_one_round_trip_per_batch(engine: AsyncEngine) -> None:
    time = Time(NOON)
    gate = SqlCallGate(engine, now=time, sleep=time.sleep)
    asked: list[int] = []
    take = gate.take_window

    async def counting(carrier: str, window: int, n: int, capacity: int) -> int:
        asked.append(n)
        return await take(carrier, window, n, capacity)

    gate.take_window = counting  # type: ignore[method-assign]
    await asyncio.gather(
        *(gate.admit("simulated", per_second=2000.0, daily_limit=None) for _ in range(450))
    )
    assert asked == [MAX_BATCH] * 3  # 450 calls, 3 round trips
    assert time.slept == []


async def test_prune_deletes_past_windows(engine: AsyncEngine) -> None:
    time = Time(NOON)
    gate = SqlCallGate(engine, now=time)
    now = int(NOON.timestamp())
    for start in (now - 3600, now - 5, now):
        await gate.take_window("dhl", start, 1, 1)
    assert await gate.prune() == 1
