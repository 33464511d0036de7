"""OAuth 2 client-credentials tokens for UPS, FedEx and USPS, shared through a `TokenStore`.

Carriers throttle their token endpoints, so every process (API, workers, the `track` command)
shares one token per carrier account through a store the caller injects (the database one is
`tracking_service.carrier_tokens.SqlTokenStore`; carriers/ know only the protocol):

- a valid in-process copy answers without touching the store;
- otherwise the stored token is read; when it is missing or about to expire, one process takes
  a short lease on the account (`TokenStore.try_lease`), re-reads, asks the carrier for a new
  token with no transaction open, stores it with a compare-and-swap and gives the lease back.
  The others poll the store until the new token is there, or take the lease over when it
  expired (its holder died or its token call outlived the lease);
- a refused token (a 401, or the carrier's own words for it) invalidates that token (only if it
  is still the stored one) and the caller refreshes once (`send_authorized`).

The token requests follow each carrier's spec exactly (see `ups_token_request`,
`fedex_token_request`, `usps_token_request`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from tracking_service.carriers.base import FailureKind
from tracking_service.carriers.http import CarrierCallError, CarrierHttp, join_url

log = logging.getLogger(__name__)

TokenRequest = Callable[[], Awaitable[httpx.Response]]
Sleep = Callable[[float], Awaitable[None]]
DEFAULT_REFRESH_MARGIN = timedelta(minutes=5)
REFUSAL_MEMORY = timedelta(minutes=1)  # refused credentials are not retried before this
# How long a refresh may keep the others waiting before one of them takes over. Longer than a
# token call usually takes; a call that outlives it costs one more token request, no error.
LEASE = timedelta(seconds=30)
LEASE_POLL_SECONDS = 0.05  # a waiting process re-reads the store after this, then less often
LEASE_POLL_MAX_SECONDS = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    expires_at: datetime  # aware UTC, as the carrier said
    fetched_at: datetime

    def usable_at(self, now: datetime, margin: timedelta) -> bool:
        """Valid with `margin` to spare (at most half its lifetime, for short-lived tokens)."""
        lifetime = self.expires_at - self.fetched_at
        spare = min(margin, lifetime / 2)
        return now < self.expires_at - spare


@dataclass(frozen=True, slots=True)
class TokenKey:
    """One carrier account: tokens are shared per (carrier, client id)."""

    carrier: str
    client_id: str


class TokenStore(Protocol):
    """Where processes share tokens. Every method is one short transaction of its own: none is
    ever open while a carrier is being called."""

    async def get(self, key: TokenKey) -> AccessToken | None:
        """The stored token, or None when there is none."""
        ...

    async def compare_and_swap(
        self, key: TokenKey, expected: str | None, token: AccessToken
    ) -> bool:
        """Store `token` if the stored value is still `expected` (None: no token stored);
        False, storing nothing, when somebody else changed it meanwhile."""
        ...

    async def invalidate(self, key: TokenKey, value: str) -> None:
        """Forget the stored token if it is still `value` (a newer one is kept)."""
        ...

    async def try_lease(self, key: TokenKey, holder: str, now: datetime, until: datetime) -> bool:
        """Become the one process refreshing `key` until `until`: True when nobody holds an
        unexpired lease at `now` (or `holder` already does)."""
        ...

    async def release_lease(self, key: TokenKey, holder: str) -> None:
        """Give the lease back, if `holder` still has it."""
        ...


class MemoryTokenStore:
    """A `TokenStore` inside one process (no database: the `track` command without one, tests)."""

    def __init__(self) -> None:
        self._tokens: dict[TokenKey, AccessToken] = {}
        self._leases: dict[TokenKey, tuple[str, datetime]] = {}

    async def get(self, key: TokenKey) -> AccessToken | None:
        return self._tokens.get(key)

    async def compare_and_swap(
        self, key: TokenKey, expected: str | None, token: AccessToken
    ) -> bool:
        current = self._tokens.get(key)
        if (current.value if current is not None else None) != expected:
            return False
        self._tokens[key] = token
        return True

    async def invalidate(self, key: TokenKey, value: str) -> None:
        current = self._tokens.get(key)
        if current is not None and current.value == value:
            del self._tokens[key]

    async def try_lease(self, key: TokenKey, holder: str, now: datetime, until: datetime) -> bool:
        lease = self._leases.get(key)
        if lease is not None and lease[0] != holder and lease[1] > now:
            return False
        self._leases[key] = (holder, until)
        return True

    async def release_lease(self, key: TokenKey, holder: str) -> None:
        lease = self._leases.get(key)
        if lease is not None and lease[0] == holder:
            del self._leases[key]


# ---- what each carrier's token endpoint wants (paths off the base URL, per the specs) --------


def _token_post(http: CarrierHttp, url: str, **how: Any) -> TokenRequest:
    """A POST to a token endpoint asking for JSON; `how` is the carrier's auth and body."""

    async def request() -> httpx.Response:
        return await http.request(
            "POST", url, endpoint="token", headers={"Accept": "application/json"}, **how
        )

    return request


