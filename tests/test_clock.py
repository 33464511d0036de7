"""The service clock: a fast clock from an anchor every process of a deployment shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.clock import (
    FixedClock,
    ScaledClock,
    open_clock,
    real_seconds,
    simulated,
    speed_of,
)
from tracking_service.models import ClockAnchor
from tracking_service.settings import Settings

START = datetime(2026, 3, 2, 12, tzinfo=UTC)
ANCHOR = ClockAnchor.__table__  # type: ignore[attr-defined]


def test_a_scaled_clock_runs_speed_times_faster_from_its_anchor() -> None:
    real = FixedClock(START + timedelta(minutes=1))
    clock = ScaledClock(1440, START, real=real)
    assert clock.now() == START + timedelta(days=1)
    real.advance(timedelta(seconds=30))
    assert clock.now() == START + timedelta(days=1, hours=12)
    later = ScaledClock(2, START, START + timedelta(days=10), real=real)
    assert later.now() == START + timedelta(days=10, minutes=3)
    assert speed_of(clock) == 1440 and speed_of(real) == 1
    assert real_seconds(clock, timedelta(days=1)) == 60
    assert simulated(clock, 60) == timedelta(days=1)
    with pytest.raises(ValueError):
        ScaledClock(0, START)
    with pytest.raises(ValueError):
        ScaledClock(2, datetime(2026, 3, 2, 12))


def test_the_anchor_setting_needs_an_offset() -> None:
    assert Settings(clock_anchor="2026-03-02T12:00:00Z").clock_anchor == START  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="offset"):
        Settings(clock_anchor="2026-03-02T12:00:00")  # type: ignore[arg-type]


async def test_real_time_stores_nothing(engine: AsyncEngine) -> None:
    real = FixedClock(START)
    assert await open_clock(engine, 1.0, real=real) is real
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(ANCHOR))).all() == []


async def test_the_first_process_stores_the_anchor_and_every_other_reads_it(
    engine: AsyncEngine,
) -> None:
    real = FixedClock(START)
    first = await open_clock(engine, 1440, real=real)
    real.advance(timedelta(minutes=1))
    second = await open_clock(engine, 1440, real=real)  # another process, a minute later
    assert first.now() == second.now() == START + timedelta(days=1)
    # a restart at real speed continues the simulated time, never goes back under it
    real.advance(timedelta(minutes=1))
    slower = await open_clock(engine, 1, real=real)
    assert slower.now() == START + timedelta(days=2)
    real.advance(timedelta(hours=1))
    assert slower.now() == START + timedelta(days=2, hours=1)
    assert (await open_clock(engine, 1, real=real)).now() == slower.now()


async def test_an_anchor_setting_needs_no_database(engine: AsyncEngine) -> None:
    real = FixedClock(START + timedelta(minutes=2))
    clock = await open_clock(engine, 720, START, real=real)
    assert clock.now() == START + timedelta(days=1)
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(ANCHOR))).all() == []
