"""Adapters by carrier code, from settings; `track auto` detection."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tracking_service.carriers.base import CarrierAdapter, FailureKind, TrackingFailure
from tracking_service.carriers.edge import NotConfiguredCarrier
from tracking_service.carriers.registry import (
    CARRIER_CODES,
    UnknownCarrierError,
    build_adapter,
    build_adapters,
    carrier_for,
    carrier_limits,
)
from tracking_service.settings import Settings

from .http_helpers import carrier_settings


def bare_settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def test_every_code_builds_an_adapter_with_credentials() -> None:
    adapters = build_adapters(carrier_settings(), None)
    try:
        assert set(adapters) == set(CARRIER_CODES)
        for code, adapter in adapters.items():
            assert isinstance(adapter, CarrierAdapter)
            assert adapter.code == code
            assert not isinstance(adapter, NotConfiguredCarrier)
        assert {c: a.max_batch for c, a in adapters.items() if c != "simulated"} == {
            "ups": 1,
            "fedex": 30,
            "usps": 35,
            "dhl": 1,
        }
    finally:
        for adapter in adapters.values():
            await adapter.aclose()


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("ups", "TRACKING_UPS_CLIENT_ID and TRACKING_UPS_CLIENT_SECRET"),
        ("fedex", "TRACKING_FEDEX_CLIENT_ID and TRACKING_FEDEX_CLIENT_SECRET"),
        ("usps", "TRACKING_USPS_CLIENT_ID and TRACKING_USPS_CLIENT_SECRET"),
        ("dhl", "TRACKING_DHL_API_KEY"),
    ],
)
async def test_a_carrier_without_credentials_answers_not_configured(code: str, hint: str) -> None:
    settings = bare_settings(**{f"{code}_client_id": "only-the-id"} if code != "dhl" else {})
    settings = settings.model_copy(update={"dhl_api_key": None})
    adapter = build_adapter(code, settings, None)
    outcomes = await adapter.track(["A1", "B2"])
    await adapter.aclose()
    assert set(outcomes) == {"A1", "B2"}
    for outcome in outcomes.values():
        assert isinstance(outcome, TrackingFailure)
        assert outcome.kind is FailureKind.NOT_CONFIGURED
        assert hint in outcome.message


def test_unknown_code_is_refused() -> None:
    with pytest.raises(UnknownCarrierError, match="choose one of ups, fedex"):
        build_adapter("royalmail", carrier_settings(), None)


def test_limits_come_from_settings() -> None:
    settings = bare_settings(
        dhl_requests_per_second=2.0,
        dhl_max_concurrency=3,
        carrier_timeout_seconds=9.0,
        carrier_max_attempts=2,
        dhl_api_key=SecretStr("k"),
    )
    limits = carrier_limits("dhl", settings)
    assert (limits.requests_per_second, limits.max_concurrency) == (2.0, 3)
    assert (limits.timeout, limits.max_attempts) == (9.0, 2)
    defaults = bare_settings()
    assert carrier_limits("fedex", defaults).requests_per_second * 10 < 1400  # published limit
    assert carrier_limits("dhl", defaults).requests_per_second <= 1  # starter plan: 1 call/s


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("1Z5R89390357567127", ("ups", "1Z5R89390357567127")),
        ("1z5r 8939 0357 5671 27", ("ups", "1Z5R89390357567127")),
        ("RB123456785US", ("usps", "RB123456785US")),
        ("RB123456785DE", ("dhl", "RB123456785DE")),
        ("12345", None),
        ("1Z5R89390357567128", None),  # wrong check digit
    ],
)
def test_auto_detection(number: str, expected: tuple[str, str] | None) -> None:
    assert carrier_for(number) == expected
