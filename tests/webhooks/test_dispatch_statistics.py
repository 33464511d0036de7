"""A fan-out burst refreshes PostgreSQL's statistics of the deliveries, so the next claims walk
the due index instead of scanning and sorting every due row."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.webhooks.dispatcher import ANALYZE_AFTER

from .core_helpers import add_endpoint, add_events, dispatcher


async def reltuples(engine: AsyncEngine) -> float:
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.text("SELECT reltuples FROM pg_class WHERE relname = 'webhook_deliveries'")
        )
        return float(found.scalar_one())


async def test_a_burst_of_deliveries_is_analyzed(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    await add_endpoint(engine, "http://127.0.0.1:9/hook")
    await add_events(engine, "shipment:1", ["shipment.status_changed"] * 10)
    d = dispatcher(engine)
    try:
        assert await d.fanout_pass() == 10
        assert await reltuples(engine) <= 0  # a small pass leaves it to autovacuum
        await add_events(engine, "shipment:2", ["shipment.status_changed"] * ANALYZE_AFTER)
        assert await d.fanout_pass() == ANALYZE_AFTER
    finally:
        await d.close()
    assert await reltuples(engine) == ANALYZE_AFTER + 10
