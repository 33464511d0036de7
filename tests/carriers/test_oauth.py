"""The OAuth token cache: pure parsing, reuse, and sharing through the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.carrier_tokens import SqlTokenStore
from tracking_service.carriers.base import FailureKind
from tracking_service.carriers.http import CarrierCallError, CarrierHttp, CarrierLimits
from tracking_service.carriers.oauth import (
    LEASE,
    AccessToken,
    MemoryTokenStore,
    TokenKey,
    TokenProvider,
    TokenStore,
    fedex_token_request,
    parse_expires_in,
    parse_token_body,
    token_error_text,
    ups_token_request,
)
from tracking_service.db import create_engine

from .http_helpers import KITS, NUMBERS, adapter_for, carrier_settings

TOKEN_URL = "https://ups.test/security/v1/oauth/token"


def test_expires_in_as_int_or_string() -> None:
    assert parse_expires_in(3599) == 3599
    assert parse_expires_in("14399") == 14399
    assert parse_expires_in(" 28799 ") == 28799
    for bad in (None, "", "soon", True, 0, -5, [1]):
        with pytest.raises(ValueError):
            parse_expires_in(bad)


def test_token_body_needs_an_access_token() -> None:
    assert parse_token_body({"access_token": "abc", "expires_in": "60"}) == ("abc", 60)
    for bad in ([], {"expires_in": 60}, {"access_token": "", "expires_in": 60}):
        with pytest.raises(ValueError):
            parse_token_body(bad)


def test_error_text_of_each_carrier_shape() -> None:
    ups = {"response": {"errors": [{"code": "250002", "message": "Invalid Auth"}]}}
    fedex = {"errors": [{"code": "NOT.AUTHORIZED.ERROR", "message": "not valid"}]}
    rfc = {"error": "invalid_client", "error_description": "unknown client"}
    assert token_error_text(ups) == "250002 Invalid Auth"
    assert token_error_text(fedex) == "NOT.AUTHORIZED.ERROR not valid"
    assert token_error_text(rfc) == "invalid_client unknown client"
    assert token_error_text("nope") == ""


def test_a_token_is_refreshed_shortly_before_it_expires() -> None:
    start = datetime(2026, 1, 5, 12, tzinfo=UTC)
    token = AccessToken("t", start + timedelta(hours=1), start)
    margin = timedelta(minutes=5)
    assert token.usable_at(start + timedelta(minutes=54), margin)
    assert not token.usable_at(start + timedelta(minutes=56), margin)
    short = AccessToken("t", start + timedelta(seconds=60), start)  # margin at most half
    assert short.usable_at(start + timedelta(seconds=29), margin)
    assert not short.usable_at(start + timedelta(seconds=31), margin)


def _token_server(delay: float = 0.0) -> tuple[Callable[..., object], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        number = len(seen)
        if delay:
            await asyncio.sleep(delay)  # a slow token endpoint widens the race window
        return httpx.Response(200, json={"access_token": f"tok-{number}", "expires_in": "14399"})

    return answer, seen


def _provider(
    engine: AsyncEngine | None,
    clock: Callable[[], datetime] | None = None,
    *,
    store: TokenStore | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> tuple[TokenProvider, CarrierHttp]:
    """A UPS token provider sharing its token through `engine` (or `store`; else in memory)."""
    http = CarrierHttp("ups", CarrierLimits(requests_per_second=1000, burst=1000))
    request = ups_token_request(http, "https://ups.test", "ups-id", "ups-secret")
    if store is None and engine is not None:
        store = SqlTokenStore(engine)
    options: dict[str, Any] = {}
    if clock is not None:
        options["clock"] = clock
    if sleep is not None:
        options["sleep"] = sleep
    return TokenProvider("ups", "ups-id", request, store, **options), http


@respx.mock
async def test_two_adapters_with_their_own_engines_share_one_token(database_url: str) -> None:
    """Two processes' worth of adapters on one database: one token request between them."""
    answer, seen = _token_server()
    respx.post(TOKEN_URL).mock(side_effect=answer)
    kit = KITS["ups"]
    good = NUMBERS["ups"][0]
    route = respx.route(method="GET", url__regex=kit.url).mock(side_effect=kit.handler({good}))
    engines = [create_engine(database_url), create_engine(database_url)]
    adapters = [adapter_for("ups", carrier_settings(), e) for e in engines]
    try:
        for adapter in adapters:
            await adapter.track([good])
    finally:
        for adapter in adapters:
            await adapter.aclose()
        for e in engines:
            await e.dispose()
    assert len(seen) == 1
    assert [c.request.headers["Authorization"] for c in route.calls] == ["Bearer tok-1"] * 2


@respx.mock
async def test_concurrent_providers_fetch_exactly_one_token(database_url: str) -> None:
    """N providers, each with its own engine (as N processes would): the lock lets one fetch."""
    answer, seen = _token_server(delay=0.05)
    respx.post(TOKEN_URL).mock(side_effect=answer)
    engines = [create_engine(database_url) for _ in range(6)]
    made = [_provider(e) for e in engines]
    try:
        values = await asyncio.gather(*(p.token() for p, _ in made))
    finally:
        for _, http in made:
            await http.aclose()
        for e in engines:
            await e.dispose()
    assert len(seen) == 1
    assert values == ["tok-1"] * 6


