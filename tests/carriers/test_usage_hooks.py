"""The HTTP seam reports every carrier call to its observer and asks its gate before each one."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tracking_service.carriers.base import FailureKind, TrackingFailure, TrackingResult
from tracking_service.carriers.config import CarrierConfig
from tracking_service.carriers.http import CarrierCallError, CarrierHttp, CarrierLimits
from tracking_service.carriers.oauth import ups_token_request
from tracking_service.carriers.registry import build_registry
from tracking_service.carriers.sim.number import Scenario, encode
from tracking_service.carriers.simulated import create_sim_app
from tracking_service.carriers.usage import CallRecord, outcome_of_status
from tracking_service.settings import Settings

from .http_helpers import RecordingSleep

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
URL = "https://carrier.test/track"


class Calls:
    """A `CallObserver` that keeps every record."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def record(self, call: CallRecord) -> None:
        self.records.append(call)


class Gate:
    """A `CallGate` that remembers what it was asked and refuses once `refuse` is set."""

    def __init__(self, refuse: float | None = None) -> None:
        self.asked: list[tuple[str, float, int | None]] = []
        self.refuse = refuse

    async def admit(
        self, carrier: str, *, per_second: float, daily_limit: int | None
    ) -> float | None:
        self.asked.append((carrier, per_second, daily_limit))
        return self.refuse


def http_on(
    handler: httpx.MockTransport, calls: Calls, gate: Gate, daily_limit: int | None = None
) -> CarrierHttp:
    limits = CarrierLimits(requests_per_second=1000.0, burst=1000, max_attempts=3)
    return CarrierHttp(
        "test",
        limits,
        transport=handler,
        sleep=RecordingSleep(),
        rand=lambda: 0.5,
        observer=calls,
        gate=gate,
        daily_limit=daily_limit,
        now=lambda: AT,
    )


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "ok"),
        (304, "ok"),
        (404, "not_found"),
        (429, "rate_limited"),
        (401, "auth_failed"),
        (403, "auth_failed"),
        (400, "http_4xx"),
        (503, "http_5xx"),
    ],
)
def test_outcome_of_an_http_status(status: int, outcome: str) -> None:
    assert outcome_of_status(status) == outcome


async def test_every_attempt_is_recorded_with_endpoint_numbers_and_outcome() -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, json={})])
    calls, gate = Calls(), Gate()
    http = http_on(httpx.MockTransport(lambda request: next(answers)), calls, gate, 250)

    response = await http.request("GET", URL, endpoint="track", numbers=3)

    assert response.status_code == 200
    assert [(c.carrier, c.endpoint, c.outcome, c.numbers, c.at) for c in calls.records] == [
        ("test", "track", "http_5xx", 3, AT),
        ("test", "track", "ok", 3, AT),
    ]
    assert all(c.latency_ms >= 0 for c in calls.records)
    assert gate.asked == [("test", 1000.0, 250)] * 2  # asked before each attempt


async def test_a_call_without_an_answer_is_recorded_as_unavailable_or_timeout() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    calls = Calls()
    http = http_on(httpx.MockTransport(refuse), calls, Gate())
    with pytest.raises(CarrierCallError):
        await http.request("GET", URL)
    assert [c.outcome for c in calls.records] == ["unavailable"] * 3

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    calls = Calls()
    with pytest.raises(CarrierCallError):
        await http_on(httpx.MockTransport(slow), calls, Gate()).request("GET", URL)
    assert {c.outcome for c in calls.records} == {"timeout"}


async def test_a_refused_call_is_rate_limited_until_the_quota_renews_and_never_sent() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    calls = Calls()
    http = http_on(httpx.MockTransport(handler), calls, Gate(refuse=3600.0), daily_limit=250)
    with pytest.raises(CarrierCallError) as raised:
        await http.request("GET", URL)
    assert raised.value.kind is FailureKind.RATE_LIMITED
    assert raised.value.retry_after == 3600.0
    assert "daily limit of 250 calls" in raised.value.message
    assert sent == [] and calls.records == []  # nothing sent, nothing to count, no retries


async def test_registry_adapters_report_their_calls_and_batch_sizes() -> None:
    """The simulated adapter over its in-process app: one record per batch request."""
    calls, gate = Calls(), Gate()
    sim = httpx.ASGITransport(app=create_sim_app(speed=1440.0))
    configs = Settings(simulated_base_url="http://sim.test").carrier_configs()
    registry = build_registry(configs, None, transport=sim, observer=calls, gate=gate)
    numbers = [encode(Scenario.NORMAL, datetime.now(UTC), serial) for serial in (1, 2, 3)]
    try:
        outcomes = await registry.adapter("simulated").track(numbers)
    finally:
        await registry.aclose()
    assert all(isinstance(o, TrackingResult) for o in outcomes.values())
    assert [(c.carrier, c.endpoint, c.outcome, c.numbers) for c in calls.records] == [
        ("simulated", "track", "ok", 3)
    ]
    assert gate.asked == [("simulated", 2000.0, None)]


async def test_refused_by_the_gate_every_number_of_the_batch_fails_rate_limited() -> None:
    sim = httpx.ASGITransport(app=create_sim_app(speed=1440.0))
    config = Settings(simulated_base_url="http://sim.test").carrier_configs()["simulated"]
    limited = CarrierConfig(
        code=config.code,
        base_url=config.base_url,
        base_url_setting=config.base_url_setting,
        limits=config.limits,
        daily_limit=10,
    )
    registry = build_registry(
        {"simulated": limited}, None, transport=sim, observer=Calls(), gate=Gate(refuse=60.0)
    )
    number = encode(Scenario.NORMAL, datetime.now(UTC), 7)
    try:
        outcome = (await registry.adapter("simulated").track([number]))[number]
    finally:
        await registry.aclose()
    assert isinstance(outcome, TrackingFailure)
    assert outcome.kind is FailureKind.RATE_LIMITED and outcome.retry_after == 60.0


async def test_token_requests_are_recorded_as_the_token_endpoint() -> None:
    calls = Calls()
    http = http_on(httpx.MockTransport(lambda request: httpx.Response(200, json={})), calls, Gate())
    await ups_token_request(http, "https://ups.test", "id", "secret")()
    assert [(c.endpoint, c.numbers) for c in calls.records] == [("token", 0)]
