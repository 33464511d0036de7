"""An order's customer email over HTTP, on SQLite and PostgreSQL: the list (paged, never the
address) and erasing the customer's contact."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import httpx
import sqlalchemy as sa
from pydantic import SecretStr

from tracking_service.api.notifications import NotificationOut, NotificationStatus
from tracking_service.app import create_app
from tracking_service.carriers.sim.number import Scenario, encode
from tracking_service.carriers.sim.server import create_sim_app, track_one
from tracking_service.clock import FixedClock
from tracking_service.db import create_engine
from tracking_service.models.notifications import Notification
from tracking_service.notifications import jobs as mail_jobs
from tracking_service.notifications import store
from tracking_service.notifications.demo_smtp import DemoSmtpServer, MailDrop
from tracking_service.settings import Settings

from .helpers import lifespan_client
from .orders_helpers import KEY, NOW, assert_problem, back_office, order_body, rows

N: sa.Table = Notification.__table__  # type: ignore[attr-defined]
EMAIL = "ada@example.com"


async def add_notifications(database_url: str, order_id: str, *specs: dict[str, Any]) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            order_pk = (
                await conn.execute(
                    sa.text("SELECT id FROM orders WHERE order_id = :o"), {"o": order_id}
                )
            ).scalar_one()
            for n, spec in enumerate(specs):
                at = NOW + timedelta(minutes=n)
                await conn.execute(
                    sa.insert(N).values(
                        order_pk=order_pk,
                        kind=spec.get("kind", "late"),
                        dedupe_key=f"{order_id}:{n}",
                        locale=spec.get("locale", "en"),
                        message_id=f"<m{n}.{order_id}@shop.example>",
                        payload={"order_id": order_id},
                        status=spec.get("status", "pending"),
                        next_attempt_at=at if spec.get("status", "pending") == "pending" else None,
                        attempts=spec.get("attempts", 0),
                        subject=spec.get("subject"),
                        last_error=spec.get("last_error"),
                        sent_at=spec.get("sent_at"),
                        created_at=at,
                        updated_at=at,
                    )
                )
    finally:
        await engine.dispose()


def test_the_contract_names_every_status() -> None:
    assert get_args(NotificationStatus) == store.STATUSES


async def test_the_list_shows_what_was_sent_and_never_the_address(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        await add_notifications(
            database_url,
            "A-1001",
            {
                "kind": "shipped",
                "status": "sent",
                "attempts": 1,
                "subject": "Our shop: your order A-1001 has shipped",
                "sent_at": NOW,
            },
            {"kind": "late", "status": "pending", "attempts": 1, "last_error": "timeout"},
            {"kind": "delivered", "status": "skipped", "last_error": "not sent: switched off"},
        )
        first = await client.get("/v1/orders/A-1001/notifications", params={"limit": 2})
        cursor = first.json()["next_cursor"]
        rest = await client.get(
            "/v1/orders/A-1001/notifications", params={"limit": 2, "cursor": cursor}
        )
    assert first.status_code == 200, first.text
    page = first.json()
    assert [i["kind"] for i in page["items"]] == ["shipped", "late"]
    assert set(page["items"][0]) == set(NotificationOut.model_fields)
    assert page["items"][0] == {
        "kind": "shipped",
        "status": "sent",
        "locale": "en",
        "subject": "Our shop: your order A-1001 has shipped",
        "created_at": "2024-11-25T20:00:00Z",
        "not_before": None,
        "next_attempt_at": None,
        "sent_at": "2024-11-25T20:00:00Z",
        "attempts": 1,
        "last_error": None,
        "message_id": "<m0.A-1001@shop.example>",
    }
    assert page["contact"] == {"state": None, "reason": None, "at": None}
    assert [i["kind"] for i in rest.json()["items"]] == ["delivered"]
    assert rest.json()["next_cursor"] is None
    for answer in (first, rest):
        assert EMAIL not in answer.text and "Ada" not in answer.text


async def test_the_list_s_errors(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        unknown = await client.get("/v1/orders/nope/notifications")
        bad_cursor = await client.get("/v1/orders/A-1001/notifications?cursor=junk")
        bad_limit = await client.get("/v1/orders/A-1001/notifications?limit=0")
        anonymous = await client.get(
            "/v1/orders/A-1001/notifications", headers={"Authorization": "Bearer wrong"}
        )
        empty = await client.get("/v1/orders/A-1001/notifications")
    assert_problem(unknown, 404)
    assert_problem(bad_cursor, 422, "query.cursor")
    assert_problem(bad_limit, 422, "query.limit")
    assert_problem(anonymous, 401)
    assert empty.json()["items"] == [] and empty.json()["next_cursor"] is None


async def test_erasing_the_contact(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        await add_notifications(
            database_url, "A-1001", {"kind": "shipped", "status": "sent"}, {"kind": "late"}
        )
        erased = await client.delete("/v1/orders/A-1001/contact")
        again = await client.delete("/v1/orders/A-1001/contact")
        unknown = await client.delete("/v1/orders/nope/contact")
        anonymous = await client.delete(
            "/v1/orders/A-1001/contact", headers={"Authorization": "Bearer wrong"}
        )
        order = await client.get("/v1/orders/A-1001")
        listed = await client.get("/v1/orders/A-1001/notifications")
    assert (erased.status_code, erased.content) == (204, b"")
    assert again.status_code == 204
    assert_problem(unknown, 404)
    assert_problem(anonymous, 401)
    assert order.json()["customer"] is None  # name, email, phone and street gone
    stored = await rows(
        database_url,
        "SELECT customer_name, customer_email, customer_phone, customer_street, contact_state "
        "FROM orders",
    )
    assert stored == [
        {
            "customer_name": None,
            "customer_email": None,
            "customer_phone": None,
            "customer_street": None,
            "contact_state": "erased",
        }
    ]
    page = listed.json()
    assert [(i["kind"], i["status"]) for i in page["items"]] == [
        ("shipped", "sent"),
        ("late", "cancelled"),
    ]
    assert page["items"][1]["last_error"] == "not sent: the customer's contact was erased"
    assert page["contact"]["state"] == "erased"
    assert page["contact"]["reason"] == "erased at the shop's request"
    assert page["contact"]["at"] == "2024-11-25T20:00:00Z"


async def test_from_a_carrier_scan_to_the_customer_s_inbox(
    database_url: str, tmp_path: Path
) -> None:
    """The whole way: an order with an address, its parcel's first scan on the road (pushed
    by the simulated carrier), the mailer, a real SMTP server on loopback. The address reaches
    the mail server and nothing else: not the outbox (webhooks), not the list."""
    drop = MailDrop(tmp_path / "mail")
    server = DemoSmtpServer(drop)
    await server.start()
    try:
        settings = Settings(
            database_url=database_url,
            api_keys=[KEY],
            simulated_push_secret=SecretStr("push-secret"),
            simulated_base_url="http://sim.test",
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security="none",
            mail_from="Acme <orders@acme.example>",
            shop_name="Acme",
            mail_every_seconds=3600,  # passes run by the test, not the timer
        )
        number = encode(Scenario.NORMAL, NOW - timedelta(minutes=1), 11)  # a day ago, simulated
        sim = httpx.ASGITransport(app=create_sim_app(speed=1440.0, clock=lambda: NOW))
        app = create_app(settings, clock=FixedClock(NOW), carrier_transport=sim)
        async with lifespan_client(app) as client:
            client.headers["Authorization"] = f"Bearer {KEY}"
            body = order_body(placed_at=(NOW - timedelta(days=1)).isoformat())
            assert (await client.post("/v1/orders", json=body)).status_code == 201
            attached = await client.post(
                "/v1/orders/A-1001/shipments",
                json={"carrier": "simulated", "tracking_number": number},
            )
            assert attached.status_code == 201, attached.text
            scans = {"results": [json.loads(track_one(number, NOW, 1440.0))]}
            pushed = await client.post(
                "/v1/carriers/simulated/events",
                json=scans,
                headers={"X-Push-Secret": "push-secret"},
            )
            assert pushed.status_code == 200, pushed.text
            report = await mail_jobs.mailer_for(app.state.services).run_once()
            listed = await client.get("/v1/orders/A-1001/notifications")
    finally:
        await server.stop()
    assert report.sent == 1
    [got] = drop.received
    assert got.to == (EMAIL,)
    assert got.subject == "Acme: your order A-1001 has shipped" and got.language == "en"
    assert [(i["kind"], i["status"]) for i in listed.json()["items"]] == [("shipped", "sent")]
    assert EMAIL not in listed.text
    outbox = await rows(database_url, "SELECT payload FROM outbox_events")
    assert outbox and all(EMAIL not in json.dumps(r["payload"]) for r in outbox)
    stored = await rows(database_url, "SELECT payload, last_error, subject FROM notifications")
    assert EMAIL not in json.dumps(stored, default=str)
