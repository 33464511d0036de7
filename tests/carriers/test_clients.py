"""The four real carrier adapters over respx fakes that answer in the official shapes.

Token tests run on SQLite and PostgreSQL (the `engine` fixture: the OAuth token cache lives in
the database); the HTTP behaviour tests keep the token in memory.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import httpx
import pytest
import respx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.carriers.base import (
    CarrierAdapter,
    FailureKind,
    TrackingFailure,
    TrackingResult,
)

from .http_helpers import (
    KITS,
    NUMBERS,
    Kit,
    RecordingSleep,
    adapter_for,
    carrier_settings,
    numbers_like,
)

OAUTH = ["ups", "fedex", "usps"]
ALL = ["ups", "fedex", "usps", "dhl"]


@pytest.fixture(params=ALL)
def kit(request: pytest.FixtureRequest) -> Kit:
    code: str = request.param
    return KITS[code]


@pytest.fixture(params=OAUTH)
def oauth_kit(request: pytest.FixtureRequest) -> Kit:
    code: str = request.param
    return KITS[code]


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        yield router


class TokenServer:
    """A token endpoint handing out tok-1, tok-2, ... and remembering the requests."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = {
            "access_token": f"tok-{len(self.requests)}",
            "token_type": "Bearer",
            "expires_in": self.kit.expires_in,
        }
        return httpx.Response(200, json=body)


def serve_tokens(mock: respx.MockRouter, kit: Kit) -> TokenServer:
    """Mount a `TokenServer` on the carrier's token endpoint."""
    server = TokenServer(kit)
    mock.post(kit.token_url()).mock(side_effect=server)
    return server


@pytest.fixture
def tokens(kit: Kit, mock: respx.MockRouter) -> TokenServer | None:
    return None if kit.token_path is None else serve_tokens(mock, kit)


@pytest.fixture
def token_server(oauth_kit: Kit, mock: respx.MockRouter) -> TokenServer:
    return serve_tokens(mock, oauth_kit)


@pytest.fixture
async def adapter(
    kit: Kit, sleep: RecordingSleep, tokens: TokenServer | None
) -> AsyncIterator[CarrierAdapter]:
    """An adapter whose token lives in memory only: for the HTTP behaviour tests (the token
    tests below use the database on both backends)."""
    made = adapter_for(kit.code, carrier_settings(), None, sleep=sleep)
    yield made
    await made.aclose()


@pytest.fixture
async def db_adapter(
    oauth_kit: Kit, engine: AsyncEngine, sleep: RecordingSleep
) -> AsyncIterator[CarrierAdapter]:
    """An OAuth carrier's adapter whose token is cached in the database (SQLite, PostgreSQL)."""
    made = adapter_for(oauth_kit.code, carrier_settings(), engine, sleep=sleep)
    yield made
    await made.aclose()


def track_route(mock: respx.MockRouter, kit: Kit) -> respx.Route:
    return mock.route(method=kit.method, url__regex=kit.url)


def bearer(request: httpx.Request) -> str | None:
    return request.headers.get("Authorization")


async def test_found_number_is_a_result(
    kit: Kit, adapter: CarrierAdapter, mock: respx.MockRouter
) -> None:
    good = NUMBERS[kit.code][0]
    route = track_route(mock, kit).mock(side_effect=kit.handler({good}))
    outcome = (await adapter.track([good]))[good]
    assert isinstance(outcome, TrackingResult), outcome
    assert outcome.carrier == kit.code
    assert outcome.tracking_number == good
    assert outcome.events
    assert route.call_count == 1


async def test_token_fetched_once_then_reused(
    oauth_kit: Kit,
    token_server: TokenServer,
    db_adapter: CarrierAdapter,
    engine: AsyncEngine,
    mock: respx.MockRouter,
) -> None:
    kit = oauth_kit
    good = NUMBERS[kit.code][0]
    route = track_route(mock, kit).mock(side_effect=kit.handler({good}))
    first = await db_adapter.track([good])
    second = await db_adapter.track([good])
    assert isinstance(first[good], TrackingResult)
    assert isinstance(second[good], TrackingResult)
    assert len(token_server.requests) == 1
    assert [bearer(call.request) for call in route.calls] == ["Bearer tok-1", "Bearer tok-1"]
    async with engine.connect() as conn:
        rows = (
            await conn.execute(sa.text("SELECT carrier, access_token FROM carrier_tokens"))
        ).all()
    assert [tuple(r) for r in rows] == [(kit.code, "tok-1")]


def _form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


