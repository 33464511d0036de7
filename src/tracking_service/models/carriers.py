"""Carrier-side state shared by every process."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from tracking_service.models.base import UTCDateTime, utcnow


class CarrierToken(SQLModel, table=True):
    """OAuth access tokens shared by every process, so carriers' token endpoints are spared.

    One row per carrier account. `access_token` is None before the first token and after a
    token was invalidated; `lease_holder`/`lease_until` mark the process refreshing it now (see
    `tracking_service.carrier_tokens`).
    """

    __tablename__ = "carrier_tokens"

    carrier: str = Field(primary_key=True, max_length=32)
    client_id: str = Field(primary_key=True, max_length=256)
    access_token: str | None = Field(default=None, sa_type=sa.Text, nullable=True)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    lease_holder: str | None = Field(default=None, max_length=64, nullable=True)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class CarrierCall(SQLModel, table=True):
    """One call to a carrier's API: what it asked, how it went, how long it took."""

    __tablename__ = "carrier_calls"
    __table_args__ = (sa.Index("ix_carrier_calls_carrier_at", "carrier", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    carrier: str = Field(max_length=32)
    endpoint: str = Field(max_length=64, description="track, token, ...")
    outcome: str = Field(max_length=32, description="ok or a failure kind")
    latency_ms: float
    numbers: int = Field(default=0, description="tracking numbers in the batch")
    at: datetime = Field(sa_type=UTCDateTime)


class CarrierQuota(SQLModel, table=True):
    """Calls spent per carrier account and UTC day, shared by every worker: a daily limit
    holds for all processes together because each takes its calls here first."""

    __tablename__ = "carrier_quotas"

    carrier: str = Field(primary_key=True, max_length=32)
    day: date = Field(primary_key=True)
    calls: int = 0


class CarrierRateWindow(SQLModel, table=True):
    """Permits asked for per carrier account and window of time (one second, or longer for a
    rate under one a second), shared by every process: the first `limit` of the `requested`
    positions in a window are permits, the rest are refusals (see
    `tracking_service.carrier_quotas`). Old windows are deleted as they pass."""

    __tablename__ = "carrier_rate_windows"

    carrier: str = Field(primary_key=True, max_length=32)
    window_start: int = Field(
        primary_key=True, sa_type=sa.BigInteger, description="epoch second the window starts"
    )
    requested: int = 0
