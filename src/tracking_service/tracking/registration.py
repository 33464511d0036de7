"""Registering what a shop sold and shipped: orders with their promise, shipments with their
public tracking token, and cancellations.

Every function takes the session first and never commits (the route's unit of work does). Both
registrations are idempotent by the shop's own identity of the thing: an order by its
`order_id`, a shipment by its carrier and tracking number. Sending the same order again
answers the stored one (`created=False`); the same id with other values is a `Conflict` that
names the fields that differ. Two identical requests racing are settled by the database's
unique constraints: the insert is `ON CONFLICT DO NOTHING` and the loser reads the winner's
row, so a race can never make two orders, nor abort the request's transaction.

A promise the shop omits is the estimator's, at `placed_at`, for the chosen option and
destination, stored with its basis (rules or history) and what it rests on (ship date, zone,
lanes). The destination is always resolved by the estimator (postal code normalized,
subdivision derived) and an option that cannot serve it is refused, given promise or not.

The promise ledger keeps, with every order, what the model said when the promise was made
(`LedgerEntry`): the instant (`placed_at`: the estimator reads the order at that instant, so
the distribution below is of an order placed then), the quantile level it read after the
option's recalibration (history-based promises only), its predictive distribution of the
delivery date (also under a shop's own promise: the recalibration measures the model, not
the shop) and the destination's zone, whose local dates the distribution is on.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.carriers.base import normalize_number
from tracking_service.carriers.numbers import detect
from tracking_service.carriers.registry import ADAPTERS, carrier_for
from tracking_service.carriers.status import Status
from tracking_service.errors import Conflict, InvalidInput, NotFound
from tracking_service.estimator.estimate import (
    Destination,
    EstimateInputError,
    EstimateResult,
    Estimator,
    Item,
    OptionEstimate,
    history_day,
    lane_query,
    processing_day,
)
from tracking_service.estimator.option_history import OptionHistories
from tracking_service.models.tracking import (
    Order,
    OutboxEvent,
    Shipment,
    TrackingEventRecord,
)
from tracking_service.timezones import zone as time_zone
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.messages import order_messages
from tracking_service.tracking.plan import plan_cancel
from tracking_service.tracking.progress import is_final, order_status
from tracking_service.tracking.state import (
    CancelPlan,
    OrderState,
    OutboxMessage,
    ShipmentState,
    ShipmentUpdate,
)
from tracking_service.tracking.store import (
    destination_zone,
    event_row,
    order_state,
    outbox_row,
    shipment_state,
)
from tracking_service.tracking.urls import tracking_url as tracking_url

_ORDERS: sa.Table = Order.__table__  # type: ignore[attr-defined]
_SHIPMENTS: sa.Table = Shipment.__table__  # type: ignore[attr-defined]

AUTO = "auto"
TOKEN_BYTES = 24
"""`secrets.token_urlsafe(24)`: 192 random bits in 32 URL-safe characters."""
PROMISE_DAYS_BEFORE = timedelta(days=1)
PROMISE_DAYS_AFTER = timedelta(days=400)
"""A given promise lies within [placed_at's date - 1 day, + 400 days]: anything else is a typo
(a date in the wrong year) that would make every check of the promise meaningless."""


# --- input ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DestinationInput:
    country: str
    postal_code: str
    subdivision: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerInput:
    """Personal data: stored on the order only, never in shipments' views, events or outbox."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    street: str | None = None


@dataclass(frozen=True, slots=True)
class ItemInput:
    sku: str
    quantity: int = 1
    name: str | None = None
    available_on: date | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "quantity": self.quantity,
            "name": self.name,
            "available_on": self.available_on.isoformat() if self.available_on else None,
        }


@dataclass(frozen=True, slots=True)
class PromiseInput:
    """The promise the order was sold with; `confidence` None: the option's configured one."""

    earliest: date
    latest: date
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class OrderInput:
    order_id: str
    placed_at: datetime
    destination: DestinationInput
    option: str
    origin: str | None = None
    items: tuple[ItemInput, ...] = ()
    promise: PromiseInput | None = None
    customer: CustomerInput | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class ShipmentItemInput:
    sku: str
    quantity: int = 1

    def as_json(self) -> dict[str, Any]:
        return {"sku": self.sku, "quantity": self.quantity}


