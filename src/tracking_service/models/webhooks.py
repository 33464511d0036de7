"""Webhook subscriptions, one delivery per (endpoint, event), and every attempt to send it.

Outbox rows (models/tracking.py) are fanned out into `webhook_deliveries`: one row per endpoint
that wants the event type, copied with the event's stream and sequence so the dispatcher can
keep each shipment's events in order per endpoint. `outbox_cursors` remembers how far the
fan-out has read the outbox; it moves in the same transaction as the rows it creates, so no
event is fanned out twice or skipped. Each POST is recorded in `webhook_attempts`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from tracking_service.models.base import UTCDateTime, utcnow


class WebhookEndpoint(SQLModel, table=True):
    """A receiver ops subscribed, with its signing secret(s).

    After a rotation the previous secret keeps signing beside the new one until
    `previous_secret_until`. `failing_since` is the first failed delivery of a streak with no
    success since (None while healthy); `start_after_outbox_id` keeps a new endpoint from
    receiving events written before it existed.
    """

    __tablename__ = "webhook_endpoints"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2048)
    description: str | None = Field(default=None, max_length=512)
    event_types: list[str] | None = Field(default=None, sa_type=sa.JSON, description="None: all")
    enabled: bool = True
    secret: str = Field(max_length=128)
    previous_secret: str | None = Field(default=None, max_length=128)
    previous_secret_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_reason: str | None = Field(default=None, max_length=256)
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    start_after_outbox_id: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: pending until a 2xx (succeeded) or the last attempt (failed).

    `webhook_id` is the Standard Webhooks `webhook-id`, the outbox event's id: the same across
    retries and replays, so receivers deduplicate on it. A delivery without `outbox_id` is a
    `ping` (its payload is stored here). `next_attempt_at` None: nothing more to send.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_next_attempt_at", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        sa.Index(
            "ix_webhook_deliveries_endpoint_id_stream_sequence",
            "endpoint_id",
            "stream",
            "sequence",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(
        sa_column_args=[sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE")]
    )
    outbox_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("outbox_events.id", ondelete="CASCADE")]
    )
    webhook_id: str = Field(max_length=64)
    event_type: str = Field(max_length=64)
    stream: str | None = Field(default=None, max_length=64)
    sequence: int | None = None
    payload: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON, description="pings")
    status: str = Field(default="pending", max_length=16, description="pending/succeeded/failed")
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=512)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    """One POST of a delivery: when, what came back, how long it took."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (sa.Index("ix_webhook_attempts_delivery_id", "delivery_id"),)

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(
        sa_column_args=[sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE")]
    )
    attempt: int
    at: datetime = Field(sa_type=UTCDateTime, description="real wall-clock time of the POST")
    status_code: int | None = None
    latency_ms: float
    response_head: str | None = Field(default=None, max_length=1024, description="first 1 KB")
    error: str | None = Field(default=None, max_length=512)


class OutboxCursor(SQLModel, table=True):
    """How far a reader of the outbox (e.g. the webhook fan-out) has read it."""

    __tablename__ = "outbox_cursors"

    name: str = Field(primary_key=True, max_length=64)
    last_id: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
