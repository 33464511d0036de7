"""Back-office API keys: only a hash is stored; the key itself is shown once."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from tracking_service.models.base import UTCDateTime, utcnow


class ApiKey(SQLModel, table=True):
    """One key: its name, the first characters (to recognise it in a list) and a sha256."""

    __tablename__ = "api_keys"
    __table_args__ = (sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
