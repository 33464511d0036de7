"""The shipments routes over HTTP, on SQLite and PostgreSQL: attach a tracking number (declared
carrier or auto), one number per carrier, the public token and URL, read, list, cancel."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from tracking_service.clock import FixedClock

from .orders_helpers import (
    FEDEX,
    NOW,
    UPS,
    UPS_2,
    USPS_ROUTED,
    assert_problem,
    back_office,
    execute,
    order_body,
    rows,
)

PERSONAL = ("Ada", "ada@example.com", "555 0100", "Engine Way")


async def test_attach_a_shipment(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        response = await client.post(
            "/v1/orders/A-1001/shipments",
            json={
                "carrier": "ups",
                "tracking_number": "1z5r 8939 0357 5671 27",
                "service": "Ground",
                "items": [{"sku": "MUG-01", "quantity": 1}],
            },
        )
        order = (await client.get("/v1/orders/A-1001")).json()
    assert response.status_code == 201, response.text
    shipment = response.json()
    token = shipment["tracking_token"]
    assert len(token) >= 22 and token.replace("-", "").replace("_", "").isalnum()
    assert shipment["tracking_url"] == f"https://track.example.com/t/{token}"
    assert shipment == {
        **shipment,
        "order_id": "A-1001",
        "carrier": "ups",
        "tracking_number": UPS,  # as the carrier tracks it: no spaces, upper case
        "service": "Ground",
        "status": "pending",
        "estimate": {"earliest": "2024-11-27", "latest": "2024-11-30", "source": "promise"},
        "delayed": False,
        "delay_reason": None,
        "events": [],
        "items": [{"sku": "MUG-01", "quantity": 1}],
        "next_poll_at": "2024-11-25T20:00:00Z",  # now: the worker polls it at once
        "cancelled": False,
    }
    assert not any(p in response.text for p in PERSONAL)
    assert order["status"] == "pending"
    assert order["shipments"] == [shipment]


@pytest.mark.parametrize(
    ("number", "carrier", "tracked"),
    [
        (UPS, "ups", UPS),
        (FEDEX, "fedex", FEDEX),
        (USPS_ROUTED, "usps", "9400111206206406260787"),
        ("3318810025", "dhl", "3318810025"),
        ("RB123456785GB", "usps", "RB123456785GB"),
        ("SIM01732492800000011", "simulated", "SIM01732492800000011"),
    ],
)
async def test_auto_detects_the_carrier(
    database_url: str, number: str, carrier: str, tracked: str
) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        response = await client.post(
            "/v1/orders/A-1001/shipments", json={"carrier": "auto", "tracking_number": number}
        )
    assert response.status_code == 201, response.text
    assert (response.json()["carrier"], response.json()["tracking_number"]) == (carrier, tracked)


async def test_a_declared_carrier_drops_the_usps_routing_prefix(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        response = await client.post(
            "/v1/orders/A-1001/shipments", json={"carrier": "usps", "tracking_number": USPS_ROUTED}
        )
    assert response.json()["tracking_number"] == "9400111206206406260787"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"carrier": "auto", "tracking_number": "HELLO"}, "body.tracking_number"),
        ({"carrier": "ups", "tracking_number": "1Z5R89390357567128"}, "body.tracking_number"),
        (
            {"carrier": "simulated", "tracking_number": "SIM01732492800000012"},
            "body.tracking_number",
        ),
        ({"carrier": "ups", "tracking_number": " - "}, "body.tracking_number"),
        ({"carrier": "pigeon", "tracking_number": UPS}, "body.carrier"),
        ({"tracking_number": UPS}, "body.carrier"),
        ({"carrier": "ups"}, "body.tracking_number"),
        ({"carrier": "ups", "tracking_number": "1" * 65}, "body.tracking_number"),
        ({"carrier": "ups", "tracking_number": UPS, "items": [{"sku": ""}]}, "body.items.0.sku"),
        ({"carrier": "ups", "tracking_number": UPS, "extra": 1}, "body.extra"),
    ],
)
async def test_bad_shipments_are_422(
    database_url: str, body: dict[str, object], field: str
) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        response = await client.post("/v1/orders/A-1001/shipments", json=body)
    assert_problem(response, 422, field)
    assert await rows(database_url, "SELECT id FROM shipments") == []


async def test_one_tracking_number_is_one_shipment(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body("A-1"))
        await client.post("/v1/orders", json=order_body("A-2"))
        first = await client.post(
            "/v1/orders/A-1/shipments", json={"carrier": "ups", "tracking_number": UPS}
        )
        same = await client.post(
            "/v1/orders/A-1/shipments", json={"carrier": "auto", "tracking_number": UPS.lower()}
        )
        changed = await client.post(
            "/v1/orders/A-1/shipments",
            json={"carrier": "ups", "tracking_number": UPS, "service": "Air"},
        )
        taken = await client.post(
            "/v1/orders/A-2/shipments", json={"carrier": "ups", "tracking_number": UPS}
        )
        # Another carrier's number that happens to read the same is another parcel.
        other_carrier = await client.post(
            "/v1/orders/A-2/shipments", json={"carrier": "fedex", "tracking_number": UPS}
        )
    assert first.status_code == 201
    assert same.status_code == 200 and same.json() == first.json()
    assert_problem(changed, 409)
    assert_problem(taken, 409)
    assert "already belongs to order 'A-1'" in taken.json()["detail"]
    assert other_carrier.status_code == 201, other_carrier.text


async def test_two_orders_racing_for_one_number(database_url: str) -> None:
    async with back_office(database_url) as client:
        for order_id in ("A-1", "A-2", "A-3"):
            await client.post("/v1/orders", json=order_body(order_id))
        answers = await asyncio.gather(
            *(
                client.post(
                    f"/v1/orders/{order_id}/shipments",
                    json={"carrier": "ups", "tracking_number": UPS},
                )
                for order_id in ("A-1", "A-2", "A-3")
            )
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409], [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 201).json()["order_id"]
    for loser in (a for a in answers if a.status_code == 409):
        assert f"already belongs to order {winner!r}" in loser.json()["detail"]
    assert len(await rows(database_url, "SELECT id FROM shipments")) == 1


async def test_parcels_of_one_order_racing_keep_its_outbox_in_sequence(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        answers = await asyncio.gather(
            *(
                client.post(
                    "/v1/orders/A-1001/shipments", json={"carrier": "auto", "tracking_number": n}
                )
                for n in (UPS, UPS_2, FEDEX)
            )
        )
        order = (await client.get("/v1/orders/A-1001")).json()
    assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
    assert len(order["shipments"]) == 3
    outbox = await rows(database_url, "SELECT stream, sequence, event_type FROM outbox_events")
    assert [(r["sequence"], r["event_type"]) for r in outbox] == [(1, "order.status_changed")]


async def test_post_shipments_with_an_order_reference(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        created = await client.post(
            "/v1/shipments", json={"order_id": "A-1001", "carrier": "auto", "tracking_number": UPS}
        )
        again = await client.post(
            "/v1/shipments", json={"order_id": "A-1001", "carrier": "ups", "tracking_number": UPS}
        )
        unknown = await client.post(
            "/v1/shipments", json={"order_id": "nope", "carrier": "ups", "tracking_number": UPS_2}
        )
        no_order = await client.post(
            "/v1/shipments", json={"carrier": "ups", "tracking_number": UPS_2}
        )
        unknown_path = await client.post(
            "/v1/orders/nope/shipments", json={"carrier": "ups", "tracking_number": UPS_2}
        )
    assert created.status_code == 201, created.text
    assert created.json()["order_id"] == "A-1001"
    assert again.status_code == 200 and again.json() == created.json()
    assert_problem(unknown, 422, "body.order_id")
    assert_problem(no_order, 422, "body.order_id")
    assert_problem(unknown_path, 404)


async def test_idempotency_key_on_shipments(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        headers = {"Idempotency-Key": "ship-1"}
        body = {"carrier": "ups", "tracking_number": UPS}
        first = await client.post("/v1/orders/A-1001/shipments", json=body, headers=headers)
        again = await client.post("/v1/orders/A-1001/shipments", json=body, headers=headers)
        other = await client.post(
            "/v1/orders/A-1001/shipments",
            json={"carrier": "ups", "tracking_number": UPS_2},
            headers=headers,
        )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert_problem(other, 409)


async def test_get_and_list_shipments(database_url: str) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock) as client:
        await client.post("/v1/orders", json=order_body("A-1"))
        await client.post("/v1/orders", json=order_body("A-2"))
        made = []
        for order_id, carrier, number in (
            ("A-1", "ups", UPS),
            ("A-1", "fedex", FEDEX),
            ("A-2", "ups", UPS_2),
        ):
            response = await client.post(
                f"/v1/orders/{order_id}/shipments",
                json={"carrier": carrier, "tracking_number": number},
            )
            made.append(response.json())
            clock.advance(timedelta(minutes=10))
        await execute(
            database_url,
            "UPDATE shipments SET status = 'in_transit', delayed = true, "
            "delay_reason = 'stalled' WHERE id = :id",
            id=made[2]["id"],
        )
        one = await client.get(f"/v1/shipments/{made[1]['id']}")
        missing = await client.get("/v1/shipments/999999")
        zero = await client.get("/v1/shipments/0")
        huge = await client.get(f"/v1/shipments/{2**40}")

        async def numbers(**params: str | int) -> list[str]:
            response = await client.get("/v1/shipments", params=params)
            assert response.status_code == 200, response.text
            return [s["tracking_number"] for s in response.json()["items"]]

        assert await numbers() == [UPS, FEDEX, UPS_2]
        assert await numbers(carrier="ups") == [UPS, UPS_2]
        assert await numbers(status="in_transit") == [UPS_2]
        assert await numbers(delayed="true") == [UPS_2]
        assert await numbers(delayed="false") == [UPS, FEDEX]
        since = (NOW + timedelta(minutes=5)).isoformat()
        assert await numbers(updated_since=since) == [FEDEX, UPS_2]
        first_page = (await client.get("/v1/shipments", params={"limit": 2})).json()
        rest = (
            await client.get(
                "/v1/shipments", params={"limit": 2, "cursor": first_page["next_cursor"]}
            )
        ).json()
        bad_cursor = await client.get("/v1/shipments", params={"cursor": "zzz"})
        bad_status = await client.get("/v1/shipments", params={"status": "processing"})
    assert one.status_code == 200 and one.json() == made[1]
    assert_problem(missing, 404)
    assert_problem(zero, 422, "path.shipment_id")
    assert_problem(huge, 422, "path.shipment_id")
    assert [s["tracking_number"] for s in first_page["items"]] == [UPS, FEDEX]
    assert [s["tracking_number"] for s in rest["items"]] == [UPS_2]
    assert rest["next_cursor"] is None
    assert rest["items"][0]["delay_reason"] == "stalled"
    assert_problem(bad_cursor, 422, "query.cursor")
    assert_problem(bad_status, 422, "query.status")


async def test_cancel_a_shipment(database_url: str) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock) as client:
        await client.post("/v1/orders", json=order_body())
        first = (
            await client.post(
                "/v1/orders/A-1001/shipments", json={"carrier": "ups", "tracking_number": UPS}
            )
        ).json()
        second = (
            await client.post(
                "/v1/orders/A-1001/shipments", json={"carrier": "ups", "tracking_number": UPS_2}
            )
        ).json()
        await execute(
            database_url,
            "UPDATE shipments SET status = 'delivered' WHERE id = :id",
            id=second["id"],
        )
        clock.advance(timedelta(hours=3))
        cancelled = await client.post(f"/v1/shipments/{first['id']}/cancel")
        outbox = await rows(database_url, "SELECT * FROM outbox_events ORDER BY id")
        again = await client.post(f"/v1/shipments/{first['id']}/cancel")
        delivered = await client.post(f"/v1/shipments/{second['id']}/cancel")
        missing = await client.post("/v1/shipments/424242/cancel")
        order = (await client.get("/v1/orders/A-1001")).json()
    assert cancelled.status_code == 200, cancelled.text
    shipment = cancelled.json()
    assert shipment["cancelled"] is True
    assert shipment["cancelled_at"] == "2024-11-25T23:00:00Z"
    assert shipment["next_poll_at"] is None
    assert shipment["status"] == "pending"  # the carrier's last word is kept
    assert [(e["source"], e["description"]) for e in shipment["events"]] == [
        ("service", "Cancelled by the shop")
    ]
    messages = [(r["stream"], r["event_type"]) for r in outbox]
    assert (f"shipment:{first['id']}", "shipment.status_changed") in messages
    payload = next(r["payload"] for r in outbox if r["stream"] == f"shipment:{first['id']}")
    if isinstance(payload, str):  # SQLite's JSON read back as text
        payload = json.loads(payload)
    assert payload["data"]["shipment"]["cancelled"] is True
    assert payload["data"]["shipment"]["tracking_url"] == first["tracking_url"]
    assert not any(p in str(payload) for p in PERSONAL)
    # The one parcel left is delivered: so is the order.
    assert order["status"] == "delivered"
    assert again.status_code == 200 and again.json() == shipment
    assert len(await rows(database_url, "SELECT id FROM outbox_events")) == len(outbox)
    assert_problem(delivered, 409)
    assert_problem(missing, 404)


async def test_shipment_routes_need_a_key(database_url: str) -> None:
    async with back_office(database_url) as client:
        del client.headers["Authorization"]
        answers = [
            await client.get("/v1/shipments"),
            await client.get("/v1/shipments/1"),
            await client.post("/v1/shipments", json={}),
            await client.post("/v1/shipments/1/cancel"),
            await client.post("/v1/orders/A-1/shipments", json={}),
        ]
    for response in answers:
        assert_problem(response, 401)