@respx.mock
async def test_an_expired_row_is_replaced(engine: AsyncEngine) -> None:
    answer, seen = _token_server()
    respx.post(TOKEN_URL).mock(side_effect=answer)
    now = [datetime(2026, 1, 5, 12, tzinfo=UTC)]
    provider, http = _provider(engine, clock=lambda: now[0])
    assert await provider.token() == "tok-1"
    now[0] += timedelta(hours=3, minutes=54)  # a 14399 s token, refreshed 5 min early
    assert await provider.token() == "tok-1"
    now[0] += timedelta(minutes=1)
    assert await provider.token() == "tok-2"
    await http.aclose()
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT access_token FROM carrier_tokens"))).all()
    assert [r[0] for r in rows] == ["tok-2"]
    assert len(seen) == 2


@respx.mock
async def test_invalidate_spares_a_token_someone_else_already_refreshed(
    engine: AsyncEngine,
) -> None:
    answer, _ = _token_server()
    respx.post(TOKEN_URL).mock(side_effect=answer)
    first, http1 = _provider(engine)
    second, http2 = _provider(engine)
    assert await first.token() == "tok-1"
    assert await second.token() == "tok-1"
    await first.invalidate("tok-1")
    assert await first.token() == "tok-2"  # first refreshed
    await second.invalidate("tok-1")  # late 401 with the old token: must not drop tok-2
    assert await second.token() == "tok-2"
    await http1.aclose()
    await http2.aclose()


@respx.mock
async def test_token_without_database_is_kept_in_memory() -> None:
    answer, seen = _token_server()
    respx.post(TOKEN_URL).mock(side_effect=answer)
    provider, http = _provider(None)
    assert await provider.token() == "tok-1"
    assert await provider.token() == "tok-1"
    await http.aclose()
    assert len(seen) == 1


@respx.mock
async def test_token_answers_we_cannot_use() -> None:
    now = [datetime(2026, 1, 5, 12, tzinfo=UTC)]
    http = CarrierHttp("fedex", CarrierLimits(requests_per_second=1000, burst=1000))
    request = fedex_token_request(http, "https://fedex.test", "id", "secret")
    provider = TokenProvider("fedex", "id", request, None, clock=lambda: now[0])
    route = respx.post("https://fedex.test/oauth/token")
    cases = [
        (httpx.Response(200, json={"token_type": "bearer"}), FailureKind.BAD_RESPONSE),
        (httpx.Response(200, text="<html/>"), FailureKind.BAD_RESPONSE),
        (httpx.Response(404, text="no such path"), FailureKind.UNAVAILABLE),
        (httpx.Response(403, json={"errors": [{"code": "FORBIDDEN"}]}), FailureKind.AUTH_FAILED),
    ]
    for response, kind in cases:
        route.mock(return_value=response)
        with pytest.raises(CarrierCallError) as caught:
            await provider.token()
        assert caught.value.kind is kind
    assert route.call_count == 4
    # Refused credentials are remembered for a minute: the token endpoint is spared.
    route.mock(return_value=httpx.Response(200, json={"access_token": "ok", "expires_in": 60}))
    with pytest.raises(CarrierCallError):
        await provider.token()
    assert route.call_count == 4
    now[0] += timedelta(seconds=61)
    assert await provider.token() == "ok"
    await http.aclose()


UPS_KEY = TokenKey("ups", "ups-id")


@respx.mock
async def test_a_slow_token_endpoint_blocks_no_other_writer(database_url: str) -> None:
    """While the carrier takes its time to answer, no transaction is open: another process
    writes to the same database meanwhile (on SQLite it would wait for the write lock and
    give up after the busy timeout), and sees the refresh lease but no token yet."""
    asked, release = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        asked.set()
        await release.wait()  # as long as the test wants: the endpoint "takes 10 s"
        return httpx.Response(200, json={"access_token": "tok-1", "expires_in": 3600})

    respx.post(TOKEN_URL).mock(side_effect=slow)
    engine, other = create_engine(database_url), create_engine(database_url)
    provider, http = _provider(engine)
    try:
        refreshing = asyncio.create_task(provider.token())
        await asked.wait()
        async with other.begin() as conn:  # another process's write, during the token call
            await conn.execute(
                sa.text(
                    "INSERT INTO carrier_tokens (carrier, client_id, access_token, expires_at, "
                    "updated_at) VALUES ('fedex', 'f', 'x', :at, :at)"
                ),
                {"at": datetime(2030, 1, 1)},
            )
        async with other.connect() as conn:
            lease = (
                await conn.execute(
                    sa.text(
                        "SELECT lease_holder, access_token FROM carrier_tokens "
                        "WHERE carrier = 'ups'"
                    )
                )
            ).one()
        assert lease.lease_holder is not None
        assert lease.access_token is None
        release.set()
        assert await refreshing == "tok-1"
        async with other.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT carrier, access_token, lease_holder FROM carrier_tokens "
                        "ORDER BY carrier"
                    )
                )
            ).all()
        assert [tuple(r) for r in rows] == [("fedex", "x", None), ("ups", "tok-1", None)]
    finally:
        release.set()
        await http.aclose()
        await engine.dispose()
        await other.dispose()


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 12, tzinfo=UTC)
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@respx.mock
async def test_a_waiting_process_takes_the_token_the_lease_holder_stored(
    engine: AsyncEngine,
) -> None:
    answer, seen = _token_server()
    respx.post(TOKEN_URL).mock(side_effect=answer)
    store = SqlTokenStore(engine)
    time = FakeTime()
    assert await store.try_lease(UPS_KEY, "other-process", time.now, time.now + LEASE)

    async def other_process_finishes(seconds: float) -> None:
        await time.sleep(seconds)
        if len(time.slept) == 3:  # the holder stores its token while we wait
            token = AccessToken("theirs", time.now + timedelta(hours=1), time.now)
            assert await store.compare_and_swap(UPS_KEY, None, token)
            await store.release_lease(UPS_KEY, "other-process")

    provider, http = _provider(None, time.clock, store=store, sleep=other_process_finishes)
    assert await provider.token() == "theirs"
    await http.aclose()
    assert seen == []  # nobody asked the carrier twice


