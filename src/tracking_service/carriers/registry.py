"""Carrier adapters by code, built from `Settings` (credentials, base URLs, limits).

A carrier without credentials is a `NotConfiguredCarrier`: it answers `not_configured` for
every number instead of crashing, so the rest of the service runs with whatever is set up.
The `AsyncEngine` holds the shared OAuth token cache (`carrier_tokens`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.carriers.base import CarrierAdapter, TrackingOutcome
from tracking_service.carriers.edge import NotConfiguredCarrier
from tracking_service.carriers.http import CarrierHttp, CarrierLimits
from tracking_service.carriers.oauth import (
    TokenProvider,
    fedex_token_request,
    ups_token_request,
    usps_token_request,
)
from tracking_service.settings import Settings

CARRIER_CODES: tuple[str, ...] = ("ups", "fedex", "usps", "dhl", "simulated")
MAX_BATCH = {"ups": 1, "fedex": 30, "usps": 35, "dhl": 1}
_BURST_SECONDS = {"ups": 2.0, "fedex": 1.0, "usps": 5.0, "dhl": 1.0, "simulated": 1.0}


class UnknownCarrierError(ValueError):
    """No adapter has this code."""


def carrier_limits(code: str, settings: Settings) -> CarrierLimits:
    """The limits of one carrier from settings (`TRACKING_<CODE>_REQUESTS_PER_SECOND`...)."""
    rate: float = getattr(settings, f"{code}_requests_per_second")
    return CarrierLimits(
        requests_per_second=rate,
        burst=max(1, round(rate * _BURST_SECONDS.get(code, 1.0))),
        max_concurrency=getattr(settings, f"{code}_max_concurrency"),
        timeout=settings.carrier_timeout_seconds,
        max_attempts=settings.carrier_max_attempts,
    )


def build_adapter(
    code: str,
    settings: Settings,
    engine: AsyncEngine | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> CarrierAdapter:
    """The adapter for `code`; `transport`/`sleep` are for tests and in-process servers."""
    code = code.strip().lower()
    if code not in CARRIER_CODES:
        raise UnknownCarrierError(
            f"unknown carrier {code!r}: choose one of {', '.join(CARRIER_CODES)}"
        )
    if code == "simulated":
        from tracking_service.carriers.simulated import SimulatedCarrier

        return SimulatedCarrier(
            settings.simulated_base_url,
            transport=transport,
            limits=carrier_limits(code, settings),
            sleep=sleep,
        )
    if code == "dhl":
        key = settings.dhl_api_key.get_secret_value() if settings.dhl_api_key else ""
        if not key:
            return NotConfiguredCarrier(code, MAX_BATCH[code], _missing(code, "API_KEY"))
        from tracking_service.carriers.dhl.client import DhlCarrier

        http = CarrierHttp(code, carrier_limits(code, settings), transport=transport, sleep=sleep)
        return DhlCarrier(settings.dhl_base_url, http, key)

    client_id: str | None = getattr(settings, f"{code}_client_id")
    secret_value = getattr(settings, f"{code}_client_secret")
    secret = secret_value.get_secret_value() if secret_value is not None else ""
    if not client_id or not secret:
        return NotConfiguredCarrier(
            code, MAX_BATCH[code], _missing(code, "CLIENT_ID and TRACKING_%s_CLIENT_SECRET")
        )
    base_url: str = getattr(settings, f"{code}_base_url")
    http = CarrierHttp(code, carrier_limits(code, settings), transport=transport, sleep=sleep)
    if code == "ups":
        from tracking_service.carriers.ups.client import UpsCarrier

        request = ups_token_request(http, base_url, client_id, secret)
        return UpsCarrier(base_url, http, TokenProvider(code, client_id, request, engine))
    if code == "fedex":
        from tracking_service.carriers.fedex.client import FedexCarrier

        request = fedex_token_request(http, base_url, client_id, secret)
        return FedexCarrier(base_url, http, TokenProvider(code, client_id, request, engine))
    from tracking_service.carriers.usps.client import UspsCarrier

    request = usps_token_request(http, base_url, client_id, secret)
    return UspsCarrier(base_url, http, TokenProvider(code, client_id, request, engine))


def _missing(code: str, what: str) -> str:
    upper = code.upper()
    return f"{code} is not configured: set TRACKING_{upper}_" + (
        what % upper if "%s" in what else what
    )


def build_adapters(
    settings: Settings,
    engine: AsyncEngine | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, CarrierAdapter]:
    """Every carrier's adapter, keyed by code (close them with `aclose`)."""
    return {
        code: build_adapter(code, settings, engine, transport=transport) for code in CARRIER_CODES
    }


def carrier_for(number: str) -> tuple[str, str] | None:
    """(carrier code, number to track) for `track auto`, from the number's format and check
    digit; None when no format matches validly.

    S10 numbers (international mail of postal operators) go to DHL when they end in DE
    (Deutsche Post, tracked by DHL's unified API) and to USPS otherwise.
    """
    from tracking_service.carriers.numbers import detect

    for match in detect(number):
        if not match.valid:
            continue
        code = match.carrier
        if code == "s10":
            code = "dhl" if match.tracking_number.endswith("DE") else "usps"
        if code in CARRIER_CODES:
            return code, match.tracking_number
    return None


async def track_now(
    code: str,
    number: str,
    settings: Settings,
    engine: AsyncEngine | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> TrackingOutcome:
    """Track one number right now through its carrier's adapter (the `track` command)."""
    adapter = build_adapter(code, settings, engine, transport=transport)
    try:
        return (await adapter.track([number]))[number]
    finally:
        await adapter.aclose()
