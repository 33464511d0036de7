"""The deployment's simulated clock, shared by every process through the database."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from tracking_service.models.base import UTCDateTime, utcnow


class ClockAnchor(SQLModel, table=True):
    """Where a fast clock runs from: at the real instant `real_at` the service's clock read
    `simulated_at`, and it runs `speed` times faster since. One row (id 1), written by the first
    process that runs a fast clock on this database and read by every later one, so all the
    processes of a deployment (and an in-process simulated carrier) agree on simulated time,
    and a restart continues that time instead of jumping back to the wall clock."""

    __tablename__ = "clock_anchor"

    id: int = Field(default=1, primary_key=True)
    real_at: datetime = Field(sa_type=UTCDateTime)
    simulated_at: datetime = Field(sa_type=UTCDateTime)
    speed: float
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
