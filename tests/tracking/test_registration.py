"""Registration below the API: the promise (pure), tracking numbers (pure), and orders and
shipments in the database on SQLite and PostgreSQL, races included."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.db import unit_of_work
from tracking_service.errors import Conflict, InvalidInput
from tracking_service.estimator.estimate import Estimator
from tracking_service.estimator.rules import load_rules
from tracking_service.settings import bundled_rules_path
from tracking_service.tracking.registration import (
    DestinationInput,
    ItemInput,
    OrderInput,
    PromiseInput,
    RegisteredOrder,
    ShipmentInput,
    create_order,
    create_shipment,
    order_by_id,
    plan_order,
    resolve_number,
    tracking_url,
)

ESTIMATOR = Estimator(load_rules(bundled_rules_path("us_shop.toml")))
NOW = datetime(2024, 11, 25, 20, tzinfo=UTC)
PLACED = datetime(2024, 11, 25, 20, 30, tzinfo=UTC)
BASE = "http://127.0.0.1:8000"


def order(order_id: str = "A-1", **overrides: object) -> OrderInput:
    values: dict[str, object] = {
        "order_id": order_id,
        "placed_at": PLACED,
        "destination": DestinationInput("US", "10001"),
        "option": "standard",
    }
    values.update(overrides)
    return OrderInput(**values)  # type: ignore[arg-type]


# --- pure -------------------------------------------------------------------------------------


def test_plan_order_computes_the_promise_with_its_basis() -> None:
    planned = plan_order(ESTIMATOR, None, order())
    assert planned.origin == "nyc-queens"
    assert planned.destination == DestinationInput("US", "10001", "NY", None)
    promise = planned.promise
    assert (promise.earliest, promise.latest) == (date(2024, 11, 27), date(2024, 11, 30))
    assert (promise.confidence, promise.basis) == (0.85, "rules")
    assert promise.detail["ship_date"] == "2024-11-26"
    assert promise.detail["lanes"] == []


def test_items_ready_later_move_the_computed_promise() -> None:
    later = plan_order(
        ESTIMATOR, None, order(items=(ItemInput("PRE-1", 1, None, date(2024, 12, 9)),))
    )
    assert later.promise.earliest > date(2024, 12, 9)


def test_a_given_promise_keeps_its_dates_and_takes_the_options_level() -> None:
    planned = plan_order(
        ESTIMATOR, None, order(promise=PromiseInput(date(2024, 11, 28), date(2024, 12, 3)))
    )
    assert (planned.promise.earliest, planned.promise.latest) == (
        date(2024, 11, 28),
        date(2024, 12, 3),
    )
    assert (planned.promise.basis, planned.promise.confidence) == ("given", 0.85)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"option": "teleport"}, "option"),
        ({"origin": "mars"}, "origin"),
        ({"placed_at": datetime(1890, 1, 1, tzinfo=UTC)}, "placed_at"),
        ({"destination": DestinationInput("US", "94105"), "option": "same-day"}, "option"),
        ({"destination": DestinationInput("XX", "1")}, "destination.country"),
        ({"promise": PromiseInput(date(2024, 12, 3), date(2024, 11, 28))}, "promise.earliest"),
        ({"promise": PromiseInput(date(2024, 11, 20), date(2024, 11, 28))}, "promise.earliest"),
        ({"promise": PromiseInput(date(2024, 11, 28), date(2026, 1, 1))}, "promise.latest"),
    ],
)
def test_plan_order_refuses_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        plan_order(ESTIMATOR, None, order(**changes))
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("carrier", "number", "expected"),
    [
        ("auto", "1z5r 8939-0357 5671 27", ("ups", "1Z5R89390357567127")),
        ("auto", "986578788855", ("fedex", "986578788855")),
        ("auto", "420787459400111206206406260787", ("usps", "9400111206206406260787")),
        ("usps", "420787459400111206206406260787", ("usps", "9400111206206406260787")),
        ("auto", "RB123456785DE", ("dhl", "RB123456785DE")),
        ("dhl", "3318810025", ("dhl", "3318810025")),
        ("simulated", "SIM01732492800000011", ("simulated", "SIM01732492800000011")),
    ],
)
def test_resolve_number(carrier: str, number: str, expected: tuple[str, str]) -> None:
    assert resolve_number(carrier, number) == expected


@pytest.mark.parametrize(
    ("carrier", "number", "field"),
    [
        ("auto", "12345", "tracking_number"),
        ("auto", "", "tracking_number"),
        ("ups", "1Z5R89390357567128", "tracking_number"),  # wrong check digit
        ("simulated", "1Z5R89390357567127", "tracking_number"),
        ("royal-mail", "1Z5R89390357567127", "carrier"),
    ],
)
def test_resolve_number_refuses(carrier: str, number: str, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        resolve_number(carrier, number)
    assert raised.value.field == field


def test_tracking_url_ignores_a_trailing_slash() -> None:
    assert tracking_url("https://t.example.com/", "abc") == "https://t.example.com/t/abc"
    assert tracking_url("https://ex.com/shop", "abc") == "https://ex.com/shop/t/abc"


# --- in the database --------------------------------------------------------------------------


async def _register(engine: AsyncEngine, request: OrderInput) -> RegisteredOrder:
    async with unit_of_work(engine) as session:
        return await create_order(session, request, estimator=ESTIMATOR, history=None, now=NOW)


async def test_an_order_id_names_one_order(engine: AsyncEngine) -> None:
    first = await _register(engine, order())
    same = await _register(engine, order(placed_at=PLACED.astimezone()))
    assert first.created and not same.created
    assert same.order.id == first.order.id
    with pytest.raises(Conflict, match=r"option, promise"):
        await _register(
            engine,
            order(option="economy", promise=PromiseInput(date(2024, 11, 28), date(2024, 12, 3))),
        )


async def test_two_transactions_racing_for_one_order_id(engine: AsyncEngine) -> None:
    """The second insert waits for the first transaction, inserts nothing and reads the
    winner's row: one order, no error, whichever commits first."""
    async with unit_of_work(engine) as first_tx:
        first = await create_order(first_tx, order(), estimator=ESTIMATOR, history=None, now=NOW)
        second = asyncio.create_task(_register(engine, order()))
        await asyncio.sleep(0.2)  # let the second reach its insert while the first is open
    won = await second
    assert first.created and not won.created
    assert won.order.id == first.order.id


