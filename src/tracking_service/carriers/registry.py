"""Carrier adapters by code, built from `CarrierConfig`s and an injected `TokenStore`.

A carrier without credentials is a `NotConfiguredCarrier`: it answers `not_configured` for
every well-formed number instead of crashing, so the rest of the service runs with whatever is
set up. Tokens are shared through the `TokenStore` the caller gives (the database one in the
service, `tracking_service.carrier_tokens.SqlTokenStore`); None keeps them in this process.
Every adapter's `CarrierHttp` reports its calls to the `CallObserver` and asks the `CallGate`
before each one (`carriers.usage`; the service's are `tracking_service.carrier_usage` and
`tracking_service.carrier_quotas`); without them nothing is counted and only this process's
token bucket limits the rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import httpx

from tracking_service.carriers.base import CarrierAdapter, TrackingOutcome
from tracking_service.carriers.config import ApiKey, CarrierConfig, ClientCredentials
from tracking_service.carriers.dhl.client import DhlCarrier
from tracking_service.carriers.edge import HttpCarrierAdapter, NotConfiguredCarrier
from tracking_service.carriers.fedex.client import FedexCarrier
from tracking_service.carriers.http import CarrierHttp
from tracking_service.carriers.oauth import (
    MemoryTokenStore,
    TokenProvider,
    TokenRequest,
    TokenStore,
    fedex_token_request,
    ups_token_request,
    usps_token_request,
)
from tracking_service.carriers.simulated import SimulatedCarrier
from tracking_service.carriers.ups.client import UpsCarrier
from tracking_service.carriers.usage import CallGate, CallObserver
from tracking_service.carriers.usps.client import UspsCarrier

Sleep = Callable[[float], Awaitable[None]]
_TokenRequestFactory = Callable[[CarrierHttp, str, str, str], TokenRequest]

ADAPTERS: dict[str, type[HttpCarrierAdapter]] = {
    "ups": UpsCarrier,
    "fedex": FedexCarrier,
    "usps": UspsCarrier,
    "dhl": DhlCarrier,
    "simulated": SimulatedCarrier,
}
CARRIER_CODES: tuple[str, ...] = tuple(ADAPTERS)
_TOKEN_REQUESTS: dict[str, _TokenRequestFactory] = {
    "ups": ups_token_request,
    "fedex": fedex_token_request,
    "usps": usps_token_request,
}


class UnknownCarrierError(ValueError):
    """No adapter has this code."""


def _known(code: str) -> str:
    code = code.strip().lower()
    if code not in ADAPTERS:
        raise UnknownCarrierError(
            f"unknown carrier {code!r}: choose one of {', '.join(CARRIER_CODES)}"
        )
    return code


def build_adapter(
    config: CarrierConfig,
    tokens: TokenStore | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
    observer: CallObserver | None = None,
    gate: CallGate | None = None,
) -> CarrierAdapter:
    """The adapter `config` describes; `transport`/`sleep` are for tests and in-process
    servers, `observer`/`gate` count and limit its calls. Raises `UnknownCarrierError` for a
    code no adapter has."""
    code = _known(config.code)
    cls = ADAPTERS[code]
    if code == "simulated":
        return SimulatedCarrier(
            config.base_url, http=_http(config, transport, sleep, observer, gate)
        )
    credentials = config.credentials
    if credentials is None:
        return NotConfiguredCarrier(cls, config.missing_credentials())
    http = _http(config, transport, sleep, observer, gate)
    if code == "dhl":
        assert isinstance(credentials, ApiKey), "DHL is configured with an API key"
        return DhlCarrier(config.base_url, http, credentials.key)
    assert isinstance(credentials, ClientCredentials), f"{code} uses OAuth client credentials"
    request = _TOKEN_REQUESTS[code](
        http, config.base_url, credentials.client_id, credentials.client_secret
    )
    provider = TokenProvider(code, credentials.client_id, request, tokens, sleep=sleep)
    if code == "ups":
        return UpsCarrier(config.base_url, http, provider)
    if code == "fedex":
        return FedexCarrier(config.base_url, http, provider)
    return UspsCarrier(config.base_url, http, provider)


def _http(
    config: CarrierConfig,
    transport: httpx.AsyncBaseTransport | None,
    sleep: Sleep,
    observer: CallObserver | None,
    gate: CallGate | None,
) -> CarrierHttp:
    return CarrierHttp(
        config.code,
        config.limits,
        transport=transport,
        sleep=sleep,
        base_url=config.base_url,
        base_url_setting=config.base_url_setting,
        observer=observer,
        gate=gate,
        daily_limit=config.daily_limit,
    )


class CarrierRegistry:
    """Every configured carrier's adapter by code, open until `aclose`."""

    def __init__(self, adapters: Mapping[str, CarrierAdapter]) -> None:
        self._adapters = dict(adapters)

    @property
    def codes(self) -> tuple[str, ...]:
        """The carrier codes this registry answers for, in a stable order."""
        return tuple(self._adapters)

    def adapter(self, code: str) -> CarrierAdapter:
        """The adapter of `code` (case and spaces ignored); `UnknownCarrierError` otherwise."""
        key = code.strip().lower()
        if key not in self._adapters:
            raise UnknownCarrierError(
                f"unknown carrier {code!r}: choose one of {', '.join(self.codes)}"
            )
        return self._adapters[key]

    async def aclose(self) -> None:
        """Close every adapter's HTTP client."""
        await asyncio.gather(*(adapter.aclose() for adapter in self._adapters.values()))


def build_registry(
    configs: Mapping[str, CarrierConfig],
    tokens: TokenStore | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
    observer: CallObserver | None = None,
    gate: CallGate | None = None,
) -> CarrierRegistry:
    """One adapter per config (`Settings.carrier_configs()`), sharing `tokens` (None: one
    in-memory store for this registry), reporting calls to `observer` and admitted by `gate`
    (None: counted nowhere, limited per process only)."""
    store: TokenStore = tokens if tokens is not None else MemoryTokenStore()
    return CarrierRegistry(
        {
            config.code: build_adapter(
                config, store, transport=transport, sleep=sleep, observer=observer, gate=gate
            )
            for config in configs.values()
        }
    )


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
        if code in ADAPTERS:
            return code, match.tracking_number
    return None


async def track_now(registry: CarrierRegistry, code: str, number: str) -> TrackingOutcome:
    """Track one number right now through `code`'s adapter (the `track` command)."""
    return (await registry.adapter(code).track([number]))[number]
