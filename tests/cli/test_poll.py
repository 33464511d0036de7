"""`tracking-service poll --once`: one pass on the simulated carrier mounted in-process."""

from __future__ import annotations

import asyncio
import functools

import pytest
import sqlalchemy as sa
from tracking.worker_helpers import T0, CountingTransport, S, seed, sim_numbers
from typer.testing import CliRunner

from tracking_service.cli import app
from tracking_service.cli import tracking as tracking_cli
from tracking_service.clock import FixedClock
from tracking_service.db import create_engine
from tracking_service.settings import get_settings

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRACKING_DATABASE_URL", database_url)
    monkeypatch.setenv("TRACKING_SIMULATED_BASE_URL", "http://sim")
    monkeypatch.setenv("TRACKING_HISTORY_REFRESH_SECONDS", "0")
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_poll_once_polls_what_is_due_and_says_so(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = sim_numbers(3)

    async def prepare() -> list[int]:
        engine = create_engine(env)
        try:
            return await seed(engine, numbers)
        finally:
            await engine.dispose()

    ids = asyncio.run(prepare())
    clock = FixedClock(T0)
    transport = CountingTransport(clock)
    monkeypatch.setattr(
        tracking_cli,
        "run_poll_once",
        functools.partial(tracking_cli.run_poll_once, carrier_transport=transport, clock=clock),
    )
    result = runner.invoke(app, ["poll", "--once"])
    assert result.exit_code == 0, result.output
    assert "polled 3 shipment(s) (simulated 3): 3 answered, 0 failed, 3 changed" in result.output
    assert "delay check:" in result.output and "expiry:" in result.output
    assert transport.asked == {n: 1 for n in numbers}

    async def statuses() -> list[str]:
        engine = create_engine(env)
        try:
            async with engine.connect() as conn:
                found = await conn.execute(sa.select(S.c.status).where(S.c.id.in_(ids)))
                return [s for (s,) in found]
        finally:
            await engine.dispose()

    assert "pending" not in asyncio.run(statuses())
    again = runner.invoke(app, ["poll", "--once"])
    assert "polled 0 shipment(s)" in again.output


def test_poll_without_once_says_what_to_run(env: str) -> None:
    result = runner.invoke(app, ["poll"])
    assert result.exit_code == 2
    assert "poll --once" in result.output and "worker" in result.output
