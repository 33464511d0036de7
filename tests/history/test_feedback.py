"""What tracking feeds the history model: a delivered shipment's record, the parcels in flight
(both backends)."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tracking_service.db import session_factory, unit_of_work
from tracking_service.estimator.records import Delivery
from tracking_service.estimator.rules import load_rules
from tracking_service.history import store as history_store
from tracking_service.models import Order, Shipment
from tracking_service.settings import bundled_rules_path
from tracking_service.tracking.feedback import (
    SOURCE,
    parcels_in_flight,
    record_delivery,
)

RULES = load_rules(bundled_rules_path("br_shop.toml"))
PLACED = datetime(2024, 3, 4, 13, 30, tzinfo=UTC)


def order_row(n: int, **values: Any) -> Order:
    fields: dict[str, Any] = {
        "order_id": f"shop-{n}",
        "placed_at": PLACED,
        "origin": "sp-mooca",
        "option": "standard",
        "dest_country": "BR",
        "dest_postal_code": "20040-020",
        "dest_subdivision": "RJ",
        "dest_city": "Rio de Janeiro",
        "customer_name": "Ana",
        "promise_earliest": date(2024, 3, 7),
        "promise_latest": date(2024, 3, 11),
        "promise_confidence": 0.9,
        "promise_basis": "given",
    }
    fields.update(values)
    return Order(**fields)


def shipment_row(order: Order, n: int, **values: Any) -> Shipment:
    assert order.id is not None
    fields: dict[str, Any] = {
        "order_pk": order.id,
        "carrier": "simulated",
        "tracking_number": f"SIM{n:08d}",
        "tracking_token": secrets.token_urlsafe(24),
        "status": "in_transit",
    }
    fields.update(values)
    return Shipment(**fields)


async def add(session: AsyncSession, row: Order | Shipment) -> Any:
    session.add(row)
    await session.flush()
    return row


async def delivered_pair(session: AsyncSession, n: int = 1, **order: Any) -> tuple[Order, Shipment]:
    o = await add(session, order_row(n, **order))
    s = await add(
        session,
        shipment_row(
            o,
            n,
            status="delivered",
            handed_off_at=PLACED + timedelta(hours=20),
            delivered_at=PLACED + timedelta(days=3, hours=2),
        ),
    )
    return o, s


async def tracking_records(engine: AsyncEngine) -> list[Delivery]:
    async with unit_of_work(engine) as session:
        return await history_store.load_deliveries(session, source=SOURCE)


async def test_a_delivered_shipment_becomes_a_record_with_its_promise(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        o, s = await delivered_pair(session)
        assert await record_delivery(session, o, s, RULES)
    (record,) = await tracking_records(engine)
    assert record == Delivery(
        key=f"shipment:{s.id}",
        order_time=PLACED,
        handoff_time=PLACED + timedelta(hours=20),
        delivered_at=PLACED + timedelta(days=3, hours=2),
        origin_country="BR",
        origin_subdivision="SP",
        origin_postal_code="03178-200",
        dest_country="BR",
        dest_subdivision="RJ",
        dest_postal_code="20040-020",
        # the label of the option it was sold as, so it teaches that option
        carrier="correios",
        service="SEDEX",
        promised_date=date(2024, 3, 11),
        origin_id="sp-mooca",
        origin_tz="America/Sao_Paulo",
        dest_tz="America/Sao_Paulo",
    )


async def test_recording_twice_stores_one_record(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        o, s = await delivered_pair(session)
        assert await record_delivery(session, o, s, RULES)
        assert not await record_delivery(session, o, s, RULES)
    async with unit_of_work(engine) as session:
        assert not await record_delivery(session, o, s, RULES)
    assert len(await tracking_records(engine)) == 1


async def test_record_delivery_never_commits(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        o, s = await delivered_pair(session)
        assert await record_delivery(session, o, s, RULES)
        assert session.in_transaction()
        await session.rollback()
    assert await tracking_records(engine) == []


async def test_the_subdivision_comes_from_the_postal_code_when_not_stored(
    engine: AsyncEngine,
) -> None:
    async with unit_of_work(engine) as session:
        o, s = await delivered_pair(session, dest_subdivision=None, dest_postal_code="30130-000")
        assert await record_delivery(session, o, s, RULES)
    (record,) = await tracking_records(engine)
    assert (record.dest_subdivision, record.dest_tz) == ("MG", "America/Sao_Paulo")


async def test_an_origin_the_rules_lost_teaches_nothing(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        o, s = await delivered_pair(session, origin="closed-warehouse")
        assert not await record_delivery(session, o, s, RULES)
    assert await tracking_records(engine) == []


async def test_an_option_the_rules_lost_keeps_the_shipments_carrier(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        o, s = await delivered_pair(session, option="retired")
        assert await record_delivery(session, o, s, RULES)
    (record,) = await tracking_records(engine)
    assert (record.carrier, record.service) == ("simulated", None)


async def test_a_shipment_without_its_delivery_instant_teaches_nothing(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async with unit_of_work(engine) as session:
        o = await add(session, order_row(1))
        s = await add(session, shipment_row(o, 1, status="delivered"))
        assert not await record_delivery(session, o, s, RULES)
    assert await tracking_records(engine) == []
    assert "no delivery instant" in caplog.text


async def test_parcels_in_flight(engine: AsyncEngine) -> None:
    """Open orders without shipments and live shipments are in flight; cancelled, delivered,
    returned and expired parcels are not; a hand-off after `now` is not known yet."""
    now = PLACED + timedelta(days=2)
    async with unit_of_work(engine) as session:
        waiting = await add(session, order_row(1))
        travelling = await add(session, order_row(2))
        moving = await add(
            session, shipment_row(travelling, 2, handed_off_at=PLACED + timedelta(hours=20))
        )
        labelled = await add(
            session, shipment_row(travelling, 3, status="pending", handed_off_at=None)
        )
        later = await add(
            session,
            shipment_row(
                travelling, 4, status="info_received", handed_off_at=now + timedelta(hours=1)
            ),
        )
        await add(session, shipment_row(travelling, 5, status="returned_to_sender"))
        await add(
            session,
            shipment_row(travelling, 6, status="pending", cancelled_at=PLACED + timedelta(hours=2)),
        )
        cancelled = await add(
            session, order_row(7, status="cancelled", cancelled_at=PLACED + timedelta(hours=1))
        )
        await add(session, shipment_row(cancelled, 7))
        split = await add(session, order_row(8, status="partially_delivered"))
        await add(
            session,
            shipment_row(split, 8, status="delivered", delivered_at=PLACED + timedelta(days=1)),
        )
        rest = await add(session, shipment_row(split, 9, handed_off_at=PLACED + timedelta(hours=9)))
        done = await add(session, order_row(10, status="delivered"))
        await add(
            session,
            shipment_row(done, 10, status="delivered", delivered_at=PLACED + timedelta(days=1)),
        )
        only_expired = await add(session, order_row(11, status="expired"))
        await add(session, shipment_row(only_expired, 11, status="expired"))
        await add(session, order_row(12, placed_at=now + timedelta(minutes=1)))
    async with unit_of_work(engine) as session:
        found = await parcels_in_flight(session, RULES, now)
    seen = {p.key: p.parcel.handoff_time for p in found}
    assert seen == {
        f"order:{waiting.id}": None,
        f"shipment:{moving.id}": PLACED + timedelta(hours=20),
        f"shipment:{labelled.id}": None,
        f"shipment:{later.id}": None,
        f"shipment:{rest.id}": PLACED + timedelta(hours=9),
    }
    parcel = next(p for p in found if p.key == f"shipment:{moving.id}")
    assert (parcel.carrier, parcel.service) == ("correios", "SEDEX")
    assert parcel.parcel.order_time == PLACED
    assert parcel.parcel.query.origin_id == "sp-mooca"
    assert parcel.parcel.query.dest_subdivision == "RJ"
    assert (parcel.parcel.origin_tz, parcel.parcel.dest_tz) == ("America/Sao_Paulo",) * 2
