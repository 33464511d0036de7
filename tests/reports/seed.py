"""Orders for the report's database tests, written as the service writes them: through the
registration functions (`add_registered`) or as model rows (`add_order`) with shipments
handed off and delivered at chosen instants, and promise revisions."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.db import unit_of_work
from tracking_service.estimator.estimate import Estimator
from tracking_service.estimator.rules import load_rules
from tracking_service.models.tracking import Order, PromiseRevision, Shipment
from tracking_service.settings import bundled_rules_path
from tracking_service.tracking.registration import (
    DestinationInput,
    OrderInput,
    ShipmentInput,
    create_order,
    create_shipment,
)

ESTIMATOR = Estimator(load_rules(bundled_rules_path("us_shop.toml")))
ORIGIN_ZONES = {o.id: o.time_zone for o in ESTIMATOR.rules.origins}
_serial = itertools.count(1)


@dataclass(frozen=True)
class Parcel:
    carrier: str = "usps"
    handed_off_at: datetime | None = None
    delivered_at: datetime | None = None
    cancelled: bool = False


async def add_order(
    session: AsyncSession,
    order_id: str,
    placed_at: datetime,
    *,
    latest: date,
    earliest: date | None = None,
    confidence: float = 0.9,
    option: str = "standard",
    subdivision: str | None = "CA",
    postal_code: str = "94103",
    dest_tz: str | None = None,
    parcels: Sequence[Parcel] = (),
    revisions: Sequence[tuple[datetime, str, date, date, str]] = (),
    cancelled: bool = False,
    detail: dict[str, object] | None = None,
) -> Order:
    order = Order(
        order_id=order_id,
        placed_at=placed_at,
        origin="nyc-queens",
        option=option,
        dest_country="US",
        dest_postal_code=postal_code,
        dest_subdivision=subdivision,
        customer_name="Ada Lovelace",
        customer_street="1 Analytical Engine Way",
        promise_earliest=earliest or latest - timedelta(days=2),
        promise_latest=latest,
        promise_confidence=confidence,
        promise_basis="history" if detail else "rules",
        promise_detail=detail or {"lanes": []},
        dest_tz=dest_tz,
        status="delivered" if parcels and all(p.delivered_at for p in parcels) else "in_transit",
        cancelled_at=placed_at + timedelta(hours=1) if cancelled else None,
        created_at=placed_at,
        updated_at=placed_at,
    )
    session.add(order)
    await session.flush()
    assert order.id is not None
    for p in parcels:
        n = next(_serial)
        shipment = Shipment(
            order_pk=order.id,
            carrier=p.carrier,
            tracking_number=f"T{n:08d}",
            tracking_token=f"token-{n:08d}-{random.getrandbits(64):016x}",
            status="delivered" if p.delivered_at else "in_transit",
            handed_off_at=p.handed_off_at,
            delivered_at=p.delivered_at,
            cancelled_at=placed_at + timedelta(hours=2) if p.cancelled else None,
            created_at=placed_at,
            updated_at=placed_at,
        )
        session.add(shipment)
    for at, kind, r_earliest, r_latest, source in revisions:
        session.add(
            PromiseRevision(
                order_pk=order.id,
                at=at,
                kind=kind,
                earliest=r_earliest,
                latest=r_latest,
                source=source,
            )
        )
    await session.flush()
    return order


async def add_registered(
    session: AsyncSession, order_id: str, placed_at: datetime, number: str
) -> Order:
    """An order to San Francisco registered as `POST /v1/orders` does, with one USPS parcel."""
    registered = await create_order(
        session,
        OrderInput(order_id, placed_at, DestinationInput("US", "94103"), "standard"),
        estimator=ESTIMATOR,
        history=None,
        now=placed_at,
    )
    await create_shipment(
        session,
        registered.order,
        ShipmentInput("usps", number),
        now=placed_at,
        public_base_url="http://127.0.0.1:8000",
    )
    return registered.order


def ny_noon(day: date) -> datetime:
    """Noon in New York (the origin's zone) on `day`, in UTC (EST/EDT both fine at noon)."""
    return datetime.combine(day, time(16 if day.month in (11, 12, 1, 2, 3) else 15), UTC)


# Lanes of the sample shop with how often they miss (out of 10) and their carriers.
LANES = (("CA", "941", 1, "usps"), ("TX", "750", 4, "ups"), ("NY", "100", 0, "ups"))


async def add_history(
    engine: AsyncEngine, first_day: date, weeks: int, *, now: datetime, seed: int = 7
) -> int:
    """Orders on three lanes, two options, every weekday for `weeks` weeks from `first_day`:
    each promised in 5 days (standard, 0.9) or 2 (next-day, 0.95), delivered on time or one to
    three days late at the lane's rate; not yet delivered when that is after `now`. Returns
    how many orders were written."""
    rng = random.Random(seed)
    count = 0
    async with unit_of_work(engine) as session:
        for offset in range(weeks * 7):
            day = first_day + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for region, prefix, misses, carrier in LANES:
                express = rng.random() < 0.3
                lead = 2 if express else 5
                late = rng.randrange(10) < misses
                took = lead + rng.randint(1, 3) if late else lead - rng.randint(0, 2)
                placed = ny_noon(day)
                delivered = datetime.combine(day + timedelta(days=took), time(20), UTC)
                await add_order(
                    session,
                    f"H-{day.isoformat()}-{region}",
                    placed,
                    latest=day + timedelta(days=lead),
                    confidence=0.95 if express else 0.9,
                    option="next-day" if express else "standard",
                    subdivision=region,
                    postal_code=prefix + "01",
                    parcels=[
                        Parcel(
                            carrier,
                            placed + timedelta(hours=6),
                            delivered if delivered <= now else None,
                        )
                    ],
                )
                count += 1
    return count