@dataclass(frozen=True, slots=True)
class ShipmentInput:
    carrier: str  # a carrier code or "auto"
    tracking_number: str
    service: str | None = None
    items: tuple[ShipmentItemInput, ...] = ()


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Promise:
    earliest: date
    latest: date
    confidence: float
    basis: str  # given, rules or history
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RegisteredOrder:
    order: Order
    created: bool  # False: the same order was registered before (answered as stored)


@dataclass(frozen=True, slots=True)
class RegisteredShipment:
    shipment: Shipment
    order: Order
    created: bool  # False: this number was already on this order


# --- the promise (pure) -----------------------------------------------------------------------


def _detail(estimate: OptionEstimate) -> dict[str, Any]:
    """What a computed promise rests on, as JSON: the re-estimate and people need it later."""
    return {
        "carrier": estimate.carrier,
        "service": estimate.service,
        "zone": estimate.zone,
        "ship_date": estimate.ship_date.isoformat(),
        "order_by": estimate.order_by.isoformat(),
        "basis": estimate.basis,
        "confidence": estimate.confidence,
        "explanation": list(estimate.explanation),
        "lanes": [
            {"part": lane.part, "lane": lane.lane, "records": lane.records}
            for lane in estimate.lanes
        ],
    }


CDF_DIGITS = 4
"""The stored distribution's probabilities are rounded to this many decimals: far finer than
any level a promise is read at, and a few hundred bytes per order."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the model said when it made an order's promise (the `orders.promise_made_at`,
    `promise_level`, `promise_distribution` and `dest_tz` columns): see the module docstring.
    `level` and `distribution` are None where the history has no model for the order."""

    made_at: datetime
    level: float | None
    distribution: Mapping[str, Any] | None
    dest_tz: str | None

    def as_columns(self) -> dict[str, Any]:
        return {
            "promise_made_at": self.made_at,
            "promise_level": self.level,
            "promise_distribution": None if self.distribution is None else dict(self.distribution),
            "dest_tz": self.dest_tz,
        }


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """An order's values as they will be stored: origin and destination resolved, promise set,
    with the model's side of it for the ledger."""

    origin: str
    destination: DestinationInput
    promise: Promise
    ledger: LedgerEntry


def stored_distribution(start: date, cdf: Sequence[float]) -> dict[str, Any]:
    """The JSON of a predictive distribution: its first date and its probabilities rounded to
    `CDF_DIGITS`, cut after the first 1 (later days are 1)."""
    rounded: list[float] = []
    for p in cdf:
        rounded.append(round(min(1.0, p), CDF_DIGITS))
        if rounded[-1] >= 1.0:
            break
    return {"start": start.isoformat(), "cdf": rounded}


def _ledger(
    estimator: Estimator,
    history: OptionHistories | None,
    order: OrderInput,
    result: EstimateResult,
    estimate: OptionEstimate,
) -> LedgerEntry:
    """The model's side of the promise: the level it read (history-based promises only) and its
    distribution of the delivery date, asked with what the estimator asked the history for the
    window (the option's zone, the lane of origin and destination, the order's day: the local
    order date, or the day held-back items are ready)."""
    dest = result.destination
    dest_tz = destination_zone(dest.country, dest.subdivision)
    origin = estimator.rules.origin(result.origin)
    if history is None or not history.models or origin is None:
        return LedgerEntry(order.placed_at, None, None, dest_tz)
    option = next(o for o in estimator.rules.shipping_options if o.code == order.option)
    local = order.placed_at.astimezone(time_zone(origin.time_zone))
    ready_on = max((i.available_on for i in order.items if i.available_on), default=None)
    processing = processing_day(
        estimator.origin_calendar(origin.id), local, option.cutoff or origin.cutoff, ready_on
    )
    query = lane_query(origin, dest)
    day = history_day(processing, local)
    found = history.promise_distribution(option.code, estimate.zone, query, day)
    distribution = None if found is None else stored_distribution(*found)
    level = history.level(option.code, estimate.confidence) if estimate.basis == "history" else None
    return LedgerEntry(order.placed_at, level, distribution, dest_tz)


