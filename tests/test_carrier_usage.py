"""Carrier calls buffered into carrier_calls, and the usage summary read back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.carrier_quotas import SqlCallGate
from tracking_service.carrier_usage import SqlCallRecorder, usage_summary
from tracking_service.carriers.usage import CallRecord
from tracking_service.db import unit_of_work
from tracking_service.models import CarrierCall, Order, Shipment
from tracking_service.settings import Settings

DAY = date(2026, 12, 1)
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
_CALLS = CarrierCall.__table__  # type: ignore[attr-defined]


def call(carrier: str, outcome: str = "ok", at: datetime = NOON, numbers: int = 1) -> CallRecord:
    return CallRecord(carrier, "track", outcome, 12.5, numbers, at)


async def stored_calls(engine: AsyncEngine) -> list[tuple[str, str, str, int, datetime]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(_CALLS).order_by(_CALLS.c.id))).all()
    return [(r.carrier, r.endpoint, r.outcome, r.numbers, r.at) for r in rows]


async def test_records_are_written_in_one_batch_when_flushed(engine: AsyncEngine) -> None:
    recorder = SqlCallRecorder(engine)
    recorder.record(call("dhl", numbers=1))
    recorder.record(call("simulated", "http_5xx", numbers=100))
    assert await stored_calls(engine) == []  # nothing written per call
    assert await recorder.flush() == 2
    assert await recorder.flush() == 0
    assert await stored_calls(engine) == [
        ("dhl", "track", "ok", 1, NOON),
        ("simulated", "track", "http_5xx", 100, NOON),
    ]


async def test_close_stops_the_flushing_task_and_writes_the_rest(engine: AsyncEngine) -> None:
    recorder = SqlCallRecorder(engine)
    recorder.start(3600.0, SqlCallGate(engine))
    recorder.record(call("ups"))
    await recorder.close()
    assert [c[0] for c in await stored_calls(engine)] == ["ups"]


async def test_a_failed_flush_keeps_the_records_for_the_next(engine: AsyncEngine) -> None:
    broken = SqlCallRecorder(engine)
    broken._engine = None  # type: ignore[assignment]  # any write fails
    broken.record(call("dhl"))
    assert await broken.flush() == 0
    assert broken.buffered == 1
    broken._engine = engine
    assert await broken.flush() == 1


def test_the_buffer_is_bounded_dropping_the_oldest() -> None:
    recorder = SqlCallRecorder(None, max_buffered=3)  # type: ignore[arg-type]
    for minute in range(5):
        recorder.record(call("dhl", at=NOON + timedelta(minutes=minute)))
    assert recorder.buffered == 3 and recorder.dropped == 2


async def add_shipment(
    engine: AsyncEngine, carrier: str, number: str, due: datetime | None
) -> None:
    async with unit_of_work(engine) as session:
        order = Order(
            order_id=f"order-{carrier}-{number}",
            placed_at=NOON - timedelta(days=2),
            origin="sp",
            option="standard",
            dest_country="US",
            dest_postal_code="10001",
            promise_earliest=DAY,
            promise_latest=DAY,
            promise_confidence=0.9,
            promise_basis="given",
        )
        session.add(order)
        await session.flush()
        assert order.id is not None
        session.add(
            Shipment(
                order_pk=order.id,
                carrier=carrier,
                tracking_number=number,
                tracking_token=f"token-{carrier}-{number}",
                next_poll_at=due,
            )
        )


async def test_usage_summary_per_carrier(engine: AsyncEngine) -> None:
    recorder = SqlCallRecorder(engine)
    for outcome in ("ok", "ok", "not_found", "rate_limited", "http_5xx"):
        recorder.record(call("dhl", outcome))
    recorder.record(call("dhl", "ok", at=NOON - timedelta(days=1)))  # yesterday
    recorder.record(call("dhl", "timeout", at=NOON + timedelta(minutes=5)))  # the last one
    await recorder.flush()
    await SqlCallGate(engine).take_daily("dhl", DAY, 6, 250)
    await add_shipment(engine, "dhl", "D1", NOON - timedelta(minutes=30))
    await add_shipment(engine, "dhl", "D2", NOON - timedelta(minutes=10))
    await add_shipment(engine, "dhl", "D3", NOON + timedelta(hours=1))  # not due yet
    await add_shipment(engine, "dhl", "D4", None)  # never again
    configs = Settings().carrier_configs()

    async with unit_of_work(engine) as session:
        usages = await usage_summary(session, configs, day=DAY, now=NOON)

    assert [u.carrier for u in usages] == list(configs)
    dhl = next(u for u in usages if u.carrier == "dhl")
    assert (dhl.calls, dhl.errors) == (6, 3)  # not_found is not the carrier's error
    assert dhl.outcomes == {"ok": 2, "not_found": 1, "rate_limited": 1, "http_5xx": 1, "timeout": 1}
    assert (dhl.daily_limit, dhl.daily_used, dhl.daily_remaining) == (250, 6, 244)
    assert dhl.last_call_at == NOON + timedelta(minutes=5) and dhl.last_outcome == "timeout"
    assert (dhl.due_shipments, dhl.poll_lag_seconds) == (2, 1800.0)
    ups = next(u for u in usages if u.carrier == "ups")
    assert (ups.calls, ups.errors, ups.daily_limit, ups.daily_remaining) == (0, 0, None, None)
    assert (ups.last_call_at, ups.due_shipments, ups.poll_lag_seconds) == (None, 0, 0.0)
