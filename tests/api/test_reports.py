"""The promise report over HTTP on SQLite and PostgreSQL: `GET /v1/reports/promises` (API key)
and `GET /reports/promises` (API key or the report password over HTTP Basic)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from reports.seed import add_history

from tracking_service.clock import FixedClock
from tracking_service.db import create_engine
from tracking_service.reports.figures import GROUP_BY
from tracking_service.reports.page import CSS_HASH
from tracking_service.settings import Settings

from .helpers import app_client
from .orders_helpers import KEY, PROBLEM

NOW = datetime(2025, 12, 1, 17, tzinfo=UTC)  # Mon 1 Dec, noon in New York
FIRST = date(2025, 9, 1)
URL = "/v1/reports/promises"
PAGE = "/reports/promises"
PASSWORD = "ledger-viewer-ü"  # not ASCII: HTTP Basic credentials are UTF-8
BEARER = {"Authorization": f"Bearer {KEY}"}


def basic(password: str, user: str = "anyone") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
async def seeded(database_url: str) -> int:
    """13 weeks of orders on three lanes from 1 Sep 2025; returns how many."""
    engine = create_engine(database_url)
    try:
        return await add_history(engine, FIRST, 13, now=NOW)
    finally:
        await engine.dispose()


@asynccontextmanager
async def site(
    database_url: str, password: str | None = PASSWORD
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        api_keys=[KEY],
        reports_password=password,  # type: ignore[arg-type]
        run_jobs_in_api=False,
    )
    async with app_client(settings, clock=FixedClock(NOW)) as client:
        yield client


async def get_json(client: httpx.AsyncClient, url: str, **params: Any) -> dict[str, Any]:
    response = await client.get(url, params=params, headers=BEARER)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- the JSON ------------------------------------------------------------------------------------


async def test_the_report_per_lane(database_url: str, seeded: int) -> None:
    async with site(database_url) as client:
        body = await get_json(client, URL, **{"from": "2025-09-01", "to": "2025-11-30"})
    assert (body["from"], body["to"], body["group_by"]) == ("2025-09-01", "2025-11-30", "lane")
    assert body["as_of"] == "2025-12-01T17:00:00Z"
    total = body["total"]
    assert total["orders"] == seeded
    assert total["on_time"] + total["late"] + total["open"] == seeded
    assert 0 < total["resolved"] < seeded  # the last days' promises are still open
    share = total["on_time_share"]
    assert share["low"] <= share["value"] <= share["high"] and share["weeks"] == 13
    lanes = {g["key"]: g for g in body["groups"]}
    assert set(lanes) == {"nyc-queens -> US-CA", "nyc-queens -> US-TX", "nyc-queens -> US-NY"}
    assert lanes["nyc-queens -> US-NY"]["on_time_share"]["value"] == 1.0  # never late
    assert lanes["nyc-queens -> US-NY"]["mean_days_late"] is None
    assert lanes["nyc-queens -> US-TX"]["on_time_share"]["value"] < 0.8
    assert lanes["nyc-queens -> US-TX"]["mean_days_late"] >= 1
    assert body["worst_lanes"][0]["key"] == "nyc-queens -> US-TX"
    assert [b["low"] for b in body["reliability"]] == [0.9, 0.95]
    assert len(body["weeks"]) == 13
    assert sum(body["leads"]["promised"]) == total["resolved"]


@pytest.mark.parametrize("group_by", GROUP_BY)
async def test_each_grouping(database_url: str, seeded: int, group_by: str) -> None:
    async with site(database_url) as client:
        body = await get_json(
            client, URL, **{"from": "2025-09-01", "to": "2025-11-30", "group_by": group_by}
        )
    keys = [g["key"] for g in body["groups"]]
    assert sum(g["orders"] for g in body["groups"]) == seeded
    expected = {
        "lane": {"nyc-queens -> US-CA", "nyc-queens -> US-TX", "nyc-queens -> US-NY"},
        "carrier": {"ups", "usps"},
        "option": {"standard", "next-day"},
        "origin": {"nyc-queens"},
        "destination_region": {"US-CA", "US-TX", "US-NY"},
    }
    if group_by == "week":
        assert keys == sorted(keys) and len(keys) == 13 and keys[0] == "2025-09-01"
    else:
        assert set(keys) == expected[group_by]


async def test_the_default_range_is_the_last_90_days(database_url: str, seeded: int) -> None:
    async with site(database_url) as client:
        body = await get_json(client, URL)
        only_to = await get_json(client, URL, to="2025-10-31")
        only_from = await get_json(client, URL, **{"from": "2025-11-15"})
    assert (body["from"], body["to"]) == ("2025-09-03", "2025-12-01")  # today in New York
    assert (only_to["from"], only_to["to"]) == ("2025-08-03", "2025-10-31")
    assert (only_from["from"], only_from["to"]) == ("2025-11-15", "2025-12-01")


async def test_an_empty_range(database_url: str) -> None:
    async with site(database_url) as client:
        body = await get_json(client, URL, **{"from": "2020-01-01", "to": "2020-01-31"})
    assert body["total"]["orders"] == 0 and body["groups"] == []
    assert body["total"]["on_time_share"] == {"value": None, "low": None, "high": None, "weeks": 0}


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"from": "2025-13-01"}, "query.from", "date"),
        ({"to": "yesterday"}, "query.to", "YYYY-MM-DD"),
        ({"from": "2025-11-02", "to": "2025-11-01"}, "query.to", "before from"),
        ({"from": "2020-01-01", "to": "2025-01-01"}, "query.from", "at most 731 days"),
        (
            {"group_by": "zone"},
            "query.group_by",
            "'lane', 'carrier', 'option', 'origin', 'destination_region' or 'week'",
        ),
    ],
)
async def test_bad_input_names_the_field(
    database_url: str, params: dict[str, str], field: str, words: str
) -> None:
    async with site(database_url) as client:
        response = await client.get(URL, params=params, headers=BEARER)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert words in error["message"]


async def test_the_json_needs_an_api_key(database_url: str) -> None:
    async with site(database_url) as client:
        none = await client.get(URL)
        password = await client.get(URL, headers=basic(PASSWORD))  # the page's, not the API's
    for response in (none, password):
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"] == "Bearer"


# --- the page ------------------------------------------------------------------------------------


async def test_the_page_with_an_api_key(database_url: str, seeded: int) -> None:
    async with site(database_url) as client:
        response = await client.get(PAGE, params={"group_by": "carrier"}, headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert f"style-src '{CSS_HASH}'" in csp and "default-src 'none'" in csp
    assert "form-action 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert html.count("<svg ") == 4
    assert "By carrier" in html and 'data-key="ups"' in html
    assert "Ada" not in html and "Analytical" not in html  # no personal data


async def test_the_page_with_the_password(database_url: str) -> None:
    async with site(database_url) as client:
        ok = await client.get(PAGE, headers=basic(PASSWORD, user=""))
        wrong = await client.get(PAGE, headers=basic("guess"))
        nothing = await client.get(PAGE)
        bad_key = await client.get(PAGE, headers={"Authorization": "Bearer nope"})
        garbled = await client.get(PAGE, headers={"Authorization": "Basic %%%"})
    assert ok.status_code == 200 and "<svg " in ok.text
    for response in (wrong, nothing, bad_key, garbled):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == PROBLEM
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Basic realm="Promise report", charset="UTF-8"')
    assert wrong.json()["detail"] == "wrong report password"
    assert "report password" in nothing.json()["detail"]


async def test_the_page_without_a_password_set_takes_only_a_key(database_url: str) -> None:
    async with site(database_url, password=None) as client:
        with_key = await client.get(PAGE, headers={"X-API-Key": KEY})
        with_basic = await client.get(PAGE, headers=basic(PASSWORD))
        nothing = await client.get(PAGE)
    assert with_key.status_code == 200
    for response in (with_basic, nothing):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert "TRACKING_REPORTS_PASSWORD is unset" in with_basic.json()["detail"]


async def test_the_page_refuses_bad_input_as_the_json_does(database_url: str) -> None:
    async with site(database_url) as client:
        response = await client.get(PAGE, params={"group_by": "zone"}, headers=basic(PASSWORD))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.group_by"


async def test_the_ends_of_the_calendar(database_url: str) -> None:
    async with site(database_url) as client:
        first = await get_json(client, URL, **{"from": "0001-01-01", "to": "0001-01-31"})
        last = await get_json(client, URL, to="9999-12-31")
    assert first["total"]["orders"] == last["total"]["orders"] == 0
    assert last["from"] == "9999-10-03"
