"""The worker's passes on both backends: poll, a failing carrier, delay checks, expiry."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.carriers.sim.number import Scenario
from tracking_service.clock import FixedClock, ScaledClock
from tracking_service.db import unit_of_work
from tracking_service.models import DeliveryRecord
from tracking_service.services import SHARED_JOBS, open_services
from tracking_service.tracking.jobs import (
    CHECK_JOB,
    EXPIRE_JOB,
    POLL_JOB,
    add_tracking_jobs,
    check_pass,
    expiry_pass,
    poll_pass,
)

from .worker_helpers import (
    ORD,
    T0,
    CountingTransport,
    E,
    S,
    X,
    rows,
    runtime,
    seed,
    settings_for,
    shipment,
    sim_numbers,
)


async def test_a_pass_polls_every_due_shipment_once_and_plans_the_next(
    database_url: str, engine: AsyncEngine
) -> None:
    clock = FixedClock(T0)
    transport = CountingTransport(clock)
    numbers = sim_numbers(30)
    ids = await seed(engine, numbers)
    (later,) = await seed(engine, [sim_numbers(31)[30]], due=T0 + timedelta(hours=1))
    async with runtime(database_url, clock, transport) as services:
        report = await poll_pass(services, batch=7, concurrency=2)
        assert report.claimed == 30 and report.results == 30 and report.failures == 0
        assert report.changed == 30
        assert transport.asked == {n: 1 for n in numbers}
        again = await poll_pass(services)  # nothing due any more: nothing asked
        assert again.claimed == 0
    got = await rows(engine, sa.select(S).where(S.c.id.in_(ids)))
    assert {r.status for r in got} - {"in_transit", "out_for_delivery", "info_received"} == set()
    assert all(r.claimed_by is None and r.claimed_until is None for r in got)
    assert all(r.last_polled_at == T0 and r.next_poll_at > T0 for r in got)
    assert all(r.estimate_latest is not None for r in got)
    assert (await shipment(engine, later)).last_polled_at is None
    events = await rows(engine, sa.select(E.c.shipment_id))
    assert {sid for (sid,) in events} == set(ids)
    kinds = {t for (t,) in await rows(engine, sa.select(X.c.event_type))}
    assert {"shipment.status_changed", "order.status_changed"} <= kinds
    orders = await rows(
        engine,
        sa.select(ORD.c.status).where(ORD.c.order_id.in_([f"O-simulated-{n}" for n in numbers])),
    )
    assert {s for (s,) in orders} - {"in_transit", "out_for_delivery", "info_received"} == set()


def failing_dhl() -> tuple[list[int], httpx.MockTransport]:
    """DHL answering 429, then 503, then garbage, in turn."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        turn = len(calls) % 3
        if turn == 1:
            return httpx.Response(429, headers={"Retry-After": "60"}, json={"title": "slow down"})
        if turn == 2:
            return httpx.Response(503, text="upstream unavailable")
        return httpx.Response(200, content=b"<html>not json{", headers={"content-type": "json"})

    return calls, httpx.MockTransport(handler)


async def test_a_failing_carrier_backs_off_while_others_keep_flowing(
    database_url: str, engine: AsyncEngine
) -> None:
    clock = FixedClock(T0)
    calls, dhl = failing_dhl()
    transport = CountingTransport(clock, other=lambda r: dhl.handle_request(r))
    sim = await seed(engine, sim_numbers(5))
    dhl_ids = await seed(
        engine, [f"JD01460000345678{i}" for i in range(6)], carrier="dhl", status="in_transit"
    )
    waits: list[timedelta] = []
    async with runtime(database_url, clock, transport) as services:
        for _ in range(4):  # an hour and more of failures
            report = await poll_pass(services)
            assert report.errors == 0
            rows_now = [await shipment(engine, i) for i in dhl_ids]
            assert all(r.status == "in_transit" and r.last_poll_error for r in rows_now)
            waits.append(min(r.next_poll_at for r in rows_now) - clock.now())
            clock.advance(max(r.next_poll_at for r in rows_now) - clock.now())
    assert calls  # DHL was asked, and answered badly
    dhl_rows = [await shipment(engine, i) for i in dhl_ids]
    assert all(r.poll_failures >= 3 for r in dhl_rows)
    assert all(w >= timedelta(seconds=60) for w in waits)  # at least what 429 asked
    assert waits == sorted(waits) and waits[-1] > waits[0]  # backing off
    sim_rows = [await shipment(engine, i) for i in sim]
    assert all(r.status != "pending" and r.poll_failures == 0 for r in sim_rows)
    assert all(r.last_poll_error is None for r in sim_rows)
    assert max(r.last_polled_at for r in sim_rows) > T0  # polled again on their cadence


