"""Answers applied together (`Tracker.apply_many`, the poll pass's groups) against the same
answers applied one shipment per transaction: the same rows, in a handful of statements, and a
group that fails falls back to one shipment at a time (both backends)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tracking_service.carriers.base import FailureKind, TrackingFailure, TrackingOutcome
from tracking_service.carriers.sim.number import Scenario, encode
from tracking_service.clock import FixedClock
from tracking_service.db import create_engine, unit_of_work
from tracking_service.models import DeliveryRecord, Order, PromiseRevision, Shipment
from tracking_service.services import Services
from tracking_service.tracking.jobs import Tracker, poll_pass
from tracking_service.tracking.state import ShipmentUpdate

from .worker_helpers import (
    LABELLED,
    ORD,
    T0,
    CountingTransport,
    E,
    S,
    X,
    rows,
    runtime,
    seed,
    shipment,
    sim_numbers,
)

D = DeliveryRecord.__table__  # type: ignore[attr-defined]
R = PromiseRevision.__table__  # type: ignore[attr-defined]
LONG_AGO = T0 - timedelta(days=12)  # labelled then: delivered by T0
OUTBOX = tuple(c.name for c in X.c if c.name != "id")


def mixed_numbers() -> dict[str, str]:
    normal = sim_numbers(5)
    return {
        "scans": normal[0],  # new scans
        "quiet": normal[1],  # answered before: nothing new
        "twice": normal[2],  # an older and a newer answer in one group
        "first": normal[3],  # two parcels of one order
        "second": normal[4],
        "delivered": encode(Scenario.NORMAL, LONG_AGO, 90),
        "failed": encode(Scenario.DELAYED, LABELLED, 91),
        "hold": encode(Scenario.CUSTOMS_HOLD, LABELLED, 92),
    }


async def seed_mixed(engine: AsyncEngine, numbers: dict[str, str]) -> dict[str, int]:
    """The shipments of `numbers` (one order each, but `first` and `second` share one), with
    tokens that do not depend on chance, so two databases seeded so hold the same rows."""
    ids = dict(zip(numbers, await seed(engine, list(numbers.values())), strict=True))
    async with unit_of_work(engine) as session:
        await session.execute(
            sa.update(S).values(tracking_token=sa.literal("token-") + sa.cast(S.c.id, sa.String))
        )
        (second_order,) = (
            await session.execute(sa.select(S.c.order_pk).where(S.c.id == ids["second"]))
        ).one()
        (first_order,) = (
            await session.execute(sa.select(S.c.order_pk).where(S.c.id == ids["first"]))
        ).one()
        await session.execute(
            sa.update(S).where(S.c.id == ids["second"]).values(order_pk=first_order)
        )
        await session.execute(sa.delete(ORD).where(ORD.c.id == second_order))
    return ids


Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(engine: AsyncEngine) -> Snapshot:
    """Every row the pipeline writes, in a stable order (stored instants are the clock's)."""
    shipments = list(S.c)
    orders = list(ORD.c)
    events = [c for c in E.c if c.name != "id"]
    outbox = [X.c[name] for name in OUTBOX]
    records = [c for c in D.c if c.name not in {"id", "created_at"}]  # created: the wall clock
    revisions = [c for c in R.c if c.name != "id"]
    return {
        "shipments": [tuple(r) for r in await rows(engine, sa.select(*shipments).order_by(S.c.id))],
        "orders": [tuple(r) for r in await rows(engine, sa.select(*orders).order_by(ORD.c.id))],
        "events": sorted(tuple(r) for r in await rows(engine, sa.select(*events).order_by(E.c.id))),
        "outbox": [
            tuple(r)
            for r in await rows(engine, sa.select(*outbox).order_by(X.c.stream, X.c.sequence))
        ],
        "records": sorted(tuple(r) for r in await rows(engine, sa.select(*records))),
        "revisions": sorted(tuple(r) for r in await rows(engine, sa.select(*revisions))),
    }


async def answers_for(
    services: Services, clock: FixedClock, numbers: dict[str, str]
) -> dict[str, TrackingOutcome]:
    """The carrier's answers: `twice` and `quiet` also as they were 20 hours earlier."""
    adapter = services.carriers.adapter("simulated")
    clock.advance(timedelta(hours=-20))
    early = await adapter.track([numbers["twice"], numbers["quiet"]])
    clock.advance(timedelta(hours=20))
    now = await adapter.track(list(numbers.values()))
    found: dict[str, TrackingOutcome] = {name: now[number] for name, number in numbers.items()}
    found["twice-early"] = early[numbers["twice"]]
    found["quiet"] = early[numbers["quiet"]]
    found["failed"] = TrackingFailure(
        "simulated", numbers["failed"], FailureKind.UNAVAILABLE, "simulated: 503"
    )
    return found


def group(ids: dict[str, int], answers: dict[str, TrackingOutcome]) -> list[tuple[int, Any]]:
    """The group applied at T0 + 1 h, in the order a poll pass would meet it (plus an answer
    for a shipment that is gone)."""
    names = ["scans", "twice-early", "quiet", "second", "delivered", "failed", "first", "twice"]
    names.append("hold")
    pairs: list[tuple[int, Any]] = [(ids[n.removesuffix("-early")], answers[n]) for n in names]
    pairs.insert(3, (max(ids.values()) + 100, answers["scans"]))
    return pairs


async def run_mixed(
    url: str, engine: AsyncEngine, *, together: bool
) -> tuple[Snapshot, list[ShipmentUpdate | None]]:
    numbers = mixed_numbers()
    ids = await seed_mixed(engine, numbers)
    clock = FixedClock(T0)
    async with runtime(url, clock, CountingTransport(clock)) as services:
        tracker = Tracker(services)
        answers = await answers_for(services, clock, numbers)
        await tracker.apply_now(ids["quiet"], answers["quiet"], release_claim=True)
        clock.advance(timedelta(hours=1))
        pairs = group(ids, answers)
        if together:
            async with unit_of_work(services.engine) as session:
                updates = await tracker.apply_many(session, pairs)
        else:
            updates = [await tracker.apply_now(sid, o, release_claim=True) for sid, o in pairs]
    return await snapshot(engine), updates


@pytest.fixture
def other_database_url(make_database: Callable[[], str]) -> str:
    """A second fresh database of the same backend."""
    return make_database()


async def test_a_group_writes_what_one_shipment_at_a_time_writes(
    database_url: str, engine: AsyncEngine, other_database_url: str
) -> None:
    together, updates = await run_mixed(database_url, engine, together=True)
    other_url = other_database_url
    other = create_engine(other_url)
    try:
        one_by_one, singles = await run_mixed(other_url, other, together=False)
    finally:
        await other.dispose()
    assert together == one_by_one
    assert [u is None for u in updates] == [u is None for u in singles]
    assert updates[3] is None  # the shipment that is gone
    assert updates == singles

    by_id = {u.shipment_id: u for u in updates if u is not None}
    statuses = {row[0]: row for row in together["shipments"]}
    assert len(statuses) == 8
    # what the mix covers: new scans, nothing new, a delivery, a failure, a shared order
    applied = [u for u in updates if u is not None]
    assert any(u.new_events for u in applied)
    quiet = applied[2]
    assert not quiet.visible and set(quiet.shipment_changes) == {"last_polled_at", "next_poll_at"}
    assert any(u.after.status == "delivered" and u.messages for u in applied)
    assert any(u.after.poll_failures == 1 for u in applied)
    first, second = by_id[applied[6].shipment_id], by_id[applied[3].shipment_id]
    assert first.order_pk == second.order_pk
    assert len(together["records"]) == 1  # the delivery record
    assert together["revisions"]  # re-estimates of the ledger, the same either way
    streams: dict[str, list[int]] = {}
    for row in together["outbox"]:
        streams.setdefault(row[OUTBOX.index("stream")], []).append(row[OUTBOX.index("sequence")])
    assert len(streams) > 8
    for sequences in streams.values():
        assert sequences == list(range(1, len(sequences) + 1))


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements sent through `engine` meanwhile (an executemany counts once)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


async def test_a_group_costs_a_handful_of_statements_and_nothing_new_one_update(
    database_url: str, engine: AsyncEngine
) -> None:
    numbers = sim_numbers(40)
    ids = await seed(engine, numbers)
    clock = FixedClock(T0)
    async with runtime(database_url, clock, CountingTransport(clock)) as services:
        tracker = Tracker(services)
        answers = await services.carriers.adapter("simulated").track(numbers)
        pairs = [(sid, answers[n]) for sid, n in zip(ids, numbers, strict=True)]
        with statements(services.engine) as first:
            async with unit_of_work(services.engine) as session:
                updates = await tracker.apply_many(session, pairs)
        assert all(u is not None and u.new_events and u.messages for u in updates)
        # lock orders, lock shipments, load keys; events, shipments (one per set of columns
        # changed), orders, outbox, the ledger's revisions (each hand-off re-estimated): a
        # handful, not 40 times anything
        writes = [s for s in first if s in {"INSERT", "UPDATE"}]
        assert len(first) <= 15, first
        assert all(u is not None and u.revision is not None for u in updates)
        assert writes.count("INSERT") == 3
        clock.advance(timedelta(minutes=5))
        with statements(services.engine) as again:
            async with unit_of_work(services.engine) as session:
                updates = await tracker.apply_many(session, pairs)
        assert all(u is not None and not u.visible for u in updates)
        loads = 3
        assert [s for s in again[loads:] if s not in {"COMMIT", "BEGIN"}] == ["UPDATE"]
    got = await rows(engine, sa.select(S.c.last_polled_at, S.c.claimed_by).where(S.c.id.in_(ids)))
    assert got == [(T0 + timedelta(minutes=5), None)] * 40


class FailingTracker(Tracker):
    """A tracker whose delivery hook fails for one shipment (a shipment that cannot be
    applied: its whole group's transaction fails)."""

    def __init__(self, services: Services, bad: int) -> None:
        super().__init__(services)
        self.bad = bad

    async def on_delivered(self, session: AsyncSession, order: Order, shipment: Shipment) -> None:
        if shipment.id == self.bad:
            raise RuntimeError("cannot record this one")
        await super().on_delivered(session, order, shipment)


async def test_one_shipment_that_cannot_be_applied_blocks_no_other(
    database_url: str, engine: AsyncEngine
) -> None:
    clock = FixedClock(T0)
    transport = CountingTransport(clock)
    numbers = [encode(Scenario.NORMAL, LONG_AGO, serial) for serial in range(6)]
    ids = await seed(engine, numbers)
    bad = ids[2]
    async with runtime(database_url, clock, transport) as services:
        report = await poll_pass(services, tracker=FailingTracker(services, bad))
    assert report.claimed == 6 and report.errors == 1 and report.changed == 5
    for sid in ids:
        row = await shipment(engine, sid)
        if sid == bad:  # untouched: still leased, so polled again when the lease ends
            assert row.status == "pending" and row.claimed_by is not None
            assert row.next_poll_at == T0 + timedelta(seconds=120)
        else:
            assert row.status == "delivered" and row.claimed_by is None
    assert {sid for (sid,) in await rows(engine, sa.select(E.c.shipment_id))} == set(ids) - {bad}
    records = await rows(engine, sa.select(D.c.external_id))
    assert sorted(records) == sorted((f"shipment:{i}",) for i in ids if i != bad)
