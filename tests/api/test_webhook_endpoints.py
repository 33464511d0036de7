"""The webhook-endpoints routes over HTTP, on SQLite and PostgreSQL: subscribe (URL guard,
event types, the secret shown once), read, list by cursor, change, enable again, delete,
rotate, the delivery log, retry, replay and the test ping; bad input and unknown ids.

No test here sends anything: jobs do not run, and the URLs are public IP literals (nothing to
resolve) or hosts the settings allow."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, get_args

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web
from standardwebhooks import Webhook

from tracking_service.api.webhook_endpoints import DeliveryEventType, EventType
from tracking_service.clock import FixedClock
from tracking_service.db import create_engine
from tracking_service.errors import InvalidInput
from tracking_service.models import OutboxEvent
from tracking_service.models.webhooks import OutboxCursor, WebhookDelivery
from tracking_service.settings import Settings
from tracking_service.webhooks import endpoints as store
from tracking_service.webhooks import fanout, url_guard
from tracking_service.webhooks.dispatcher import Dispatcher

from .helpers import app_client
from .orders_helpers import KEY, NOW, assert_problem, rows

URL = "https://93.184.215.14/hooks/tracking"  # a public address: nothing to resolve
OTHER_URL = "https://198.51.100.0.nip.invalid/x"  # does not resolve

_X: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]
_D: sa.Table = WebhookDelivery.__table__  # type: ignore[attr-defined]
_C: sa.Table = OutboxCursor.__table__  # type: ignore[attr-defined]


@asynccontextmanager
async def back_office(
    database_url: str, clock: FixedClock | None = None, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with no background jobs (nothing is sent), the API key in every request."""
    config = Settings(database_url=database_url, api_keys=[KEY], run_jobs_in_api=False, **settings)
    async with app_client(config, clock=clock or FixedClock(NOW)) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client


