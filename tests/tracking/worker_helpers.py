"""What the worker's tests share: seeded orders and shipments, the simulated carrier in-process
(counting what it is asked), and a runtime opened on a test database."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.carriers.sim.number import Scenario, encode
from tracking_service.carriers.sim.server import create_sim_app
from tracking_service.clock import FixedClock
from tracking_service.db import unit_of_work
from tracking_service.models import Order, OutboxEvent, Shipment, TrackingEventRecord
from tracking_service.services import Services, open_services
from tracking_service.settings import Settings

T0 = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday
LABELLED = T0 - timedelta(days=2)

S = Shipment.__table__  # type: ignore[attr-defined]
ORD = Order.__table__  # type: ignore[attr-defined]
E = TrackingEventRecord.__table__  # type: ignore[attr-defined]
X = OutboxEvent.__table__  # type: ignore[attr-defined]


def sim_numbers(count: int, scenario: Scenario = Scenario.NORMAL) -> list[str]:
    return [encode(scenario, LABELLED, serial) for serial in range(count)]


async def seed(
    engine: AsyncEngine,
    numbers: Sequence[str],
    *,
    carrier: str = "simulated",
    now: datetime = T0,
    due: datetime | None = None,
    promise_latest: date | None = None,
    created_at: datetime | None = None,
    status: str = "pending",
) -> list[int]:
    """One order per number (so applies never wait on a shared order), due at `due` (default
    `now`); the shipments' ids in the order of `numbers`."""
    orders = [
        {
            "order_id": f"O-{carrier}-{n}",
            "placed_at": now - timedelta(days=3),
            "origin": "nyc-queens",
            "option": "standard",
            "dest_country": "US",
            "dest_postal_code": "60601",
            "dest_subdivision": "IL",
            "items": [],
            "promise_earliest": (now + timedelta(days=1)).date(),
            "promise_latest": promise_latest or (now + timedelta(days=4)).date(),
            "promise_confidence": 0.9,
            "promise_basis": "given",
            "promise_detail": {},
            "status": "processing",
            "sequence": 0,
            "created_at": now,
            "updated_at": now,
        }
        for n in numbers
    ]
    async with unit_of_work(engine) as session:
        await session.execute(sa.insert(ORD), orders)
        pks = dict(
            (
                await session.execute(
                    sa.select(ORD.c.order_id, ORD.c.id).where(
                        ORD.c.order_id.in_([o["order_id"] for o in orders])
                    )
                )
            ).all()
        )
        await session.execute(
            sa.insert(S),
            [
                {
                    "order_pk": pks[f"O-{carrier}-{n}"],
                    "carrier": carrier,
                    "tracking_number": n,
                    "items": [],
                    "tracking_token": secrets.token_urlsafe(24),
                    "status": status,
                    "next_poll_at": due or now,
                    "poll_failures": 0,
                    "sequence": 0,
                    "delayed": False,
                    "created_at": created_at or now,
                    "updated_at": now,
                }
                for n in numbers
            ],
        )
        ids = dict(
            (
                await session.execute(
                    sa.select(S.c.tracking_number, S.c.id).where(
                        S.c.carrier == carrier, S.c.tracking_number.in_(list(numbers))
                    )
                )
            ).all()
        )
    return [ids[n] for n in numbers]


class CountingTransport(httpx.AsyncBaseTransport):
    """Routes each request by host: the simulated carrier in-process (`sim`), anything else to
    `other` (a failing carrier); counts every tracking number the simulated carrier is asked."""

    def __init__(
        self,
        clock: FixedClock,
        other: Callable[[httpx.Request], httpx.Response] | None = None,
    ) -> None:
        self.sim = httpx.ASGITransport(app=create_sim_app(speed=1.0, clock=clock.now))
        self.other = other
        self.asked: Counter[str] = Counter()
        self.other_calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "sim":
            if request.url.path == "/v1/track":
                body = json.loads(await request.aread())
                self.asked.update(body.get("tracking_numbers", []))
            return await self.sim.handle_async_request(request)
        self.other_calls += 1
        assert self.other is not None, f"unexpected request to {request.url}"
        return self.other(request)


def settings_for(url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "history_refresh_seconds": 0,
        "simulated_base_url": "http://sim",
        "carrier_max_attempts": 1,
        "carrier_usage_flush_seconds": 60,
        "dhl_api_key": "test-key",
        "dhl_base_url": "http://dhl",
        "dhl_requests_per_second": 1000,
        "dhl_max_concurrency": 8,
        "poll_lease_seconds": 120,
    }
    values.update(extra)
    return Settings(**values)


@asynccontextmanager
async def runtime(
    url: str, clock: FixedClock, transport: httpx.AsyncBaseTransport, **extra: Any
) -> AsyncIterator[Services]:
    async with open_services(
        settings_for(url, **extra), run_jobs=False, clock=clock, carrier_transport=transport
    ) as services:
        yield services


async def rows(engine: AsyncEngine, stmt: sa.Select[Any]) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(stmt)).all())


async def shipment(engine: AsyncEngine, shipment_id: int) -> Any:
    return (await rows(engine, sa.select(S).where(S.c.id == shipment_id)))[0]
