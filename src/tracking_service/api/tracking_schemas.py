"""The back office's orders and shipments as JSON: strict inputs, the output objects, pages.

Shops integrate against these names (`order_id`, `placed_at`, `destination`, `option`,
`promise`, `customer`; a shipment's `id`, `carrier`, `tracking_number`, `status`,
`tracking_token`, `tracking_url`, `estimate`, `delayed`, `delay_reason`, `events`): fields may
be added, never renamed. Inputs are strict like the estimate route's: unknown fields are
refused, instants need a UTC offset, numbers are not strings. The customer's personal data
appears on the order only (this API is the back office's); a shipment's view, wherever it
appears, carries none of it, so it can be shown or sent on as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import Header, Query
from pydantic import BaseModel, ConfigDict, Field

from tracking_service.api.estimates import Instant, IsoDate, LaneOut
from tracking_service.api.problems import invalid_field
from tracking_service.errors import InvalidInput
from tracking_service.idempotency import MAX_KEY_LENGTH
from tracking_service.models.tracking import Order, Shipment, TrackingEventRecord
from tracking_service.tracking import registration as reg
from tracking_service.tracking.queries import MAX_LIMIT, ListFilter, OrderView, ShipmentView

ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""A shop's order id: it appears in URLs (`/v1/orders/{order_id}`), so no slash or space."""

ShipmentStatus = Literal[
    "pending",
    "info_received",
    "in_transit",
    "out_for_delivery",
    "available_for_pickup",
    "delivered",
    "failed_attempt",
    "exception",
    "returned_to_sender",
    "expired",
]
OrderStatus = Literal["processing", "partially_delivered", "cancelled", ShipmentStatus]
"""An order's status: its own three, or the status its shipments share."""
DelayReason = Literal["late_estimate", "promise_missed", "stalled", "carrier_exception"]
CarrierCode = Literal["ups", "fedex", "usps", "dhl", "simulated"]
CarrierChoice = Literal["ups", "fedex", "usps", "dhl", "simulated", "auto"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# --- input ------------------------------------------------------------------------------------


class OrderDestinationIn(_Strict):
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    postal_code: str = Field(min_length=1, max_length=16, examples=["10001"])
    subdivision: str | None = Field(
        default=None,
        min_length=1,
        max_length=6,
        description="State (ISO 3166-2 without country prefix); derived from US/BR postal codes",
    )
    city: str | None = Field(default=None, min_length=1, max_length=128)


class CustomerIn(_Strict):
    """Personal data: stored on the order, shown to the back office only, never on public
    pages, in shipments' views or in webhooks."""

    name: str | None = Field(default=None, min_length=1, max_length=256)
    email: str | None = Field(
        default=None, min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"
    )
    phone: str | None = Field(default=None, min_length=1, max_length=64)
    street: str | None = Field(default=None, min_length=1, max_length=512)


class OrderItemIn(_Strict):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, le=100_000)
    name: str | None = Field(default=None, min_length=1, max_length=256)
    available_on: IsoDate | None = Field(
        default=None, description="Back-order or pre-order: the date the item is ready to ship"
    )


class PromiseIn(_Strict):
    earliest: IsoDate = Field(description="First local delivery date promised at checkout")
    latest: IsoDate = Field(description="Last local delivery date promised at checkout")
    confidence: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="The promise's stated probability of delivery by `latest`; default the "
        "option's configured one",
    )


