"""`track` counts its carrier calls and takes them from the carriers' shared limits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import respx
import sqlalchemy as sa
from carriers.http_helpers import BASES, KITS, NUMBERS
from typer.testing import CliRunner

from tracking_service.cli import app
from tracking_service.db import create_engine
from tracking_service.settings import get_settings

runner = CliRunner()


@pytest.fixture
def dhl_once(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DHL configured with a daily limit of one call."""
    monkeypatch.setenv("TRACKING_DATABASE_URL", database_url)
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "warning")
    monkeypatch.setenv("TRACKING_DHL_API_KEY", "dhl-key")
    monkeypatch.setenv("TRACKING_DHL_BASE_URL", BASES["dhl"])
    monkeypatch.setenv("TRACKING_DHL_DAILY_LIMIT", "1")
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def stored(url: str, sql: str) -> list[tuple[object, ...]]:
    async def go() -> list[tuple[object, ...]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in (await conn.execute(sa.text(sql))).all()]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_track_counts_its_call_and_respects_the_daily_limit(dhl_once: str) -> None:
    kit, number = KITS["dhl"], NUMBERS["dhl"][0]
    with respx.mock(assert_all_called=False) as router:
        route = router.route(method="GET", url__regex=kit.url).mock(
            side_effect=kit.handler({number})
        )
        first = runner.invoke(app, ["track", "dhl", number])
        second = runner.invoke(app, ["track", "dhl", number, "--json"])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 1
    assert "rate_limited" in second.output and "daily limit of 1 calls" in second.output
    assert route.call_count == 1  # the refused call was never sent
    assert stored(dhl_once, "SELECT carrier, endpoint, outcome, numbers FROM carrier_calls") == [
        ("dhl", "track", "ok", 1)
    ]
    assert stored(dhl_once, "SELECT carrier, calls FROM carrier_quotas") == [("dhl", 1)]
