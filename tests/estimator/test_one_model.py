"""One model: the service's build and the backtest's replay state the same window for the same
information at the same instant.

The service (`build_option_histories`) is given, at an order's instant, the delivered records
and the parcels in flight then (orders not handed over, hand-offs not delivered), under rules
that make an Olist-like file one option in one zone. The replay (`backtest.replay`) learns the
same parcels as time goes by, with the option's calendars and the zone's prior. Both learn
through `ModelFeed` and read the drift measured at the start of the UTC day; with the drift
on (and changing: deliveries slow down in the evaluated weeks), every window must agree, in
both input modes (`in-flight`, and `delivered`: records only, the model as of its newest
delivery).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from history_helpers import SP, delivery

from tracking_service.estimator.backtest import (
    DELIVERED,
    IN_FLIGHT,
    BacktestConfig,
    BacktestResult,
    replay,
)
from tracking_service.estimator.history import (
    HistoryConfig,
    LaneHistory,
    LaneQuery,
    RulesPrior,
)
from tracking_service.estimator.history.feed import ModelFeed, day_start
from tracking_service.estimator.option_history import (
    OptionHistories,
    ParcelInFlight,
    build_option_histories,
    option_calendars,
)
from tracking_service.estimator.records import Delivery
from tracking_service.estimator.rules import Rules, parse_rules

RULES: Rules = parse_rules(
    {
        "origins": [
            {
                "id": "sp",
                "name": "Sao Paulo",
                "country": "BR",
                "subdivision": "SP",
                "postal_code": "03178-200",
                "time_zone": "America/Sao_Paulo",
                "cutoff": "15:00:00",
                "handling_days": 1,
            }
        ],
        "zones": [{"id": "br", "country": "BR"}],
        "shipping_options": [
            {
                "code": "olist",
                "name": "Olist (one option for the whole file)",
                "carrier": "olist",
                "service": "any",
                "price": "0",
                "currency": "BRL",
                "confidence": 0.9,
                "delivery_weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"],
                "transit": [{"zone": "br", "min": 2, "max": 12}],
                "history": {"learn_from_unlabelled": True},
            }
        ],
    }
)
OPTION = RULES.shipping_options[0]
# the drift signal on both parts, so a drift read at another instant would show
MODEL = HistoryConfig(drift_parts=("handling", "transit"))
FIRST = datetime(2024, 1, 2, 9, 40, tzinfo=SP)
SPLIT = date(2024, 5, 1)
PLACES = (("RJ", "20040"), ("MG", "30130"), ("PA", "66010"), ("SP", "13010"))
LEVELS = (0.8, 0.9, 0.95)


def parcels() -> list[Delivery]:
    """Three orders a day at uneven hours for five months to four places; from April on
    transit slows by 60 % (the drift signal moves)."""
    out = []
    for i in range(3 * 150):
        ordered = FIRST + timedelta(days=i // 3, hours=7 * (i % 3), minutes=13 * (i % 7))
        sub, postal = PLACES[i % len(PLACES)]
        transit = 2 + (i * 7) % 5 + 3 * (sub == "PA")
        if ordered >= datetime(2024, 4, 1, tzinfo=SP):
            transit = round(transit * 1.6)
        handling = timedelta(hours=20 + (i * 5) % 40)
        out.append(
            delivery(
                f"o{i}",
                ordered,
                transit,
                handling=handling,
                dest_subdivision=sub,
                dest_postal=postal,
            )
        )
    return out


def calendars_and_prior() -> tuple[object, RulesPrior]:
    handling = RULES.origins[0].handling_days
    transit = OPTION.transit[0]
    cal = option_calendars(RULES, OPTION, date(2023, 11, 1), date(2026, 12, 31))
    return cal, RulesPrior(handling, handling, transit.min, transit.max)


def replayed(records: list[Delivery], inputs: str) -> BacktestResult:
    calendars, prior = calendars_and_prior()
    history = [d for d in records if d.order_time.astimezone(SP).date() < SPLIT]
    evaluated = [d for d in records if d.order_time.astimezone(SP).date() >= SPLIT]
    config = BacktestConfig(
        calibration_levels=LEVELS,
        frontier_levels=(),
        inputs=inputs,
        prior=prior,
        recalibration=None,  # promise outcomes: tests/estimator/test_recalibration.py
    )
    return replay(history, evaluated, calendars, MODEL, config)  # type: ignore[arg-type]


def served_at(records: list[Delivery], now: datetime, inputs: str) -> OptionHistories:
    """What the service builds at `now` from what it is fed then."""
    delivered = [d for d in records if d.delivered_at < now]
    in_flight = [
        ParcelInFlight.of(d, handed_off=d.handoff_time is not None and d.handoff_time <= now)
        for d in records
        if d.order_time <= now < d.delivered_at
    ]
    return build_option_histories(
        RULES,
        delivered,
        in_flight=in_flight if inputs == IN_FLIGHT else (),
        now=now,
        config=MODEL,
        warm_up=False,
    )


def sample(result: BacktestResult, records: list[Delivery]) -> list[Delivery]:
    keys = [r.key for r in result.rows]
    by_key = {d.key: d for d in records}
    return [by_key[k] for k in keys[:: max(1, len(keys) // 12)]]


@pytest.mark.parametrize("inputs", [IN_FLIGHT, DELIVERED])
def test_the_service_and_the_replay_state_the_same_window(inputs: str) -> None:
    records = parcels()
    result = replayed(records, inputs)
    rows = {r.key: r for r in result.rows}
    drifts = set()
    for d in sample(result, records):
        row = rows[d.key]
        served = served_at(records, d.order_time, inputs)
        q = LaneQuery.of(d)
        for level in LEVELS:
            window = served.window("olist", "br", q, row.order_day, level)
            assert window is not None
            assert (window.earliest, window.latest) == (row.earliest[level], row.latest[level]), (
                d.key,
                level,
            )
        model = served.models[("olist", "br")].model
        assert (model.drift.handling, model.drift.transit) == (
            row.drift_handling,
            row.drift_transit,
        )
        drifts.add(row.drift_transit)
    assert len(drifts) > 3  # the drift moved across the sample: the check above had teeth


def test_the_reestimate_at_hand_off_is_the_services_too() -> None:
    records = parcels()
    result = replayed(records, IN_FLIGHT)
    rows = {r.key: r for r in result.rows}
    for d in sample(result, records)[:6]:
        assert d.handoff_time is not None
        served = served_at(records, d.handoff_time, IN_FLIGHT)
        window = served.reestimate(
            "olist",
            "br",
            LaneQuery.of(d),
            handoff=d.handoff_time,
            confidence=0.9,
            origin_tz=d.origin_tz,
            dest_tz=d.dest_tz,
        )
        assert window is not None
        assert (window.earliest, window.latest) == (
            rows[d.key].handoff_earliest,
            rows[d.key].handoff_latest,
        )


def test_the_comparison_notices_a_model_fed_otherwise() -> None:
    """Guard: the service without its parcels in flight is not the in-flight replay's model
    (deliveries slowed down: the parcels still out are what tells)."""
    records = parcels()
    result = replayed(records, IN_FLIGHT)
    rows = {r.key: r for r in result.rows}
    differ = 0
    for d in sample(result, records):
        blind = served_at(records, d.order_time, DELIVERED)
        window = blind.window("olist", "br", LaneQuery.of(d), rows[d.key].order_day, 0.9)
        assert window is not None
        differ += window.latest != rows[d.key].latest[0.9]
    assert differ > 0


def test_a_days_drift_is_measured_at_its_start() -> None:
    """Read at any instant of a UTC day, the drift is the one measured at 00:00 UTC from what
    was learned before it, however the model got there."""
    records = parcels()
    calendars, prior = calendars_and_prior()
    now = datetime(2024, 4, 20, 18, 5, tzinfo=SP)

    def fed_until(at: datetime) -> LaneHistory:
        lanes = LaneHistory(MODEL, calendars, prior=prior)  # type: ignore[arg-type]
        feed = ModelFeed(lanes)
        for d in records:
            feed.add_record(d)
        feed.advance(at)
        return lanes

    start = day_start(now)
    at_start = fed_until(start - timedelta(microseconds=1))
    expected = at_start.measure_drift_at(start)
    assert fed_until(now).drift(now) == expected
    # a model that never measured at the day's start measures when first asked: another value
    lanes = LaneHistory(MODEL, calendars, prior=prior)  # type: ignore[arg-type]
    feed = ModelFeed(lanes, measure_from=now + timedelta(days=1))
    for d in records:
        feed.add_record(d)
    feed.advance(now)
    assert lanes.drift(now) != expected
