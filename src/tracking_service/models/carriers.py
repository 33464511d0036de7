"""Carrier-side state shared by every process."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from tracking_service.models.base import UTCDateTime, utcnow


class CarrierToken(SQLModel, table=True):
    """OAuth access tokens shared by every process, so carriers' token endpoints are spared."""

    __tablename__ = "carrier_tokens"

    carrier: str = Field(primary_key=True, max_length=32)
    client_id: str = Field(primary_key=True, max_length=256)
    access_token: str = Field(sa_type=sa.Text)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
