"""The `make run` demo's webhook receiver: its lines, its verification (which agrees with the
reference `standardwebhooks` package), its subscription (only under settings that allow it,
one endpoint however often the demo restarts) and alerts the dispatcher sends it."""

from __future__ import annotations

import io
import socket
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from tracking_service.clock import FixedClock
from tracking_service.db import unit_of_work
from tracking_service.demo import demo
from tracking_service.services import open_services
from tracking_service.settings import Settings
from tracking_service.webhooks import endpoints, signing
from tracking_service.webhooks.config import WebhookConfig
from tracking_service.webhooks.demo_receiver import DESCRIPTION, demo_receiver, describe

from .core_helpers import EP, T0, add_events, dispatcher, rows

LOOPBACK = WebhookConfig(allow_http=True, allow_hosts=("127.0.0.1",))


def delayed(**shipment: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": 7,
        "carrier": "simulated",
        "tracking_number": "SIM11796032282660641",
        "status": "in_transit",
        "estimate": {"earliest": "2026-12-10", "latest": "2026-12-11"},
        "delayed": True,
        "delay_reason": "late_estimate",
    }
    base.update(shipment)
    return {
        "type": "shipment.delayed",
        "timestamp": "2026-12-08T10:00:00Z",
        "data": {"shipment": base, "order": {"order_id": "DEMO-1003", "status": "in_transit"}},
    }


# --- lines --------------------------------------------------------------------------------------


def test_a_delay_reads_as_a_sentence() -> None:
    assert describe(delayed()) == (
        "webhook shipment.delayed: simulated SIM11796032282660641 (order DEMO-1003) is running "
        "late (late_estimate): estimated Thu 10 Dec - Fri 11 Dec"
    )
    promised = delayed(
        estimate={"earliest": "2026-12-11", "latest": "2026-12-11"},
        promise={"earliest": "2026-12-08", "latest": "2026-12-09"},
    )
    assert describe(promised).endswith("estimated Fri 11 Dec, 2 days after the promised Wed 09 Dec")


def test_a_delay_prints_the_payloads_sentence() -> None:
    note = (
        "Estimated Thu 11 Dec, 2 days after the promised Tue 9 Dec: "
        "no scan since Fri 5 Dec at the Campinas hub"
    )
    assert describe(delayed(delay_reason="stalled", delay_note=note)) == (
        "webhook shipment.delayed: simulated SIM11796032282660641 (order DEMO-1003) is running "
        f"late (stalled): {note}"
    )


def test_a_status_change_says_what_it_moved_from() -> None:
    moved = delayed(status="out_for_delivery", previous_status="in_transit", delayed=False)
    moved["type"] = "shipment.status_changed"
    assert describe(moved).endswith(
        "(order DEMO-1003) is out for delivery (was in transit), estimated Thu 10 Dec - Fri 11 Dec"
    )


def test_other_events_read_too() -> None:
    moved = delayed(status="out_for_delivery", delayed=False)
    moved["type"] = "shipment.status_changed"
    assert describe(moved).endswith(
        "(order DEMO-1003) is out for delivery, estimated Thu 10 Dec - Fri 11 Dec"
    )
    moved["data"]["shipment"]["status"] = "delivered"  # type: ignore[index]
    assert describe(moved).endswith("(order DEMO-1003) was delivered")
    order = {
        "type": "order.status_changed",
        "data": {"order": {"order_id": "A", "status": "delivered"}},
    }
    assert describe(order) == "webhook order.status_changed: order A is now delivered"
    ping = {"type": "ping", "data": {"endpoint_id": 3}}
    assert describe(ping) == "webhook ping: test ping for endpoint 3"
    gone = {
        "type": "webhook_endpoint.disabled",
        "data": {"endpoint": {"id": 2, "url": "u", "reason": "410"}},
    }
    assert "endpoint 2 (u) disabled: 410" in describe(gone)


# --- verification -------------------------------------------------------------------------------


def reference_headers(secret: str, msg_id: str, body: bytes, at: datetime) -> dict[str, str]:
    signed = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signed,
    }


def test_verify_accepts_what_the_reference_library_signs_and_refuses_the_rest() -> None:
    secret, other = signing.new_secret(), signing.new_secret()
    now = datetime.now(UTC).replace(microsecond=0)
    body = b'{"type":"ping"}'
    headers = reference_headers(secret, "msg_1", body, now)
    signing.verify([secret], headers, body, now=int(now.timestamp()))
    signing.verify([other, secret], headers, body, now=int(now.timestamp()))  # either secret
    with pytest.raises(signing.SignatureError, match="no signature"):
        signing.verify([other], headers, body, now=int(now.timestamp()))
    with pytest.raises(signing.SignatureError, match="no signature"):
        signing.verify([secret], headers, body + b" ", now=int(now.timestamp()))
    with pytest.raises(signing.SignatureError, match="from now"):
        signing.verify([secret], headers, body, now=int(now.timestamp()) + 301)
    with pytest.raises(signing.SignatureError, match="missing"):
        signing.verify([secret], {"webhook-id": "msg_1"}, body, now=int(now.timestamp()))
    # and the reference library verifies what ours signs, both secrets of a rotation
    ours = signing.headers("msg_2", int(now.timestamp()), body, [secret, other])
    for s in (secret, other):
        Webhook(s).verify(body, ours)
        signing.verify([s], ours, body, now=int(now.timestamp()))


