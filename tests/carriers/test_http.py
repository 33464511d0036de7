"""The shared carrier HTTP edge: backoff schedule, Retry-After, token bucket, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from tracking_service.carriers.base import FailureKind
from tracking_service.carriers.http import (
    CarrierCallError,
    CarrierHttp,
    CarrierLimits,
    TokenBucket,
    backoff_delay,
    decode_json,
    join_url,
    parse_retry_after,
)

from .http_helpers import RecordingSleep

URL = "https://carrier.test/api/thing"


def test_backoff_grows_exponentially_to_the_cap_with_full_jitter() -> None:
    ceilings = [backoff_delay(n, base=0.5, cap=10.0, rand=0.999999) for n in range(8)]
    assert ceilings == pytest.approx([0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0], rel=1e-5)
    assert backoff_delay(3, base=0.5, cap=10.0, rand=0.0) == 0.0
    assert backoff_delay(3, base=0.5, cap=10.0, rand=0.25) == pytest.approx(1.0)


def test_backoff_takes_the_servers_retry_after() -> None:
    assert backoff_delay(0, base=0.5, cap=10.0, rand=0.9, retry_after=7.0) == 7.0


def test_retry_after_in_seconds_or_http_date() -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None


def test_join_url_keeps_a_base_path_prefix() -> None:
    assert join_url("https://h.test/", "/a/b") == "https://h.test/a/b"
    assert join_url("http://127.0.0.1:9/prefix", "a/b") == "http://127.0.0.1:9/prefix/a/b"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_token_bucket_allows_a_burst_then_paces_requests() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, capacity=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await bucket.acquire()
    assert clock.slept == []
    await bucket.acquire()
    await bucket.acquire()
    assert clock.slept == pytest.approx([0.5, 0.5])
    assert clock.now == pytest.approx(1.0)


def _http(sleep: RecordingSleep, **limits: float) -> CarrierHttp:
    settings = {"requests_per_second": 1000.0, "burst": 1000, "max_attempts": 4, **limits}
    return CarrierHttp("test", CarrierLimits(**settings), sleep=sleep, rand=lambda: 0.5)  # type: ignore[arg-type]


@respx.mock
async def test_5xx_then_success_is_retried_with_backoff() -> None:
    route = respx.get(URL).mock(
        side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(200, json={})]
    )
    sleep = RecordingSleep()
    http = _http(sleep)
    response = await http.request("GET", URL)
    await http.aclose()
    assert response.status_code == 200
    assert route.call_count == 3
    assert sleep.calls == pytest.approx([0.25, 0.5])  # rand 0.5 x (0.5, 1.0)


@respx.mock
async def test_429_sleeps_for_retry_after() -> None:
    respx.get(URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200)]
    )
    sleep = RecordingSleep()
    http = _http(sleep)
    assert (await http.request("GET", URL)).status_code == 200
    assert sleep.calls == [7.0]


@respx.mock
async def test_429_with_retry_after_beyond_the_cap_gives_up_at_once() -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    sleep = RecordingSleep()
    http = _http(sleep)
    with pytest.raises(CarrierCallError) as caught:
        await http.request("GET", URL)
    assert caught.value.kind is FailureKind.RATE_LIMITED
    assert caught.value.retry_after == 3600
    assert route.call_count == 1
    assert sleep.calls == []


@respx.mock
async def test_persistent_429_is_rate_limited_after_all_attempts() -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "2"}))
    sleep = RecordingSleep()
    http = _http(sleep, max_attempts=3)
    with pytest.raises(CarrierCallError) as caught:
        await http.request("GET", URL)
    assert caught.value.kind is FailureKind.RATE_LIMITED
    assert caught.value.retry_after == 2
    assert route.call_count == 3
    assert sleep.calls == [2.0, 2.0]


@respx.mock
async def test_timeouts_and_transport_errors_end_unavailable() -> None:
    route = respx.get(URL).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.ReadTimeout]
    )
    sleep = RecordingSleep()
    http = _http(sleep, max_attempts=3)
    with pytest.raises(CarrierCallError) as caught:
        await http.request("GET", URL)
    assert caught.value.kind is FailureKind.UNAVAILABLE
    assert "timeout" in caught.value.message
    assert route.call_count == 3
    assert len(sleep.calls) == 2


@respx.mock
async def test_client_errors_are_returned_not_retried() -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(404, json={"x": 1}))
    http = _http(RecordingSleep())
    assert (await http.request("GET", URL)).status_code == 404
    assert route.call_count == 1


async def test_every_call_has_a_timeout() -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200)

    limits = CarrierLimits(timeout=3.0)
    http = CarrierHttp("test", limits, transport=httpx.MockTransport(handler))
    await http.request("GET", URL)
    await http.aclose()
    assert seen == [{"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}]


def test_decode_json_failure_is_bad_response() -> None:
    with pytest.raises(CarrierCallError) as caught:
        decode_json(httpx.Response(200, text="<html>oops</html>"))
    assert caught.value.kind is FailureKind.BAD_RESPONSE
    assert decode_json(httpx.Response(200, json=[1])) == [1]