def ups_token_request(
    http: CarrierHttp, base_url: str, client_id: str, client_secret: str
) -> TokenRequest:
    """UPS `OAuthClientCredentials.yaml`: POST /security/v1/oauth/token, HTTP Basic, form."""
    return _token_post(
        http,
        join_url(base_url, "/security/v1/oauth/token"),
        auth=httpx.BasicAuth(client_id, client_secret),
        data={"grant_type": "client_credentials"},
    )


def _client_credentials(client_id: str, client_secret: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
    }


def fedex_token_request(
    http: CarrierHttp, base_url: str, client_id: str, client_secret: str
) -> TokenRequest:
    """FedEx `oauth-token.json`: POST /oauth/token, form with client_id and client_secret."""
    return _token_post(
        http,
        join_url(base_url, "/oauth/token"),
        data=_client_credentials(client_id, client_secret),
    )


def usps_token_request(
    http: CarrierHttp, base_url: str, client_id: str, client_secret: str
) -> TokenRequest:
    """USPS `oauth2-v3.yaml`: POST /oauth2/v3/token with a JSON client-credentials body."""
    return _token_post(
        http,
        join_url(base_url, "/oauth2/v3/token"),
        json=_client_credentials(client_id, client_secret),
    )


# ---- pure parsing of token answers ----------------------------------------------------------


def parse_expires_in(value: object) -> int:
    """`expires_in` as int: FedEx/USPS send a number, UPS a string (`"14399"`)."""
    if isinstance(value, bool):
        raise ValueError(f"expires_in is not a number: {value!r}")
    if isinstance(value, int | float):
        seconds = int(value)
    elif isinstance(value, str) and value.strip():
        seconds = int(float(value.strip()))
    else:
        raise ValueError(f"expires_in is not a number: {value!r}")
    if seconds <= 0:
        raise ValueError(f"expires_in is not positive: {value!r}")
    return seconds


def parse_token_body(body: object) -> tuple[str, int]:
    """(access_token, expires_in seconds) from a 200 token answer; ValueError if unusable."""
    if not isinstance(body, dict):
        raise ValueError("token answer is not a JSON object")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("token answer has no access_token")
    return token, parse_expires_in(body.get("expires_in"))


def token_error_text(body: object) -> str:
    """The carrier's own words from a token or API error (UPS, FedEx, USPS, RFC 6749 shapes)."""
    if not isinstance(body, dict):
        return ""
    errors: Any = body.get("errors")
    response = body.get("response")
    if isinstance(response, dict):
        errors = response.get("errors", errors)
    error = body.get("error")
    if isinstance(error, dict):  # USPS API error shape
        errors = error.get("errors") or [error]
    if isinstance(errors, list):
        parts = [
            " ".join(str(e.get(k)) for k in ("code", "message", "title") if e.get(k))
            for e in errors
            if isinstance(e, dict)
        ]
        return "; ".join(p for p in parts if p)
    if isinstance(error, str):  # RFC 6749: {"error": "invalid_client", "error_description"}
        return " ".join(str(v) for v in (error, body.get("error_description")) if v)
    return ""


def refusal(
    carrier: str,
    what: str,
    response: httpx.Response,
    error_text: Callable[[object], str] = token_error_text,
) -> CarrierCallError:
    """`auth_failed` for a 401/403: `<carrier> refused <what> (HTTP 401): <the carrier's words>`,
    read from the JSON body by `error_text`, else the start of a body that is not JSON."""
    try:
        detail = error_text(response.json())
    except ValueError:
        detail = response.text[:200]
    return CarrierCallError(
        FailureKind.AUTH_FAILED,
        f"{carrier} refused {what} (HTTP {response.status_code}): {detail}",
    )