class OrderIn(_Strict):
    order_id: str = Field(pattern=ORDER_ID_PATTERN, description="The shop's own order id")
    placed_at: Instant = Field(
        description="When the order was placed: ISO 8601 instant with offset",
        examples=["2024-11-25T15:30:00-05:00"],
    )
    destination: OrderDestinationIn
    option: str = Field(min_length=1, max_length=64, description="Shipping option code sold")
    origin: str | None = Field(
        default=None, min_length=1, max_length=64, description="Origin id; default the first"
    )
    items: list[OrderItemIn] = Field(default_factory=list, max_length=200)
    promise: PromiseIn | None = Field(
        default=None,
        description="The promise the order was sold with; omitted: the estimator's at "
        "`placed_at` for this option and destination, stored with its basis",
    )
    customer: CustomerIn | None = None
    locale: str | None = Field(
        default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$", examples=["pt-BR"]
    )

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "order_id": "A-1001",
                    "placed_at": "2024-11-25T15:30:00-05:00",
                    "destination": {"country": "US", "postal_code": "10001", "city": "New York"},
                    "option": "standard",
                    "items": [{"sku": "MUG-01", "quantity": 2}],
                    "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
                }
            ]
        },
    )

    def to_input(self) -> reg.OrderInput:
        d, c, p = self.destination, self.customer, self.promise
        return reg.OrderInput(
            order_id=self.order_id,
            placed_at=self.placed_at,
            destination=reg.DestinationInput(d.country, d.postal_code, d.subdivision, d.city),
            option=self.option,
            origin=self.origin,
            items=tuple(
                reg.ItemInput(i.sku, i.quantity, i.name, i.available_on) for i in self.items
            ),
            promise=None if p is None else reg.PromiseInput(p.earliest, p.latest, p.confidence),
            customer=None if c is None else reg.CustomerInput(c.name, c.email, c.phone, c.street),
            locale=self.locale,
        )


class ShipmentItemIn(_Strict):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, le=100_000)


class ShipmentIn(_Strict):
    carrier: CarrierChoice = Field(
        description="The carrier, or `auto`: detected from the number's format and check digit"
    )
    tracking_number: str = Field(
        min_length=1,
        max_length=64,
        description="As printed on the label; spaces and dashes are ignored",
        examples=["1Z5R89390357567127"],
    )
    service: str | None = Field(default=None, min_length=1, max_length=64)
    items: list[ShipmentItemIn] = Field(
        default_factory=list, max_length=200, description="The order's items in this parcel"
    )

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"carrier": "auto", "tracking_number": "1Z5R89390357567127"}]
        },
    )

    def to_input(self) -> reg.ShipmentInput:
        return reg.ShipmentInput(
            self.carrier,
            self.tracking_number,
            self.service,
            tuple(reg.ShipmentItemInput(i.sku, i.quantity) for i in self.items),
        )


class OrderShipmentIn(ShipmentIn):
    """A shipment with the order it belongs to (`POST /v1/shipments`)."""

    order_id: str = Field(pattern=ORDER_ID_PATTERN, description="The shop's id of the order")

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"order_id": "A-1001", "carrier": "fedex", "tracking_number": "986578788855"}
            ]
        },
    )


# --- output -----------------------------------------------------------------------------------


class LocationOut(BaseModel):
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None


class EventOut(BaseModel):
    """One scan of the carrier (or an event of the service itself, such as a cancellation)."""

    status: ShipmentStatus | None = Field(
        description="Normalized status; null for a carrier code the service does not know"
    )
    occurred_at: datetime
    description: str
    location: LocationOut | None
    raw_code: str = Field(description="The carrier's own code")
    source: Literal["carrier", "service"]


class EstimateOut(BaseModel):
    earliest: date = Field(description="First local delivery date now expected")
    latest: date = Field(description="Last local delivery date now expected")
    source: str | None = Field(
        description="`carrier` (its own date), `history` or `rules` (re-estimated after a "
        "scan), `promise` (nothing better known yet)"
    )


class ShipmentItemOut(BaseModel):
    sku: str
    quantity: int


