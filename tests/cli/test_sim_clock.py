"""`sim-carrier` runs on the deployment's clock: its speed and anchor are the service's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tracking_service.cli.carriers import sim_clock
from tracking_service.clock import ScaledClock, SystemClock, open_clock
from tracking_service.db import create_engine
from tracking_service.settings import Settings

ANCHOR = datetime(2026, 11, 23, 4, 19, 7, tzinfo=UTC)


def test_at_speed_one_without_an_anchor_it_is_the_machine_clock(database_url: str) -> None:
    assert isinstance(sim_clock(Settings(database_url=database_url), 1.0), SystemClock)


def test_a_given_anchor_needs_no_database() -> None:
    settings = Settings(database_url="sqlite:////nonexistent/dir/x.db", clock_anchor=ANCHOR)
    clock = sim_clock(settings, 1440.0)
    assert isinstance(clock, ScaledClock)
    assert (clock.speed, clock.real_at, clock.simulated_at) == (1440.0, ANCHOR, ANCHOR)


def test_it_reads_the_anchor_the_service_stored(database_url: str) -> None:
    async def service_clock() -> ScaledClock:
        engine = create_engine(database_url)
        try:
            clock = await open_clock(engine, 1440.0)
        finally:
            await engine.dispose()
        assert isinstance(clock, ScaledClock)
        return clock

    service = asyncio.run(service_clock())
    carrier = sim_clock(Settings(database_url=database_url), 1440.0)
    assert isinstance(carrier, ScaledClock)
    assert (carrier.real_at, carrier.simulated_at) == (service.real_at, service.simulated_at)
    assert abs(carrier.now() - service.now()) < timedelta(minutes=5)  # < 0.25 s real apart
