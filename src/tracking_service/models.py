"""Database tables. Every stored instant is timezone-aware UTC (see `UTCDateTime`).

Tables arrive with the issues that need them; each change comes with an Alembic revision in
`migrations/versions/`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (naive storage) and PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware instants only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryRecord(SQLModel, table=True):
    """One delivered parcel: the raw material of lane history (issue 5)."""

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


class CarrierToken(SQLModel, table=True):
    """OAuth access tokens shared by every process, so carriers' token endpoints are spared."""

    __tablename__ = "carrier_tokens"

    carrier: str = Field(primary_key=True, max_length=32)
    client_id: str = Field(primary_key=True, max_length=256)
    access_token: str = Field(sa_type=sa.Text)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
