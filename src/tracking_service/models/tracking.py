"""Orders, their shipments, the carriers' events, and the outbox of what changed.

An order is what the shop sold, with the promise it was sold with; a shipment is one carrier
parcel of it, followed by the polling worker until a final status. Carrier events are stored
before anything reacts to them, deduplicated per shipment by the carrier's stable key. Outbox
rows are written in the same transaction as the change that caused them and never changed
afterwards; the webhook dispatcher and the mailer read them later.

Personal data (`customer_*` and the street) lives only on `orders` and is never copied into
events, outbox payloads or public pages.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from tracking_service.models.base import UTCDateTime, utcnow


class Order(SQLModel, table=True):
    """A registered order: destination, option, and the promise it was sold with."""

    __tablename__ = "orders"
    __table_args__ = (
        sa.UniqueConstraint("order_id", name="uq_orders_order_id"),
        sa.Index("ix_orders_updated_at_id", "updated_at", "id"),
        sa.Index("ix_orders_status", "status"),
        sa.Index("ix_orders_placed_at", "placed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(max_length=128, description="the shop's own order id")
    placed_at: datetime = Field(sa_type=UTCDateTime)
    origin: str = Field(max_length=64, description="origin id of the rules")
    option: str = Field(max_length=64, description="shipping option code")
    dest_country: str = Field(max_length=2)
    dest_postal_code: str = Field(max_length=16)
    dest_subdivision: str | None = Field(default=None, max_length=16)
    dest_city: str | None = Field(default=None, max_length=128)
    customer_name: str | None = Field(default=None, max_length=256)
    customer_email: str | None = Field(default=None, max_length=320)
    customer_phone: str | None = Field(default=None, max_length=64)
    customer_street: str | None = Field(default=None, max_length=512)
    locale: str | None = Field(default=None, max_length=16, description="en, pt-BR ...")
    items: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    promise_earliest: date
    promise_latest: date
    promise_confidence: float
    promise_basis: str = Field(max_length=16, description="given, rules or history")
    promise_detail: dict[str, Any] = Field(
        default_factory=dict, sa_type=sa.JSON, description="ship date, lanes, explanation"
    )
    # the promise ledger (reports, recalibration): when the model made its promise, the
    # quantile level it used, and its predictive distribution of the delivery date then
    promise_made_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    promise_level: float | None = None
    promise_distribution: dict[str, Any] | None = Field(
        default=None,
        sa_type=sa.JSON,
        description='{"start": "YYYY-MM-DD", "cdf": [P(delivered by start + k days), ...]} on '
        "the destination's local dates",
    )
    dest_tz: str | None = Field(default=None, max_length=64, description="destination's zone")
    # the customer's email address as a contact: None (usable), bounced, invalid or erased
    contact_state: str | None = Field(default=None, max_length=16)
    contact_state_reason: str | None = Field(default=None, max_length=512)
    contact_state_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default="processing", max_length=32)
    sequence: int = Field(default=0, description="last outbox sequence of this order's stream")
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Shipment(SQLModel, table=True):
    """One carrier parcel of an order, with its polling state.

    `next_poll_at` is when the worker polls it next (None: never again, a final status or a
    cancelled shipment). A claim moves `next_poll_at` forward by the lease and sets
    `claimed_by`/`claimed_until`, so a dead worker's claims come due again by themselves.
    """

    __tablename__ = "shipments"
    __table_args__ = (
        sa.UniqueConstraint("carrier", "tracking_number", name="uq_shipments_carrier_number"),
        sa.UniqueConstraint("tracking_token", name="uq_shipments_tracking_token"),
        sa.Index("ix_shipments_next_poll_at", "next_poll_at"),
        sa.Index("ix_shipments_order_pk", "order_pk"),
        sa.Index("ix_shipments_updated_at_id", "updated_at", "id"),
        sa.Index("ix_shipments_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_pk: int = Field(sa_column_args=[sa.ForeignKey("orders.id", ondelete="CASCADE")])
    carrier: str = Field(max_length=32)
    tracking_number: str = Field(max_length=64)
    service: str | None = Field(default=None, max_length=64)
    items: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    tracking_token: str = Field(max_length=64, description="public, >= 128 random bits")
    status: str = Field(default="pending", max_length=32)
    raw_status_code: str | None = Field(default=None, max_length=64)
    raw_status_description: str | None = Field(default=None, max_length=512)
    status_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    estimate_earliest: date | None = None
    estimate_latest: date | None = None
    estimate_source: str | None = Field(
        default=None, max_length=16, description="carrier, history, rules or promise"
    )
    delayed: bool = False
    delay_reason: str | None = Field(default=None, max_length=32)
    delayed_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    handed_off_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_event_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_poll_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_polled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    poll_failures: int = Field(default=0, description="consecutive failed polls")
    last_poll_error: str | None = Field(default=None, max_length=512)
    sequence: int = Field(default=0, description="last outbox sequence of this shipment")
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TrackingEventRecord(SQLModel, table=True):
    """One stored scan (or a service event such as a cancellation), oldest first by time."""

    __tablename__ = "tracking_events"
    __table_args__ = (
        sa.UniqueConstraint("shipment_id", "dedupe_key", name="uq_tracking_events_dedupe"),
        sa.Index("ix_tracking_events_shipment_id_occurred_at", "shipment_id", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: int = Field(sa_column_args=[sa.ForeignKey("shipments.id", ondelete="CASCADE")])
    dedupe_key: str = Field(max_length=128)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    status: str | None = Field(default=None, max_length=32, description="None: unknown code")
    raw_code: str = Field(default="", max_length=64)
    description: str = Field(default="", max_length=512)
    city: str | None = Field(default=None, max_length=128)
    region: str | None = Field(default=None, max_length=64)
    postal_code: str | None = Field(default=None, max_length=16)
    country: str | None = Field(default=None, max_length=2)
    source: str = Field(default="carrier", max_length=16, description="carrier or service")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutboxEvent(SQLModel, table=True):
    """An event for the outside world, written with the change that caused it.

    `stream` is `shipment:<id>` or `order:<id>`; `sequence` grows by one per stream, so a
    receiver can order a stream's events and (stream, sequence) can never be written twice.
    `event_id` is the `webhook-id` receivers deduplicate on.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (
        sa.UniqueConstraint("event_id", name="uq_outbox_events_event_id"),
        sa.UniqueConstraint("stream", "sequence", name="uq_outbox_events_stream_sequence"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64)
    event_type: str = Field(max_length=64)
    stream: str = Field(max_length=64)
    sequence: int
    shipment_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("shipments.id", ondelete="SET NULL")]
    )
    order_pk: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("orders.id", ondelete="SET NULL")]
    )
    occurred_at: datetime = Field(sa_type=UTCDateTime, description="instant of the change")
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a write sent with an `Idempotency-Key`, replayed for a retry."""

    __tablename__ = "idempotency_keys"

    scope: str = Field(primary_key=True, max_length=128, description="METHOD route template")
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64, description="sha256 of the canonical body")
    status_code: int
    response_body: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PromiseRevision(SQLModel, table=True):
    """One re-estimate of an order's delivery after its promise (the promise ledger): at
    hand-off, after a scan, a carrier's own date. Written with the change that caused it."""

    __tablename__ = "promise_revisions"
    __table_args__ = (sa.Index("ix_promise_revisions_order_pk_at", "order_pk", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    order_pk: int = Field(sa_column_args=[sa.ForeignKey("orders.id", ondelete="CASCADE")])
    shipment_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("shipments.id", ondelete="CASCADE")]
    )
    at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=16, description="handoff, scan or carrier")
    earliest: date | None = None
    latest: date | None = None
    source: str | None = Field(default=None, max_length=32, description="estimate source")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
