"""Delivery records: the raw material of lane history."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from tracking_service.models.base import UTCDateTime, utcnow


class DeliveryRecord(SQLModel, table=True):
    """One delivered parcel: the raw material of lane history."""

    __tablename__ = "delivery_records"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_id", name="uq_delivery_records_source_external"),
        sa.Index("ix_delivery_records_delivered_at", "delivered_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32, description="olist, generic, tracking ...")
    external_id: str = Field(max_length=128, description="idempotency key within the source")
    order_time: datetime = Field(sa_type=UTCDateTime)
    handoff_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime = Field(sa_type=UTCDateTime)
    origin_id: str | None = Field(default=None, max_length=64)
    origin_country: str = Field(max_length=2)
    origin_subdivision: str | None = Field(default=None, max_length=16)
    origin_postal_code: str | None = Field(default=None, max_length=16)
    dest_country: str = Field(max_length=2)
    dest_subdivision: str | None = Field(default=None, max_length=16)
    dest_postal_code: str | None = Field(default=None, max_length=16)
    carrier: str | None = Field(default=None, max_length=32)
    service: str | None = Field(default=None, max_length=64)
    promised_date: date | None = None
    origin_tz: str | None = Field(default=None, max_length=64, description="IANA zone")
    dest_tz: str | None = Field(default=None, max_length=64, description="IANA zone")
    origin_lat: float | None = None
    origin_lng: float | None = None
    dest_lat: float | None = None
    dest_lng: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# The table itself, typed, for Core statements (bulk inserts, plain-column loads).
DELIVERY_RECORDS: sa.Table = SQLModel.metadata.tables["delivery_records"]
