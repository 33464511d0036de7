"""What the service's own tracking teaches the history model: delivered parcels and parcels in
flight, read from the tracking tables.

* `record_delivery(session, order, shipment, rules)`: a delivered shipment becomes a delivery
  record (source `tracking`, key `shipment:<id>`), with the promise it was sold with, so its
  outcome is known. It is written in the caller's transaction (the worker's apply, with the
  status change that delivered it) and never commits; `ON CONFLICT DO NOTHING` on (source,
  key) makes a second call for the same shipment a no-op.
* `parcels_in_flight(session, rules, now)`: registered orders not delivered yet and handed-over
  shipments not delivered yet, as the backtest's replay sees a parcel before its delivery
  (`ParcelInFlight.of(record, handed_off)`). The history runtime feeds them to the model, so
  the live model counts the parcels still on their way as the backtest does. It reads the rows
  (`load_open_parcels`) on the event loop and maps them (`as_in_flight_all`, pure CPU) in its
  build thread.

The origin comes from the rules: an order stores the id of its rules origin, and the origin's
country, subdivision, postal code and time zone are the rules' (the same fields an estimate's
lane query is made of, so a record lands on the lanes estimates ask for). That is why both
functions take the `Rules`: the order does not copy them. An order whose origin the current
rules no longer have teaches nothing (logged), rather than failing the transaction that
delivered it.

Labels: a record is labelled with the history label of the option the order was sold as (its
`history.carrier`/`history.service`, else its carrier and service), so it teaches that option:
the promise it is measured against is that option's, and tracking carrier codes (`ups`,
`simulated`) are not the rules' carrier names (`correios`, `UPS`). An option the rules no longer
have: the shipment's own carrier and service.

One parcel, one key, from its order to its delivery: a shipment is `shipment:<id>` in flight
and in its record; an order with no shipment yet is in flight as `order:<pk>` (its handling is
under way). A parcel is in flight from its order instant; handed over when the carrier
reported the hand-off (`handed_off_at`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tracking_service.carriers.status import Status
from tracking_service.estimator.option_history import ParcelInFlight
from tracking_service.estimator.postal import (
    PostalError,
    normalize_postal_code,
    subdivision_from_postal,
)
from tracking_service.estimator.records import Delivery
from tracking_service.estimator.rules import Rules
from tracking_service.history.files import zone_for
from tracking_service.history.store import insert_batch
from tracking_service.models import Order, Shipment

log = logging.getLogger(__name__)

SOURCE = "tracking"

# a parcel in one of these will never be delivered (or already is): not in flight
OVER: frozenset[str] = frozenset(
    str(s) for s in (Status.DELIVERED, Status.RETURNED_TO_SENDER, Status.EXPIRED)
)
ORDER_OVER: frozenset[str] = frozenset({*OVER, "cancelled"})


def shipment_key(shipment_id: int) -> str:
    """The key of a shipment's parcel, in flight and in its delivery record."""
    return f"shipment:{shipment_id}"


def order_key(order_pk: int) -> str:
    """The key of an order's parcel before any shipment is registered."""
    return f"order:{order_pk}"


@dataclass(frozen=True, slots=True)
class TrackedParcel:
    """One parcel as the tracking tables know it: its order's origin, option and destination,
    its carrier, and the instants known so far."""

    key: str
    origin: str  # origin id of the rules
    option: str  # shipping option code
    placed_at: datetime
    dest_country: str
    dest_subdivision: str | None
    dest_postal_code: str | None
    carrier: str | None = None
    service: str | None = None
    handed_off_at: datetime | None = None
    promised_date: date | None = None


def _labels(rules: Rules, p: TrackedParcel) -> tuple[str | None, str | None]:
    option = next((o for o in rules.shipping_options if o.code == p.option), None)
    if option is None:
        return p.carrier, p.service
    return option.history.carrier or option.carrier, option.history.service or option.service


def _subdivision(country: str, postal_code: str | None, given: str | None) -> str | None:
    if given or not postal_code:
        return given
    try:
        return subdivision_from_postal(normalize_postal_code(country, postal_code))
    except PostalError:
        return None


def as_delivery(rules: Rules, p: TrackedParcel, delivered_at: datetime) -> Delivery | None:
    """The parcel's delivery record (pure); None when the rules have no longer its origin."""
    origin = next((o for o in rules.origins if o.id == p.origin), None)
    if origin is None:
        return None
    carrier, service = _labels(rules, p)
    subdivision = _subdivision(p.dest_country, p.dest_postal_code, p.dest_subdivision)
    return Delivery(
        key=p.key,
        order_time=p.placed_at,
        handoff_time=p.handed_off_at,
        delivered_at=delivered_at,
        origin_country=origin.country,
        origin_subdivision=origin.subdivision,
        origin_postal_code=origin.postal_code,
        dest_country=p.dest_country,
        dest_subdivision=subdivision,
        dest_postal_code=p.dest_postal_code,
        carrier=carrier,
        service=service,
        promised_date=p.promised_date,
        origin_id=origin.id,
        origin_tz=origin.time_zone,
        dest_tz=zone_for(p.dest_country, subdivision),
    )


def as_in_flight(rules: Rules, p: TrackedParcel) -> ParcelInFlight | None:
    """The parcel on its way (pure): what its delivery record will say, before the delivery.
    None when the rules have no longer its origin."""
    # the record's delivery instant is not known yet and not read: a parcel in flight is
    # everything its record will hold up to the hand-off
    record = as_delivery(rules, p, delivered_at=p.placed_at)
    if record is None:
        return None
    return ParcelInFlight.of(record, handed_off=p.handed_off_at is not None)


