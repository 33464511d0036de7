"""Adapters by carrier code, from carrier configs; `track auto` detection."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from tracking_service.carriers.base import (
    CarrierAdapter,
    FailureKind,
    TrackingFailure,
    TrackingResult,
)
from tracking_service.carriers.config import CarrierConfig
from tracking_service.carriers.edge import NotConfiguredCarrier
from tracking_service.carriers.registry import (
    CARRIER_CODES,
    UnknownCarrierError,
    build_adapter,
    build_registry,
    carrier_for,
    track_now,
)
from tracking_service.carriers.sim.number import Scenario, encode
from tracking_service.carriers.sim.server import create_sim_app
from tracking_service.settings import Settings

from .http_helpers import NUMBERS, carrier_settings

CARRIERS_DIR = Path(__file__).parents[2] / "src" / "tracking_service" / "carriers"


def mint() -> str:
    """A simulated label created an hour ago."""
    return encode(Scenario.NORMAL, datetime.now(UTC) - timedelta(hours=1), 1)


def bare_settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def test_every_code_builds_an_adapter_with_credentials() -> None:
    registry = build_registry(carrier_settings().carrier_configs(), None)
    try:
        assert set(registry.codes) == set(CARRIER_CODES)
        adapters = {code: registry.adapter(code) for code in registry.codes}
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
        await registry.aclose()


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
    adapter = build_adapter(settings.carrier_configs()[code], None)
    first, second = NUMBERS[code]
    outcomes = await adapter.track([first, second])
    await adapter.aclose()
    assert set(outcomes) == {first, second}
    for outcome in outcomes.values():
        assert isinstance(outcome, TrackingFailure)
        assert outcome.kind is FailureKind.NOT_CONFIGURED
        assert hint in outcome.message


@pytest.mark.parametrize("code", ["ups", "fedex", "usps", "dhl"])
async def test_a_malformed_number_is_invalid_before_not_configured(code: str) -> None:
    """The number is checked as the real adapter would: its fault comes first."""
    adapter = build_adapter(bare_settings().carrier_configs()[code], None)
    outcomes = await adapter.track(["A1", "no-such!"])
    assert {o.kind for o in outcomes.values() if isinstance(o, TrackingFailure)} == {
        FailureKind.INVALID_NUMBER
    }
    assert len(outcomes) == 2


async def test_a_wrong_check_digit_is_invalid_before_not_configured() -> None:
    """A UPS 1Z number with a wrong check digit is a typo: said so first, nothing is called."""
    unconfigured = build_adapter(bare_settings().carrier_configs()["ups"], None)
    configured = build_adapter(carrier_settings().carrier_configs()["ups"], None)
    for adapter in (unconfigured, configured):
        outcome = (await adapter.track(["1Z5R89390357567128"]))["1Z5R89390357567128"]
        await adapter.aclose()
        assert isinstance(outcome, TrackingFailure)
        assert outcome.kind is FailureKind.INVALID_NUMBER
        assert "check digit" in outcome.message
    right = (await unconfigured.track(["1Z5R89390357567127"]))["1Z5R89390357567127"]
    assert isinstance(right, TrackingFailure) and right.kind is FailureKind.NOT_CONFIGURED


def test_unknown_code_is_refused() -> None:
    config = CarrierConfig(code="royalmail", base_url="https://x", base_url_setting="X")
    with pytest.raises(UnknownCarrierError, match="choose one of ups, fedex"):
        build_adapter(config, None)


async def test_the_registry_refuses_an_unknown_code() -> None:
    registry = build_registry(bare_settings().carrier_configs(), None)
    try:
        assert registry.adapter(" UPS ").code == "ups"
        with pytest.raises(UnknownCarrierError, match="choose one of ups, fedex"):
            registry.adapter("royalmail")
    finally:
        await registry.aclose()


def test_limits_come_from_settings() -> None:
    settings = bare_settings(
        dhl_requests_per_second=2.0,
        dhl_max_concurrency=3,
        carrier_timeout_seconds=9.0,
        carrier_max_attempts=2,
        dhl_api_key=SecretStr("k"),
    )
    limits = settings.carrier_configs()["dhl"].limits
    assert (limits.requests_per_second, limits.max_concurrency) == (2.0, 3)
    assert (limits.timeout, limits.max_attempts) == (9.0, 2)
    defaults = bare_settings().carrier_configs()
    assert defaults["fedex"].limits.requests_per_second * 10 < 1400  # published limit
    assert defaults["dhl"].limits.requests_per_second <= 1  # starter plan: 1 call/s


def test_each_config_names_the_settings_that_set_it() -> None:
    configs = bare_settings(ups_base_url="https://ups.example").carrier_configs()
    assert set(configs) == set(CARRIER_CODES)
    assert configs["ups"].base_url == "https://ups.example"
    for code, config in configs.items():
        assert config.code == code
        assert config.base_url_setting == f"TRACKING_{code.upper()}_BASE_URL"
        assert config.base_url_setting.removeprefix("TRACKING_").lower() in Settings.model_fields
    assert configs["ups"].credentials is None  # nothing set
    with_dhl = bare_settings(dhl_api_key=SecretStr("s3cr3t-key")).carrier_configs()["dhl"]
    assert with_dhl.credentials is not None
    assert "s3cr3t-key" not in repr(with_dhl)  # secrets stay out of logs


def test_carriers_read_no_settings_and_no_database() -> None:
    """carriers/ get plain configs and a TokenStore: no settings, models or db imports, and no
    setting looked up by a computed name."""
    forbidden = re.compile(
        r"^\s*(from|import) tracking_service\.(settings|models|db)\b|getattr\(settings", re.M
    )
    offenders = [
        str(path.relative_to(CARRIERS_DIR))
        for path in CARRIERS_DIR.rglob("*.py")
        if forbidden.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


async def test_track_now_goes_through_the_registry() -> None:
    transport = httpx.ASGITransport(app=create_sim_app())
    configs = bare_settings(simulated_base_url="http://sim").carrier_configs()
    registry = build_registry(configs, None, transport=transport)
    number = mint()
    try:
        outcome = await track_now(registry, "simulated", number)
    finally:
        await registry.aclose()
    assert isinstance(outcome, TrackingResult), outcome
    assert outcome.tracking_number == number


async def test_an_unreachable_base_url_names_the_url_and_its_setting() -> None:
    configs = bare_settings(
        simulated_base_url="http://127.0.0.1:1", carrier_max_attempts=1
    ).carrier_configs()
    registry = build_registry(configs, None)
    try:
        outcome = await track_now(registry, "simulated", mint())
    finally:
        await registry.aclose()
    assert isinstance(outcome, TrackingFailure)
    assert outcome.kind is FailureKind.UNAVAILABLE
    assert (
        "cannot connect to http://127.0.0.1:1 (set by TRACKING_SIMULATED_BASE_URL): "
        "connection refused" in outcome.message
    )
    assert "ConnectError" not in outcome.message


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
