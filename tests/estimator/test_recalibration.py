"""Recalibration of the quantile level from the censored outcomes of recent promises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from history_helpers import SP, sp_history

from estimator.test_one_model import (
    LEVELS,
    MODEL,
    RULES,
    SPLIT,
    calendars_and_prior,
    parcels,
    sample,
)
from tracking_service.estimator.backtest import DELIVERED, BacktestConfig, replay
from tracking_service.estimator.calendar import MON_FRI
from tracking_service.estimator.history import (
    IDENTITY,
    Blend,
    DayIndex,
    LaneQuery,
    LaneUse,
    PromiseOutcome,
    RecalibrationConfig,
    delivery_cdf,
    recalibrate,
    window_from,
)
from tracking_service.estimator.history.recalibration import product_limit
from tracking_service.estimator.option_history import ParcelInFlight, build_option_histories
from tracking_service.estimator.records import Delivery
from tracking_service.estimator.rules import Rules, load_rules
from tracking_service.settings import bundled_rules_path

START = date(2024, 6, 3)  # a Monday
NOW = datetime(2024, 7, 1, 15, tzinfo=UTC)
LINEAR = tuple(round(0.1 * (k + 1), 1) for k in range(10))  # P(by START + k) = 0.1 (k + 1)


def weekdays(first: date = date(2024, 1, 1), last: date = date(2025, 12, 31)) -> DayIndex:
    return DayIndex(lambda d: d.weekday() in MON_FRI, first, last)


def promise(
    delivered_after: int | None,
    *,
    made: datetime = NOW - timedelta(days=10),
    cdf: tuple[float, ...] = LINEAR,
    start: date = START,
    tz: str | None = None,
) -> PromiseOutcome:
    delivered = None if delivered_after is None else start + timedelta(days=delivered_after)
    return PromiseOutcome(made, start, cdf, delivered, tz, "standard")


# ------------------------------------------------------------- the delivery date's distribution


def blend() -> Blend:
    use = LaneUse("root", 10, 10.0)
    handling = ((0, 0.5), (1, 0.3), (3, 0.2))
    transit = (0.1, 0.4, 0.7, 0.85, 0.95, 1.0)
    return Blend(handling, transit, use, use)


def test_delivery_cdf_reaches_each_level_on_the_windows_latest_date() -> None:
    dest = weekdays()
    ship = [(dest.ceil(START), 0.5), (dest.ceil(START) + 1, 0.3), (dest.ceil(START) + 3, 0.2)]
    start, cdf = delivery_cdf(blend(), ship, dest)
    assert start == START
    assert cdf[-1] == 1.0
    for level in (0.1, 0.5, 0.8, 0.9, 0.95, 0.99):
        latest = window_from(blend(), ship, dest, level, level, 0.1, ()).latest
        first = next(k for k, p in enumerate(cdf) if p >= level - 1e-12)
        assert start + timedelta(days=first) == latest
    # a weekend carries Friday's value: nothing is delivered on it
    friday = (date(2024, 6, 7) - start).days
    assert cdf[friday] == cdf[friday + 1] == cdf[friday + 2] < cdf[friday + 3]


def test_on_time_at_a_level_is_a_position_below_it() -> None:
    # the latest date at q is the first day with F >= q: a delivery on day d is on time at q
    # exactly when F(d - 1) < q, which is what a promise's position reads
    for k in range(12):
        p = promise(k)
        u, delivered = p.position(NOW)
        assert delivered
        for q in (0.05, 0.1, 0.35, 0.5, 0.9, 0.95):
            latest = next(d for d in range(20) if p.at(START + timedelta(days=d)) >= q)
            assert (k <= latest) == (u < q)


def test_an_open_promise_is_censored_at_the_day_before_today_at_the_destination() -> None:
    made = datetime(2024, 6, 1, tzinfo=UTC)
    open_ = promise(None, made=made, tz="America/Sao_Paulo")
    # 02:00 UTC on June 6 is still June 5 in Sao Paulo: known not delivered by June 4
    assert open_.position(datetime(2024, 6, 6, 2, tzinfo=UTC)) == (0.2, False)
    assert open_.position(datetime(2024, 6, 6, 4, tzinfo=UTC)) == (0.3, False)
    # a delivery dated after today is not known yet
    later = promise(6, made=made)
    assert later.position(datetime(2024, 6, 6, 12, tzinfo=UTC)) == (0.3, False)
    assert later.position(datetime(2024, 6, 9, 12, tzinfo=UTC)) == (0.6, True)
    # before the first day, and past the end of the list
    assert promise(0).position(NOW) == (0.0, True)
    assert promise(25).position(NOW) == (1.0, True)


# ------------------------------------------------------------------- the product-limit curve


def test_product_limit_without_censoring_is_the_share_below_each_position() -> None:
    knots = product_limit([(0.2, True), (0.5, True), (0.5, True), (0.9, True)])
    assert knots == ((0.2, 0.0), (0.5, 0.25), (0.9, 0.75))


def test_product_limit_counts_a_censored_promise_at_risk_up_to_its_position() -> None:
    # 4 promises: one delivered at 0.1, one open at 0.3 (U >= 0.3), delivered at 0.3 and 0.6
    knots = product_limit([(0.1, True), (0.3, False), (0.3, True), (0.6, True)])
    # at 0.3: 3 at risk (the censored one too), 1 event; at 0.6: 1 at risk, 1 event
    assert [(u, round(g, 9)) for u, g in knots] == [(0.1, 0.0), (0.3, 0.25), (0.6, 0.5)]


# ---------------------------------------------------------------------------- the level used


def test_calibrated_promises_keep_the_asked_level() -> None:
    promises = [promise(k) for k in range(10) for _ in range(30)]  # U = 0, 0.1 .. 0.9 evenly
    recal = recalibrate(promises, NOW, RecalibrationConfig(prior_promises=0))
    assert recal.promises == recal.delivered == 300
    for asked in (0.5, 0.8, 0.9):
        assert recal.level(asked) == pytest.approx(asked)
    assert recal.on_time_share(0.9) == pytest.approx(0.9)


def test_late_promises_raise_the_level_one_curve_for_every_level() -> None:
    # every parcel came one day later than the model said: at level q only q - 0.1 on time
    promises = [promise(k + 1) for k in range(10) for _ in range(30)]
    recal = recalibrate(promises, NOW, RecalibrationConfig(prior_promises=0, bound=1.0))
    assert recal.level(0.5) == pytest.approx(0.6)
    assert recal.level(0.8) == pytest.approx(0.9)
    # past the last knot (0.9 on time at 1.0): the model's tail, up to the ceiling
    assert recal.level(0.95) == 0.995
    bounded = recalibrate(promises, NOW, RecalibrationConfig(prior_promises=0, bound=0.05))
    assert bounded.level(0.8) == pytest.approx(0.85)


def test_few_promises_are_shrunk_toward_the_asked_level() -> None:
    few = [promise(k + 1) for k in range(10)]  # 10 promises, all a day late
    recal = recalibrate(few, NOW, RecalibrationConfig(prior_promises=30, bound=1.0))
    assert recal.weight == pytest.approx(0.25)
    assert recal.level(0.5) == pytest.approx(0.5 + 0.25 * 0.1)
    assert recalibrate([], NOW, RecalibrationConfig()) is IDENTITY
    assert IDENTITY.level(0.93) == 0.93


def test_tail_rules_past_the_last_delivered_position() -> None:
    # half delivered early (U = 0.2), half still open at 0.5: nothing known above 0.2
    made = datetime(2024, 6, 1, tzinfo=UTC)
    promises = [promise(2, made=made)] * 50 + [promise(None, made=made)] * 50
    now = datetime(2024, 6, 8, tzinfo=UTC)  # censored at F(June 7) = 0.5
    cfg = RecalibrationConfig(prior_promises=0, bound=1.0)
    model = recalibrate(promises, now, cfg)
    assert model.levels == (0.2,) and model.shares == (0.0,)
    assert (model.promises, model.delivered) == (100, 50)
    # "model": from the last knot on to (1, 1)
    assert model.on_time_share(0.6) == pytest.approx(0.5)
    assert model.level(0.9) == pytest.approx(0.2 + 0.9 * 0.8)
    hold = recalibrate(promises, now, replace(cfg, tail="hold"))
    assert hold.level(0.7) == pytest.approx(0.9)  # the gap at the last knot, held
    assert hold.level(0.9) == 0.995  # and the ceiling


def test_only_promises_made_in_the_window_before_now_count() -> None:
    cfg = RecalibrationConfig(window_days=14, prior_promises=0)
    old = [promise(k + 3, made=NOW - timedelta(days=20)) for k in range(10)]
    future = [promise(k + 3, made=NOW + timedelta(hours=1)) for k in range(10)]
    recent = [promise(k, made=NOW - timedelta(days=2)) for k in range(10)]
    recal = recalibrate(old + future + recent, NOW, cfg)
    assert recal.promises == 10
    assert recal.level(0.9) == pytest.approx(0.9)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="tail"):
        RecalibrationConfig(tail="flat")
    with pytest.raises(ValueError, match="window_days"):
        RecalibrationConfig(window_days=0)


# -------------------------------------------------------------------------- in the snapshot


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(bundled_rules_path("br_shop.toml"))


QUERY = LaneQuery("BR", "SP", "03178-200", "BR", "RJ", "20040-020")
BUILT = datetime(2024, 11, 1, 12, tzinfo=UTC)


def test_promise_distribution_is_the_windows_own_distribution(rules: Rules) -> None:
    h = build_option_histories(rules, sp_history(), now=BUILT, warm_up=False)
    day = date(2024, 11, 4)
    found = h.promise_distribution("standard", "southeast", QUERY, day)
    assert found is not None
    start, cdf = found
    assert start >= day and cdf[-1] == 1.0
    assert all(a <= b for a, b in pairwise(cdf))
    for level in (0.5, 0.9, 0.95):
        win = h.window("standard", "southeast", QUERY, day, level)
        assert win is not None
        first = next(k for k, p in enumerate(cdf) if p >= level - 1e-6)
        assert start + timedelta(days=first) == win.latest
    assert h.promise_distribution("express", "southeast", QUERY, day) is None
    assert h.promise_distribution("standard", "southeast", QUERY, date(2150, 1, 1)) is None


def late_promises(h_dist: Callable[[date], tuple[date, tuple[float, ...]] | None]) -> list:
    """Promises of the last weeks whose parcels all came two days after their median day."""
    out = []
    for i in range(200):
        made = BUILT - timedelta(days=20, hours=-i * 2)
        day = made.date()
        found = h_dist(day)
        assert found is not None
        start, cdf = found
        median = next(k for k, p in enumerate(cdf) if p >= 0.5)
        delivered = start + timedelta(days=median + 2)
        out.append(PromiseOutcome(made, start, cdf, delivered, "UTC", "standard"))
    return out


def test_the_snapshot_reads_each_options_recalibration(rules: Rules) -> None:
    plain = build_option_histories(rules, sp_history(), now=BUILT, warm_up=False)
    promises = late_promises(
        lambda d: plain.promise_distribution("standard", "southeast", QUERY, d)
    )
    cfg = RecalibrationConfig(window_days=28, prior_promises=50, bound=0.1)
    h = build_option_histories(
        rules, sp_history(), now=BUILT, warm_up=False, promises=promises, recalibration=cfg
    )
    recal = h.options["standard"].recalibration
    assert recal.promises == 200
    assert h.level("standard", 0.8) == pytest.approx(recal.level(0.8))
    assert 0.8 < h.level("standard", 0.8) <= 0.9 + 1e-9  # later parcels: a higher level
    win = h.window("standard", "southeast", QUERY, date(2024, 11, 4), 0.8)
    assert win is not None and win.confidence == 0.8 and win.level == h.level("standard", 0.8)
    off = build_option_histories(
        rules, sp_history(), now=BUILT, warm_up=False, promises=promises, recalibration=None
    )
    assert off.options["standard"].recalibration is IDENTITY
    assert off.level("standard", 0.8) == 0.8
    other = [
        PromiseOutcome(p.made_at, p.start, p.cdf, p.delivered_on, "UTC", "x") for p in promises
    ]
    mine_only = build_option_histories(
        rules, sp_history(), now=BUILT, warm_up=False, promises=other, recalibration=cfg
    )
    assert mine_only.level("standard", 0.8) == 0.8


# ------------------------------------------------------------ the replay recalibrates alike


def test_the_service_fed_the_replays_promise_outcomes_uses_the_replays_level() -> None:
    """One model with promise outcomes too: at an order's instant, the service built from the
    records, the parcels in flight and the outcomes of the promises made before (each with
    the distribution stored when made, delivered only if known then) recalibrates to the
    replay's level, and so states the replay's window."""
    records = parcels()
    calendars, prior = calendars_and_prior()
    history = [d for d in records if d.order_time.astimezone(SP).date() < SPLIT]
    evaluated = [d for d in records if d.order_time.astimezone(SP).date() >= SPLIT]
    recal = RecalibrationConfig(window_days=28, prior_promises=20)
    config = BacktestConfig(
        calibration_levels=LEVELS,
        frontier_levels=(),
        prior=prior,
        recalibration=recal,
        recalibrate_every=timedelta(microseconds=1),  # at every order, as a build at `now`
    )
    result = replay(history, evaluated, calendars, MODEL, config)  # type: ignore[arg-type]
    assert "promise outcomes" in result.summary["inputs_fed"]
    by_time = {d.order_time: d for d in records}
    rows = {r.key: r for r in result.rows}
    moved = 0
    for d in sample(result, records):
        now = d.order_time
        known = [
            replace(
                o,
                option="olist",
                delivered_on=o.delivered_on if by_time[o.made_at].delivered_at < now else None,
            )
            for o in result.outcomes
            if o.made_at < now
        ]
        served = build_option_histories(
            RULES,
            [r for r in records if r.delivered_at < now],
            in_flight=[
                ParcelInFlight.of(
                    r, handed_off=r.handoff_time is not None and r.handoff_time <= now
                )
                for r in records
                if r.order_time <= now < r.delivered_at
            ],
            now=now,
            config=MODEL,
            warm_up=False,
            promises=known,
            recalibration=recal,
        )
        row = rows[d.key]
        for level in LEVELS:
            assert served.level("olist", level) == pytest.approx(row.level_used[level])
            window = served.window("olist", "br", LaneQuery.of(d), row.order_day, level)
            assert window is not None
            assert (window.earliest, window.latest) == (row.earliest[level], row.latest[level])
            moved += abs(row.level_used[level] - level) > 0.005
    assert moved > 3  # the recalibration moved the level: the check above had teeth


def handed_off(d: Delivery, now: datetime) -> bool:
    return d.handoff_time is not None and d.handoff_time <= now


def test_delivered_records_only_feed_no_promise_outcomes() -> None:
    records = parcels()
    calendars, prior = calendars_and_prior()
    history = [d for d in records if d.order_time.astimezone(SP).date() < SPLIT]
    evaluated = [d for d in records if d.order_time.astimezone(SP).date() >= SPLIT]
    config = BacktestConfig(calibration_levels=LEVELS, frontier_levels=(), prior=prior)
    assert config.recalibration is not None
    delivered = replay(history, evaluated, calendars, MODEL, replace(config, inputs=DELIVERED))  # type: ignore[arg-type]
    assert delivered.summary["inputs_fed"] == ["delivered records"]
    assert delivered.summary["recalibration"] is None
    assert all(r.level_used[x] == x for r in delivered.rows for x in LEVELS)