def _parcel(order: Order, shipment: Shipment) -> TrackedParcel:
    assert shipment.id is not None
    return TrackedParcel(
        key=shipment_key(shipment.id),
        origin=order.origin,
        option=order.option,
        placed_at=order.placed_at,
        dest_country=order.dest_country,
        dest_subdivision=order.dest_subdivision,
        dest_postal_code=order.dest_postal_code,
        carrier=shipment.carrier,
        service=shipment.service,
        handed_off_at=shipment.handed_off_at,
        promised_date=order.promise_latest,
    )


async def record_delivery(
    session: AsyncSession, order: Order, shipment: Shipment, rules: Rules
) -> bool:
    """Store the delivered `shipment` of `order` as a delivery record in the session's
    transaction (never commits). True when the row is new; False when it was already stored,
    or when it cannot teach anything (logged): no delivery instant (a carrier that says
    "delivered" without a date), or an origin the rules no longer have. Never raises for
    either: the status change that delivered the parcel must land all the same."""
    if shipment.delivered_at is None:
        log.warning(
            "delivered shipment %s not recorded as history: no delivery instant", shipment.id
        )
        return False
    record = as_delivery(rules, _parcel(order, shipment), shipment.delivered_at)
    if record is None:
        log.warning(
            "delivered shipment %s not recorded as history: origin %r is not in the rules",
            shipment.id,
            order.origin,
        )
        return False
    counts = await insert_batch(session, SOURCE, [record])
    return counts.inserted == 1


_O = Order.__table__.c  # type: ignore[attr-defined]
_S = Shipment.__table__.c  # type: ignore[attr-defined]


async def parcels_in_flight(
    session: AsyncSession, rules: Rules, now: datetime | None = None
) -> list[ParcelInFlight]:
    """Every parcel on its way, as the model learns it (see the module docstring):
    `load_open_parcels` then `as_in_flight_all`."""
    return as_in_flight_all(rules, await load_open_parcels(session, now))


def as_in_flight_all(rules: Rules, parcels: Iterable[TrackedParcel]) -> list[ParcelInFlight]:
    """`as_in_flight` of each parcel, leaving out those whose origin the rules lost (pure, CPU:
    the history runtime calls it in its build thread)."""
    return [found for p in parcels if (found := as_in_flight(rules, p)) is not None]


async def load_open_parcels(
    session: AsyncSession, now: datetime | None = None
) -> list[TrackedParcel]:
    """The parcels on their way, as the tables know them.

    An order neither cancelled nor over (delivered, returned, expired) placed by `now`: each of
    its shipments neither cancelled nor over is a parcel, handed over when `handed_off_at` is
    known (a hand-off after `now` is not known yet); an order with no such shipment and none
    delivered is one parcel, not handed over. Reads plain columns in two queries."""
    orders_q = sa.select(
        _O.id,
        _O.origin,
        _O.option,
        _O.placed_at,
        _O.dest_country,
        _O.dest_subdivision,
        _O.dest_postal_code,
        _O.promise_latest,
    ).where(_O.cancelled_at.is_(None), _O.status.not_in(sorted(ORDER_OVER)))
    if now is not None:
        orders_q = orders_q.where(_O.placed_at <= now)
    orders_q = orders_q.order_by(_O.id)
    shipments_q = (
        sa.select(
            _S.id,
            _S.order_pk,
            _S.carrier,
            _S.service,
            _S.status,
            _S.handed_off_at,
            _S.delivered_at,
        )
        .join(Order.__table__, _O.id == _S.order_pk)  # type: ignore[attr-defined]
        .where(
            _O.cancelled_at.is_(None),
            _O.status.not_in(sorted(ORDER_OVER)),
            _S.cancelled_at.is_(None),
        )
        .order_by(_S.id)
    )
    conn = await session.connection()
    orders = (await conn.execute(orders_q)).all()
    by_order: dict[int, list[Any]] = {}
    for row in await conn.execute(shipments_q):
        by_order.setdefault(row.order_pk, []).append(row)
    found: list[TrackedParcel] = []
    for o in orders:
        shipments = by_order.get(o.id, [])
        base = TrackedParcel(
            key=order_key(o.id),
            origin=o.origin,
            option=o.option,
            placed_at=o.placed_at,
            dest_country=o.dest_country,
            dest_subdivision=o.dest_subdivision,
            dest_postal_code=o.dest_postal_code,
            promised_date=o.promise_latest,
        )
        delivered = any(
            s.delivered_at is not None or s.status == Status.DELIVERED for s in shipments
        )
        live = [s for s in shipments if s.status not in OVER and s.delivered_at is None]
        found.extend(_shipment_parcel(base, s, now) for s in live)
        if not live and not delivered:
            found.append(base)
    return found


def _shipment_parcel(base: TrackedParcel, s: Any, now: datetime | None) -> TrackedParcel:
    """A shipment of the order `base`: its own key, carrier and hand-off (if known by `now`)."""
    handed = s.handed_off_at
    if handed is not None and now is not None and handed > now:
        handed = None
    return replace(
        base,
        key=shipment_key(s.id),
        carrier=s.carrier,
        service=s.service,
        handed_off_at=handed,
    )