class ShipmentOut(BaseModel):
    """One parcel. Carries no personal data, wherever it appears."""

    id: int
    order_id: str = Field(description="The shop's id of the order it belongs to")
    carrier: CarrierCode
    tracking_number: str
    service: str | None
    status: ShipmentStatus
    raw_status_code: str | None = Field(description="The carrier's code for the status")
    raw_status_description: str | None
    tracking_token: str = Field(description="Public token of the tracking page (>= 128 bits)")
    tracking_url: str = Field(description="TRACKING_PUBLIC_BASE_URL + /t/{tracking_token}")
    estimate: EstimateOut | None
    delayed: bool
    delay_reason: DelayReason | None
    delayed_since: datetime | None
    handed_off_at: datetime | None
    delivered_at: datetime | None
    last_event_at: datetime | None
    next_poll_at: datetime | None = Field(description="Next carrier poll; null: never again")
    cancelled: bool = Field(description="Cancelled by the shop: no longer tracked")
    cancelled_at: datetime | None
    expired_at: datetime | None
    items: list[ShipmentItemOut]
    events: list[EventOut] = Field(description="Oldest first")
    created_at: datetime
    updated_at: datetime


class DestinationOut(BaseModel):
    country: str
    postal_code: str
    subdivision: str | None
    city: str | None


class CustomerOut(BaseModel):
    name: str | None
    email: str | None
    phone: str | None
    street: str | None


class OrderItemOut(BaseModel):
    sku: str
    quantity: int
    name: str | None
    available_on: date | None


class PromiseOut(BaseModel):
    earliest: date
    latest: date
    confidence: float
    basis: str = Field(
        description="`given` (sent by the shop), or the estimator's `rules` or `history`"
    )
    ship_date: date | None = Field(description="Planned ship date (the estimator's)")
    zone: str | None = Field(description="The option's zone for the destination")
    explanation: list[str] = Field(description="The estimator's reasoning, for people")
    lanes: list[LaneOut] = Field(description="Delivery-history lanes a history window rests on")


