"""The figures of GET /metrics: read from the database (both backends) and turned into metric
families (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from tracking_service import metrics
from tracking_service.db import unit_of_work
from tracking_service.metrics import CarrierCalls, Figures, RequestMetrics
from tracking_service.models.carriers import CarrierCall
from tracking_service.models.tracking import Order, OutboxEvent, Shipment
from tracking_service.models.webhooks import OutboxCursor, WebhookDelivery, WebhookEndpoint
from tracking_service.webhooks.fanout import CURSOR as FANOUT_CURSOR

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CARRIERS = ["ups", "dhl", "simulated"]


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_families_fill_every_known_series_and_derive_the_figures() -> None:
    figures = Figures(
        now=NOW,
        shipments_by_status={"in_transit": 3, "delivered": 5},
        delayed_by_reason={"stalled": 2},
        due=4,
        oldest_due=NOW - timedelta(seconds=90),
        carrier_calls=(
            CarrierCalls("ups", "track", "ok", 10, 250),
            CarrierCalls("ups", "track", "http_5xx", 2, 20),
            CarrierCalls("ups", "token", "auth_failed", 1, 0),
            CarrierCalls("dhl", "track", "not_found", 3, 3),
        ),
        outbox_backlog=7,
        webhooks_pending=2,
    )
    got = samples(metrics.render(RequestMetrics(), metrics.families(figures, CARRIERS)))
    assert got[("tracking_database_up", ())] == 1
    assert got[("tracking_shipments", (("status", "in_transit"),))] == 3
    assert got[("tracking_shipments", (("status", "delivered"),))] == 5
    assert got[("tracking_shipments", (("status", "pending"),))] == 0  # known, none stored
    assert got[("tracking_shipments_delayed", (("reason", "stalled"),))] == 2
    assert got[("tracking_shipments_delayed", (("reason", "promise_missed"),))] == 0
    assert got[("tracking_shipments_due", ())] == 4
    assert got[("tracking_poll_lag_seconds", ())] == 90
    assert got[("tracking_carrier_polls_total", (("carrier", "ups"),))] == 12
    assert got[("tracking_carrier_polls_total", (("carrier", "dhl"),))] == 3
    assert got[("tracking_carrier_polls_total", (("carrier", "simulated"),))] == 0
    assert got[("tracking_carrier_numbers_polled_total", (("carrier", "ups"),))] == 270
    errors = {k: v for k, v in got.items() if k[0] == "tracking_carrier_errors_total"}
    assert errors == {  # not_found is no error; a token endpoint's failure is one
        ("tracking_carrier_errors_total", (("carrier", "ups"), ("outcome", "auth_failed"))): 1,
        ("tracking_carrier_errors_total", (("carrier", "ups"), ("outcome", "http_5xx"))): 2,
    }
    assert got[("tracking_outbox_backlog", ())] == 7
    assert got[("tracking_webhook_deliveries_pending", ())] == 2


def test_no_due_shipment_is_no_lag_and_no_database_is_said() -> None:
    quiet = samples(metrics.render(RequestMetrics(), metrics.families(Figures(now=NOW), [])))
    assert quiet[("tracking_poll_lag_seconds", ())] == 0
    assert quiet[("tracking_shipments_due", ())] == 0
    down = samples(metrics.render(RequestMetrics(), metrics.families(None, CARRIERS)))
    assert down[("tracking_database_up", ())] == 0
    assert not any(name.startswith("tracking_shipments") for name, _ in down)


def test_request_latency_by_route_method_and_status() -> None:
    requests = RequestMetrics()
    requests.observe("/v1/orders/{order_id}", "GET", 200, 0.004)
    requests.observe("/v1/orders/{order_id}", "GET", 200, 0.2)
    requests.observe("unmatched", "GET", 404, 0.0001)
    got = samples(metrics.render(requests, []))
    labels = (("method", "GET"), ("route", "/v1/orders/{order_id}"), ("status", "200"))
    assert got[("tracking_http_request_duration_seconds_count", labels)] == 2
    assert got[("tracking_http_request_duration_seconds_sum", labels)] == pytest.approx(0.204)
    le_5ms = (("le", "0.005"), *labels)
    assert got[("tracking_http_request_duration_seconds_bucket", le_5ms)] == 1
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert got[("tracking_http_request_duration_seconds_count", unmatched)] == 1
    assert any(name.startswith("process_") or name.startswith("python_") for name, _ in got)


def order(n: int) -> Order:
    return Order(
        order_id=f"o{n}",
        placed_at=NOW - timedelta(days=3),
        origin="main",
        option="standard",
        dest_country="US",
        dest_postal_code="10001",
        promise_earliest=date(2026, 12, 3),
        promise_latest=date(2026, 12, 5),
        promise_confidence=0.9,
        promise_basis="given",
    )


async def test_read_figures_from_the_tables(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        orders = [order(i) for i in range(2)]
        session.add_all(orders)
        await session.flush()
        pk = orders[0].id or 0

        def shipment(n: int, status: str, **kw: object) -> Shipment:
            return Shipment(
                order_pk=pk,
                carrier="ups",
                tracking_number=f"1Z{n:08d}",
                tracking_token=f"token-{n}",
                status=status,
                **kw,  # type: ignore[arg-type]
            )

        session.add_all(
            [
                shipment(1, "in_transit", next_poll_at=NOW - timedelta(minutes=10)),
                shipment(2, "in_transit", next_poll_at=NOW - timedelta(minutes=2)),
                shipment(3, "in_transit", next_poll_at=NOW + timedelta(hours=1)),
                shipment(
                    4,
                    "exception",
                    delayed=True,
                    delay_reason="carrier_exception",
                    next_poll_at=NOW + timedelta(hours=2),
                ),
                shipment(
                    5,
                    "in_transit",
                    delayed=True,
                    delay_reason="stalled",
                    next_poll_at=NOW + timedelta(hours=2),
                ),
                # delivered late: delayed, but no longer followed
                shipment(6, "delivered", delayed=True, delay_reason="promise_missed"),
                shipment(7, "pending", next_poll_at=NOW),  # due now exactly
            ]
        )
        session.add_all(
            [
                OutboxEvent(
                    event_id=f"msg_{i:026d}",
                    event_type="shipment.status_changed",
                    stream="shipment:1",
                    sequence=i,
                    occurred_at=NOW,
                )
                for i in range(1, 4)
            ]
        )
        wall = datetime.now(UTC)
        midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)
        session.add_all(
            [
                CarrierCall(
                    carrier="ups",
                    endpoint="track",
                    outcome="ok",
                    latency_ms=50,
                    numbers=10,
                    at=wall,
                ),
                CarrierCall(
                    carrier="ups", endpoint="track", outcome="ok", latency_ms=50, numbers=5, at=wall
                ),
                CarrierCall(
                    carrier="ups",
                    endpoint="track",
                    outcome="timeout",
                    latency_ms=15000,
                    numbers=10,
                    at=midnight,
                ),
                # yesterday's call: not today's
                CarrierCall(
                    carrier="ups",
                    endpoint="track",
                    outcome="ok",
                    latency_ms=50,
                    numbers=10,
                    at=midnight - timedelta(seconds=1),
                ),
                # a carrier not configured: not read
                CarrierCall(
                    carrier="acme", endpoint="track", outcome="ok", latency_ms=5, numbers=1, at=wall
                ),
            ]
        )
    async with unit_of_work(engine) as session:
        figures = await metrics.read_figures(session, NOW, wall, CARRIERS)
    assert figures.shipments_by_status == {
        "in_transit": 4,
        "exception": 1,
        "delivered": 1,
        "pending": 1,
    }
    assert figures.delayed_by_reason == {"carrier_exception": 1, "stalled": 1}
    assert figures.due == 3
    assert figures.oldest_due == NOW - timedelta(minutes=10)
    assert figures.outbox_backlog == 3  # the fan-out has not run: every event
    assert figures.webhooks_pending == 0
    assert sorted(figures.carrier_calls, key=lambda c: c.outcome) == [
        CarrierCalls("ups", "track", "ok", 2, 15),
        CarrierCalls("ups", "track", "timeout", 1, 10),
    ]
    got = samples(metrics.render(RequestMetrics(), metrics.families(figures, CARRIERS)))
    assert got[("tracking_poll_lag_seconds", ())] == 600

    async with unit_of_work(engine) as session:  # the fan-out read the first event
        first = min((await session.exec(select(OutboxEvent.id))).all())
        endpoint = WebhookEndpoint(url="https://example.com/hook", secret="s")
        session.add_all([OutboxCursor(name=FANOUT_CURSOR, last_id=first or 0), endpoint])
        await session.flush()
        session.add_all(
            [
                WebhookDelivery(
                    endpoint_id=endpoint.id or 0,
                    outbox_id=first,
                    webhook_id="msg_1",
                    event_type="shipment.status_changed",
                    next_attempt_at=NOW if pending else None,
                    status="pending" if pending else "succeeded",
                )
                for pending in (True, False)
            ]
        )
    async with unit_of_work(engine) as session:
        later = await metrics.read_figures(session, NOW, wall, CARRIERS)
    assert (later.outbox_backlog, later.webhooks_pending) == (2, 1)


async def test_read_figures_of_an_empty_database(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        figures = await metrics.read_figures(session, NOW, NOW, CARRIERS)
    assert figures == Figures(now=NOW, day_start=NOW.replace(hour=0))
