"""OAuth 2 client-credentials tokens for UPS, FedEx and USPS, cached in the database.

Carriers throttle their token endpoints, so every process (API, workers, the `track` command)
shares one token per carrier account through the `carrier_tokens` table:

- a valid in-process copy answers without touching the database;
- otherwise the row is read; when it is missing or about to expire, one process refreshes it
  under a lock (PostgreSQL `pg_advisory_xact_lock`, SQLite `BEGIN IMMEDIATE`), re-checks the
  row after taking the lock (somebody else may just have refreshed it) and only then asks the
  carrier for a new token;
- a 401 from a tracking call invalidates that token (only if it is still the stored one) and
  the caller refreshes once (`send_authorized`).

The token requests follow each carrier's spec exactly (see `ups_token_request`,
`fedex_token_request`, `usps_token_request`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tracking_service.carriers.base import FailureKind
from tracking_service.carriers.http import CarrierCallError, CarrierHttp, join_url
from tracking_service.models import CarrierToken, utcnow

log = logging.getLogger(__name__)

TokenRequest = Callable[[], Awaitable[httpx.Response]]
_TOKENS: sa.Table = CarrierToken.__table__  # type: ignore[attr-defined]
DEFAULT_REFRESH_MARGIN = timedelta(minutes=5)
REFUSAL_MEMORY = timedelta(minutes=1)  # refused credentials are not retried before this


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


# ---- what each carrier's token endpoint wants (paths off the base URL, per the specs) --------


def _token_post(http: CarrierHttp, url: str, **how: Any) -> TokenRequest:
    """A POST to a token endpoint asking for JSON; `how` is the carrier's auth and body."""

    async def request() -> httpx.Response:
        return await http.request("POST", url, headers={"Accept": "application/json"}, **how)

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


def _lock_key(carrier: str, client_id: str) -> int:
    digest = hashlib.sha256(f"carrier-token:{carrier}:{client_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class TokenProvider:
    """One carrier account's bearer token, shared through the database by every process."""

    def __init__(
        self,
        carrier: str,
        client_id: str,
        request_token: TokenRequest,
        engine: AsyncEngine | None,
        *,
        refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.carrier = carrier
        self.client_id = client_id
        self._request_token = request_token
        self._engine = engine
        self._margin = refresh_margin
        self._clock = clock
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
                if self._engine is None:
                    fresh = await self._fetch()
                else:
                    fresh = await self._load_or_refresh(self._engine)
            except CarrierCallError as exc:
                if exc.kind is FailureKind.AUTH_FAILED:
                    self._refused = (self._clock(), exc)
                raise
            self._refused = None
            self._current = fresh
            return fresh.value

    async def invalidate(self, failed: str) -> None:
        """Forget `failed` (the carrier said 401), here and in the database, if still current."""
        if self._current is not None and self._current.value == failed:
            self._current = None
        if self._engine is None:
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.delete(_TOKENS).where(
                    _TOKENS.c.carrier == self.carrier,
                    _TOKENS.c.client_id == self.client_id,
                    _TOKENS.c.access_token == failed,
                )
            )

    # ---- database ---------------------------------------------------------------------------

    def _select(self) -> sa.Select[Any]:
        return sa.select(_TOKENS.c.access_token, _TOKENS.c.expires_at, _TOKENS.c.updated_at).where(
            _TOKENS.c.carrier == self.carrier, _TOKENS.c.client_id == self.client_id
        )

    async def _read(self, conn: AsyncConnection) -> AccessToken | None:
        row = (await conn.execute(self._select())).first()
        if row is None:
            return None
        return AccessToken(row.access_token, row.expires_at, row.updated_at)

    async def _load_or_refresh(self, engine: AsyncEngine) -> AccessToken:
        async with engine.connect() as conn:
            stored = await self._read(conn)
            await conn.rollback()
        if stored is not None and self._usable(stored):
            return stored
        async with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, before re-reading
            else:
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": _lock_key(self.carrier, self.client_id)},
                )
            stored = await self._read(conn)
            if stored is not None and self._usable(stored):
                await conn.commit()
                return stored
            fresh = await self._fetch()
            await self._store(conn, fresh, exists=stored is not None)
            await conn.commit()
            return fresh

    async def _store(self, conn: AsyncConnection, token: AccessToken, *, exists: bool) -> None:
        values = {
            "access_token": token.value,
            "expires_at": token.expires_at,
            "updated_at": token.fetched_at,
        }
        if exists:
            await conn.execute(
                sa.update(_TOKENS)
                .where(_TOKENS.c.carrier == self.carrier, _TOKENS.c.client_id == self.client_id)
                .values(**values)
            )
        else:
            await conn.execute(
                sa.insert(_TOKENS).values(carrier=self.carrier, client_id=self.client_id, **values)
            )

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


async def send_authorized(
    http: CarrierHttp,
    tokens: TokenProvider,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send with a bearer token; on 401 refresh the token once and try again.

    A second 401, or a 403, is `auth_failed`; every other answer is the caller's to read.
    """
    for attempt in range(2):
        token = await tokens.token()
        response = await http.request(
            method, url, headers={**(headers or {}), "Authorization": f"Bearer {token}"}, **kwargs
        )
        if response.status_code == 401 and attempt == 0:
            log.info("%s: 401 with a cached token; refreshing once", tokens.carrier)
            await tokens.invalidate(token)
            continue
        if response.status_code in (401, 403):
            raise refusal(tokens.carrier, "the call", response)
        return response
    raise AssertionError("unreachable")  # pragma: no cover