async def test_token_request_follows_the_spec(
    oauth_kit: Kit, token_server: TokenServer, db_adapter: CarrierAdapter, mock: respx.MockRouter
) -> None:
    kit = oauth_kit
    good = NUMBERS[kit.code][0]
    track_route(mock, kit).mock(side_effect=kit.handler({good}))
    await db_adapter.track([good])
    (request,) = token_server.requests
    assert request.method == "POST"
    if kit.code == "ups":  # HTTP Basic + form grant_type
        expected = "Basic " + base64.b64encode(b"ups-id:ups-secret").decode()
        assert request.headers["Authorization"] == expected
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert _form(request) == {"grant_type": ["client_credentials"]}
    elif kit.code == "fedex":  # form with the credentials in it
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert _form(request) == {
            "grant_type": ["client_credentials"],
            "client_id": ["fedex-id"],
            "client_secret": ["fedex-secret"],
        }
    else:  # USPS: JSON body
        assert request.headers["Content-Type"] == "application/json"
        assert json.loads(request.content) == {
            "grant_type": "client_credentials",
            "client_id": "usps-id",
            "client_secret": "usps-secret",
        }


async def test_tracking_request_follows_the_spec(
    kit: Kit, adapter: CarrierAdapter, mock: respx.MockRouter
) -> None:
    good = NUMBERS[kit.code][0]
    route = track_route(mock, kit).mock(side_effect=kit.handler({good}))
    await adapter.track([good])
    await adapter.track([good])
    request = route.calls[0].request
    if kit.code == "ups":
        assert request.url.path == f"/api/track/v1/details/{good}"
        assert dict(request.url.params) == {
            "locale": "en_US",
            "returnSignature": "false",
            "returnMilestones": "false",
            "returnPOD": "false",
        }
        ids = [call.request.headers["transId"] for call in route.calls]
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
        assert len(set(ids)) == 2  # unique per call
        assert request.headers["transactionSrc"] == "tracking-service"
        assert bearer(request) == "Bearer tok-1"
    elif kit.code == "fedex":
        assert request.url.path == "/track/v1/trackingnumbers"
        assert request.headers["Content-Type"] == "application/json"
        assert json.loads(request.content) == {
            "includeDetailedScans": True,
            "trackingInfo": [{"trackingNumberInfo": {"trackingNumber": good}}],
        }
        assert bearer(request) == "Bearer tok-1"
    elif kit.code == "usps":
        assert request.url.path == "/tracking/v3r2/tracking"
        assert json.loads(request.content) == [{"trackingNumber": good}]
        assert bearer(request) == "Bearer tok-1"
    else:
        assert request.url.path == "/track/shipments"
        assert request.url.params["trackingNumber"] == good
        assert request.headers["DHL-API-Key"] == "dhl-key"
        assert bearer(request) is None


async def test_401_refreshes_the_token_exactly_once(
    oauth_kit: Kit,
    token_server: TokenServer,
    db_adapter: CarrierAdapter,
    engine: AsyncEngine,
    mock: respx.MockRouter,
) -> None:
    kit = oauth_kit
    good = NUMBERS[kit.code][0]
    route = track_route(mock, kit).mock(
        side_effect=[
            httpx.Response(401, json={"errors": [{"code": "expired"}]}),
            kit.handler({good}),
        ]
    )
    outcome = (await db_adapter.track([good]))[good]
    assert isinstance(outcome, TrackingResult), outcome
    assert len(token_server.requests) == 2
    assert [bearer(c.request) for c in route.calls] == ["Bearer tok-1", "Bearer tok-2"]
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT access_token FROM carrier_tokens"))).all()
    assert [r[0] for r in stored] == ["tok-2"]


async def test_a_second_401_is_auth_failed(
    oauth_kit: Kit, token_server: TokenServer, db_adapter: CarrierAdapter, mock: respx.MockRouter
) -> None:
    kit = oauth_kit
    good = NUMBERS[kit.code][0]
    route = track_route(mock, kit).mock(return_value=httpx.Response(401, json={}))
    outcome = (await db_adapter.track([good]))[good]
    assert isinstance(outcome, TrackingFailure)
    assert outcome.kind is FailureKind.AUTH_FAILED
    assert len(token_server.requests) == 2
    assert route.call_count == 2


