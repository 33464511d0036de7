"""The history runtime recalibrates the level from the promise ledger: orders registered with
the model's distribution, delivered late, make the next rebuild read a higher level for the
same stated confidence (and a later window); the fingerprint keeps the hour while promises are
in the window (both backends)."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from history_helpers import sp_history
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.app import create_app
from tracking_service.clock import FixedClock
from tracking_service.db import unit_of_work
from tracking_service.estimator.estimate import Destination, Estimator
from tracking_service.estimator.history import RecalibrationConfig
from tracking_service.estimator.rules import load_rules
from tracking_service.history import store as history_store
from tracking_service.history.runtime import HistoryRuntime, table_state
from tracking_service.models import Order, Shipment
from tracking_service.settings import Settings, bundled_rules_path
from tracking_service.tracking.registration import (
    DestinationInput,
    OrderInput,
    create_order,
)

SP = ZoneInfo("America/Sao_Paulo")
BR = Estimator(load_rules(bundled_rules_path("br_shop.toml")))
NOW = datetime(2024, 10, 29, 13, tzinfo=UTC)
WINDOW = timedelta(days=RecalibrationConfig().window_days)
# the ledger's 240 promises over 26 days all count and speak loudly (the default shrinks a
# few hundred promises toward the asked level)
LOUD = RecalibrationConfig(window_days=28, prior_promises=100)
ORD = Order.__table__  # type: ignore[attr-defined]
S = Shipment.__table__  # type: ignore[attr-defined]
RIO = Destination("BR", "20040-020")


async def history(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        await history_store.insert_deliveries(session, "olist", sp_history())


async def register_late_promises(engine: AsyncEngine, runtime: HistoryRuntime, n: int) -> int:
    """`n` orders over the last 26 days, promised by the runtime's current model (through the
    registration), each delivered two days after its distribution reached 1 when that is
    before NOW (the others still open): every promise late. The count delivered."""
    delivered = 0
    for i in range(n):
        placed = NOW - timedelta(days=26) + i * timedelta(days=26) / n
        request = OrderInput(f"L-{i}", placed, DestinationInput("BR", "20040-020"), "standard")
        async with unit_of_work(engine) as session:
            made = await create_order(
                session, request, estimator=BR, history=runtime.snapshot, now=placed
            )
            order = made.order
            assert order.promise_distribution is not None
            start = date.fromisoformat(order.promise_distribution["start"])
            late = start + timedelta(days=len(order.promise_distribution["cdf"]) + 1)
            at = datetime.combine(late, time(15), SP).astimezone(UTC)
            if at > NOW:
                continue
            delivered += 1
            await session.execute(
                sa.insert(S).values(
                    order_pk=order.id,
                    carrier="simulated",
                    tracking_number=f"L-{i}",
                    items=[],
                    tracking_token=secrets.token_urlsafe(24),
                    status="delivered",
                    handed_off_at=placed + timedelta(days=1),
                    delivered_at=at,
                    poll_failures=0,
                    sequence=0,
                    delayed=False,
                    created_at=placed,
                    updated_at=at,
                )
            )
            await session.execute(
                sa.update(ORD).where(ORD.c.id == order.id).values(status="delivered")
            )
    return delivered


async def test_late_promises_raise_the_level_read_for_a_confidence(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await history(engine)
    runtime = HistoryRuntime(
        engine, BR.rules, clock=lambda: NOW, recalibrate=True, recalibration=LOUD
    )
    before = (await runtime.refresh()).snapshot
    assert before.level("standard", 0.8) == 0.8  # no promise yet: the asked level
    delivered = await register_late_promises(engine, runtime, 240)
    assert 100 < delivered < 240  # delivered and open promises alike

    with caplog.at_level(logging.INFO, logger="tracking_service.history.runtime"):
        refreshed = await runtime.refresh()
    assert refreshed.rebuilt
    after = refreshed.snapshot
    recal = after.options["standard"].recalibration
    assert (recal.promises, recal.delivered) == (240, delivered)
    assert after.level("standard", 0.8) == pytest.approx(0.9)  # up by the bound
    assert after.level("standard", 0.9) > 0.95
    line = next(r.getMessage() for r in caplog.records if "recalibrated" in r.getMessage())
    assert f"standard 0.85 -> 0.950 (240 promises, {delivered} delivered)" in line

    # the same tables without recalibration: the asked level, an earlier window
    plain = (await HistoryRuntime(engine, BR.rules, clock=lambda: NOW).refresh()).snapshot
    assert plain.level("standard", 0.8) == 0.8
    asked = {"destination": RIO, "order_time": NOW, "options": ["standard"], "confidence": 0.8}
    (served,) = BR.estimate(**asked, history=after).estimates  # type: ignore[arg-type]
    (unrecalibrated,) = BR.estimate(**asked, history=plain).estimates  # type: ignore[arg-type]
    assert served.basis == unrecalibrated.basis == "history"
    assert served.confidence == unrecalibrated.confidence == 0.8  # the stated confidence
    assert served.latest > unrecalibrated.latest


async def test_promises_in_the_window_keep_the_hour_in_the_fingerprint(
    engine: AsyncEngine,
) -> None:
    await history(engine)
    runtime = HistoryRuntime(engine, BR.rules, clock=lambda: NOW, recalibrate=True)
    await runtime.refresh()
    await register_late_promises(engine, runtime, 4)
    async with unit_of_work(engine) as session:  # every order closed: nothing in flight
        await session.execute(sa.update(ORD).values(status="delivered"))
        in_window = await table_state(session, NOW, WINDOW)
        without = await table_state(session, NOW)
        later = await table_state(session, NOW + WINDOW, WINDOW)
    assert in_window.hour == NOW.replace(minute=0)
    assert without.hour is None  # no recalibration: closed orders do not age
    assert later.hour is None  # the window passed every promise by


async def latest_served(database_url: str, *, recalibrate: bool) -> str:
    """POST /v1/estimates on an app (its lifespan builds the history at NOW): the standard
    option's latest date asked at 0.8 for an order at NOW."""
    settings = Settings(
        database_url=database_url,
        rules_file=bundled_rules_path("br_shop.toml"),
        history_refresh_seconds=0,
        recalibrate=recalibrate,
    )
    app = create_app(settings, clock=FixedClock(NOW))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(
                "/v1/estimates",
                json={
                    "destination": {"country": "BR", "postal_code": "20040-020"},
                    "order_time": NOW.isoformat(),
                    "options": ["standard"],
                    "confidence": 0.8,
                },
            )
    assert response.status_code == 200, response.text
    (standard,) = response.json()["estimates"]
    assert (standard["basis"], standard["confidence"]) == ("history", 0.8)
    return str(standard["latest"])


async def test_the_setting_recalibrates_the_served_window(
    database_url: str, engine: AsyncEngine
) -> None:
    await history(engine)
    runtime = HistoryRuntime(engine, BR.rules, clock=lambda: NOW)
    await runtime.refresh()
    await register_late_promises(engine, runtime, 240)
    assert await latest_served(database_url, recalibrate=True) > await latest_served(
        database_url, recalibrate=False
    )
