"""The adapter contract: plain result types and the protocol every carrier implements.

An adapter tracks a batch of numbers and answers, per number, a `TrackingResult` or a typed
`TrackingFailure`; no httpx or parsing exception ever escapes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from tracking_service.carriers.status import Status

_SEPARATORS = re.compile(r"[\s-]")


def normalize_number(number: object) -> str:
    """A tracking number as carriers compare it: no spaces or dashes (how people type numbers
    is not part of the number), upper case; "" for anything that is not a string."""
    if not isinstance(number, str):
        return ""
    return _SEPARATORS.sub("", number).upper()


class FailureKind(StrEnum):
    NOT_FOUND = "not_found"
    INVALID_NUMBER = "invalid_number"
    UNAVAILABLE = "unavailable"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"
    NOT_CONFIGURED = "not_configured"
    BAD_RESPONSE = "bad_response"


@dataclass(frozen=True, slots=True)
class Location:
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    """One carrier scan. `status` is None when the carrier's code is unknown to us."""

    occurred_at: datetime  # timezone-aware
    status: Status | None
    raw_code: str
    description: str
    location: Location | None
    dedupe_key: str  # stable across polls: same scan, same key


@dataclass(frozen=True, slots=True)
class DeliveryWindow:
    """The carrier's estimated or scheduled delivery, as local dates at the destination."""

    earliest: date
    latest: date


@dataclass(frozen=True, slots=True)
class TrackingResult:
    carrier: str
    tracking_number: str
    status: Status | None  # None: the carrier's current code is unknown; keep the last one
    raw_status_code: str
    raw_status_description: str
    events: tuple[TrackingEvent, ...] = ()  # oldest first
    estimated_delivery: DeliveryWindow | None = None
    delivered_at: datetime | None = None
    signed_by: str | None = None


@dataclass(frozen=True, slots=True)
class TrackingFailure:
    carrier: str
    tracking_number: str
    kind: FailureKind
    message: str
    retry_after: float | None = field(default=None)


TrackingOutcome = TrackingResult | TrackingFailure


@runtime_checkable
class CarrierAdapter(Protocol):
    """What every carrier implements."""

    code: str
    max_batch: int  # numbers per request the carrier accepts (1 = one at a time)

    async def track(self, numbers: Sequence[str]) -> Mapping[str, TrackingOutcome]:
        """Track a batch; one outcome per number, never an exception."""
        ...

    async def aclose(self) -> None:
        """Close the adapter's shared httpx.AsyncClient."""
        ...