def plan_order(
    estimator: Estimator, history: OptionHistories | None, order: OrderInput
) -> PlannedOrder:
    """Resolve the origin and destination and fix the promise (the given one, or the
    estimator's at `placed_at`). Raises `InvalidInput` naming the field (`destination.country`,
    `option`, `promise.latest` ...)."""
    dest = order.destination
    try:
        result = estimator.estimate(
            destination=Destination(dest.country, dest.postal_code, dest.subdivision),
            order_time=order.placed_at,
            origin=order.origin,
            items=[Item(i.sku, i.quantity, i.available_on) for i in order.items],
            options=[order.option],
            history=history,
        )
    except EstimateInputError as exc:
        field = {"order_time": "placed_at", "options.0": "option"}.get(exc.field, exc.field)
        raise InvalidInput(exc.message, field=field) from None
    if not result.estimates:
        reason = result.unavailable[0].reason if result.unavailable else "cannot serve it"
        raise InvalidInput(f"option {order.option!r} {reason}", field="option")
    estimate = result.estimates[0]
    resolved = DestinationInput(
        result.destination.country,
        result.destination.postal_code,
        result.destination.subdivision,
        dest.city,
    )
    given = order.promise
    if given is None:
        promise = Promise(
            estimate.earliest,
            estimate.latest,
            estimate.confidence,
            estimate.basis,
            _detail(estimate),
        )
    else:
        _check_given(given, order.placed_at)
        configured = next(
            s.confidence for s in estimator.rules.shipping_options if s.code == order.option
        )
        confidence = given.confidence if given.confidence is not None else configured
        promise = Promise(given.earliest, given.latest, confidence, "given", _detail(estimate))
    ledger = _ledger(estimator, history, order, result, estimate)
    if given is not None:
        ledger = replace(ledger, level=None)  # the shop's dates: no level of the model's
    return PlannedOrder(result.origin, resolved, promise, ledger)


def _check_given(given: PromiseInput, placed_at: datetime) -> None:
    if given.earliest > given.latest:
        raise InvalidInput("earliest is after latest", field="promise.earliest")
    day = placed_at.date()
    low, high = day - PROMISE_DAYS_BEFORE, day + PROMISE_DAYS_AFTER
    for name, value in (("earliest", given.earliest), ("latest", given.latest)):
        if not low <= value <= high:
            raise InvalidInput(
                f"{name} must lie between {low} and {high} (placed_at's date -1 day .. +400 days)",
                field=f"promise.{name}",
            )


def _order_values(order: OrderInput, planned: PlannedOrder) -> dict[str, Any]:
    """The columns an order is stored with (and compared on when it is sent again)."""
    customer = order.customer or CustomerInput()
    dest = planned.destination
    return {
        "order_id": order.order_id,
        "placed_at": order.placed_at,
        "origin": planned.origin,
        "option": order.option,
        "dest_country": dest.country,
        "dest_postal_code": dest.postal_code,
        "dest_subdivision": dest.subdivision,
        "dest_city": dest.city,
        "customer_name": customer.name,
        "customer_email": customer.email,
        "customer_phone": customer.phone,
        "customer_street": customer.street,
        "locale": order.locale,
        "items": [i.as_json() for i in order.items],
        "promise_earliest": planned.promise.earliest,
        "promise_latest": planned.promise.latest,
        "promise_confidence": planned.promise.confidence,
        "promise_basis": planned.promise.basis,
        "promise_detail": dict(planned.promise.detail),
        **planned.ledger.as_columns(),
    }


# Compared when an order id is sent again. A computed promise is not: the estimator's answer
# may have moved with the history since, and the shop sent the same thing.
_SAME_ORDER_FIELDS = {
    "placed_at": "placed_at",
    "origin": "origin",
    "option": "option",
    "dest_country": "destination.country",
    "dest_postal_code": "destination.postal_code",
    "dest_subdivision": "destination.subdivision",
    "dest_city": "destination.city",
    "customer_name": "customer.name",
    "customer_email": "customer.email",
    "customer_phone": "customer.phone",
    "customer_street": "customer.street",
    "locale": "locale",
    "items": "items",
}


def differences(stored: Order, values: Mapping[str, Any]) -> list[str]:
    """The request fields in which `values` differ from the stored order (empty: the same)."""
    out = [
        name
        for column, name in _SAME_ORDER_FIELDS.items()
        if getattr(stored, column) != values[column]
    ]
    was_given = stored.promise_basis == "given"
    is_given = values["promise_basis"] == "given"
    if was_given != is_given or (
        is_given
        and (stored.promise_earliest, stored.promise_latest, stored.promise_confidence)
        != (values["promise_earliest"], values["promise_latest"], values["promise_confidence"])
    ):
        out.append("promise")
    return out


# --- database helpers -------------------------------------------------------------------------


