"""Carrier-side state shared by every process."""

from __future__ import annotations

from datetime import datetime

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