async def test_the_check_pass_finds_a_missed_promise_without_a_scan(
    database_url: str, engine: AsyncEngine
) -> None:
    clock = FixedClock(T0)
    transport = CountingTransport(clock)
    (late,) = await seed(engine, sim_numbers(1), promise_latest=(T0 - timedelta(days=2)).date())
    (fine,) = await seed(engine, [sim_numbers(2)[1]])
    async with unit_of_work(engine) as session:  # both in transit, far from their next poll
        await session.execute(
            sa.update(S)
            .where(S.c.id.in_([late, fine]))
            .values(
                status="in_transit",
                handed_off_at=T0 - timedelta(hours=20),
                last_event_at=T0 - timedelta(hours=2),
                next_poll_at=T0 + timedelta(hours=3),
            )
        )
    async with runtime(database_url, clock, transport) as services:
        report = await check_pass(services)
        assert report.changed == 1
        again = await check_pass(services)
        assert again.changed == 0  # once flagged, not again
    assert transport.asked == {}
    row = await shipment(engine, late)
    assert row.delayed and row.delay_reason == "promise_missed"
    assert row.next_poll_at == T0 + timedelta(hours=3)  # the polling plan is left alone
    assert not (await shipment(engine, fine)).delayed
    delayed = await rows(
        engine, sa.select(X.c.shipment_id).where(X.c.event_type == "shipment.delayed")
    )
    assert delayed == [(late,)]


async def test_the_expiry_pass_expires_what_the_carrier_never_saw(
    database_url: str, engine: AsyncEngine
) -> None:
    clock = FixedClock(T0)
    transport = CountingTransport(clock)
    old = T0 - timedelta(days=31)
    (expired,) = await seed(engine, sim_numbers(1, Scenario.LOST), created_at=old)
    (young,) = await seed(engine, [sim_numbers(2)[1]], created_at=T0 - timedelta(days=3))
    async with runtime(database_url, clock, transport) as services:
        report = await expiry_pass(services)
        assert report.checked == 1 and report.changed == 1
        assert (await expiry_pass(services)).checked == 0
    row = await shipment(engine, expired)
    assert row.status == "expired" and row.next_poll_at is None and row.expired_at == T0
    assert (await shipment(engine, young)).status == "pending"


async def test_the_jobs_are_shared_jobs_at_their_intervals(
    database_url: str, engine: AsyncEngine
) -> None:
    assert add_tracking_jobs in SHARED_JOBS
    clock = FixedClock(T0)
    async with runtime(
        database_url, clock, CountingTransport(clock), expire_every_seconds=0
    ) as services:
        scheduler = AsyncIOScheduler(timezone="UTC")
        assert add_tracking_jobs(scheduler, services)
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {POLL_JOB, CHECK_JOB}
        assert EXPIRE_JOB not in jobs
        assert jobs[POLL_JOB].trigger.interval == timedelta(seconds=2)


async def test_a_carriers_retry_after_is_real_time_on_a_fast_clock(
    database_url: str, engine: AsyncEngine
) -> None:
    real = FixedClock(T0)
    clock = ScaledClock(1440, T0, real=real)  # a simulated day a real minute

    def slow_down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "60"}, json={"title": "slow down"})

    transport = CountingTransport(real, other=slow_down)
    (sid,) = await seed(engine, ["JD014600003456789"], carrier="dhl", status="in_transit")
    async with open_services(
        settings_for(database_url), run_jobs=False, clock=clock, carrier_transport=transport
    ) as services:
        report = await poll_pass(services)
    assert report.failures_by_kind == {"rate_limited": 1}
    row = await shipment(engine, sid)
    # 60 real seconds are a simulated day: the carrier is not asked again before
    assert row.next_poll_at - T0 >= timedelta(days=1)


async def test_a_delivered_parcel_becomes_a_delivery_record(
    database_url: str, engine: AsyncEngine
) -> None:
    clock = FixedClock(T0 + timedelta(days=12))  # long after every normal parcel arrived
    transport = CountingTransport(clock)
    ids = await seed(engine, sim_numbers(3), now=clock.now())
    async with runtime(database_url, clock, transport) as services:
        assert (await poll_pass(services)).results == 3
    got = [await shipment(engine, i) for i in ids]
    assert all(r.status == "delivered" and r.next_poll_at is None for r in got)
    table = DeliveryRecord.__table__  # type: ignore[attr-defined]
    records = await rows(engine, sa.select(table.c.external_id, table.c.source))
    assert sorted(records) == sorted((f"shipment:{i}", "tracking") for i in ids)
    kinds = [t for (t,) in await rows(engine, sa.select(X.c.event_type))]
    assert kinds.count("shipment.delivered") == 3
