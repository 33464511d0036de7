"""Carrier routes over HTTP, on SQLite and PostgreSQL: usage per carrier (calls, errors, daily
limit, poll lag) and scans pushed by the simulated carrier fed through the pipeline."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tracking_service.carriers.sim.number import Scenario, encode
from tracking_service.carriers.sim.server import create_sim_app, track_one
from tracking_service.clock import FixedClock
from tracking_service.services import Services
from tracking_service.settings import Settings

from .helpers import lifespan_client
from .orders_helpers import KEY, NOW, assert_problem, execute, order_body, rows

SECRET = "push-secret-for-tests"
SPEED = 1440.0  # the simulated carrier's: a simulated day a real minute
SIM_BASE = "http://sim.test"


@asynccontextmanager
async def service(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The app with a back-office key, a push secret and the simulated carrier in-process."""
    from tracking_service.app import create_app

    settings = Settings(
        database_url=database_url,
        api_keys=[KEY],
        simulated_push_secret=SecretStr(SECRET),
        simulated_base_url=SIM_BASE,
    )
    sim = httpx.ASGITransport(app=create_sim_app(speed=SPEED, clock=lambda: NOW))
    app = create_app(settings, clock=FixedClock(NOW), carrier_transport=sim)
    async with lifespan_client(app) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client, app.state.services


def sim_number(serial: int, scenario: Scenario = Scenario.NORMAL) -> str:
    return encode(scenario, NOW - timedelta(minutes=1), serial)  # a simulated day ago


def pushed(*numbers: str, at: Any = NOW) -> dict[str, Any]:
    """What the simulated carrier pushes: its own /v1/track answer for `numbers` at `at`."""
    return {"results": [json.loads(track_one(n, at, SPEED)) for n in numbers]}


async def register(client: httpx.AsyncClient, order_id: str, *numbers: str) -> None:
    body = order_body(order_id, placed_at=(NOW - timedelta(days=1)).isoformat())
    assert (await client.post("/v1/orders", json=body)).status_code == 201
    for number in numbers:
        answer = await client.post(
            f"/v1/orders/{order_id}/shipments",
            json={"carrier": "simulated", "tracking_number": number},
        )
        assert answer.status_code == 201, answer.text


def push(client: httpx.AsyncClient, body: Any, secret: str | None = SECRET) -> Any:
    headers = {"X-Push-Secret": secret} if secret is not None else {}
    return client.post("/v1/carriers/simulated/events", json=body, headers=headers)


# ---- usage ----------------------------------------------------------------------------------


async def test_usage_counts_the_calls_made_through_the_registry(database_url: str) -> None:
    async with service(database_url) as (client, services):
        await register(client, "U-1", sim_number(1))
        await execute(
            database_url, "UPDATE shipments SET next_poll_at = :due", due=NOW - timedelta(minutes=5)
        )
        outcomes = await services.carriers.adapter("simulated").track(
            [sim_number(1), sim_number(2)]
        )
        assert len(outcomes) == 2
        assert services.carrier_calls is not None
        await services.carrier_calls.flush()
        response = await client.get("/v1/carriers/usage")
        only_dhl = await client.get("/v1/carriers/usage", params={"carrier": "dhl"})
    assert response.status_code == 200, response.text
    usage = response.json()
    by_carrier = {c["carrier"]: c for c in usage["carriers"]}
    assert set(by_carrier) == {"ups", "fedex", "usps", "dhl", "simulated"}
    sim = by_carrier["simulated"]
    assert (sim["calls_today"], sim["errors_today"], sim["outcomes_today"]) == (1, 0, {"ok": 1})
    assert sim["last_outcome"] == "ok" and sim["last_call_at"] is not None
    assert (sim["daily_limit"], sim["daily_remaining"]) == (None, None)
    assert (sim["due_shipments"], sim["poll_lag_seconds"]) == (1, 300.0)
    dhl = by_carrier["dhl"]
    assert (dhl["daily_limit"], dhl["daily_used"], dhl["daily_remaining"]) == (250, 0, 250)
    assert (dhl["calls_today"], dhl["last_call_at"], dhl["poll_lag_seconds"]) == (0, None, 0.0)
    assert [c["carrier"] for c in only_dhl.json()["carriers"]] == ["dhl"]


async def test_usage_of_another_day_and_the_errors(database_url: str) -> None:
    async with service(database_url) as (client, _services):
        await execute(
            database_url,
            "INSERT INTO carrier_calls (carrier, endpoint, outcome, latency_ms, numbers, at) "
            "VALUES ('dhl', 'track', 'rate_limited', 3.0, 1, :at), "
            "('dhl', 'track', 'ok', 3.0, 1, :at)",
            at=NOW,
        )
        response = await client.get("/v1/carriers/usage", params={"day": NOW.date().isoformat()})
    assert response.status_code == 200, response.text
    assert response.json()["day"] == NOW.date().isoformat()
    dhl = next(c for c in response.json()["carriers"] if c["carrier"] == "dhl")
    assert (dhl["calls_today"], dhl["errors_today"]) == (2, 1)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"carrier": "pigeon"}, "query.carrier"),
        ({"day": "2026-13-01"}, "query.day"),
        ({"day": "0"}, "query.day"),
    ],
)
async def test_usage_bad_input_is_a_problem(
    database_url: str, params: dict[str, str], field: str
) -> None:
    async with service(database_url) as (client, _services):
        response = await client.get("/v1/carriers/usage", params=params)
    assert_problem(response, 422, field)