def _tokens(*values: str) -> Iterator[str]:
    yield from values


async def test_a_token_collision_takes_a_new_token(engine: AsyncEngine) -> None:
    await _register(engine, order())
    tokens = _tokens("T" * 32, "T" * 32, "U" * 32)
    async with unit_of_work(engine) as session:
        parent = await order_by_id(session, "A-1")
        one = await create_shipment(
            session,
            parent,
            ShipmentInput("ups", "1Z5R89390357567127"),
            now=NOW,
            public_base_url=BASE,
            new_token=lambda: next(tokens),
        )
        two = await create_shipment(
            session,
            parent,
            ShipmentInput("fedex", "986578788855"),
            now=NOW,
            public_base_url=BASE,
            new_token=lambda: next(tokens),
        )
    assert (one.shipment.tracking_token, two.shipment.tracking_token) == ("T" * 32, "U" * 32)
    assert two.created and two.shipment.next_poll_at == NOW


async def test_a_shipment_starts_from_the_promise(engine: AsyncEngine) -> None:
    registered = await _register(engine, order())
    async with unit_of_work(engine) as session:
        made = await create_shipment(
            session,
            registered.order,
            ShipmentInput("auto", "1Z5R89390357567127"),
            now=NOW,
            public_base_url=BASE,
        )
    s = made.shipment
    assert (s.carrier, s.status, s.estimate_source) == ("ups", "pending", "promise")
    assert (s.estimate_earliest, s.estimate_latest) == (date(2024, 11, 27), date(2024, 11, 30))
    assert len(s.tracking_token) == 32  # 24 random bytes, URL-safe
    assert made.order.status == "pending"
