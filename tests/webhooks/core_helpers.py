"""Helpers of the dispatcher tests: rows made directly, and a real receiver on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.clock import Clock, FixedClock
from tracking_service.db import unit_of_work
from tracking_service.models import OutboxEvent
from tracking_service.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tracking_service.webhooks import signing
from tracking_service.webhooks.config import WebhookConfig
from tracking_service.webhooks.dispatcher import Dispatcher

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
X: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]
D: sa.Table = WebhookDelivery.__table__  # type: ignore[attr-defined]
A: sa.Table = WebhookAttempt.__table__  # type: ignore[attr-defined]
EP: sa.Table = WebhookEndpoint.__table__  # type: ignore[attr-defined]

SHORT = (timedelta(0), timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30))


def config(**changes: Any) -> WebhookConfig:
    """Loopback allowed, http allowed, no jitter, a short schedule."""
    base: dict[str, Any] = {
        "allow_http": True,
        "allow_hosts": ("127.0.0.1",),
        "jitter": 0.0,
        "schedule": SHORT,
        "timeout_seconds": 2.0,
        "lease_seconds": 60.0,
        "batch_size": 50,
    }
    base.update(changes)
    return WebhookConfig(**base)


async def add_endpoint(
    engine: AsyncEngine,
    url: str,
    *,
    event_types: list[str] | None = None,
    start_after: int = 0,
    enabled: bool = True,
    secret: str | None = None,
    previous_secret: str | None = None,
    previous_until: datetime | None = None,
) -> tuple[int, str]:
    secret = secret or signing.new_secret()
    async with unit_of_work(engine) as session:
        row = await session.execute(
            sa.insert(EP)
            .values(
                url=url,
                event_types=event_types,
                enabled=enabled,
                secret=secret,
                previous_secret=previous_secret,
                previous_secret_until=previous_until,
                start_after_outbox_id=start_after,
                created_at=T0,
                updated_at=T0,
            )
            .returning(EP.c.id)
        )
        return int(row.scalar_one()), secret


async def add_events(
    engine: AsyncEngine, stream: str, types: list[str], *, at: datetime = T0
) -> list[int]:
    """Outbox events of one stream, numbered on from what the stream has."""
    ids = []
    async with unit_of_work(engine) as session:
        last = (
            await session.execute(sa.select(sa.func.max(X.c.sequence)).where(X.c.stream == stream))
        ).scalar_one_or_none() or 0
        for n, event_type in enumerate(types, start=last + 1):
            payload = {
                "type": event_type,
                "timestamp": at.isoformat(),
                "data": {"shipment": {"id": stream, "sequence": n}, "order": {"order_id": "o1"}},
            }
            row = await session.execute(
                sa.insert(X)
                .values(
                    event_id=f"msg_{stream.replace(':', '_')}_{n}",
                    event_type=event_type,
                    stream=stream,
                    sequence=n,
                    occurred_at=at,
                    payload=payload,
                    created_at=at,
                )
                .returning(X.c.id)
            )
            ids.append(int(row.scalar_one()))
    return ids


async def rows(engine: AsyncEngine, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.select(table).where(*where).order_by(table.c[table.primary_key.columns.keys()[0]])
        )
        return [dict(r) for r in found.mappings().all()]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Callable[[Received], Awaitable[web.StreamResponse] | web.StreamResponse]


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: records every request, answers with `respond`."""

    respond: Responder | None = None
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.received]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        got = Received(request.path, dict(request.headers.items()), await request.read())
        got.headers = {k.lower(): v for k, v in got.headers.items()}
        self.received.append(got)
        if self.respond is None:
            return web.Response(status=204)
        answer = self.respond(got)
        if asyncio.iscoroutine(answer) or isinstance(answer, Awaitable):
            return await answer
        return answer


@asynccontextmanager
async def receiver(respond: Responder | None = None) -> AsyncIterator[Receiver]:
    r = Receiver(respond)
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", r._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    r.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield r
    finally:
        await runner.cleanup()


def dispatcher(
    engine: AsyncEngine, clock: Clock | None = None, *, worker: str = "w1", **changes: Any
) -> Dispatcher:
    return Dispatcher(
        engine, clock or FixedClock(T0), config(**changes), worker=worker, rand=lambda: 0.5
    )
