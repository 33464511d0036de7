"""The back office as the orders and shipments tests use it: the app on a database of each
backend, an API key sent with every request, a clock that stands still."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa

from tracking_service.clock import FixedClock
from tracking_service.db import create_engine
from tracking_service.models.tracking import Shipment
from tracking_service.settings import Settings

from .helpers import app_client

NOW = datetime(2024, 11, 25, 20, tzinfo=UTC)
KEY = "test-back-office-key"
BASE_URL = "https://track.example.com/"
PROBLEM = "application/problem+json"
UPS = "1Z5R89390357567127"  # valid UPS check digit
UPS_2 = "1Z999AA10123456784"
FEDEX = "986578788855"
USPS_ROUTED = "420787459400111206206406260787"  # USPS IMpb with its 420+ZIP routing prefix


def order_body(order_id: str = "A-1001", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": order_id,
        "placed_at": "2024-11-25T15:30:00-05:00",
        "destination": {"country": "US", "postal_code": "10001", "city": "New York"},
        "option": "standard",
        "items": [{"sku": "MUG-01", "quantity": 2}],
        "customer": {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+1 212 555 0100",
            "street": "1 Analytical Engine Way",
        },
    }
    body.update(overrides)
    return body


@asynccontextmanager
async def back_office(
    database_url: str, clock: FixedClock | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on `database_url`, with the API key in every request's headers."""
    settings = Settings(database_url=database_url, api_keys=[KEY], public_base_url=BASE_URL)
    async with app_client(settings, clock=clock or FixedClock(NOW)) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client


async def rows(database_url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of a plain query, as dicts (what the API wrote)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(sa.text(sql), params)
            return [dict(r._mapping) for r in result]
    finally:
        await engine.dispose()


async def execute(database_url: str, sql: str, **params: Any) -> None:
    """Change rows directly (what the worker would have written)."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(sql), params)
    finally:
        await engine.dispose()


async def set_shipment(database_url: str, shipment_id: int, **values: Any) -> None:
    """Change a shipment's columns through their types (instants stored as the service does)."""
    table = Shipment.__table__  # type: ignore[attr-defined]
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.update(table).where(table.c.id == shipment_id).values(**values))
    finally:
        await engine.dispose()


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    if field is not None:
        fields = [e["field"] for e in response.json()["errors"]]
        assert field in fields, fields
