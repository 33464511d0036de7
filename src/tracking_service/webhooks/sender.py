"""The one HTTP seam of webhooks: POST a signed body to a receiver, with aiohttp.

aiohttp, not httpx: signed POSTs to a local receiver, 64 in flight, reach about 7,000 a second
in one process here against about 500 with httpx 0.28, and the dispatcher must sustain 1,000
deliveries a second with its bookkeeping.

Every connection goes only to addresses the URL guard accepted: the connector's resolver
resolves the receiver's name at send time and keeps only the addresses `url_guard` allows (a
name rebound to a private address since its registration is refused), and a URL whose host is
an IP literal (which aiohttp connects to without resolving) is checked here before sending.
Redirects are never followed (a 3xx is a failed attempt), every POST has a total timeout, and
only the first `response_head_bytes` of an answer are read. `post` never raises: a refused
address, a timeout or a reset is an `Answer` without a status code.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from tracking_service.errors import InvalidInput
from tracking_service.webhooks import url_guard
from tracking_service.webhooks.config import WebhookConfig

USER_AGENT = "tracking-service-webhooks/1"


@dataclass(frozen=True, slots=True)
class Answer:
    """What one POST came back with (`status_code` None: no HTTP answer; `error` says why)."""

    status_code: int | None
    latency_ms: float
    head: str | None = None
    error: str | None = None
    retry_after: str | None = None


class AddressRefused(OSError):
    """The receiver's host resolves only to addresses the URL guard refuses."""


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for webhooks: resolves, then keeps what `url_guard` allows."""

    def __init__(self, config: WebhookConfig, resolve: url_guard.Resolve) -> None:
        self._config = config
        self._resolve = resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self._resolve(host, port)
        try:
            allowed = url_guard.allowed_addresses(host, addresses, self._config)
        except InvalidInput as exc:
            raise AddressRefused(exc.message) from None
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in allowed
        ]

    async def close(self) -> None:
        return None


class Sender:
    """POSTs webhooks over one pooled aiohttp session (opened on first use, on the loop)."""

    def __init__(
        self, config: WebhookConfig, *, resolve: url_guard.Resolve = url_guard.resolve
    ) -> None:
        self.config = config
        self._resolve = resolve
        self._session: aiohttp.ClientSession | None = None
        self._checked: dict[str, str | None] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.config, self._resolve),
                limit=max(1, self.config.concurrency),
                ttl_dns_cache=10,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds),
                headers={"user-agent": USER_AGENT},
                auto_decompress=False,
            )
        return self._session

    def _refusal(self, url: str) -> str | None:
        """Why `url` may not be called before any connection (scheme, IP literal), or None."""
        if url not in self._checked:
            reason: str | None = None
            try:
                parsed = url_guard.parse_url(url, self.config)
                literal = url_guard.literal_address(parsed.host)
                if literal is not None:
                    url_guard.allowed_addresses(parsed.host, [str(literal)], self.config)
            except InvalidInput as exc:
                reason = exc.message
            if len(self._checked) > 10_000:
                self._checked.clear()
            self._checked[url] = reason
        return self._checked[url]

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST `body` to `url` once (see the module docstring)."""
        refused = self._refusal(url)
        if refused is not None:
            return Answer(None, 0.0, error=f"refused: {refused}"[:512])
        started = time.perf_counter()
        try:
            async with self._client().post(
                url, data=body, headers=dict(headers), allow_redirects=False
            ) as response:
                head = await response.content.read(self.config.response_head_bytes)
                return Answer(
                    response.status,
                    (time.perf_counter() - started) * 1000,
                    head.decode("utf-8", "replace")[: self.config.response_head_bytes] or None,
                    retry_after=response.headers.get("retry-after"),
                )
        except TimeoutError:
            error = f"timeout: no answer within {self.config.timeout_seconds:g} s"
        except aiohttp.ClientConnectorError as exc:
            error = f"connection failed: {exc.os_error or exc}"
        except (aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let one receiver fail a batch
            error = f"{type(exc).__name__}: {exc}"
        return Answer(None, (time.perf_counter() - started) * 1000, error=error[:512])

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