class OrderOut(BaseModel):
    order_id: str
    status: OrderStatus = Field(
        description="From the shipments not cancelled: `processing` before any, the least "
        "advanced one's status while they travel, `partially_delivered`, `delivered` when all "
        "are; `cancelled` once the order is cancelled"
    )
    placed_at: datetime
    origin: str
    option: str
    destination: DestinationOut
    customer: CustomerOut | None = Field(description="Back office only; never shown publicly")
    locale: str | None
    items: list[OrderItemOut]
    promise: PromiseOut
    delayed: bool = Field(description="Some shipment not cancelled is delayed")
    shipments: list[ShipmentOut] = Field(description="In registration order")
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class ShipmentPage(BaseModel):
    items: list[ShipmentOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


# --- rows to output ---------------------------------------------------------------------------


def _event_out(e: TrackingEventRecord) -> EventOut:
    has_place = any((e.city, e.region, e.postal_code, e.country))
    return EventOut.model_validate(
        {
            "status": e.status,
            "occurred_at": e.occurred_at,
            "description": e.description,
            "location": (
                {
                    "city": e.city,
                    "region": e.region,
                    "postal_code": e.postal_code,
                    "country": e.country,
                }
                if has_place
                else None
            ),
            "raw_code": e.raw_code,
            "source": e.source,
        }
    )


def _estimate(s: Shipment) -> EstimateOut | None:
    if s.estimate_earliest is None or s.estimate_latest is None:
        return None
    return EstimateOut(
        earliest=s.estimate_earliest, latest=s.estimate_latest, source=s.estimate_source
    )


def shipment_out(view: ShipmentView, base_url: str) -> ShipmentOut:
    s = view.shipment
    assert s.id is not None
    return ShipmentOut.model_validate(
        {
            "id": s.id,
            "order_id": view.order_id,
            "carrier": s.carrier,
            "tracking_number": s.tracking_number,
            "service": s.service,
            "status": s.status,
            "raw_status_code": s.raw_status_code,
            "raw_status_description": s.raw_status_description,
            "tracking_token": s.tracking_token,
            "tracking_url": reg.tracking_url(base_url, s.tracking_token),
            "estimate": _estimate(s),
            "delayed": s.delayed,
            "delay_reason": s.delay_reason,
            "delayed_since": s.delayed_since,
            "handed_off_at": s.handed_off_at,
            "delivered_at": s.delivered_at,
            "last_event_at": s.last_event_at,
            "next_poll_at": s.next_poll_at,
            "cancelled": s.cancelled_at is not None,
            "cancelled_at": s.cancelled_at,
            "expired_at": s.expired_at,
            "items": s.items,
            "events": [_event_out(e) for e in view.events],
            "created_at": s.created_at,
            "updated_at": s.updated_at,
        }
    )


def _promise_out(o: Order) -> PromiseOut:
    detail: dict[str, Any] = o.promise_detail or {}
    ship_date = detail.get("ship_date")
    return PromiseOut.model_validate(
        {
            "earliest": o.promise_earliest,
            "latest": o.promise_latest,
            "confidence": o.promise_confidence,
            "basis": o.promise_basis,
            "ship_date": date.fromisoformat(ship_date) if isinstance(ship_date, str) else None,
            "zone": detail.get("zone"),
            "explanation": list(detail.get("explanation") or ()),
            "lanes": list(detail.get("lanes") or ()),
        }
    )


def customer_out(o: Order) -> CustomerOut | None:
    """The order's customer (None when no personal data was given)."""
    personal = (o.customer_name, o.customer_email, o.customer_phone, o.customer_street)
    if not any(personal):
        return None
    return CustomerOut(name=personal[0], email=personal[1], phone=personal[2], street=personal[3])


def order_out(view: OrderView, base_url: str) -> OrderOut:
    o = view.order
    return OrderOut.model_validate(
        {
            "order_id": o.order_id,
            "status": o.status,
            "placed_at": o.placed_at,
            "origin": o.origin,
            "option": o.option,
            "destination": {
                "country": o.dest_country,
                "postal_code": o.dest_postal_code,
                "subdivision": o.dest_subdivision,
                "city": o.dest_city,
            },
            "customer": customer_out(o),
            "locale": o.locale,
            "items": o.items,
            "promise": _promise_out(o),
            "delayed": view.delayed,
            "shipments": [shipment_out(s, base_url) for s in view.shipments],
            "cancelled_at": o.cancelled_at,
            "created_at": o.created_at,
            "updated_at": o.updated_at,
        }
    )


# --- request plumbing shared by the orders and shipments routers ------------------------------


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[!-~]+$",
        description="Any unique string (a UUID): sending the same request again with the same "
        "key answers the first answer again and writes nothing twice; the same key with "
        "another request is a 409. Only successful answers are remembered",
    ),
]


@contextmanager
def fields_under(prefix: str) -> Iterator[None]:
    """Domain `InvalidInput` as a 422 whose field is under `prefix` (`body`, `query`)."""
    try:
        yield
    except InvalidInput as exc:
        field = f"{prefix}.{exc.field}" if exc.field else prefix
        raise invalid_field(field, exc.message) from None


def list_filter(
    status: str | None,
    delayed: bool | None,
    carrier: str | None,
    updated_since: datetime | None,
    limit: int,
    cursor: str | None,
) -> ListFilter:
    """The list routes' query as a `ListFilter`; an instant out of range is a 422."""
    if updated_since is not None:
        try:
            updated_since = updated_since.astimezone(UTC)
        except OverflowError:
            raise invalid_field("query.updated_since", "instant out of range") from None
    return ListFilter(status, delayed, carrier, updated_since, limit, cursor)


UpdatedSince = Annotated[
    Instant | None,
    Query(description="Only what changed at or after this instant (ISO 8601 with offset)"),
]
Delayed = Annotated[bool | None, Query(description="Only delayed (true) or on-time (false)")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
Cursor = Annotated[
    str | None,
    Query(min_length=1, max_length=512, description="`next_cursor` of the previous page"),
]
