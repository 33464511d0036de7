"""POST /v1/estimates with delivery history in the database, and the history routes.

The app runs its lifespan here: it builds the history snapshot from the database at start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tracking_service import api_keys
from tracking_service.db import create_engine, unit_of_work
from tracking_service.estimator.records import Delivery
from tracking_service.history import store as history_store
from tracking_service.settings import Settings, bundled_rules_path

from .helpers import app_client

SP = ZoneInfo("America/Sao_Paulo")
PROBLEM = "application/problem+json"
KEY = "back-office-key"
RIO = {"country": "BR", "postal_code": "20040-020"}
ORDER = "2024-11-05T10:00:00-03:00"  # a Tuesday, before the 15:00 cutoff


def deliveries(start: int, n: int) -> list[Delivery]:
    """Unlabelled parcels (like Olist's) from Sao Paulo to Rio, two a day, 2 to 7 days."""
    out = []
    for i in range(start, start + n):
        ordered = datetime(2024, 3, 1, 9, tzinfo=SP) + timedelta(hours=12 * i)
        handoff = ordered + timedelta(days=1 + i % 2)
        out.append(
            Delivery(
                key=f"d{i}",
                order_time=ordered,
                handoff_time=handoff,
                delivered_at=handoff + timedelta(days=(2, 2, 3, 3, 3, 4, 5, 7)[i % 8]),
                origin_country="BR",
                origin_subdivision="SP",
                origin_postal_code=f"0{3100 + i % 3}",
                dest_country="BR",
                dest_subdivision="RJ",
                dest_postal_code=f"2{i % 3}040",
                origin_tz="America/Sao_Paulo",
                dest_tz="America/Sao_Paulo",
            )
        )
    return out


async def insert(database_url: str, records: list[Delivery]) -> None:
    engine = create_engine(database_url)
    try:
        async with unit_of_work(engine) as session:
            await history_store.insert_deliveries(session, "olist", records)
    finally:
        await engine.dispose()


@asynccontextmanager
async def running(
    database_url: str, tmp_path: Path, **kw: object
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        rules_file=bundled_rules_path("br_shop.toml"),
        history_refresh_seconds=0,
        **kw,  # type: ignore[arg-type]
    )
    async with app_client(settings) as client:
        yield client


@pytest.fixture
async def client(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    await insert(database_url, deliveries(0, 300))
    async with running(database_url, tmp_path) as c:
        yield c


async def estimate(client: httpx.AsyncClient, **body: object) -> dict[str, dict]:
    response = await client.post(
        "/v1/estimates", json={"destination": RIO, "order_time": ORDER, **body}
    )
    assert response.status_code == 200, response.text
    return {e["option"]: e for e in response.json()["estimates"]}


async def test_history_estimate(client: httpx.AsyncClient) -> None:
    options = await estimate(client)
    standard = options["standard"]
    assert standard["basis"] == "history"
    assert standard["confidence"] == 0.85
    pct = standard["percentiles"]
    assert list(pct) == ["p50", "p75", "p85", "p90", "p95", "p97", "p99"]
    assert list(pct.values()) == sorted(pct.values())
    assert standard["earliest"] <= pct["p50"] <= standard["latest"] <= pct["p99"]
    assert standard["latest"] > "2024-11-06"
    basis = next(x for x in standard["explanation"] if x.startswith("basis:"))
    assert basis == "basis: history (past deliveries, stated at 85%)"
    # a third of the parcels went to CEPs 200xx: the most specific transit lane with records;
    # no parcel left from the warehouse's own CEP prefix: handling is the state's lane
    words = "based on 100 recent deliveries from SP to RJ (postal codes starting 200)"
    assert any(step.startswith(words) for step in standard["explanation"])
    assert "ships Wed 6 Nov" in standard["explanation"]
    assert not any("t:" in step or "h:" in step for step in standard["explanation"])
    assert standard["lanes"] == [
        {"part": "handling", "lane": "h:sub BR SP", "records": 300},
        {"part": "transit", "lane": "t:postal * BR SP BR RJ 200", "records": 100},
    ]
    # the options that do not learn from unlabelled parcels stay on their rules
    for code in ("express", "economy"):
        assert options[code]["basis"] == "rules"
        assert options[code]["percentiles"] is None
        assert options[code]["explanation"][-1].startswith("basis: rules")
        assert options[code]["lanes"] == []


async def test_higher_confidence_never_gives_an_earlier_latest(
    client: httpx.AsyncClient,
) -> None:
    latest = []
    for level in (0.5, 0.7, 0.8, 0.9, 0.95, 0.99):
        standard = (await estimate(client, confidence=level))["standard"]
        assert standard["confidence"] == level
        latest.append(standard["latest"])
    assert latest == sorted(latest)
    assert latest[0] < latest[-1]
    express = (await estimate(client, confidence=0.95))["express"]
    assert express["confidence"] == 0.85  # on the rules: its configured level, said plainly
    assert "asked for 95%" in express["explanation"][-1]


@pytest.mark.parametrize("bad", [0.3, 0.995, 1, "0.9", True, None])
async def test_bad_confidence_is_422(client: httpx.AsyncClient, bad: object) -> None:
    body = {"destination": RIO, "order_time": ORDER, "confidence": bad}
    if bad is None:
        body["confidence"] = [0.9]
    response = await client.post("/v1/estimates", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == ["body.confidence"]


async def test_history_status_and_refresh(database_url: str, tmp_path: Path) -> None:
    await insert(database_url, deliveries(0, 200))
    async with running(database_url, tmp_path, api_keys=[KEY]) as client:
        for method, path in (("GET", "/v1/history"), ("POST", "/v1/history/refresh")):
            for headers in ({}, {"X-API-Key": "wrong"}):
                denied = await client.request(method, path, headers=headers)
                assert denied.status_code == 401
                assert denied.headers["content-type"] == PROBLEM
        auth = {"X-API-Key": KEY}
        bearer = await client.get("/v1/history", headers={"Authorization": f"Bearer {KEY}"})
        assert bearer.status_code == 200
        status = (await client.get("/v1/history", headers=auth)).json()
        assert status["records"] == 200
        assert status["options"][0]["option"] == "standard"
        assert status["options"][0]["zones"] == ["southeast"]
        unchanged = (await client.post("/v1/history/refresh", headers=auth)).json()
        assert unchanged["rebuilt"] is False
        before = await estimate(client)
        assert before["standard"]["lanes"][1]["records"] == 67
        assert any("based on 67 recent deliveries" in x for x in before["standard"]["explanation"])

        await insert(database_url, deliveries(200, 100))  # e.g. import-history meanwhile
        assert (await estimate(client)) == before  # served from the snapshot until a refresh
        grown = (await client.post("/v1/history/refresh", headers=auth)).json()
        assert grown["rebuilt"] is True
        assert grown["records"] == 300
        after = (await estimate(client))["standard"]
        assert after["lanes"][1]["records"] == 100
        assert any("based on 100 recent deliveries" in x for x in after["explanation"])


async def test_empty_history_serves_the_rules(database_url: str, tmp_path: Path) -> None:
    async with running(database_url, tmp_path, api_keys=[KEY]) as client:
        options = await estimate(client)
        assert {e["basis"] for e in options.values()} == {"rules"}
        status = (await client.get("/v1/history", headers={"X-API-Key": KEY})).json()
        assert status == {**status, "records": 0, "as_of": None, "options": []}


async def test_history_routes_need_a_key_even_when_none_is_configured(
    database_url: str, tmp_path: Path
) -> None:
    """No key set and none created: the back office is closed and says how to open it, while
    estimates need no key; a key made by create-api-key opens it."""
    async with running(database_url, tmp_path) as client:
        assert (await estimate(client))["standard"]["basis"] == "rules"
        for method, path in (("GET", "/v1/history"), ("POST", "/v1/history/refresh")):
            denied = await client.request(method, path)
            assert denied.status_code == 401
            assert denied.headers["content-type"] == PROBLEM
            assert "tracking-service create-api-key --name NAME" in denied.json()["detail"]
    engine = create_engine(database_url)
    try:
        async with unit_of_work(engine) as session:
            key, _ = await api_keys.create(session, "back office", datetime.now(UTC))
    finally:
        await engine.dispose()
    async with running(database_url, tmp_path) as client:
        status = await client.get("/v1/history", headers={"Authorization": f"Bearer {key}"})
        assert status.status_code == 200
        assert status.json()["records"] == 0
