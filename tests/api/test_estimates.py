"""POST /v1/estimates and GET /v1/shipping-options over HTTP (no database involved)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tracking_service.settings import Settings, bundled_rules_path

from .helpers import app_client

PROBLEM = "application/problem+json"


def _client(tmp_path: Path, rules: str) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The app as served (lifespan included); the estimate routes never open the database."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'api.db'}", rules_file=bundled_rules_path(rules)
    )
    return app_client(settings)


@pytest.fixture
async def us(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(tmp_path, "us_shop.toml") as client:
        yield client


@pytest.fixture
async def br(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(tmp_path, "br_shop.toml") as client:
        yield client


async def test_estimate_thanksgiving(us: httpx.AsyncClient) -> None:
    response = await us.post(
        "/v1/estimates",
        json={
            "destination": {"country": "US", "postal_code": "10001"},
            "order_time": "2020-11-25T15:30:00-05:00",
            "items": [{"sku": "MUG-01", "quantity": 2}],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["order_time"] == "2020-11-25T20:30:00Z"
    assert body["destination"] == {
        "country": "US",
        "postal_code": "10001",
        "subdivision": "NY",
        "zones": ["nyc", "northeast"],
    }
    options = {e["option"]: e for e in body["estimates"]}
    assert list(options) == ["same-day", "next-day", "standard", "economy"]
    next_day = options["next-day"]
    assert next_day == {
        "option": "next-day",
        "name": "Next-day express",
        "carrier": "ups",
        "service": "Next Day Air",
        "price": {"amount": "29.90", "currency": "USD"},
        "zone": "nyc",
        "ship_date": "2020-11-27",
        "earliest": "2020-11-28",
        "latest": "2020-11-28",
        "confidence": 0.9,
        "order_by": "2020-11-27T19:00:00Z",
        "explanation": next_day["explanation"],
        "basis": "rules",
        "percentiles": None,
        "lanes": [],
    }
    assert "Thanksgiving Day Thu 26 Nov skipped at nyc-queens" in next_day["explanation"]
    assert body["unavailable"] == []


async def test_estimate_brazil_with_preorder_and_unavailable(br: httpx.AsyncClient) -> None:
    response = await br.post(
        "/v1/estimates",
        json={
            "destination": {"country": "BR", "postal_code": "69900100"},
            "order_time": "2024-02-09T16:00:00-03:00",
            "items": [{"sku": "LIVRO", "quantity": 1, "available_on": "2024-03-04"}],
            "options": ["economy", "express"],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["destination"]["postal_code"] == "69900-100"
    assert body["destination"]["subdivision"] == "AC"
    (pac,) = body["estimates"]
    assert pac["option"] == "economy"
    assert pac["ship_date"] == "2024-03-05"  # ready Mon 4 Mar, one handling day
    assert pac["order_by"] == "2024-03-04T18:00:00Z"
    assert body["unavailable"] == [
        {"option": "express", "reason": "does not deliver to BR 69900-100 (AC)"}
    ]


async def test_order_time_defaults_to_now(us: httpx.AsyncClient) -> None:
    response = await us.post(
        "/v1/estimates", json={"destination": {"country": "us", "postal_code": "02108"}}
    )
    assert response.status_code == 200
    assert response.json()["order_time"].endswith("Z")
    assert response.json()["destination"]["subdivision"] == "MA"


async def test_shipping_options(us: httpx.AsyncClient) -> None:
    response = await us.get("/v1/shipping-options")
    assert response.status_code == 200
    body = response.json()
    assert body["origins"][0]["id"] == "nyc-queens"
    assert body["origins"][0]["cutoff"] == "14:00:00"
    codes = [o["code"] for o in body["shipping_options"]]
    assert codes == ["same-day", "next-day", "standard", "economy"]
    next_day = body["shipping_options"][1]
    assert next_day["delivery_weekdays"] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    assert next_day["origins"] == ["nyc-queens"]
    assert {"zone": "noncontiguous", "min": 2, "max": 3} in next_day["transit"]


GOOD: dict[str, Any] = {"destination": {"country": "US", "postal_code": "10001"}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"destination": {"country": "XX", "postal_code": "10001"}}, "body.destination.country"),
        ({"destination": {"country": "US", "postal_code": 10001}}, "body.destination.postal_code"),
        ({"destination": {"country": "US", "postal_code": "1000"}}, "body.destination.postal_code"),
        ({"destination": {"country": "BR", "postal_code": "1000"}}, "body.destination.postal_code"),
        (
            {"destination": {"country": "US", "postal_code": "10001", "subdivision": "CA"}},
            "body.destination.subdivision",
        ),
        ({"destination": {"country": "US"}}, "body.destination.postal_code"),
        ({**GOOD, "order_time": 1700000000}, "body.order_time"),
        ({**GOOD, "order_time": "1700000000"}, "body.order_time"),
        ({**GOOD, "order_time": "2024-03-05T10:00:00"}, "body.order_time"),
        ({**GOOD, "order_time": "yesterday"}, "body.order_time"),
        ({**GOOD, "origin": "nowhere"}, "body.origin"),
        ({**GOOD, "options": ["standard", "teleport"]}, "body.options.1"),
        ({**GOOD, "options": "standard"}, "body.options"),
        ({**GOOD, "items": [{"sku": "A", "quantity": "2"}]}, "body.items.0.quantity"),
        ({**GOOD, "items": [{"sku": "A", "quantity": 0}]}, "body.items.0.quantity"),
        ({**GOOD, "items": [{"sku": "A", "available_on": 20240301}]}, "body.items.0.available_on"),
        ({**GOOD, "items": [{"sku": "A", "available_on": "3 Mar"}]}, "body.items.0.available_on"),
        ({**GOOD, "coupon": "X"}, "body.coupon"),
        ({"destination": {"country": "US", "postal_code": "10001", "city": "NYC"}},
         "body.destination.city"),
        ({}, "body.destination"),
    ],
)  # fmt: skip
async def test_bad_input_is_a_422_naming_the_field(
    us: httpx.AsyncClient, body: Any, field: str
) -> None:
    response = await us.post("/v1/estimates", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 422
    assert problem["type"].endswith("/validation-error")
    assert problem["title"] and problem["detail"]
    assert field in [e["field"] for e in problem["errors"]], problem


async def test_malformed_json_is_a_400(us: httpx.AsyncClient) -> None:
    response = await us.post(
        "/v1/estimates", content=b'{"destination": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 400


async def test_error_responses_declared_in_openapi(us: httpx.AsyncClient) -> None:
    spec = (await us.get("/openapi.json")).json()
    post = spec["paths"]["/v1/estimates"]["post"]
    for status in ("400", "422"):
        assert PROBLEM in post["responses"][status]["content"]
    examples = spec["components"]["schemas"]["EstimateResponse"]["examples"]
    assert examples[0]["estimates"][0]["order_by"].endswith("Z")
