"""The orders routes over HTTP, on SQLite and PostgreSQL: register (promise given or computed,
idempotent by order id and by Idempotency-Key), read, list by cursor, cancel, bad input."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta

import pytest

from tracking_service.clock import FixedClock

from .orders_helpers import (
    NOW,
    UPS,
    UPS_2,
    assert_problem,
    back_office,
    execute,
    order_body,
    rows,
    set_shipment,
)


async def test_an_order_without_promise_gets_the_estimators(database_url: str) -> None:
    async with back_office(database_url) as client:
        response = await client.post("/v1/orders", json=order_body())
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["order_id"] == "A-1001"
    assert order["status"] == "processing"
    assert order["shipments"] == []
    assert order["placed_at"] == "2024-11-25T20:30:00Z"
    assert order["origin"] == "nyc-queens"
    # The destination as the estimator resolved it: the state derived from the ZIP code.
    assert order["destination"] == {
        "country": "US",
        "postal_code": "10001",
        "subdivision": "NY",
        "city": "New York",
    }
    promise = order["promise"]
    # What POST /v1/estimates answers for the same order at the same instant.
    assert (promise["earliest"], promise["latest"]) == ("2024-11-27", "2024-11-30")
    assert promise["basis"] == "rules"
    assert promise["confidence"] == 0.85
    assert promise["ship_date"] == "2024-11-26"
    assert promise["zone"] == "northeast"
    assert promise["explanation"]
    stored = await rows(database_url, "SELECT promise_basis, promise_detail FROM orders")
    assert stored[0]["promise_basis"] == "rules"


async def test_the_computed_promise_matches_the_estimate_route(database_url: str) -> None:
    async with back_office(database_url) as client:
        estimate = await client.post(
            "/v1/estimates",
            json={
                "destination": {"country": "US", "postal_code": "94105"},
                "order_time": "2024-11-25T15:30:00-05:00",
                "options": ["economy"],
            },
        )
        order = await client.post(
            "/v1/orders",
            json=order_body(
                destination={"country": "US", "postal_code": "94105"}, option="economy"
            ),
        )
    assert order.status_code == 201, order.text
    window = estimate.json()["estimates"][0]
    promise = order.json()["promise"]
    assert (promise["earliest"], promise["latest"]) == (window["earliest"], window["latest"])
    assert promise["ship_date"] == window["ship_date"]


async def test_a_given_promise_is_stored_as_given(database_url: str) -> None:
    async with back_office(database_url) as client:
        default_level = await client.post(
            "/v1/orders",
            json=order_body("A-1", promise={"earliest": "2024-11-28", "latest": "2024-12-02"}),
        )
        stated = await client.post(
            "/v1/orders",
            json=order_body(
                "A-2",
                promise={"earliest": "2024-11-28", "latest": "2024-12-02", "confidence": 0.95},
            ),
        )
    assert default_level.status_code == 201, default_level.text
    promise = default_level.json()["promise"]
    assert (promise["earliest"], promise["latest"], promise["basis"]) == (
        "2024-11-28",
        "2024-12-02",
        "given",
    )
    assert promise["confidence"] == 0.85  # the option's configured level
    assert stated.json()["promise"]["confidence"] == 0.95


async def test_the_same_order_again_answers_the_stored_one(database_url: str) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock) as client:
        first = await client.post("/v1/orders", json=order_body())
        clock.advance(timedelta(hours=1))
        # Same values, written differently: another offset for the same instant, keys reordered.
        again_body = order_body(placed_at="2024-11-25T20:30:00Z")
        again = await client.post("/v1/orders", json=dict(reversed(list(again_body.items()))))
    assert first.status_code == 201
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert len(await rows(database_url, "SELECT id FROM orders")) == 1


async def test_the_same_order_id_with_other_values_is_a_conflict(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        other = await client.post(
            "/v1/orders",
            json=order_body(
                destination={"country": "US", "postal_code": "10002"},
                promise={"earliest": "2024-11-28", "latest": "2024-12-02"},
            ),
        )
    assert_problem(other, 409)
    detail = other.json()["detail"]
    assert "A-1001" in detail
    assert "destination.postal_code" in detail and "promise" in detail
    assert "destination.city" in detail


async def test_idempotency_key_replays_the_first_answer(database_url: str) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock) as client:
        headers = {"Idempotency-Key": "3f1c-retry-me"}
        first = await client.post("/v1/orders", json=order_body(), headers=headers)
        clock.advance(timedelta(minutes=5))
        await client.post(
            "/v1/orders/A-1001/shipments", json={"carrier": "ups", "tracking_number": UPS}
        )
        again = await client.post("/v1/orders", json=order_body(), headers=headers)
        other = await client.post("/v1/orders", json=order_body("A-2"), headers=headers)
        fresh_key = await client.post(
            "/v1/orders", json=order_body(), headers={"Idempotency-Key": "another"}
        )
    assert first.status_code == 201
    # The first answer, status and body, although the order has changed since.
    assert again.status_code == 201
    assert again.json() == first.json()
    assert_problem(other, 409)
    assert "Idempotency-Key" in other.json()["detail"]
    # The stored first answer keeps no personal data: it lives on the order only.
    records = await rows(database_url, "SELECT response_body FROM idempotency_keys")
    assert len(records) == 2  # the two keys used
    assert "ada@example.com" not in str(records) and "Engine Way" not in str(records)
    # No key reused: the order id alone answers, with the order as it is now.
    assert fresh_key.status_code == 200
    assert fresh_key.json()["status"] == "pending"
    assert [r["order_id"] for r in await rows(database_url, "SELECT order_id FROM orders")] == [
        "A-1001"
    ]


async def test_a_refused_request_is_not_remembered(database_url: str) -> None:
    async with back_office(database_url) as client:
        headers = {"Idempotency-Key": "k-1"}
        refused = await client.post(
            "/v1/orders", json=order_body(option="teleport"), headers=headers
        )
        corrected = await client.post("/v1/orders", json=order_body(), headers=headers)
    assert_problem(refused, 422, "body.option")
    assert corrected.status_code == 201


@pytest.mark.parametrize("key", ["same-key", None])
async def test_racing_identical_posts_make_one_order(database_url: str, key: str | None) -> None:
    headers = {"Idempotency-Key": key} if key else {}
    async with back_office(database_url) as client:
        answers = await asyncio.gather(
            *(client.post("/v1/orders", json=order_body(), headers=headers) for _ in range(4))
        )
    statuses = sorted(a.status_code for a in answers)
    if key:  # every retry answers the first answer
        assert statuses == [201] * 4, [a.text for a in answers]
    else:  # one made it, the others found it
        assert statuses == [200, 200, 200, 201], [a.text for a in answers]
    assert len({a.json()["created_at"] for a in answers}) == 1
    assert len(await rows(database_url, "SELECT id FROM orders")) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"order_id": "a/b"}, "body.order_id"),
        ({"order_id": ""}, "body.order_id"),
        ({"placed_at": "2024-11-25T15:30:00"}, "body.placed_at"),
        ({"placed_at": 1732566600}, "body.placed_at"),
        ({"placed_at": "1890-01-01T00:00:00Z"}, "body.placed_at"),
        ({"option": "teleport"}, "body.option"),
        ({"origin": "mars"}, "body.origin"),
        ({"destination": {"country": "ZZ", "postal_code": "1"}}, "body.destination.country"),
        (
            {"destination": {"country": "US", "postal_code": "ABCDE"}},
            "body.destination.postal_code",
        ),
        ({"destination": {"country": "US"}}, "body.destination.postal_code"),
        ({"promise": {"earliest": "2024-12-02", "latest": "2024-11-28"}}, "body.promise.earliest"),
        ({"promise": {"earliest": "2024-11-28", "latest": "2026-12-02"}}, "body.promise.latest"),
        ({"promise": {"earliest": "2024-11-28"}}, "body.promise.latest"),
        (
            {"promise": {"earliest": "2024-11-28", "latest": "2024-12-02", "confidence": 0}},
            "body.promise.confidence",
        ),
        ({"customer": {"email": "not-an-email"}}, "body.customer.email"),
        ({"customer": {"email": "ada@localhost"}}, "body.customer.email"),
        ({"customer": {"email": "ada.@example.com"}}, "body.customer.email"),
        ({"customer": {"email": "ada@example..com"}}, "body.customer.email"),
        ({"customer": {"email": "ada@-example.com"}}, "body.customer.email"),
        ({"customer": {"email": "ada@192.168.0.1"}}, "body.customer.email"),
        ({"customer": {"email": "Ada <ada@example.com>"}}, "body.customer.email"),
        ({"items": [{"sku": "X", "quantity": 0}]}, "body.items.0.quantity"),
        ({"locale": "english please"}, "body.locale"),
        ({"locale": "fr"}, "body.locale"),
        ({"locale": "en-US"}, "body.locale"),
        ({"surprise": True}, "body.surprise"),
    ],
)
async def test_bad_orders_are_422_naming_the_field(
    database_url: str, change: dict[str, object], field: str
) -> None:
    async with back_office(database_url) as client:
        response = await client.post("/v1/orders", json=order_body(**change))
    assert_problem(response, 422, field)
    assert await rows(database_url, "SELECT id FROM orders") == []


async def test_the_locale_is_one_the_email_speaks_and_stored_in_its_spelling(
    database_url: str,
) -> None:
    async with back_office(database_url) as client:
        spelled = await client.post("/v1/orders", json=order_body("A-1", locale="pt-br"))
        none = await client.post("/v1/orders", json=order_body("A-2"))
        again = await client.post("/v1/orders", json=order_body("A-1", locale="pt-br"))
        unsupported = await client.post("/v1/orders", json=order_body("A-3", locale="de"))
    assert spelled.status_code == 201 and spelled.json()["locale"] == "pt-BR"
    assert again.status_code == 200  # the same order sent again
    # none given: the order keeps none; its email is written in TRACKING_DEFAULT_LOCALE
    assert none.status_code == 201 and none.json()["locale"] is None
    assert_problem(unsupported, 422, "body.locale")
    assert "supported: en, pt-BR" in unsupported.json()["detail"]


@pytest.mark.parametrize(
    "email",
    [
        "ada@example.com",
        "ada.lovelace+orders@mail.example.co.uk",
        "o'brien@example.ie",
        "joao@ação.com.br",
    ],
)
async def test_plain_addresses_are_taken_as_given(database_url: str, email: str) -> None:
    async with back_office(database_url) as client:
        response = await client.post(
            "/v1/orders", json=order_body(customer={"name": "Ada", "email": email})
        )
    assert response.status_code == 201, response.text
    assert response.json()["customer"]["email"] == email


async def test_an_option_that_cannot_serve_the_destination_is_refused(database_url: str) -> None:
    body = order_body(destination={"country": "US", "postal_code": "94105"}, option="same-day")
    async with back_office(database_url) as client:
        computed = await client.post("/v1/orders", json=body)
        given = await client.post(
            "/v1/orders",
            json={**body, "promise": {"earliest": "2024-11-26", "latest": "2024-11-26"}},
        )
    for response in (computed, given):
        assert_problem(response, 422, "body.option")
        assert "does not deliver to US 94105" in response.json()["detail"]


async def test_malformed_and_unauthenticated_requests(database_url: str) -> None:
    async with back_office(database_url) as client:
        malformed = await client.post(
            "/v1/orders", content=b'{"order_id": ', headers={"Content-Type": "application/json"}
        )
        anonymous = await client.post(
            "/v1/orders", json=order_body(), headers={"Authorization": "Bearer wrong"}
        )
        long_key = await client.post(
            "/v1/orders", json=order_body(), headers={"Idempotency-Key": "k" * 256}
        )
    assert_problem(malformed, 400)
    assert_problem(anonymous, 401)
    assert_problem(long_key, 422, "header.Idempotency-Key")


async def test_get_an_order_with_its_shipments_and_events(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        shipment = (
            await client.post(
                "/v1/orders/A-1001/shipments", json={"carrier": "ups", "tracking_number": UPS}
            )
        ).json()
        # Two scans the worker stored, the newer one first.
        for key, hours, status, city in (("b", 30, "in_transit", "Newark"), ("a", 20, None, None)):
            await execute(
                database_url,
                "INSERT INTO tracking_events (shipment_id, dedupe_key, occurred_at, status, "
                "raw_code, description, city, country, source, created_at) VALUES "
                "(:sid, :key, :at, :status, 'X', :text, :city, :country, 'carrier', :at)",
                sid=shipment["id"],
                key=key,
                at=(NOW + timedelta(hours=hours)).replace(tzinfo=None),
                status=status,
                text=f"scan {key}",
                city=city,
                country="US" if city else None,
            )
        response = await client.get("/v1/orders/A-1001")
        missing = await client.get("/v1/orders/nope")
        bad_id = await client.get("/v1/orders/bad%20id")
    assert response.status_code == 200, response.text
    order = response.json()
    assert order["customer"]["email"] == "ada@example.com"
    [got] = order["shipments"]
    assert got["id"] == shipment["id"]
    assert [e["description"] for e in got["events"]] == ["scan a", "scan b"]  # oldest first
    assert got["events"][0]["status"] is None and got["events"][0]["location"] is None
    assert got["events"][1] == {
        "status": "in_transit",
        "occurred_at": "2024-11-27T02:00:00Z",
        "description": "scan b",
        "location": {"city": "Newark", "region": None, "postal_code": None, "country": "US"},
        "raw_code": "X",
        "source": "carrier",
    }
    assert_problem(missing, 404)
    assert_problem(bad_id, 422, "path.order_id")


async def test_list_orders_pages_by_cursor_oldest_change_first(database_url: str) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock) as client:
        for n in range(5):
            await client.post("/v1/orders", json=order_body(f"A-{n}"))
            clock.advance(timedelta(minutes=1))
        # A-1 changes: it moves to the end of the list.
        await client.post(
            "/v1/orders/A-1/shipments", json={"carrier": "ups", "tracking_number": UPS}
        )
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/v1/orders", params=params)).json()
            seen += [o["order_id"] for o in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert seen == ["A-0", "A-2", "A-3", "A-4", "A-1"]
    assert pages == 3


async def test_list_orders_filters(database_url: str) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock) as client:
        await client.post("/v1/orders", json=order_body("A-1"))
        await client.post("/v1/orders", json=order_body("A-2"))
        clock.advance(timedelta(hours=1))
        await client.post("/v1/orders", json=order_body("A-3"))
        s1 = (
            await client.post(
                "/v1/orders/A-1/shipments", json={"carrier": "ups", "tracking_number": UPS}
            )
        ).json()
        await client.post(
            "/v1/orders/A-2/shipments", json={"carrier": "ups", "tracking_number": UPS_2}
        )
        await client.post("/v1/orders/A-2/cancel")
        await execute(
            database_url, "UPDATE shipments SET delayed = true WHERE id = :id", id=s1["id"]
        )

        async def ids(**params: str) -> list[str]:
            response = await client.get("/v1/orders", params=params)
            assert response.status_code == 200, response.text
            return [o["order_id"] for o in response.json()["items"]]

        assert await ids(status="processing") == ["A-3"]
        assert await ids(status="cancelled") == ["A-2"]
        assert await ids(delayed="true") == ["A-1"]
        assert sorted(await ids(delayed="false")) == ["A-2", "A-3"]
        assert await ids(carrier="ups") == ["A-1"]  # A-2's parcel is cancelled
        assert await ids(carrier="fedex") == []
        since = (NOW + timedelta(minutes=30)).isoformat()
        assert sorted(await ids(updated_since=since)) == ["A-1", "A-2", "A-3"]
        assert await ids(updated_since=(NOW + timedelta(hours=2)).isoformat()) == []
        # A scan moves A-1's parcel later on: the order counts as changed since then.
        later = NOW + timedelta(hours=3)
        await set_shipment(database_url, s1["id"], updated_at=later)
        assert await ids(updated_since=later.isoformat()) == ["A-1"]
        [a1] = (await client.get("/v1/orders", params={"delayed": "true"})).json()["items"]
        assert a1["delayed"] is True


def _cursor(instant: str, row_id: int) -> str:
    """A cursor as the service writes them, with any values in it."""
    raw = json.dumps([instant, row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "query.limit"),
        ({"limit": "201"}, "query.limit"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"cursor": "WzEsMl0"}, "query.cursor"),  # base64 of [1,2]: JSON, not ours
        ({"cursor": _cursor("2024-11-25T20:00:00+00:00", 2**40)}, "query.cursor"),
        ({"cursor": _cursor("9999-12-31T23:00:00-05:00", 1)}, "query.cursor"),
        ({"cursor": _cursor("2024-11-25T20:00:00", 1)}, "query.cursor"),
        ({"cursor": "é"}, "query.cursor"),
        ({"status": "lost"}, "query.status"),
        ({"carrier": "pigeon"}, "query.carrier"),
        ({"delayed": "maybe"}, "query.delayed"),
        ({"updated_since": "2024-11-25T10:00:00"}, "query.updated_since"),
        ({"updated_since": "9999-12-31T23:00:00-05:00"}, "query.updated_since"),
    ],
)
async def test_list_orders_bad_query(database_url: str, params: dict[str, str], field: str) -> None:
    async with back_office(database_url) as client:
        response = await client.get("/v1/orders", params=params)
    assert_problem(response, 422, field)


async def test_cancel_an_order_stops_its_shipments(database_url: str) -> None:
    clock = FixedClock(NOW)
    async with back_office(database_url, clock) as client:
        await client.post("/v1/orders", json=order_body())
        for number in (UPS, UPS_2):
            await client.post(
                "/v1/orders/A-1001/shipments", json={"carrier": "ups", "tracking_number": number}
            )
        clock.advance(timedelta(hours=2))
        cancelled = await client.post("/v1/orders/A-1001/cancel")
        outbox_after_first = await rows(database_url, "SELECT * FROM outbox_events ORDER BY id")
        clock.advance(timedelta(hours=1))
        again = await client.post("/v1/orders/A-1001/cancel")
        shipment_after = await client.post(
            "/v1/orders/A-1001/shipments",
            json={"carrier": "fedex", "tracking_number": "986578788855"},
        )
        missing = await client.post("/v1/orders/nope/cancel")
    assert cancelled.status_code == 200, cancelled.text
    order = cancelled.json()
    assert order["status"] == "cancelled"
    assert order["cancelled_at"] == "2024-11-25T22:00:00Z"
    for shipment in order["shipments"]:
        assert shipment["cancelled"] is True
        assert shipment["next_poll_at"] is None
        assert [(e["source"], e["raw_code"]) for e in shipment["events"]] == [
            ("service", "cancelled")
        ]
    types = [(r["stream"], r["event_type"], r["sequence"]) for r in outbox_after_first]
    pk = (await rows(database_url, "SELECT id FROM orders"))[0]["id"]
    ids = [s["id"] for s in order["shipments"]]
    # Adding the first parcel moved the order from processing to pending (sequence 1).
    assert types == [
        (f"order:{pk}", "order.status_changed", 1),
        (f"shipment:{ids[0]}", "shipment.status_changed", 1),
        (f"shipment:{ids[1]}", "shipment.status_changed", 1),
        (f"order:{pk}", "order.status_changed", 2),
    ]
    for row in outbox_after_first:  # no personal data in what goes out
        text = str(row["payload"])
        assert "Ada" not in text and "ada@example.com" not in text and "Engine Way" not in text
    assert again.status_code == 200
    assert again.json() == order  # nothing moved
    assert len(await rows(database_url, "SELECT id FROM outbox_events")) == len(types)
    assert_problem(shipment_after, 409)
    assert_problem(missing, 404)


async def test_a_delivered_order_cannot_be_cancelled(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        await execute(database_url, "UPDATE orders SET status = 'delivered'")
        response = await client.post("/v1/orders/A-1001/cancel")
    assert_problem(response, 409)
    assert "delivered" in response.json()["detail"]


async def test_cancel_keeps_a_delivered_parcel_as_it_is(database_url: str) -> None:
    async with back_office(database_url) as client:
        await client.post("/v1/orders", json=order_body())
        for number in (UPS, UPS_2):
            await client.post(
                "/v1/orders/A-1001/shipments", json={"carrier": "ups", "tracking_number": number}
            )
        await execute(
            database_url,
            "UPDATE shipments SET status = 'delivered', next_poll_at = NULL "
            "WHERE tracking_number = :n",
            n=UPS,
        )
        await execute(database_url, "UPDATE orders SET status = 'partially_delivered'")
        response = await client.post("/v1/orders/A-1001/cancel")
    assert response.status_code == 200, response.text
    by_number = {s["tracking_number"]: s for s in response.json()["shipments"]}
    assert by_number[UPS]["cancelled"] is False and by_number[UPS]["events"] == []
    assert by_number[UPS_2]["cancelled"] is True
    assert response.json()["status"] == "cancelled"


async def test_order_routes_need_a_key(database_url: str) -> None:
    async with back_office(database_url) as client:
        del client.headers["Authorization"]
        answers = [
            await client.get("/v1/orders"),
            await client.get("/v1/orders/A-1"),
            await client.post("/v1/orders", json=order_body()),
            await client.post("/v1/orders/A-1/cancel"),
        ]
        client.headers["X-API-Key"] = "test-back-office-key"
        allowed = await client.get("/v1/orders")
    for response in answers:
        assert_problem(response, 401)
    assert allowed.status_code == 200