async def insert(database_url: str, table: sa.Table, values: list[dict[str, Any]]) -> None:
    """Rows through their column types (instants stored as the service stores them)."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(table), values)
    finally:
        await engine.dispose()


def outbox_row(n: int, event_type: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": f"msg_event{n:04d}",
        "event_type": event_type,
        "stream": "shipment:1",
        "sequence": n,
        "occurred_at": at,
        "payload": {"type": event_type, "timestamp": at.isoformat(), "data": {}},
        "created_at": at,
    }


def delivery_row(endpoint_id: int, n: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "endpoint_id": endpoint_id,
        "outbox_id": None,
        "webhook_id": f"msg_d{n:04d}",
        "event_type": "shipment.delayed",
        "payload": {"type": "shipment.delayed"},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": NOW,
        "last_attempt_at": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    assert set(values) <= set(row)  # one insert takes every row's keys from the first
    row.update(values)
    return row


async def subscribe(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/webhook-endpoints", json={"url": URL, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# --- subscribe ---------------------------------------------------------------------------------


async def test_a_subscription_answers_its_secret_once(database_url: str) -> None:
    async with back_office(database_url) as client:
        created = await subscribe(
            client, event_types=["shipment.delayed", "shipment.exception"], description="Ops"
        )
        one = await client.get(f"/v1/webhook-endpoints/{created['id']}")
        listed = await client.get("/v1/webhook-endpoints")
    assert created["url"] == URL
    assert created["event_types"] == ["shipment.delayed", "shipment.exception"]
    assert created["enabled"] is True
    assert created["description"] == "Ops"
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert one.status_code == 200
    assert "secret" not in one.json()
    assert one.json() == {k: v for k, v in created.items() if k != "secret"}
    assert listed.json()["items"] == [one.json()]
    assert secret not in one.text + listed.text
    stored = await rows(database_url, "SELECT secret, start_after_outbox_id FROM webhook_endpoints")
    assert stored == [{"secret": secret, "start_after_outbox_id": 0}]


async def test_without_event_types_an_endpoint_gets_every_type(database_url: str) -> None:
    async with back_office(database_url) as client:
        created = await subscribe(client)
    assert created["event_types"] is None
    assert created["description"] is None


async def test_a_new_endpoint_receives_events_from_now_on(database_url: str) -> None:
    await insert(
        database_url,
        _X,
        [outbox_row(n, "shipment.delayed", NOW - timedelta(hours=n)) for n in (1, 2, 3)],
    )
    newest = (await rows(database_url, "SELECT max(id) AS m FROM outbox_events"))[0]["m"]
    async with back_office(database_url) as client:
        created = await subscribe(client)
    stored = await rows(
        database_url,
        "SELECT start_after_outbox_id FROM webhook_endpoints WHERE id = :id",
        id=created["id"],
    )
    assert stored == [{"start_after_outbox_id": newest}]


async def test_event_types_are_stored_once_each(database_url: str) -> None:
    async with back_office(database_url) as client:
        created = await subscribe(
            client, event_types=["shipment.delayed", "order.status_changed", "shipment.delayed"]
        )
    assert created["event_types"] == ["shipment.delayed", "order.status_changed"]


def test_the_contract_names_every_event_type_an_endpoint_can_want() -> None:
    assert get_args(EventType) == store.EVENT_TYPES
    assert get_args(DeliveryEventType) == (*store.EVENT_TYPES, fanout.PING)


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.215.14/hooks",
        "https://127.0.0.1/hooks",
        "https://10.0.0.1/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "https://localhost/hooks",  # a name that resolves to a loopback address
        "ftp://93.184.215.14/hooks",
        "https://user:pw@93.184.215.14/hooks",
        "not a url",
        OTHER_URL,
    ],
)
async def test_refused_urls_are_422_on_the_url(database_url: str, url: str) -> None:
    async with back_office(database_url) as client:
        response = await client.post("/v1/webhook-endpoints", json={"url": url})
    assert_problem(response, 422, "body.url")
    assert await rows(database_url, "SELECT id FROM webhook_endpoints") == []


async def test_the_refusal_says_why(database_url: str) -> None:
    async with back_office(database_url) as client:
        private = await client.post("/v1/webhook-endpoints", json={"url": "https://10.0.0.1/"})
        plain = await client.post("/v1/webhook-endpoints", json={"url": "http://93.184.215.14/"})
    assert "private address" in private.json()["detail"]
    assert "TRACKING_WEBHOOK_ALLOW_HOSTS" in private.json()["detail"]
    assert "TRACKING_WEBHOOK_ALLOW_HTTP" in plain.json()["detail"]


async def test_settings_allow_http_and_named_private_hosts(database_url: str) -> None:
    async with back_office(
        database_url, webhook_allow_http=True, webhook_allow_hosts=["127.0.0.1", "10.1.0.0/16"]
    ) as client:
        loopback = await subscribe(client, url="http://127.0.0.1:8123/hook")
        ranged = await subscribe(client, url="http://10.1.2.3/hook")
        other = await client.post("/v1/webhook-endpoints", json={"url": "http://10.2.0.1/"})
        metadata = await client.post(
            "/v1/webhook-endpoints", json={"url": "http://169.254.169.254/"}
        )
    assert loopback["url"] == "http://127.0.0.1:8123/hook"
    assert ranged["enabled"] is True
    assert_problem(other, 422, "body.url")
    assert_problem(metadata, 422, "body.url")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": URL, "event_types": ["shipment.teleported"]}, "body.event_types.0"),
        ({"url": URL, "event_types": ["ping"]}, "body.event_types.0"),
        ({"url": URL, "event_types": []}, "body.event_types"),
        ({"url": URL, "event_types": "shipment.delayed"}, "body.event_types"),
        ({"url": URL, "secret": "whsec_mine"}, "body.secret"),
        ({"url": URL, "description": ""}, "body.description"),
        ({"url": URL, "description": "x" * 513}, "body.description"),
        ({"url": ""}, "body.url"),
        ({"url": 42}, "body.url"),
        ({"url": "https://93.184.215.14/" + "a" * 2048}, "body.url"),
        ({}, "body.url"),
    ],
)
async def test_bad_subscriptions_are_422(
    database_url: str, body: dict[str, Any], field: str
) -> None:
    async with back_office(database_url) as client:
        response = await client.post("/v1/webhook-endpoints", json=body)
    assert_problem(response, 422, field)


async def test_text_that_is_not_unicode_is_422(database_url: str) -> None:
    # A lone surrogate escape is valid JSON but no database can store it.
    raw = json.dumps({"url": URL, "description": "ops \ud800"})  # ASCII: a \ud800 escape
    assert "\\ud800" in raw
    async with back_office(database_url) as client:
        response = await client.post(
            "/v1/webhook-endpoints", content=raw, headers={"Content-Type": "application/json"}
        )
    assert_problem(response, 422, "body.description")


async def test_the_routes_need_an_api_key(database_url: str) -> None:
    async with back_office(database_url) as client:
        del client.headers["Authorization"]
        post = await client.post("/v1/webhook-endpoints", json={"url": URL})
        listed = await client.get("/v1/webhook-endpoints")
    assert_problem(post, 401)
    assert_problem(listed, 401)


# --- read and list -----------------------------------------------------------------------------


async def test_endpoints_are_listed_a_page_at_a_time(database_url: str) -> None:
    async with back_office(database_url) as client:
        ids = [(await subscribe(client, description=f"n{i}"))["id"] for i in range(5)]
        first = (await client.get("/v1/webhook-endpoints", params={"limit": 2})).json()
        second = (
            await client.get(
                "/v1/webhook-endpoints", params={"limit": 2, "cursor": first["next_cursor"]}
            )
        ).json()
        third = (
            await client.get(
                "/v1/webhook-endpoints", params={"limit": 2, "cursor": second["next_cursor"]}
            )
        ).json()
    assert [e["id"] for e in first["items"] + second["items"] + third["items"]] == ids
    assert third["next_cursor"] is None
    assert all("secret" not in e for e in first["items"] + second["items"] + third["items"])


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"cursor": "nonsense"}, {"cursor": ""}, {"limit": "x"}],
)
async def test_bad_list_queries_are_422(database_url: str, params: dict[str, Any]) -> None:
    async with back_office(database_url) as client:
        response = await client.get("/v1/webhook-endpoints", params=params)
    assert_problem(response, 422, f"query.{next(iter(params))}")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/webhook-endpoints/999"),
        ("PATCH", "/v1/webhook-endpoints/999"),
        ("DELETE", "/v1/webhook-endpoints/999"),
        ("POST", "/v1/webhook-endpoints/999/rotate-secret"),
        ("GET", "/v1/webhook-endpoints/999/deliveries"),
        ("POST", "/v1/webhook-endpoints/999/deliveries/msg_x/retry"),
        ("POST", "/v1/webhook-endpoints/999/replay?since=2024-11-25T00:00:00Z"),
        ("POST", "/v1/webhook-endpoints/999/test"),
    ],
)
async def test_unknown_endpoints_are_404(database_url: str, method: str, path: str) -> None:
    async with back_office(database_url) as client:
        kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
        response = await client.request(method, path, **kwargs)
    assert_problem(response, 404)


@pytest.mark.parametrize(
    "path",
    ["/v1/webhook-endpoints/0", "/v1/webhook-endpoints/abc", "/v1/webhook-endpoints/2147483648"],
)
async def test_ids_out_of_range_are_422(database_url: str, path: str) -> None:
    async with back_office(database_url) as client:
        response = await client.get(path)
    assert_problem(response, 422, "path.endpoint_id")


# --- change, disable, enable, delete, rotate ---------------------------------------------------


async def test_a_patch_changes_only_what_it_sends(database_url: str) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock) as client:
        created = await subscribe(client, event_types=["shipment.delayed"], description="Ops")
        path = f"/v1/webhook-endpoints/{created['id']}"
        clock.advance(timedelta(minutes=5))
        types = await client.patch(path, json={"event_types": ["shipment.exception"]})
        url = await client.patch(path, json={"url": "https://93.184.215.15/new"})
        every = await client.patch(path, json={"event_types": None, "description": None})
        nothing = await client.patch(path, json={})
    assert types.status_code == 200, types.text
    assert types.json()["event_types"] == ["shipment.exception"]
    assert types.json()["url"] == URL
    assert types.json()["description"] == "Ops"
    assert types.json()["updated_at"] == "2024-11-25T20:05:00Z"
    assert url.json()["url"] == "https://93.184.215.15/new"
    assert url.json()["event_types"] == ["shipment.exception"]
    assert every.json()["event_types"] is None
    assert every.json()["description"] is None
    assert nothing.json() == every.json()
    assert "secret" not in nothing.json()


async def test_disabled_endpoints_show_why_and_enabling_clears_it(database_url: str) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock) as client:
        created = await subscribe(client)
        path = f"/v1/webhook-endpoints/{created['id']}"
        clock.advance(timedelta(hours=1))
        disabled = await client.patch(path, json={"enabled": False})
        # What the dispatcher writes when every delivery failed for days.
        engine = create_engine(database_url)
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "UPDATE webhook_endpoints SET disabled_reason = 'every delivery failed', "
                    "failing_since = disabled_at WHERE id = :id"
                ),
                {"id": created["id"]},
            )
        await engine.dispose()
        shown = (await client.get(path)).json()
        listed = (await client.get("/v1/webhook-endpoints")).json()["items"]
        enabled = await client.patch(path, json={"enabled": True})
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    assert disabled.json()["disabled_at"] == "2024-11-25T21:00:00Z"
    assert disabled.json()["disabled_reason"] == store.DISABLED_BY_API
    assert shown["enabled"] is False
    assert shown["disabled_reason"] == "every delivery failed"
    assert shown["failing_since"] == "2024-11-25T21:00:00Z"
    assert listed == [shown]
    body = enabled.json()
    assert (body["enabled"], body["disabled_at"], body["disabled_reason"]) == (True, None, None)
    assert body["failing_since"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": None}, "body.url"),
        ({"url": "https://10.0.0.1/"}, "body.url"),
        ({"url": "http://93.184.215.14/"}, "body.url"),
        ({"enabled": None}, "body.enabled"),
        ({"enabled": "yes"}, "body.enabled"),
        ({"event_types": ["nope"]}, "body.event_types.0"),
        ({"event_types": []}, "body.event_types"),
        ({"secret": "whsec_x"}, "body.secret"),
    ],
)
async def test_bad_patches_are_422_and_change_nothing(
    database_url: str, body: dict[str, Any], field: str
) -> None:
    async with back_office(database_url) as client:
        created = await subscribe(client)
        path = f"/v1/webhook-endpoints/{created['id']}"
        response = await client.patch(path, json=body)
        after = (await client.get(path)).json()
    assert_problem(response, 422, field)
    assert after == {k: v for k, v in created.items() if k != "secret"}


async def test_delete_removes_the_endpoint_and_its_log(database_url: str) -> None:
    async with back_office(database_url) as client:
        kept = await subscribe(client)
        gone = await subscribe(client)
        await insert(database_url, _D, [delivery_row(gone["id"], 1), delivery_row(kept["id"], 2)])
        deleted = await client.delete(f"/v1/webhook-endpoints/{gone['id']}")
        again = await client.delete(f"/v1/webhook-endpoints/{gone['id']}")
        read = await client.get(f"/v1/webhook-endpoints/{gone['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_problem(again, 404)
    assert_problem(read, 404)
    left = await rows(database_url, "SELECT endpoint_id FROM webhook_deliveries")
    assert left == [{"endpoint_id": kept["id"]}]


async def test_a_rotation_answers_the_new_secret_and_keeps_the_old_for_the_overlap(
    database_url: str,
) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock, webhook_secret_overlap_hours=6) as client:
        created = await subscribe(client)
        path = f"/v1/webhook-endpoints/{created['id']}"
        clock.advance(timedelta(minutes=1))
        rotated = await client.post(f"{path}/rotate-secret")
        shown = await client.get(path)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != created["secret"]
    assert body["previous_secret_until"] == "2024-11-26T02:01:00Z"
    assert "secret" not in shown.json()
    assert shown.json()["previous_secret_until"] == "2024-11-26T02:01:00Z"
    stored = await rows(database_url, "SELECT secret, previous_secret FROM webhook_endpoints")
    assert stored == [{"secret": body["secret"], "previous_secret": created["secret"]}]


# --- the delivery log --------------------------------------------------------------------------


async def test_the_delivery_log_pages_newest_first_and_filters(database_url: str) -> None:
    async with back_office(database_url) as client:
        ep = await subscribe(client)
        other = await subscribe(client)
        await insert(
            database_url,
            _D,
            [
                delivery_row(ep["id"], 1, status="succeeded", attempts=1, next_attempt_at=None),
                delivery_row(
                    ep["id"],
                    2,
                    status="failed",
                    attempts=10,
                    next_attempt_at=None,
                    last_attempt_at=NOW,
                    last_status_code=500,
                    last_error="HTTP 500",
                ),
                delivery_row(ep["id"], 3, event_type="order.status_changed"),
                delivery_row(ep["id"], 4),
                delivery_row(other["id"], 5),
            ],
        )
        path = f"/v1/webhook-endpoints/{ep['id']}/deliveries"
        first = (await client.get(path, params={"limit": 3})).json()
        second = await client.get(path, params={"limit": 3, "cursor": first["next_cursor"]})
        failed = (await client.get(path, params={"status": "failed"})).json()
        orders = (await client.get(path, params={"event_type": "order.status_changed"})).json()
        both = await client.get(path, params={"status": "pending", "event_type": "ping"})
    ids = [d["id"] for d in first["items"] + second.json()["items"]]
    assert ids == ["msg_d0004", "msg_d0003", "msg_d0002", "msg_d0001"]
    assert second.json()["next_cursor"] is None
    assert [d["id"] for d in failed["items"]] == ["msg_d0002"]
    assert failed["items"][0] == {
        "id": "msg_d0002",
        "event_type": "shipment.delayed",
        "status": "failed",
        "attempts": 10,
        "created_at": "2024-11-25T20:00:00Z",
        "last_attempt_at": "2024-11-25T20:00:00Z",
        "last_status_code": 500,
        "last_error": "HTTP 500",
        "next_attempt_at": None,
    }
    assert [d["id"] for d in orders["items"]] == ["msg_d0003"]
    assert both.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [{"status": "lost"}, {"event_type": "nope"}, {"limit": 0}, {"cursor": "bm9wZQ"}],
)
async def test_bad_log_queries_are_422(database_url: str, params: dict[str, Any]) -> None:
    async with back_office(database_url) as client:
        ep = await subscribe(client)
        response = await client.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries", params=params)
    assert_problem(response, 422, f"query.{next(iter(params))}")


# --- retry, replay, test -----------------------------------------------------------------------


async def test_a_retry_makes_a_failed_delivery_pending_and_due_now(database_url: str) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock) as client:
        ep = await subscribe(client)
        await insert(
            database_url,
            _D,
            [
                delivery_row(ep["id"], 1, status="failed", attempts=10, next_attempt_at=None),
                delivery_row(ep["id"], 2),
            ],
        )
        clock.advance(timedelta(days=3))
        path = f"/v1/webhook-endpoints/{ep['id']}/deliveries"
        retried = await client.post(f"{path}/msg_d0001/retry")
        unknown = await client.post(f"{path}/msg_nope/retry")
        malformed = await client.post(f"{path}/msg%20x/retry")
    assert retried.status_code == 202, retried.text
    body = retried.json()
    assert (body["id"], body["status"], body["attempts"]) == ("msg_d0001", "pending", 10)
    assert body["next_attempt_at"] == "2024-11-28T20:00:00Z"
    stored = await rows(
        database_url, "SELECT webhook_id, status FROM webhook_deliveries ORDER BY id"
    )
    assert stored == [
        {"webhook_id": "msg_d0001", "status": "pending"},
        {"webhook_id": "msg_d0002", "status": "pending"},
    ]
    assert_problem(unknown, 404)
    assert_problem(malformed, 422, "path.delivery_id")


async def test_a_retry_is_only_for_the_endpoints_own_deliveries(database_url: str) -> None:
    async with back_office(database_url) as client:
        ep = await subscribe(client)
        other = await subscribe(client)
        await insert(database_url, _D, [delivery_row(other["id"], 1, status="failed")])
        response = await client.post(f"/v1/webhook-endpoints/{ep['id']}/deliveries/msg_d0001/retry")
    assert_problem(response, 404)


async def test_a_replay_sends_again_the_wanted_events_since_an_instant(
    database_url: str,
) -> None:
    clock = FixedClock(NOW)
    events = [
        outbox_row(1, "shipment.delayed", NOW - timedelta(days=3)),
        outbox_row(2, "shipment.delayed", NOW - timedelta(days=1)),
        outbox_row(3, "shipment.status_changed", NOW - timedelta(hours=20)),
        outbox_row(4, "shipment.delayed", NOW - timedelta(hours=10)),
        outbox_row(5, "shipment.delayed", NOW - timedelta(hours=5)),  # not fanned out yet
    ]
    await insert(database_url, _X, events)
    ids = [r["id"] for r in await rows(database_url, "SELECT id FROM outbox_events ORDER BY id")]
    await insert(database_url, _C, [{"name": fanout.CURSOR, "last_id": ids[3], "updated_at": NOW}])
    async with back_office(database_url, clock) as client:
        ep = await subscribe(client, event_types=["shipment.delayed"])
        everything = await subscribe(client)
        clock.advance(timedelta(minutes=1))
        replayed = await client.post(
            f"/v1/webhook-endpoints/{ep['id']}/replay",
            params={"since": "2024-11-24T15:00:00-05:00"},
        )
        all_types = await client.post(
            f"/v1/webhook-endpoints/{everything['id']}/replay",
            params={"since": "2024-11-24T20:00:00Z"},
        )
        future = await client.post(
            f"/v1/webhook-endpoints/{ep['id']}/replay", params={"since": "2030-01-01T00:00:00Z"}
        )
        log = (await client.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries")).json()
    assert replayed.status_code == 202, replayed.text
    assert replayed.json() == {"replayed": 2, "since": "2024-11-24T20:00:00Z"}
    assert all_types.json()["replayed"] == 3
    assert future.json()["replayed"] == 0
    assert [d["id"] for d in log["items"]] == ["msg_event0004", "msg_event0002"]
    made = await rows(
        database_url,
        "SELECT outbox_id, webhook_id, event_type, stream, sequence, status, attempts "
        "FROM webhook_deliveries WHERE endpoint_id = :id ORDER BY id",
        id=ep["id"],
    )
    assert made == [
        {
            "outbox_id": ids[1],
            "webhook_id": "msg_event0002",
            "event_type": "shipment.delayed",
            "stream": "shipment:1",
            "sequence": 2,
            "status": "pending",
            "attempts": 0,
        },
        {
            "outbox_id": ids[3],
            "webhook_id": "msg_event0004",
            "event_type": "shipment.delayed",
            "stream": "shipment:1",
            "sequence": 4,
            "status": "pending",
            "attempts": 0,
        },
    ]
    due = await rows(database_url, "SELECT DISTINCT next_attempt_at FROM webhook_deliveries")
    assert len(due) == 1


@pytest.mark.parametrize(
    "query",
    ["", "?since=yesterday", "?since=2024-11-25T00:00:00", "?since=1700000000", "?since="],
)
async def test_a_replay_needs_an_instant_with_offset(database_url: str, query: str) -> None:
    async with back_office(database_url) as client:
        ep = await subscribe(client)
        response = await client.post(f"/v1/webhook-endpoints/{ep['id']}/replay{query}")
    assert_problem(response, 422, "query.since")


async def test_a_test_makes_a_ping_due_now(database_url: str) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock) as client:
        ep = await subscribe(client)
        clock.advance(timedelta(minutes=2))
        pinged = await client.post(f"/v1/webhook-endpoints/{ep['id']}/test")
        log = (await client.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries")).json()
    assert pinged.status_code == 202, pinged.text
    body = pinged.json()
    assert body["id"].startswith("msg_")
    assert (body["event_type"], body["status"], body["attempts"]) == ("ping", "pending", 0)
    assert body["next_attempt_at"] == "2024-11-25T20:02:00Z"
    assert log["items"] == [body]
    stored = await rows(database_url, "SELECT outbox_id, payload FROM webhook_deliveries")
    assert stored[0]["outbox_id"] is None
    payload = stored[0]["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload)
    assert payload["type"] == "ping"
    assert payload["data"] == {"endpoint_id": ep["id"]}


async def test_a_disabled_endpoint_is_not_pinged(database_url: str) -> None:
    async with back_office(database_url) as client:
        ep = await subscribe(client)
        await client.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"enabled": False})
        response = await client.post(f"/v1/webhook-endpoints/{ep['id']}/test")
    assert_problem(response, 409)
    assert await rows(database_url, "SELECT id FROM webhook_deliveries") == []


# --- with the dispatcher and a real receiver ---------------------------------------------------


@asynccontextmanager
async def loopback_receiver() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A receiver on 127.0.0.1 answering 204: its URL and what it got (headers, body)."""
    got: list[tuple[dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook", got
    finally:
        await runner.cleanup()


async def test_what_the_api_makes_the_dispatcher_sends_signed(database_url: str) -> None:
    """The secret answered verifies the ping with the reference library; after a rotation
    both secrets verify; a replay sends the event again with its own webhook-id."""
    clock = FixedClock(NOW)
    settings: dict[str, Any] = {"webhook_allow_http": True, "webhook_allow_hosts": ["127.0.0.1"]}
    config = Settings(database_url=database_url, **settings).webhook_config()
    engine = create_engine(database_url)
    async with (
        loopback_receiver() as (url, got),
        back_office(database_url, clock, **settings) as client,
    ):
        await insert(database_url, _X, [outbox_row(1, "shipment.delayed", NOW)])
        created = await subscribe(client, url=url)
        path = f"/v1/webhook-endpoints/{created['id']}"
        sender = Dispatcher(engine, clock, config, worker="test", rand=lambda: 0.5)
        try:
            ping = (await client.post(f"{path}/test")).json()
            await sender.dispatch_pass()
            rotated = (await client.post(f"{path}/rotate-secret")).json()
            await client.post(f"{path}/test")
            await sender.dispatch_pass()
            await sender.fanout_pass()  # written before the endpoint: not sent to it
            replayed = await client.post(f"{path}/replay", params={"since": "2024-11-25T00:00Z"})
            await sender.dispatch_pass()
        finally:
            await sender.close()
            await engine.dispose()
        log = (await client.get(f"{path}/deliveries")).json()["items"]
    assert replayed.json()["replayed"] == 1
    assert [h["webhook-id"] for h, _ in got] == [ping["id"], log[1]["id"], "msg_event0001"]
    assert log[0]["id"] == "msg_event0001"
    first_headers, first_body = got[0]
    Webhook(created["secret"]).verify(first_body, first_headers)
    assert json.loads(first_body)["type"] == "ping"
    for secret in (created["secret"], rotated["secret"]):
        Webhook(secret).verify(got[1][1], got[1][0])
    assert len(got[1][0]["webhook-signature"].split(" ")) == 2
    assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("succeeded", 1, 204)
    ] * 3


async def test_a_host_whose_dns_does_not_answer_is_refused_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def never(host: str, port: int) -> list[str]:
        await asyncio.sleep(3600)
        return []

    monkeypatch.setattr(store, "RESOLVE_SECONDS", 0.01)
    monkeypatch.setattr(url_guard, "resolve", never)
    with pytest.raises(InvalidInput) as refused:
        await store.check_url("https://hooks.example.com/x", Settings().webhook_config())
    assert refused.value.field == "url"
    assert "no answer from DNS" in refused.value.message