def _insert_or_nothing(conn: AsyncConnection, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, in the connection's dialect: a
    conflicting concurrent insert waits for the other transaction, then inserts nothing, so the
    request's transaction stays usable and the caller reads the winner's row."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing().returning(table.c.id)


async def _insert(session: AsyncSession, table: sa.Table, values: Mapping[str, Any]) -> int | None:
    """The new row's id, or None when a unique constraint already holds its values."""
    conn = await session.connection()
    row = (await conn.execute(_insert_or_nothing(conn, table), [dict(values)])).first()
    return None if row is None else int(row[0])


async def find_order(session: AsyncSession, order_id: str) -> Order | None:
    found = await session.exec(select(Order).where(Order.order_id == order_id))
    return found.first()


async def order_by_id(session: AsyncSession, order_id: str) -> Order:
    """The order the shop calls `order_id`; `NotFound` otherwise."""
    order = await find_order(session, order_id)
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    return order


async def lock_order(session: AsyncSession, order_pk: int) -> Order:
    """The order row, locked for this transaction and read fresh.

    A no-op UPDATE takes the row lock on PostgreSQL and the write lock on SQLite alike, so two
    requests changing one order (shipments added, cancellations) take turns: each reads the
    other's status and outbox sequence, and no two messages claim one sequence number."""
    conn = await session.connection()
    await conn.execute(
        sa.update(Order).where(col(Order.id) == order_pk).values(sequence=Order.sequence)
    )
    order = await session.get(Order, order_pk, populate_existing=True)
    if order is None:
        raise NotFound(f"no order with key {order_pk}")
    return order


async def _shipments_of(session: AsyncSession, order_pk: int) -> list[Shipment]:
    """The order's shipments as stored now (read after `lock_order`, so nobody changes them
    meanwhile), replacing any copy the session held."""
    found = await session.exec(
        select(Shipment)
        .where(Shipment.order_pk == order_pk)
        .order_by(col(Shipment.id))
        .execution_options(populate_existing=True)
    )
    return list(found.all())


# The plain states of the pipeline's core, for the two changes registration makes (a parcel
# added, a cancellation): neither judges dates, so the newest status event and the city of the
# last scan are left out; the destination's zone dates a delayed shipment's payload sentence.


def _order_state(order: Order, shipments: Sequence[Shipment]) -> OrderState:
    """The store's plain state of `order`, its live shipments' statuses from `shipments`."""
    assert order.id is not None
    statuses = {
        s.id: Status(s.status) for s in shipments if s.id is not None and s.cancelled_at is None
    }
    return order_state(order.model_dump(), statuses)


def _shipment_state(s: Shipment, base_url: str) -> ShipmentState:
    """The store's plain state of `s` (no `status_event_at`: nothing here plans on it)."""
    assert s.id is not None
    return shipment_state(s.model_dump(), status_event_at=None, base_url=base_url)


async def _write_messages(session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
    for m in messages:
        session.add(OutboxEvent(**outbox_row(m, m.occurred_at)))


def _set(row: Any, changes: Mapping[str, Any]) -> None:
    for name, value in changes.items():
        setattr(row, name, value)


async def _write_update(
    session: AsyncSession, update: ShipmentUpdate, shipments: Mapping[int, Shipment]
) -> None:
    for e in update.new_events:
        session.add(TrackingEventRecord(**event_row(e, e.occurred_at)))
    row = shipments[update.shipment_id]
    _set(row, update.shipment_changes)
    if update.shipment_changes.get("next_poll_at", row.next_poll_at) is None:
        row.claimed_by = row.claimed_until = None  # nothing left to claim
    session.add(row)
    await _write_messages(session, update.messages)


async def _status_after_new_shipment(
    session: AsyncSession, order: Order, shipment: Shipment, now: datetime, base_url: str
) -> None:
    """The order after `shipment` joined it: `updated_at` moves (its view lists the shipment),
    its status is derived again and, when that changed, `order.status_changed` is written."""
    shipments = await _shipments_of(session, order.id or 0)
    before = _order_state(order, [s for s in shipments if s.id != shipment.id])
    status = order_status(
        (Status(s.status) for s in shipments if s.cancelled_at is None),
        order.cancelled_at is not None,
    )
    messages = order_messages(
        before,
        replace(before, status=status),
        now,
        _shipment_state(shipment, base_url),
    )
    order.status = status
    order.sequence = before.sequence + len(messages)
    order.updated_at = now
    session.add(order)
    await _write_messages(session, messages)


# --- orders -----------------------------------------------------------------------------------


async def create_order(
    session: AsyncSession,
    order: OrderInput,
    *,
    estimator: Estimator,
    history: OptionHistories | None,
    now: datetime,
) -> RegisteredOrder:
    """Register `order`, or answer the one registered under its `order_id` when it is the same
    order (`Conflict` when its values differ). `InvalidInput` for values the rules refuse."""
    planned = plan_order(estimator, history, order)
    values = _order_values(order, planned)
    existing = await find_order(session, order.order_id)
    if existing is None:
        row = {**values, "status": "processing", "created_at": now, "updated_at": now}
        new_id = await _insert(session, _ORDERS, row)
        if new_id is not None:
            created = await session.get(Order, new_id)
            assert created is not None
            return RegisteredOrder(created, True)
        existing = await find_order(session, order.order_id)  # a concurrent request won
        assert existing is not None, "the conflicting order must be readable once committed"
    changed = differences(existing, values)
    if changed:
        raise Conflict(
            f"order {order.order_id!r} is already registered with other values "
            f"({', '.join(changed)}); an order id names one order"
        )
    return RegisteredOrder(existing, False)


# --- shipments --------------------------------------------------------------------------------


def resolve_number(carrier: str, tracking_number: str) -> tuple[str, str]:
    """(carrier code, number as the carrier tracks it) for a declared carrier or `auto`.

    `auto` takes the first format that matches with a valid check digit; a declared carrier's
    number is normalized (spaces and dashes out, upper case; USPS's routing prefix dropped when
    a format says so) and must pass that carrier's own format check. `InvalidInput` otherwise.
    """
    normalized = normalize_number(tracking_number)
    if not normalized:
        raise InvalidInput("tracking number is empty", field="tracking_number")
    if carrier == AUTO:
        found = carrier_for(normalized)
        if found is None:
            raise InvalidInput(
                f"no carrier's format matches {normalized!r} with a valid check digit; "
                "name the carrier instead of auto",
                field="tracking_number",
            )
        return found
    if carrier not in ADAPTERS:
        raise InvalidInput(
            f"unknown carrier {carrier!r}: choose one of {', '.join(ADAPTERS)} or auto",
            field="carrier",
        )
    family = {"usps", "dhl"} if carrier in ("usps", "dhl") else {carrier}
    for match in detect(normalized, prefer=carrier):
        if match.valid and (
            match.carrier == carrier or (match.carrier == "s10" and carrier in family)
        ):
            normalized = match.tracking_number
            break
    reason = ADAPTERS[carrier].invalid_reason(normalized)
    if reason is not None:
        raise InvalidInput(
            f"not a valid {carrier} tracking number: {reason}", field="tracking_number"
        )
    return carrier, normalized


async def find_shipment(session: AsyncSession, carrier: str, number: str) -> Shipment | None:
    found = await session.exec(
        select(Shipment).where(Shipment.carrier == carrier, Shipment.tracking_number == number)
    )
    return found.first()


async def _owner(session: AsyncSession, shipment: Shipment) -> Order:
    order = await session.get(Order, shipment.order_pk)
    assert order is not None, "a shipment's order exists (foreign key)"
    return order


def _same_shipment(stored: Shipment, request: ShipmentInput) -> list[str]:
    out = []
    if stored.service != request.service:
        out.append("service")
    if stored.items != [i.as_json() for i in request.items]:
        out.append("items")
    return out


async def _existing_shipment(
    session: AsyncSession, existing: Shipment, order: Order, request: ShipmentInput
) -> RegisteredShipment:
    owner = await _owner(session, existing)
    label = f"{existing.carrier} tracking number {existing.tracking_number}"
    if owner.id != order.id:
        raise Conflict(f"{label} already belongs to order {owner.order_id!r}")
    changed = _same_shipment(existing, request)
    if changed:
        raise Conflict(
            f"{label} is already on order {owner.order_id!r} with other values "
            f"({', '.join(changed)})"
        )
    return RegisteredShipment(existing, owner, False)


async def create_shipment(
    session: AsyncSession,
    order: Order,
    request: ShipmentInput,
    *,
    now: datetime,
    public_base_url: str,
    new_token: Callable[[], str] | None = None,
) -> RegisteredShipment:
    """Attach a parcel to `order` (polled at once: `next_poll_at = now`), or answer the one
    already registered when it is this order's with the same values. `Conflict` naming the
    order that has the number, or when `order` is cancelled; `InvalidInput` for a number the
    carrier would refuse. The order is locked (see `lock_order`) and its status derived again.

    `new_token` (tests) makes tokens; `secrets.token_urlsafe(24)` otherwise."""
    carrier, number = resolve_number(request.carrier, request.tracking_number)
    make_token = new_token or (lambda: secrets.token_urlsafe(TOKEN_BYTES))
    assert order.id is not None
    order = await lock_order(session, order.id)
    for _ in range(3):  # a token collision (192 random bits) retries with a new token
        existing = await find_shipment(session, carrier, number)
        if existing is not None:
            return await _existing_shipment(session, existing, order, request)
        if order.cancelled_at is not None:
            raise Conflict(f"order {order.order_id!r} is cancelled: no shipment can be added")
        row = {
            "order_pk": order.id,
            "carrier": carrier,
            "tracking_number": number,
            "service": request.service,
            "items": [i.as_json() for i in request.items],
            "tracking_token": make_token(),
            "status": str(Status.PENDING),
            "estimate_earliest": order.promise_earliest,
            "estimate_latest": order.promise_latest,
            "estimate_source": "promise",
            "next_poll_at": now,
            "created_at": now,
            "updated_at": now,
        }
        new_id = await _insert(session, _SHIPMENTS, row)
        if new_id is not None:
            shipment = await session.get(Shipment, new_id)
            assert shipment is not None
            await _status_after_new_shipment(session, order, shipment, now, public_base_url)
            return RegisteredShipment(shipment, order, True)
    raise RuntimeError("could not store the shipment: three token collisions in a row")


# --- cancellation -----------------------------------------------------------------------------


async def _write_cancel(
    session: AsyncSession, order: Order, shipments: Sequence[Shipment], plan: CancelPlan
) -> None:
    by_id = {s.id: s for s in shipments if s.id is not None}
    for update in plan.shipments:
        await _write_update(session, update, by_id)
    _set(order, plan.order_changes)
    session.add(order)
    await _write_messages(session, plan.order_messages)
    await session.flush()


async def cancel_order(
    session: AsyncSession,
    order_id: str,
    *,
    now: datetime,
    config: TrackingConfig,
    public_base_url: str,
) -> Order:
    """Cancel an order and every shipment of it not cancelled yet: polling stops, each gets a
    service event and a `shipment.status_changed` message, the order becomes `cancelled` with
    `order.status_changed`. Cancelling it again changes nothing. `Conflict` for an order
    already delivered (there is nothing left to stop); `NotFound` for an unknown id."""
    found = await order_by_id(session, order_id)
    assert found.id is not None
    order = await lock_order(session, found.id)
    if order.cancelled_at is not None:
        return order
    if order.status == str(Status.DELIVERED):
        raise Conflict(f"order {order_id!r} is delivered: there is nothing left to cancel")
    shipments = await _shipments_of(session, found.id)
    # Parcels already at a final status (a delivered one of a partly delivered order) keep
    # their history as it is: only the ones still travelling are stopped.
    travelling = [s for s in shipments if not is_final(Status(s.status))]
    plan = plan_cancel(
        _order_state(order, shipments),
        [_shipment_state(s, public_base_url) for s in travelling],
        now,
        config,
    )
    await _write_cancel(session, order, shipments, plan)
    return order


async def cancel_shipment(
    session: AsyncSession,
    shipment_id: int,
    *,
    now: datetime,
    config: TrackingConfig,
    public_base_url: str,
) -> Shipment:
    """Cancel one shipment: polling stops, a service event and a `shipment.status_changed`
    message are written, and the order's status is derived from the shipments left (with
    `order.status_changed` when it moves). Cancelling it again changes nothing. `Conflict` for
    a shipment in a final status (delivered, returned, expired); `NotFound` for an unknown id."""
    found = await session.get(Shipment, shipment_id)
    if found is None:
        raise NotFound(f"no shipment {shipment_id}")
    order = await lock_order(session, found.order_pk)
    shipments = await _shipments_of(session, found.order_pk)
    shipment = next(s for s in shipments if s.id == shipment_id)
    if shipment.cancelled_at is not None:
        return shipment
    if is_final(Status(shipment.status)):
        raise Conflict(
            f"shipment {shipment_id} is {shipment.status}: there is nothing left to cancel"
        )
    plan = plan_cancel(
        _order_state(order, shipments),
        [_shipment_state(s, public_base_url) for s in shipments],
        now,
        config,
        shipment_id=shipment_id,
    )
    await _write_cancel(session, order, shipments, plan)
    return shipment