@respx.mock
async def test_an_expired_lease_is_taken_over(engine: AsyncEngine) -> None:
    """A holder that died (or whose token call outlived the lease) does not block forever:
    once its lease expired, the next process asks the carrier itself."""
    asked_at: list[datetime] = []
    time = FakeTime()

    async def answer(request: httpx.Request) -> httpx.Response:
        asked_at.append(time.now)
        return httpx.Response(200, json={"access_token": "mine", "expires_in": 3600})

    respx.post(TOKEN_URL).mock(side_effect=answer)
    store = SqlTokenStore(engine)
    lease_until = time.now + LEASE
    assert await store.try_lease(UPS_KEY, "dead-process", time.now, lease_until)
    provider, http = _provider(None, time.clock, store=store, sleep=time.sleep)
    assert await provider.token() == "mine"
    await http.aclose()
    assert len(asked_at) == 1
    assert asked_at[0] >= lease_until  # not while the lease was alive
    assert await store.try_lease(UPS_KEY, "next", time.now, time.now + LEASE)  # released


@respx.mock
async def test_a_token_stored_meanwhile_wins_the_compare_and_swap(engine: AsyncEngine) -> None:
    """Two holders in turn (the first one's lease ran out during its call): the second one's
    compare-and-swap fails, and it uses the token the first one stored."""
    store = SqlTokenStore(engine)
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)

    async def answer(request: httpx.Request) -> httpx.Response:
        first = AccessToken("first", now + timedelta(hours=1), now)
        assert await store.compare_and_swap(UPS_KEY, None, first)  # lands during our call
        return httpx.Response(200, json={"access_token": "second", "expires_in": 3600})

    respx.post(TOKEN_URL).mock(side_effect=answer)
    provider, http = _provider(None, lambda: now, store=store)
    assert await provider.token() == "first"
    await http.aclose()
    assert (await store.get(UPS_KEY)) == AccessToken("first", now + timedelta(hours=1), now)


@pytest.mark.parametrize("make", [MemoryTokenStore, None], ids=["memory", "sql"])
async def test_token_store_contract(
    make: Callable[[], TokenStore] | None, engine: AsyncEngine
) -> None:
    """Both stores: compare-and-swap, invalidate-if-current, and one lease at a time."""
    store: TokenStore = make() if make is not None else SqlTokenStore(engine)
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    one = AccessToken("one", now + timedelta(hours=1), now)
    two = AccessToken("two", now + timedelta(hours=2), now)
    assert await store.get(UPS_KEY) is None
    assert not await store.compare_and_swap(UPS_KEY, "one", two)
    assert await store.compare_and_swap(UPS_KEY, None, one)
    assert not await store.compare_and_swap(UPS_KEY, None, two)
    assert await store.get(UPS_KEY) == one
    await store.invalidate(UPS_KEY, "two")  # not the current one: kept
    assert await store.get(UPS_KEY) == one
    assert await store.compare_and_swap(UPS_KEY, "one", two)
    await store.invalidate(UPS_KEY, "two")
    assert await store.get(UPS_KEY) is None
    assert await store.get(TokenKey("ups", "another-account")) is None
    later = now + LEASE
    assert await store.try_lease(UPS_KEY, "a", now, later)
    assert await store.try_lease(UPS_KEY, "a", now, later)  # the holder again
    assert not await store.try_lease(UPS_KEY, "b", now, later)
    assert await store.try_lease(TokenKey("ups", "another-account"), "b", now, later)
    await store.release_lease(UPS_KEY, "b")  # not the holder: nothing happens
    assert not await store.try_lease(UPS_KEY, "b", now, later)
    assert await store.try_lease(UPS_KEY, "b", later, later + LEASE)  # expired
    await store.release_lease(UPS_KEY, "b")
    assert await store.try_lease(UPS_KEY, "c", now, later)