class TokenProvider:
    """One carrier account's bearer token, shared with every process through a `TokenStore`."""

    def __init__(
        self,
        carrier: str,
        client_id: str,
        request_token: TokenRequest,
        store: TokenStore | None,
        *,
        refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Sleep = asyncio.sleep,
        lease: timedelta = LEASE,
    ) -> None:
        self.carrier = carrier
        self.client_id = client_id
        self.key = TokenKey(carrier, client_id)
        self._request_token = request_token
        self._store: TokenStore = store if store is not None else MemoryTokenStore()
        self._margin = refresh_margin
        self._clock = clock
        self._sleep = sleep
        self._lease = lease
        self._holder = uuid.uuid4().hex  # this provider, as a lease holder
        self._current: AccessToken | None = None
        self._refused: tuple[datetime, CarrierCallError] | None = None
        self._lock = asyncio.Lock()

    def _usable(self, token: AccessToken | None) -> bool:
        return token is not None and token.usable_at(self._clock(), self._margin)

    async def token(self) -> str:
        """A bearer token valid for a while yet; fetched only when nobody has a good one."""
        current = self._current
        if current is not None and self._usable(current):
            return current.value
        async with self._lock:  # one refresh per process at a time
            current = self._current
            if current is not None and self._usable(current):
                return current.value
            if self._refused is not None and self._clock() < self._refused[0] + REFUSAL_MEMORY:
                raise self._refused[1]  # spare the token endpoint: same answer for a minute
            try:
                fresh = await self._load_or_refresh()
            except CarrierCallError as exc:
                if exc.kind is FailureKind.AUTH_FAILED:
                    self._refused = (self._clock(), exc)
                raise
            self._refused = None
            self._current = fresh
            return fresh.value

    async def invalidate(self, failed: str) -> None:
        """Forget `failed` (the carrier refused it), here and in the store, if still current."""
        if self._current is not None and self._current.value == failed:
            self._current = None
        await self._store.invalidate(self.key, failed)

    async def _load_or_refresh(self) -> AccessToken:
        """The stored token if usable; else one process refreshes while the others wait."""
        store, key = self._store, self.key
        stored = await store.get(key)
        delay = LEASE_POLL_SECONDS
        while not self._usable(stored):
            now = self._clock()
            if await store.try_lease(key, self._holder, now, now + self._lease):
                try:
                    return await self._refresh(store)
                finally:
                    await store.release_lease(key, self._holder)
            await self._sleep(delay)  # somebody else is asking the carrier
            delay = min(LEASE_POLL_MAX_SECONDS, delay * 2)
            stored = await store.get(key)
        assert stored is not None
        return stored

    async def _refresh(self, store: TokenStore) -> AccessToken:
        """Holding the lease: re-read (the last holder may just have stored one), else fetch
        with no transaction open and compare-and-swap the answer in."""
        stored = await store.get(self.key)
        if stored is not None and self._usable(stored):
            return stored
        fresh = await self._fetch()
        expected = stored.value if stored is not None else None
        if await store.compare_and_swap(self.key, expected, fresh):
            return fresh
        # A process that took an expired lease over stored first: share its token if good.
        winner = await store.get(self.key)
        return winner if winner is not None and self._usable(winner) else fresh

    # ---- the carrier ------------------------------------------------------------------------

    async def _fetch(self) -> AccessToken:
        """Ask the carrier for a new token; `CarrierCallError` says why when it will not."""
        fetched_at = self._clock()
        response = await self._request_token()
        try:
            body: object = response.json()
        except ValueError:
            body = None
        if response.status_code in (400, 401, 403):
            detail = token_error_text(body) or response.text[:200]
            raise CarrierCallError(
                FailureKind.AUTH_FAILED,
                f"{self.carrier} refused the credentials (HTTP {response.status_code}): {detail}",
            )
        if not 200 <= response.status_code < 300:
            raise CarrierCallError(
                FailureKind.UNAVAILABLE,
                f"{self.carrier} token endpoint answered HTTP {response.status_code}",
            )
        try:
            value, expires_in = parse_token_body(body)
        except ValueError as exc:
            raise CarrierCallError(
                FailureKind.BAD_RESPONSE, f"{self.carrier} token answer: {exc}"
            ) from exc
        log.info("%s: new access token, valid %d s", self.carrier, expires_in)
        return AccessToken(value, fetched_at + timedelta(seconds=expires_in), fetched_at)


def is_unauthorized(response: httpx.Response) -> bool:
    """The default test of "this token was refused": HTTP 401."""
    return response.status_code == 401


async def send_authorized(
    http: CarrierHttp,
    tokens: TokenProvider,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    token_refused: Callable[[httpx.Response], bool] = is_unauthorized,
    **kwargs: Any,
) -> httpx.Response:
    """Send with a bearer token; when the carrier refuses the token (`token_refused`: a 401,
    or the carrier's own way of saying so) refresh it once and try again.

    A second refusal, or a 403, is `auth_failed`; every other answer is the caller's to read.
    """
    for attempt in range(2):
        token = await tokens.token()
        response = await http.request(
            method, url, headers={**(headers or {}), "Authorization": f"Bearer {token}"}, **kwargs
        )
        refused = token_refused(response)
        if refused and attempt == 0:
            log.info("%s: the carrier refused a cached token; refreshing once", tokens.carrier)
            await tokens.invalidate(token)
            continue
        if refused or response.status_code in (401, 403):
            raise refusal(tokens.carrier, "the call", response)
        return response
    raise AssertionError("unreachable")  # pragma: no cover