async def test_refused_credentials_are_auth_failed(
    oauth_kit: Kit, db_adapter: CarrierAdapter, mock: respx.MockRouter
) -> None:
    kit = oauth_kit
    token_route = mock.post(kit.token_url()).mock(
        return_value=httpx.Response(
            401, json={"errors": [{"code": "NOT.AUTHORIZED.ERROR", "message": "bad creds"}]}
        )
    )
    route = track_route(mock, kit)
    numbers = list(NUMBERS[kit.code])
    outcomes = await db_adapter.track(numbers)
    assert {o.kind for o in outcomes.values() if isinstance(o, TrackingFailure)} == {
        FailureKind.AUTH_FAILED
    }
    assert "bad creds" in outcomes[numbers[0]].message  # type: ignore[union-attr]
    assert route.call_count == 0
    assert token_route.call_count == 1  # the refusal is remembered, not asked again per number


async def test_dhl_bad_api_key_is_auth_failed(engine: AsyncEngine, mock: respx.MockRouter) -> None:
    kit = KITS["dhl"]
    route = track_route(mock, kit).mock(
        return_value=httpx.Response(
            401,
            json={"title": "Unauthorized", "detail": "Invalid API key", "status": 401},
            headers={"Content-Type": "application/problem+json"},
        )
    )
    adapter = adapter_for("dhl", carrier_settings(), engine)
    outcome = (await adapter.track([NUMBERS["dhl"][0]]))[NUMBERS["dhl"][0]]
    await adapter.aclose()
    assert isinstance(outcome, TrackingFailure)
    assert outcome.kind is FailureKind.AUTH_FAILED
    assert "Invalid API key" in outcome.message
    assert route.call_count == 1


async def test_429_waits_for_retry_after(
    kit: Kit, adapter: CarrierAdapter, mock: respx.MockRouter, sleep: RecordingSleep
) -> None:
    good = NUMBERS[kit.code][0]
    route = track_route(mock, kit).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), kit.handler({good})]
    )
    outcome = (await adapter.track([good]))[good]
    assert isinstance(outcome, TrackingResult), outcome
    assert sleep.calls == [7.0]
    assert route.call_count == 2


async def test_429_without_end_is_rate_limited(
    kit: Kit, adapter: CarrierAdapter, mock: respx.MockRouter, sleep: RecordingSleep
) -> None:
    good = NUMBERS[kit.code][0]
    track_route(mock, kit).mock(return_value=httpx.Response(429, headers={"Retry-After": "3"}))
    outcome = (await adapter.track([good]))[good]
    assert isinstance(outcome, TrackingFailure)
    assert outcome.kind is FailureKind.RATE_LIMITED
    assert outcome.retry_after == 3
    assert sleep.calls == [3.0, 3.0]  # three attempts in these settings


async def test_5xx_then_success(
    kit: Kit, adapter: CarrierAdapter, mock: respx.MockRouter, sleep: RecordingSleep
) -> None:
    good = NUMBERS[kit.code][0]
    route = track_route(mock, kit).mock(
        side_effect=[httpx.Response(503), httpx.Response(500, json={}), kit.handler({good})]
    )
    outcome = (await adapter.track([good]))[good]
    assert isinstance(outcome, TrackingResult), outcome
    assert route.call_count == 3
    assert len(sleep.calls) == 2


async def test_timeout_is_unavailable_after_retries(
    kit: Kit, adapter: CarrierAdapter, mock: respx.MockRouter, sleep: RecordingSleep
) -> None:
    good = NUMBERS[kit.code][0]
    route = track_route(mock, kit).mock(side_effect=httpx.ReadTimeout("too slow"))
    outcome = (await adapter.track([good]))[good]
    assert isinstance(outcome, TrackingFailure)
    assert outcome.kind is FailureKind.UNAVAILABLE
    assert route.call_count == 3
    assert len(sleep.calls) == 2


async def test_malformed_body_is_bad_response(
    kit: Kit, adapter: CarrierAdapter, mock: respx.MockRouter
) -> None:
    numbers = list(NUMBERS[kit.code])
    track_route(mock, kit).mock(
        return_value=httpx.Response(
            200, text="<html>gateway says hi</html>", headers={"Content-Type": "text/html"}
        )
    )
    outcomes = await adapter.track(numbers)
    assert set(outcomes) == set(numbers)
    for outcome in outcomes.values():
        assert isinstance(outcome, TrackingFailure)
        assert outcome.kind is FailureKind.BAD_RESPONSE
        assert "not JSON" in outcome.message


async def test_batch_with_one_unknown_number(
    kit: Kit, adapter: CarrierAdapter, mock: respx.MockRouter
) -> None:
    good, unknown = NUMBERS[kit.code]
    route = track_route(mock, kit).mock(side_effect=kit.handler({good}))
    outcomes = await adapter.track([good, unknown])
    assert isinstance(outcomes[good], TrackingResult), outcomes[good]
    assert isinstance(outcomes[unknown], TrackingFailure)
    assert outcomes[unknown].kind is FailureKind.NOT_FOUND  # type: ignore[union-attr]
    assert route.call_count == (1 if kit.code in ("fedex", "usps") else 2)


