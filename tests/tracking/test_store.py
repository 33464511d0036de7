"""The worker's database edge: claims and leases, applying answers idempotently (both backends)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.carriers.base import TrackingResult
from tracking_service.clock import FixedClock
from tracking_service.db import create_engine, unit_of_work
from tracking_service.tracking import store
from tracking_service.tracking.jobs import Tracker
from tracking_service.tracking.store import claim_due

from .worker_helpers import T0, CountingTransport, E, S, X, rows, runtime, seed, sim_numbers


async def test_a_claim_takes_the_oldest_due_rows_and_leases_them(engine: AsyncEngine) -> None:
    numbers = sim_numbers(7)
    ids = await seed(engine, numbers[:5])
    for i, sid in enumerate(ids):  # due one minute apart, oldest first
        async with unit_of_work(engine) as session:
            await session.execute(
                sa.update(S)
                .where(S.c.id == sid)
                .values(next_poll_at=T0 - timedelta(minutes=10 - i))
            )
    (later,) = await seed(engine, numbers[5:6], due=T0 + timedelta(hours=1))
    (final,) = await seed(engine, numbers[6:7])
    async with unit_of_work(engine) as session:
        await session.execute(sa.update(S).where(S.c.id == final).values(next_poll_at=None))

    lease = T0 + timedelta(minutes=2)
    async with unit_of_work(engine) as session:
        first = await claim_due(session, worker="w1", due_by=T0, lease_until=lease, limit=3)
    assert [c.id for c in first] == ids[:3]
    claimed = await rows(engine, sa.select(S).where(S.c.id.in_(ids[:3])))
    assert {(r.claimed_by, r.claimed_until, r.next_poll_at) for r in claimed} == {
        ("w1", lease, lease)
    }
    async with unit_of_work(engine) as session:
        second = await claim_due(session, worker="w2", due_by=T0, lease_until=lease, limit=3)
        third = await claim_due(session, worker="w2", due_by=T0, lease_until=lease, limit=3)
    assert [c.id for c in second] == ids[3:]  # neither the leased nor the later nor the final
    assert third == []
    # when the lease ends the rows are due again, for anyone
    async with unit_of_work(engine) as session:
        again = await claim_due(
            session, worker="w3", due_by=lease, lease_until=lease + timedelta(minutes=2), limit=10
        )
    assert {c.id for c in again} == set(ids)
    assert later not in {c.id for c in again} and final not in {c.id for c in again}


@pytest.fixture
def other_database_url(make_database: Callable[[], str]) -> str:
    """A second fresh database of the same backend."""
    return make_database()


async def _apply_in_turn(
    url: str, engine: AsyncEngine, number: str, turns: tuple[str, ...]
) -> tuple[tuple[object, ...], list[tuple[str, object]], list[tuple[str, int]]]:
    """Seed `number` at T0 - 30 h, take the simulated carrier's answer then ("early") and 30 h
    later ("late"), apply them in `turns` order; the shipment's state, events and outbox."""
    clock = FixedClock(T0 - timedelta(hours=30))
    (sid,) = await seed(engine, [number], now=clock.now())
    async with runtime(url, clock, CountingTransport(clock)) as services:
        adapter = services.carriers.adapter("simulated")
        answers = {"early": (await adapter.track([number]))[number]}
        clock.advance(timedelta(hours=30))
        answers["late"] = (await adapter.track([number]))[number]
        assert all(isinstance(o, TrackingResult) for o in answers.values())
        tracker = Tracker(services)
        for turn in turns:
            await tracker.apply_now(sid, answers[turn])
    (row,) = await rows(engine, sa.select(S).where(S.c.id == sid))
    state = tuple(
        getattr(row, c)
        for c in (
            "status",
            "raw_status_code",
            "handed_off_at",
            "delivered_at",
            "last_event_at",
            "estimate_earliest",
            "estimate_latest",
            "estimate_source",
            "delayed",
            "delay_reason",
        )
    )
    events = sorted((k, st) for k, st in await rows(engine, sa.select(E.c.dedupe_key, E.c.status)))
    outbox = [(st, seq) for st, seq in await rows(engine, sa.select(X.c.stream, X.c.sequence))]
    return state, events, outbox


async def test_the_same_answer_twice_and_answers_out_of_order_leave_one_state(
    database_url: str, engine: AsyncEngine, other_database_url: str
) -> None:
    (number,) = sim_numbers(1)
    in_order = await _apply_in_turn(database_url, engine, number, ("early", "late"))
    other = other_database_url
    other_engine = create_engine(other)
    try:
        shuffled = await _apply_in_turn(
            other, other_engine, number, ("late", "early", "late", "early")
        )
    finally:
        await other_engine.dispose()
    assert in_order[0][0] != "pending"
    assert in_order[0] == shuffled[0]  # the same state
    assert in_order[1] == shuffled[1]  # the same events, each stored once
    for _state, _events, outbox in (in_order, shuffled):
        streams: dict[str, list[int]] = {}
        for stream, seq in outbox:
            streams.setdefault(stream, []).append(seq)
        for seqs in streams.values():  # no row twice: sequences 1..n per stream
            assert sorted(seqs) == list(range(1, len(seqs) + 1))
    # the newest answer first leaves nothing for the older ones to say
    assert len(shuffled[2]) <= len(in_order[2])


async def test_shipment_ids_by_number_and_a_missing_shipment(
    database_url: str, engine: AsyncEngine
) -> None:
    (number,) = sim_numbers(1)
    (sid,) = await seed(engine, [number])
    async with unit_of_work(engine) as session:
        assert await store.shipment_id_for(session, "simulated", number) == sid
        assert await store.shipment_id_for(session, "ups", number) is None
        assert await store.lock_and_load(session, sid + 1000, base_url="http://x") is None
        loaded = await store.lock_and_load(session, sid, base_url="http://x/")
    assert loaded is not None
    assert loaded.shipment.tracking_url.startswith("http://x/t/")
    assert loaded.order.dest_tz == "America/Chicago"
    assert dict(loaded.order.shipment_statuses) == {sid: "pending"}


async def test_the_city_of_the_newest_scan_is_loaded(
    database_url: str, engine: AsyncEngine
) -> None:
    """The delay sentence of webhook payloads names where the parcel was last seen."""
    (number,) = sim_numbers(1)
    (sid,) = await seed(engine, [number])
    newest = T0 - timedelta(hours=1)
    async with unit_of_work(engine) as session:
        await session.execute(
            sa.insert(E),
            [
                {
                    "shipment_id": sid,
                    "dedupe_key": "a",
                    "occurred_at": newest - timedelta(days=1),
                    "status": "in_transit",
                    "city": "Sao Paulo",
                    "created_at": T0,
                },
                {
                    "shipment_id": sid,
                    "dedupe_key": "b",
                    "occurred_at": newest,
                    "status": "in_transit",
                    "city": "Campinas",
                    "created_at": T0,
                },
            ],
        )
        await session.execute(
            sa.update(S).where(S.c.id == sid).values(status="in_transit", last_event_at=newest)
        )
    async with unit_of_work(engine) as session:
        loaded = await store.lock_and_load(session, sid, base_url="http://x/")
    assert loaded is not None and loaded.shipment.last_event_city == "Campinas"