async def test_usage_needs_an_api_key(database_url: str) -> None:
    async with service(database_url) as (client, _services):
        del client.headers["Authorization"]
        response = await client.get("/v1/carriers/usage")
    assert_problem(response, 401)


# ---- pushed scans ---------------------------------------------------------------------------


async def test_pushed_scans_feed_the_pipeline_once(database_url: str) -> None:
    number = sim_number(11)
    async with service(database_url) as (client, _services):
        await register(client, "P-1", number)
        before = await rows(database_url, "SELECT count(*) AS n FROM outbox_events")
        first = await push(client, pushed(number))
        again = await push(client, pushed(number))
        shipment = (await client.get("/v1/orders/P-1")).json()["shipments"][0]
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["received"], answer["applied"], answer["unknown"]) == (1, 1, 0)
    assert answer["new_events"] >= 3 and answer["messages"] >= 1
    assert shipment["status"] == "in_transit"
    assert len(shipment["events"]) == answer["new_events"]
    # The same scans again: nothing new is stored or announced.
    assert again.status_code == 200, again.text
    assert (again.json()["new_events"], again.json()["messages"]) == (0, 0)
    events = await rows(database_url, "SELECT count(*) AS n FROM tracking_events")
    outbox = await rows(database_url, "SELECT count(*) AS n FROM outbox_events")
    assert events[0]["n"] == answer["new_events"]
    assert outbox[0]["n"] - before[0]["n"] == answer["messages"]


async def test_later_scans_add_only_what_is_new(database_url: str) -> None:
    number = sim_number(12)
    async with service(database_url) as (client, _services):
        await register(client, "P-2", number)
        early = (await push(client, pushed(number, at=NOW - timedelta(seconds=30)))).json()
        late = (await push(client, pushed(number))).json()
        events = (await client.get("/v1/orders/P-2")).json()["shipments"][0]["events"]
    assert early["new_events"] >= 1 and late["new_events"] >= 1
    assert len(events) == early["new_events"] + late["new_events"]


async def test_unknown_numbers_and_error_results_are_counted_and_ignored(
    database_url: str,
) -> None:
    known, unknown = sim_number(21), sim_number(22)
    not_yet = encode(Scenario.NORMAL, NOW + timedelta(hours=1), 23)  # NOT_FOUND yet
    async with service(database_url) as (client, _services):
        await register(client, "P-3", known)
        response = await push(client, pushed(known, unknown, not_yet))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["received"], answer["applied"], answer["unknown"], answer["ignored"]) == (
        3,
        1,
        1,
        1,
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"results": []},
        {"results": "SIM"},
        {"results": [{"status": {"code": "PU"}}]},  # no tracking number
        {"results": [{"tracking_number": "SIM1", "events": ["not an object"]}]},
        [1, 2, 3],
    ],
)
async def test_bad_push_bodies_are_problems(database_url: str, body: Any) -> None:
    async with service(database_url) as (client, _services):
        response = await push(client, body)
    assert_problem(response, 422)


async def test_an_unreadable_result_refuses_the_whole_push(database_url: str) -> None:
    number = sim_number(31)
    body = pushed(number)
    body["results"][0]["events"][0]["occurred_at"] = "yesterday"
    async with service(database_url) as (client, _services):
        await register(client, "P-4", number)
        response = await push(client, body)
        events = await rows(database_url, "SELECT count(*) AS n FROM tracking_events")
    assert_problem(response, 422)
    assert number in response.json()["detail"]
    assert events[0]["n"] == 0


async def test_pushes_need_the_shared_secret(database_url: str) -> None:
    number = sim_number(41)
    async with service(database_url) as (client, _services):
        missing = await push(client, pushed(number), secret=None)
        wrong = await push(client, pushed(number), secret="guess")
    assert_problem(missing, 401)
    assert_problem(wrong, 401)


async def test_pushes_are_refused_without_a_configured_secret(database_url: str) -> None:
    from tracking_service.app import create_app

    app = create_app(Settings(database_url=database_url, api_keys=[KEY]), clock=FixedClock(NOW))
    async with lifespan_client(app) as client:
        response = await push(client, pushed(sim_number(51)))
    assert_problem(response, 403)
    assert "TRACKING_SIMULATED_PUSH_SECRET" in response.json()["detail"]


async def test_sim_carrier_pushes_reach_the_pipeline(database_url: str) -> None:
    """`sim-carrier --push-url` end to end: the carrier watches a number it was asked about
    and pushes its next scans to the service, which stores them."""
    from tracking_service.app import create_app
    from tracking_service.carriers.sim.push import Pusher

    number = sim_number(62)
    settings = Settings(
        database_url=database_url, api_keys=[KEY], simulated_push_secret=SecretStr(SECRET)
    )
    app = create_app(settings, clock=FixedClock(NOW))
    pusher = Pusher(
        "http://test/v1/carriers/simulated/events",
        secret=SECRET,
        transport=httpx.ASGITransport(app=app),
    )
    early = NOW - timedelta(seconds=30)
    sim = create_sim_app(speed=SPEED, clock=lambda: early, pusher=pusher)
    async with lifespan_client(app) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        await register(client, "E-1", number)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sim), base_url=SIM_BASE
        ) as carrier:
            asked = await carrier.post("/v1/track", json={"tracking_numbers": [number]})
        known = len(asked.json()["results"][0]["events"])
        pushed_scans = await pusher.tick(NOW, sim.render)
        events = (await client.get("/v1/orders/E-1")).json()["shipments"][0]["events"]
    await pusher.stop()
    assert pushed_scans >= 1
    # The push carries the whole history, so the shipment has every scan up to NOW.
    assert len(events) == known + pushed_scans