async def test_numbers_are_batched_up_to_the_carriers_limit(
    kit: Kit, adapter: CarrierAdapter, mock: respx.MockRouter
) -> None:
    count = adapter.max_batch + 1 if adapter.max_batch > 1 else 3
    numbers = numbers_like(kit.code, count)
    route = track_route(mock, kit).mock(side_effect=kit.handler(set(numbers)))
    outcomes = await adapter.track(numbers)
    assert all(isinstance(outcomes[n], TrackingResult) for n in numbers)
    sizes = sorted(len(kit.numbers_of(call.request)) for call in route.calls)
    expected = [1, adapter.max_batch] if adapter.max_batch > 1 else [1, 1, 1]
    assert sizes == expected


async def test_malformed_numbers_fail_locally_and_spaces_are_ignored(
    kit: Kit, adapter: CarrierAdapter, mock: respx.MockRouter
) -> None:
    good = NUMBERS[kit.code][0]
    spaced = f" {good[:4]} {good[4:]} "
    route = track_route(mock, kit).mock(side_effect=kit.handler({good}))
    outcomes = await adapter.track(["no/good!", spaced])
    bad = outcomes["no/good!"]
    assert isinstance(bad, TrackingFailure)
    assert bad.kind is FailureKind.INVALID_NUMBER
    assert isinstance(outcomes[spaced], TrackingResult)
    assert route.call_count == 1


# How each batching carrier refuses a whole request because of one number in it (HTTP 400).
REFUSED_BATCH = {
    "fedex": {"errors": [{"code": "TRACKING.TRACKINGNUMBER.INVALID", "message": "bad"}]},
    "usps": {"error": {"code": "400", "message": "bad"}},
}


@pytest.mark.parametrize("code", sorted(REFUSED_BATCH))
async def test_a_refused_batch_is_retried_number_by_number(
    code: str, engine: AsyncEngine, mock: respx.MockRouter
) -> None:
    kit = KITS[code]
    serve_tokens(mock, kit)
    good, other = NUMBERS[code]
    refused = httpx.Response(400, json=REFUSED_BATCH[code])

    def answer(request: httpx.Request) -> httpx.Response:
        numbers = kit.numbers_of(request)
        return refused if other in numbers else kit.handler({good})(request)

    route = track_route(mock, kit).mock(side_effect=answer)
    adapter = adapter_for(code, carrier_settings(), engine)
    outcomes = await adapter.track([good, other])
    await adapter.aclose()
    assert isinstance(outcomes[good], TrackingResult)
    assert isinstance(outcomes[other], TrackingFailure)
    assert route.call_count == 3


@pytest.mark.parametrize("http_status", [200, 400, 401, 403])
async def test_fedex_invalid_jwt_refreshes_the_token_whatever_the_status(
    http_status: int, mock: respx.MockRouter, sleep: RecordingSleep
) -> None:
    """FedEx answers a dead token with "The given JWT is invalid", not always as a 401."""
    kit = KITS["fedex"]
    token_server = serve_tokens(mock, kit)
    good = NUMBERS["fedex"][0]
    invalid = httpx.Response(
        http_status,
        json={"errors": [{"code": "NOT.AUTHORIZED.ERROR", "message": "The given JWT is invalid."}]},
    )
    route = track_route(mock, kit).mock(side_effect=[invalid, kit.handler({good})])
    adapter = adapter_for("fedex", carrier_settings(), None, sleep=sleep)
    outcome = (await adapter.track([good]))[good]
    await adapter.aclose()
    assert isinstance(outcome, TrackingResult), outcome
    assert len(token_server.requests) == 2
    assert [bearer(c.request) for c in route.calls] == ["Bearer tok-1", "Bearer tok-2"]


async def test_fedex_invalid_jwt_twice_is_auth_failed(
    mock: respx.MockRouter, sleep: RecordingSleep
) -> None:
    kit = KITS["fedex"]
    serve_tokens(mock, kit)
    good = NUMBERS["fedex"][0]
    track_route(mock, kit).mock(
        return_value=httpx.Response(
            200, json={"errors": [{"code": "X", "message": "The given JWT is invalid"}]}
        )
    )
    adapter = adapter_for("fedex", carrier_settings(), None, sleep=sleep)
    outcome = (await adapter.track([good]))[good]
    await adapter.aclose()
    assert isinstance(outcome, TrackingFailure)
    assert outcome.kind is FailureKind.AUTH_FAILED
    assert "The given JWT is invalid" in outcome.message
