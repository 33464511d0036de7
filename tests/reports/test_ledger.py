"""Loading the promise ledger from orders, shipments and promise revisions (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.carriers.base import (
    DeliveryWindow,
    Location,
    TrackingEvent,
    TrackingResult,
)
from tracking_service.carriers.status import Status
from tracking_service.db import unit_of_work
from tracking_service.reports.ledger import LaneBasis, LedgerRow, Revision, load_ledger
from tracking_service.tracking import store
from tracking_service.tracking.config import TrackingConfig

from .seed import ORIGIN_ZONES, Parcel, add_history, add_order, add_registered

NOW = datetime(2025, 12, 1, 17, tzinfo=UTC)  # Mon 1 Dec, noon in New York
NOV = date(2025, 11, 1)
NOV_END = date(2025, 11, 30)


def utc(day: int, hour: int, month: int = 11) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


async def load(engine: AsyncEngine, start: date = NOV, end: date = NOV_END) -> list[LedgerRow]:
    async with unit_of_work(engine) as session:
        return await load_ledger(session, start, end, now=NOW, origin_zones=ORIGIN_ZONES)


@contextmanager
def counted(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)


async def test_an_order_with_its_promise_parcels_revisions_and_delivery(
    engine: AsyncEngine,
) -> None:
    lanes = [{"part": "transit", "lane": "usps 11->94", "records": 412}]
    async with unit_of_work(engine) as session:
        await add_order(
            session,
            "A-1",
            utc(3, 15),
            latest=date(2025, 11, 7),
            confidence=0.87,
            detail={"lanes": lanes},
            parcels=[
                Parcel("fedex", cancelled=True),  # not the order's carrier: cancelled
                Parcel("usps", handed_off_at=utc(4, 22), delivered_at=utc(6, 18)),
                # delivered last, at 03:00 UTC on the 8th: still the 7th in San Francisco
                Parcel("ups", handed_off_at=utc(4, 20), delivered_at=utc(8, 3)),
            ],
            revisions=[
                (utc(5, 9), "scan", date(2025, 11, 6), date(2025, 11, 8), "history"),
                (utc(4, 22), "handoff", date(2025, 11, 6), date(2025, 11, 7), "history"),
            ],
        )
    [row] = await load(engine)
    assert row.order_id == "A-1"
    assert row.order_date == date(2025, 11, 3)
    assert (row.option, row.origin, row.carrier) == ("standard", "nyc-queens", "usps")
    assert (row.destination_region, row.postal_prefix, row.lane) == (
        "US-CA",
        "941",
        "nyc-queens -> US-CA",
    )
    assert (row.earliest, row.latest, row.confidence, row.basis) == (
        date(2025, 11, 5),
        date(2025, 11, 7),
        0.87,
        "history",
    )
    assert row.lanes == (LaneBasis("transit", "usps 11->94", 412),)
    assert row.handed_off_at == utc(4, 20)
    assert row.revisions == (
        Revision(utc(4, 22), "handoff", date(2025, 11, 6), date(2025, 11, 7), "history"),
        Revision(utc(5, 9), "scan", date(2025, 11, 6), date(2025, 11, 8), "history"),
    )
    assert row.delivered_on == date(2025, 11, 7)  # the destination's date (dest_tz derived)
    assert (row.outcome, row.due, row.today) == ("on_time", True, date(2025, 12, 1))


async def test_delivered_only_when_every_live_parcel_is(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        await add_order(
            session,
            "half",
            utc(3, 15),
            latest=date(2025, 11, 7),
            parcels=[Parcel(delivered_at=utc(6, 18)), Parcel()],
        )
        await add_order(session, "none-yet", utc(27, 15), latest=date(2025, 12, 3))
        await add_order(
            session,
            "in-tokyo-time",  # a stored zone wins over the one derived from the state
            utc(3, 15),
            latest=date(2025, 11, 7),
            dest_tz="Asia/Tokyo",
            parcels=[Parcel(delivered_at=utc(7, 16))],
        )
    rows = {r.order_id: r for r in await load(engine)}
    assert rows["half"].delivered_on is None and rows["half"].outcome == "late"
    assert rows["none-yet"].carrier is None and rows["none-yet"].outcome == "open"
    assert rows["in-tokyo-time"].delivered_on == date(2025, 11, 8)
    assert rows["in-tokyo-time"].outcome == "late"


async def test_the_range_is_of_the_origins_dates_and_cancelled_orders_are_left_out(
    engine: AsyncEngine,
) -> None:
    async with unit_of_work(engine) as session:
        # 23:30 in New York on 30 Nov is 04:30 UTC on 1 Dec: an order of 30 Nov
        await add_order(session, "late-evening", utc(1, 4, month=12), latest=date(2025, 12, 5))
        # 00:30 in New York on 1 Nov is 04:30 UTC: 1 Nov, the first day
        await add_order(session, "first-hour", utc(1, 4), latest=date(2025, 11, 5))
        await add_order(session, "31-oct", utc(1, 3), latest=date(2025, 11, 5))
        await add_order(
            session, "cancelled", utc(10, 15), latest=date(2025, 11, 14), cancelled=True
        )
    assert [r.order_id for r in await load(engine)] == ["first-hour", "late-evening"]
    assert [r.order_id for r in await load(engine, date(2025, 12, 1), date(2025, 12, 1))] == []
    assert [r.order_id for r in await load(engine, date(2025, 10, 31), date(2025, 10, 31))] == [
        "31-oct"
    ]


async def test_two_statements_whatever_the_number_of_orders(engine: AsyncEngine) -> None:
    written = await add_history(engine, date(2025, 11, 3), 3, now=NOW)
    async with unit_of_work(engine) as session:
        await add_order(
            session,
            "with-revision",
            utc(12, 15),
            latest=date(2025, 11, 17),
            parcels=[Parcel(), Parcel()],
            revisions=[(utc(13, 15), "handoff", date(2025, 11, 15), date(2025, 11, 18), "rules")],
        )
    with counted(engine) as statements:
        rows = await load(engine)
    assert len(rows) == written + 1
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2
    assert sum(len(r.revisions) for r in rows) == 1


async def test_an_order_registered_through_the_back_office(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        await add_registered(session, "R-1", utc(10, 15), "9400111206206406260787")
    [row] = await load(engine)
    assert row.order_id == "R-1"
    assert (row.carrier, row.destination_region, row.postal_prefix) == ("usps", "US-CA", "941")
    assert row.basis == "rules" and row.confidence == 0.85  # the rules' standard option
    assert row.order_date == date(2025, 11, 10) and row.latest > row.order_date
    assert row.delivered_on is None and row.outcome == "late"  # nothing came by 1 Dec


async def test_the_ends_of_the_calendar(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        await add_order(session, "A-1", utc(3, 15), latest=date(2025, 11, 7))
    assert await load(engine, date.min, date.min) == []
    assert await load(engine, date.max, date.max) == []
    assert [r.order_id for r in await load(engine, date.min, date.max)] == ["A-1"]


async def test_an_order_followed_by_the_pipeline(engine: AsyncEngine) -> None:
    """Registered, handed to the carrier and delivered as the worker's store applies the
    carrier's answers: the ledger reads the hand-off, the re-estimates the store wrote and the
    delivery on the destination's calendar."""
    number = "9400111206206406260787"
    async with unit_of_work(engine) as session:
        order = await add_registered(session, "P-1", utc(10, 15), number)
    assert order.id is not None
    placed_latest = order.promise_latest
    newark = Location("Newark", "NJ", "07102", "US")
    answers = [
        (utc(11, 22), Status.IN_TRANSIT, None),  # with the carrier's own date: 13-14 Nov
        # delivered at 05:00 UTC: still the evening before in San Francisco
        (utc(14, 5), Status.DELIVERED, utc(14, 5)),
    ]
    events: list[TrackingEvent] = []
    for i, (when, status, delivered_at) in enumerate(answers):
        events.append(TrackingEvent(when, status, f"X{i}", f"scan {i}", newark, f"k{i}"))
        async with unit_of_work(engine) as session:
            shipment_id = await store.shipment_id_for(session, "usps", number)
            assert shipment_id is not None
            result = TrackingResult(
                carrier="usps",
                tracking_number=number,
                status=status,
                raw_status_code=f"X{i}",
                raw_status_description=f"scan {i}",
                events=tuple(events),
                estimated_delivery=DeliveryWindow(date(2025, 11, 13), date(2025, 11, 14)),
                delivered_at=delivered_at,
            )
            await store.apply_outcome(
                session,
                shipment_id,
                result,
                now=when + timedelta(minutes=5),
                config=TrackingConfig(),
                base_url="http://127.0.0.1:8000",
            )
    [row] = await load(engine)
    assert row.handed_off_at == utc(11, 22)
    assert row.delivered_on == date(2025, 11, 13)
    assert row.latest == placed_latest
    assert row.outcome == ("on_time" if date(2025, 11, 13) <= placed_latest else "late")
    # the re-estimate the store wrote when the carrier gave its date at the hand-off
    assert [(r.latest, r.source) for r in row.revisions] == [(date(2025, 11, 14), "carrier")]
    assert row.revisions[0].at >= utc(11, 22)
