"""Customer email notifications: one row per message the service means to send.

A row is created from an outbox event (in the fan-out's transaction, unique by `dedupe_key`,
so a poll, retry or restart never makes a second), then claimed, sent over SMTP with no
transaction open, and its outcome recorded. `message_id` is fixed when the row is made: a
resend after a crash between the server's acceptance and the record carries the same
Message-ID. The address is never copied here: it is read from the order when sending, so an
erased contact stops everything still pending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from tracking_service.models.base import UTCDateTime, utcnow


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (
        sa.UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
        sa.UniqueConstraint("message_id", name="uq_notifications_message_id"),
        sa.Index("ix_notifications_next_attempt_at", "next_attempt_at"),
        sa.Index("ix_notifications_order_pk_id", "order_pk", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_pk: int = Field(sa_column_args=[sa.ForeignKey("orders.id", ondelete="CASCADE")])
    shipment_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("shipments.id", ondelete="CASCADE")]
    )
    outbox_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("outbox_events.id", ondelete="SET NULL")]
    )
    kind: str = Field(max_length=32, description="shipped, out_for_delivery, delivered, ...")
    dedupe_key: str = Field(max_length=160)
    locale: str = Field(max_length=16)
    message_id: str = Field(max_length=255, description="RFC 5322 Message-ID, fixed at creation")
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    status: str = Field(default="pending", max_length=16)
    not_before: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="quiet hours"
    )
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    subject: str | None = Field(default=None, max_length=256)
    last_error: str | None = Field(default=None, max_length=512)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