# --- the subscription ---------------------------------------------------------------------------


async def test_no_receiver_unless_the_settings_allow_a_loopback_http_url(
    engine: AsyncEngine,
) -> None:
    for strict in (WebhookConfig(), WebhookConfig(allow_http=True)):
        async with demo_receiver(engine, strict, T0, io.StringIO()) as receiver:
            assert receiver is None
    async with demo_receiver(
        engine, WebhookConfig(allow_http=True, allow_hosts=("10.0.0.0/8",)), T0, io.StringIO()
    ) as receiver:
        assert receiver is None  # the URL guard refuses 127.0.0.1 here
    assert await rows(engine, EP) == []


async def test_one_endpoint_however_often_the_demo_starts(engine: AsyncEngine) -> None:
    async with demo_receiver(engine, LOOPBACK, T0, io.StringIO()) as first:
        assert first is not None
        first_url = first.url
    async with demo_receiver(engine, LOOPBACK, T0 + timedelta(hours=1), io.StringIO()) as again:
        assert again is not None
        [endpoint] = await rows(engine, EP)
        assert endpoint["url"] == again.url != first_url
        assert endpoint["description"] == DESCRIPTION and endpoint["enabled"] is True
        assert endpoint["event_types"] is None  # every event type
    [after] = await rows(engine, EP)
    assert after["secret"] == endpoint["secret"]


async def test_a_disabled_demo_endpoint_is_enabled_again_on_restart(engine: AsyncEngine) -> None:
    async with demo_receiver(engine, LOOPBACK, T0, io.StringIO()) as receiver:
        assert receiver is not None
    [endpoint] = await rows(engine, EP)
    async with unit_of_work(engine) as session:
        changes = endpoints.EndpointChanges(given=frozenset({"enabled"}), enabled=False)
        await endpoints.update_endpoint(session, endpoint["id"], changes, config=LOOPBACK, now=T0)
    async with demo_receiver(engine, LOOPBACK, T0, io.StringIO()):
        [again] = await rows(engine, EP)
    assert again["enabled"] is True and again["disabled_reason"] is None


# --- alerts arriving ----------------------------------------------------------------------------


async def test_alerts_the_dispatcher_sends_are_verified_and_printed(engine: AsyncEngine) -> None:
    out = io.StringIO()
    clock = FixedClock(T0)
    async with demo_receiver(engine, LOOPBACK, T0, out) as receiver:
        assert receiver is not None
        await add_events(engine, "shipment:1", ["shipment.status_changed", "shipment.delayed"])
        d = dispatcher(engine, clock)
        try:
            await d.fanout_pass()
            report = await d.dispatch_pass()
            # a rotation: the receiver reads the new secret again and still verifies
            [endpoint] = await rows(engine, EP)
            async with unit_of_work(engine) as session:
                await endpoints.rotate_secret(
                    session, endpoint["id"], overlap=timedelta(0), now=clock.now()
                )
            await add_events(engine, "shipment:1", ["shipment.delivered"])
            await d.fanout_pass()
            rotated = await d.dispatch_pass()
        finally:
            await d.close()
        # a forged alert is refused and said so
        async with httpx.AsyncClient() as client:
            forged = signing.headers("msg_forged", int(time.time()), b"{}", [signing.new_secret()])
            answer = await client.post(receiver.url, content=b"{}", headers=forged)
    assert (report.succeeded, rotated.succeeded) == (2, 1)
    assert answer.status_code == 401 and receiver.refused == 1
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("webhook shipment.status_changed: ")
    assert lines[1].startswith("webhook shipment.delayed: ")
    assert lines[2].startswith("webhook shipment.delivered: ")
    assert all("[signature ok, msg_shipment_1_" in line for line in lines[:3])
    assert lines[3].startswith("webhook REFUSED (signature not verified")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_demo_subscribes_its_receiver_once_and_says_where(database_url: str) -> None:
    settings = Settings(
        database_url=database_url,
        demo=True,
        simulated_base_url=f"http://127.0.0.1:{free_port()}",
        history_refresh_seconds=0,
        webhook_allow_http=True,
        webhook_allow_hosts=["127.0.0.1"],
    )
    clock = FixedClock(datetime(2026, 11, 24, 15, 30, tzinfo=UTC))
    banners = []
    for _ in range(2):
        out = io.StringIO()
        async with open_services(settings, run_jobs=False, clock=clock) as services:
            async with demo(services, out=out):
                pass
            async with services.engine.connect():
                found = await rows(services.engine, EP)
        banners.append(out.getvalue())
        assert len(found) == 1 and found[0]["description"] == DESCRIPTION
    for text in banners:
        assert "webhook receiver (inside this process" in text
        assert "/v1/webhook-endpoints" in text
