"""The promise ledger at registration: the instant, level and predictive distribution of the
model's promise, and the destination's zone, stored with every order (pure, then both
backends)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from history_helpers import sp_history
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.db import unit_of_work
from tracking_service.estimator.estimate import Estimator
from tracking_service.estimator.history import LaneQuery, PromiseOutcome, RecalibrationConfig
from tracking_service.estimator.option_history import OptionHistories, build_option_histories
from tracking_service.estimator.rules import load_rules
from tracking_service.settings import bundled_rules_path
from tracking_service.tracking.registration import (
    CDF_DIGITS,
    DestinationInput,
    ItemInput,
    OrderInput,
    PromiseInput,
    create_order,
    plan_order,
    stored_distribution,
)

SP = ZoneInfo("America/Sao_Paulo")
BR = Estimator(load_rules(bundled_rules_path("br_shop.toml")))
US = Estimator(load_rules(bundled_rules_path("us_shop.toml")))
PLACED = datetime(2024, 10, 29, 10, tzinfo=SP)  # a Tuesday, after the history's last order
QUERY = LaneQuery("BR", "SP", "03178-200", "BR", "RJ", "20040-020", origin_id="sp-mooca")


# the 300 late promises below all count and speak loudly (the default shrinks a few hundred
# promises toward the asked level)
LOUD = RecalibrationConfig(window_days=35, prior_promises=100)


def history(promises: tuple[PromiseOutcome, ...] = ()) -> OptionHistories:
    return build_option_histories(
        BR.rules,
        sp_history(),
        now=PLACED.astimezone(UTC),
        warm_up=False,
        promises=promises,
        recalibration=LOUD,
    )


HISTORY = history()


def rio(order_id: str = "B-1", **changes: object) -> OrderInput:
    values: dict[str, object] = {
        "order_id": order_id,
        "placed_at": PLACED,
        "destination": DestinationInput("BR", "20040-020"),
        "option": "standard",
    }
    values.update(changes)
    return OrderInput(**values)  # type: ignore[arg-type]


def first_day_at(start: date, cdf: tuple[float, ...], level: float) -> date:
    """The first day the distribution reaches `level`: the window's latest at that level."""
    k = next(k for k, p in enumerate(cdf) if p >= level - 1e-12)
    return start + timedelta(days=k)


# --- pure -------------------------------------------------------------------------------------


def test_a_rules_promise_has_the_instant_and_zone_but_no_model() -> None:
    ledger = plan_order(US, None, rio(destination=DestinationInput("US", "10001"))).ledger
    placed = datetime(2024, 11, 25, 20, tzinfo=UTC)
    ny = plan_order(
        US, HISTORY, rio(placed_at=placed, destination=DestinationInput("US", "10001"))
    ).ledger
    assert (ledger.made_at, ledger.level, ledger.distribution) == (PLACED, None, None)
    assert ledger.dest_tz == ny.dest_tz == "America/New_York"
    assert (ny.level, ny.distribution) == (None, None)  # no model for the US options


def test_a_history_promise_stores_the_models_distribution_and_level() -> None:
    planned = plan_order(BR, HISTORY, rio())
    promise, ledger = planned.promise, planned.ledger
    assert promise.basis == "history"
    assert (ledger.made_at, ledger.dest_tz) == (PLACED, "America/Sao_Paulo")
    assert ledger.level == HISTORY.level("standard", 0.85)
    found = HISTORY.promise_distribution("standard", "southeast", QUERY, PLACED.date())
    assert found is not None
    start, cdf = found
    assert ledger.distribution == stored_distribution(start, cdf)
    stored = ledger.distribution
    assert stored is not None
    probabilities = stored["cdf"]
    assert probabilities == sorted(probabilities) and probabilities[-1] == 1.0
    assert all(round(p, CDF_DIGITS) == p for p in probabilities)
    # the distribution is the one the window was read from: it reaches the level on `latest`
    assert first_day_at(start, cdf, ledger.level) == promise.latest


def test_items_ready_later_move_the_distribution_as_they_move_the_window() -> None:
    ready = date(2024, 11, 11)
    planned = plan_order(BR, HISTORY, rio(items=(ItemInput("PRE-1", 1, None, ready),)))
    now = plan_order(BR, HISTORY, rio()).ledger.distribution
    assert planned.promise.basis == "history" and planned.ledger.level is not None
    stored = planned.ledger.distribution
    assert stored is not None and now is not None
    start = date.fromisoformat(stored["start"])
    assert start > date.fromisoformat(now["start"]) and start >= ready
    found = HISTORY.promise_distribution("standard", "southeast", QUERY, ready)
    assert found is not None and stored == stored_distribution(*found)
    assert first_day_at(*found, planned.ledger.level) == planned.promise.latest


def test_a_shops_own_promise_keeps_the_models_distribution_and_no_level() -> None:
    given = PromiseInput(date(2024, 11, 4), date(2024, 11, 8))
    planned = plan_order(BR, HISTORY, rio(promise=given))
    assert planned.promise.basis == "given"
    assert planned.ledger.level is None
    assert planned.ledger.distribution == plan_order(BR, HISTORY, rio()).ledger.distribution


def test_the_level_stored_is_the_recalibrated_one() -> None:
    """Many recent promises all delivered late: the option reads a higher level for 0.85, and
    the order stores that level, with a later latest date than without them."""
    found = HISTORY.promise_distribution("standard", "southeast", QUERY, PLACED.date())
    assert found is not None
    start, cdf = found
    late = start + timedelta(days=len(cdf) + 3)
    promises = tuple(
        PromiseOutcome(
            made_at=PLACED.astimezone(UTC) - timedelta(days=20, hours=i),
            start=start - timedelta(days=20),
            cdf=cdf,
            delivered_on=late - timedelta(days=20),
            dest_tz="America/Sao_Paulo",
            option="standard",
        )
        for i in range(300)
    )
    recalibrated = history(promises)
    planned = plan_order(BR, recalibrated, rio())
    assert planned.ledger.level == recalibrated.level("standard", 0.85)
    assert planned.ledger.level is not None and planned.ledger.level > 0.85 + 0.05
    assert planned.promise.latest >= plan_order(BR, HISTORY, rio()).promise.latest
    # the distribution is the model's own, before the level is picked from it
    assert planned.ledger.distribution == plan_order(BR, HISTORY, rio()).ledger.distribution


# --- stored (both backends) -------------------------------------------------------------------


@pytest.mark.parametrize("given", [False, True])
async def test_registration_stores_the_ledger_columns(engine: AsyncEngine, given: bool) -> None:
    request = rio(promise=PromiseInput(date(2024, 11, 4), date(2024, 11, 8)) if given else None)
    expected = plan_order(BR, HISTORY, request).ledger
    async with unit_of_work(engine) as session:
        registered = await create_order(
            session, request, estimator=BR, history=HISTORY, now=PLACED + timedelta(minutes=3)
        )
    async with unit_of_work(engine) as session:
        again = await create_order(
            session, request, estimator=BR, history=HISTORY, now=PLACED + timedelta(hours=1)
        )
    order = again.order
    assert registered.created and not again.created
    assert order.promise_made_at == PLACED
    assert order.dest_tz == "America/Sao_Paulo"
    assert order.promise_level == expected.level
    assert (order.promise_level is None) == given
    assert order.promise_distribution == expected.distribution
    assert order.promise_distribution is not None
