"""The backtest replay: no peeking, known figures on synthetic histories, the frontier."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from history_helpers import RIO_COORDS, SP_COORDS, delivery, every_day
from typer.testing import CliRunner

from tracking_service.cli import app
from tracking_service.estimator.backtest import (
    BacktestConfig,
    CorrectionConfig,
    frontier,
    replay,
    split_by_order_date,
)
from tracking_service.estimator.history import HistoryConfig, holiday_calendars
from tracking_service.estimator.records import Delivery

START = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
# the drift signal on both parts, transit by ship weekday inside the convolution, a zip5
# lane and a distance band per destination state, so the no-peeking tests below cover them
MODEL = HistoryConfig(
    half_life_days=30.0,
    handling_levels=("origin_postal",),
    handling_prior_strength=5.0,
    transit_levels=("dest_postal_fine", "dest_subdivision", "dest_distance"),
    drift_parts=("handling", "transit"),
    drift_window_days=21.0,
    handoff_weekday=True,
)


def parcel(n: int, ordered: datetime, transit: float, promised: int | None = None) -> Delivery:
    return delivery(
        f"p{n}",
        ordered,
        transit,
        handling=timedelta(hours=6),
        origin_postal="01310",
        dest_postal="20000",
        tz="UTC",
        promised=None if promised is None else (ordered + timedelta(days=promised)).date(),
        coordinates=(SP_COORDS, RIO_COORDS),
    )


def history(days: int = 120, per_day: int = 2) -> list[Delivery]:
    """Two parcels a day, 2 to 6 days in transit, promised in 8 days."""
    out = []
    for i in range(days * per_day):
        ordered = START + timedelta(hours=24 / per_day * i)
        out.append(parcel(i, ordered, 2 + i % 5, promised=8))
    return out


def run(records: list[Delivery], split: date, **config: object) -> dict[str, date]:
    old, new = split_by_order_date(records, split)
    result = replay(old, new, every_day(), MODEL, BacktestConfig(**config))  # type: ignore[arg-type]
    return result.promises


def test_an_estimate_never_sees_its_own_or_a_later_delivery() -> None:
    records = history()
    split = date(2024, 3, 15)
    target = next(d for d in records if d.order_time.date() == date(2024, 3, 20))
    honest = run(records, split)
    # every delivery at or after the target's order instant (its own included) becomes absurd
    absurd = [
        replace(d, delivered_at=d.delivered_at + timedelta(days=80))
        if d.delivered_at >= target.order_time
        else d
        for d in records
    ]
    peeked = run(absurd, split)
    assert peeked[target.key] == honest[target.key]
    # every earlier order too: nothing it could have known changed
    earlier = [k for k, d in ((d.key, d) for d in records) if k in honest]
    for key in earlier:
        d = next(x for x in records if x.key == key)
        if d.order_time <= target.order_time:
            assert peeked[key] == honest[key], key


def test_the_no_peeking_check_would_notice_a_change_that_was_visible() -> None:
    """Guard for the test above: a change delivered BEFORE the order does move the promise."""
    records = history()
    split = date(2024, 3, 15)
    target = next(d for d in records if d.order_time.date() == date(2024, 3, 20))
    honest = run(records, split)
    slower = [
        replace(d, delivered_at=d.delivered_at + timedelta(days=20))
        if d.delivered_at < target.order_time
        else d
        for d in records
    ]
    assert run(slower, split)[target.key] > honest[target.key]


def test_parcels_in_flight_count_only_for_the_days_already_passed() -> None:
    """Orders placed before the target but delivered after it: only 'not yet' is known."""
    records = history()
    split = date(2024, 3, 15)
    target = next(d for d in records if d.order_time.date() == date(2024, 3, 20))
    honest = run(records, split)
    later = [
        replace(d, delivered_at=d.delivered_at + timedelta(days=300))
        if d.order_time < target.order_time < d.delivered_at
        else d
        for d in records
    ]
    assert run(later, split)[target.key] == honest[target.key]


def test_the_drift_signal_is_live_in_the_no_peeking_replays() -> None:
    """Guard: parcels handed over before the target and still waiting at its order instant
    lengthen its promise more with the drift signal than without (so the tests above, which
    change exactly such parcels' futures, would notice a drift that peeked)."""
    records = history()
    split = date(2024, 3, 15)
    target = next(d for d in records if d.order_time.date() == date(2024, 3, 20))
    stuck = [
        replace(d, delivered_at=d.delivered_at + timedelta(days=30))
        if target.order_time - timedelta(days=12) < d.order_time < target.order_time
        else d
        for d in records
    ]
    old, new = split_by_order_date(stuck, split)
    with_drift = replay(old, new, every_day(), MODEL, BacktestConfig()).promises
    no_drift = replace(MODEL, drift_window_days=None)
    without = replay(old, new, every_day(), no_drift, BacktestConfig()).promises
    assert with_drift[target.key] > without[target.key]


def test_known_figures_on_a_steady_history() -> None:
    # every parcel: handed over the same day, delivered 3 days later; promised in 5 days
    records = [
        parcel(i, START + timedelta(days=i // 2, hours=4 * (i % 2)), 3, promised=5)
        for i in range(2 * 90)
    ]
    old, new = split_by_order_date(records, date(2024, 2, 15))
    result = replay(old, new, every_day(), MODEL, BacktestConfig())
    s = result.summary
    assert s["orders"] == len(new)
    assert s["on_time_rate"] == 1.0
    assert s["mean_promise_days"] == 3.0
    assert s["mean_window_days"] == 0.0
    assert s["mean_days_early"] == 0.0
    assert set(s["calibration"]) == {"0.5", "0.8", "0.9", "0.93", "0.95"}
    assert s["calibration"]["0.95"]["on_time_rate"] == 1.0
    assert s["calibration"]["0.95"]["mean_promise_days"] == 3.0
    assert list(s["calibration"]["0.95"])[:2] == ["on_time_rate", "mean_promise_days"]
    assert s["baseline"]["on_time_rate"] == 1.0
    assert s["baseline"]["mean_promise_days"] == 5.0
    assert s["baseline"]["mean_window_days"] is None
    assert s["frontier"]["lead_at_baseline_on_time"] == 3.0
    assert s["frontier"]["ratio"] == 0.6
    assert [x["level"] for x in s["frontier"]["levels"]] == [
        round(0.80 + 0.01 * i, 2) for i in range(20)
    ]
    assert s["at_handoff"]["on_time_rate"] == 1.0
    assert s["at_handoff"]["mean_change_vs_original_days"] == 0.0


@pytest.mark.parametrize(
    ("calendars", "figures"),
    [
        (
            every_day,
            {
                "orders": 92,
                "on_time_rate": 1.0,
                "mean_promise_days": 6.5,
                "mean_window_days": 4.0,
                "mean_days_early": 1.967,
                "mean_change_vs_original_days": 0.185,
                "later_than_original_rate": 0.3913,
            },
        ),
        (
            holiday_calendars,
            {
                "orders": 92,
                "on_time_rate": 1.0,
                "mean_promise_days": 7.804,
                "mean_window_days": 4.924,
                "mean_days_early": 3.272,
                "mean_change_vs_original_days": -0.283,
                "later_than_original_rate": 0.0761,
            },
        ),
    ],
)
def test_the_backtest_reestimates_as_it_did_before(calendars: object, figures: dict) -> None:
    """The replay's re-estimate at hand-off is `estimator.reestimate`: its figures on a
    synthetic history are those the replay gave when the re-estimate was written inline."""
    old, new = split_by_order_date(history(), date(2024, 3, 15))
    config = BacktestConfig(recalibration=None)
    result = replay(old, new, calendars(), MODEL, config)  # type: ignore[operator]
    handoff = result.summary["at_handoff"]
    assert {k: v for k, v in handoff.items() if k not in ("intervals", "weeks")} == figures


@pytest.mark.parametrize("feedback", ["as_known", "at_deadline"])
def test_a_late_promise_is_known_only_when_its_date_has_passed(feedback: str) -> None:
    """History: 3 days for 92 % of parcels, 6 for 8 %; at 0.9 we promise 3 days.

    Then every parcel takes 10 days. The first late outcome is known when the first
    promise's latest date has passed (end of its day 3), not before: the orders placed until
    then still get 3 days; the first order after it gets the raised level, hence 6 days.
    """
    fast = [parcel(i, START + timedelta(days=i), 6 if i % 25 in (0, 12) else 3) for i in range(75)]
    slow_start = START + timedelta(days=90)
    slow = [parcel(100 + i, slow_start + timedelta(days=i), 10) for i in range(8)]
    old, new = split_by_order_date(fast + slow, slow_start.date())
    cfg = BacktestConfig(
        warmup_days=0,
        calibration_levels=(0.9,),
        frontier_levels=(0.9,),
        correction=CorrectionConfig(enabled=True, step=0.05, bound=0.09, feedback=feedback),
    )
    # one transit distribution whatever the ship weekday: the figures above are its quantiles
    model = replace(MODEL, censoring=False, half_life_days=None, handoff_weekday=False)
    promises = replay(old, new, every_day(), model, cfg).promises
    days = [
        (promises[f"p{100 + i}"] - (slow_start + timedelta(days=i)).date()).days for i in range(5)
    ]
    assert days == [3, 3, 3, 3, 6]
    no_correction = replace(cfg, correction=CorrectionConfig(enabled=False))
    promises = replay(old, new, every_day(), model, no_correction).promises
    assert promises["p104"] == (slow_start + timedelta(days=4 + 3)).date()


def test_frontier_interpolates_between_neighbouring_levels() -> None:
    points = [(0.8, 0.80, 10.0), (0.81, 0.85, 12.0), (0.82, 0.95, 20.0), (0.83, 0.97, 22.0)]
    f = frontier(points, 0.90, 32.0)
    assert f["lead_at_baseline_on_time"] == pytest.approx(16.0)
    assert f["ratio"] == pytest.approx(0.5)
    assert f["levels"][1] == {"level": 0.81, "on_time_rate": 0.85, "mean_promise_days": 12.0}
    never = frontier(points, 0.99, 32.0)
    assert never["lead_at_baseline_on_time"] is None and "never" in never["note"]


def test_nothing_to_evaluate_is_an_error() -> None:
    with pytest.raises(ValueError, match="nothing to evaluate"):
        replay(history(10), [], every_day())


OLIST_HEADER = (
    "order_id,purchase_ts,approved_ts,carrier_handoff_ts,delivered_ts,promised_date,"
    "seller_zip_prefix,seller_city,seller_state,customer_zip_prefix,customer_city,"
    "customer_state,n_items,total_weight_g,freight_value,seller_lat,seller_lng,"
    "customer_lat,customer_lng"
)


def olist_file(tmp_path: Path) -> Path:
    lines = [OLIST_HEADER]
    base = datetime(2017, 6, 1, 10, 0)
    for i in range(200):
        ordered = base + timedelta(hours=13 * i)
        handoff = ordered + timedelta(days=1 + i % 3)
        delivered = handoff + timedelta(days=3 + i % 6)
        promised = (ordered + timedelta(days=14)).date()
        f = "%Y-%m-%d %H:%M:%S"
        lines.append(
            f"{i:032x},{ordered:{f}},,{handoff:{f}},{delivered:{f}},{promised},"
            f"0131{i % 3},sao paulo,SP,2000{i % 4},rio de janeiro,{'RJ' if i % 2 else 'MG'},"
            "1,500,10.0,-23.5,-46.6,-22.9,-43.2"
        )
    path = tmp_path / "olist.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_backtest_json(tmp_path: Path) -> None:
    path = olist_file(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--history",
            str(path),
            "--format",
            "olist",
            "--evaluate-from",
            "2017-08-01",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("{"))
    out = json.loads(line)
    for key in (
        "orders",
        "on_time_rate",
        "mean_promise_days",
        "mean_window_days",
        "mean_days_early",
        "calibration",
        "frontier",
        "baseline",
        "at_handoff",
    ):
        assert key in out
    assert out["orders"] > 0
    assert set(out["frontier"]) >= {"levels", "lead_at_baseline_on_time", "ratio"}


def test_cli_backtest_table_and_errors(tmp_path: Path) -> None:
    path = olist_file(tmp_path)
    runner = CliRunner()
    table = runner.invoke(
        app,
        ["backtest", "--history", str(path), "--format", "olist", "--evaluate-from", "2017-08-01"],
    )
    assert table.exit_code == 0, table.output
    assert "Calibration" in table.output and "estimates/s" in table.output
    same = runner.invoke(app, ["backtest", "--history", str(path), "--format", "olist"])
    assert same.exit_code == 2 and "--evaluate-from" in same.output
    missing = runner.invoke(app, ["backtest", "--history", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    bad_date = runner.invoke(app, ["backtest", "--history", str(path), "--evaluate-from", "1 Dec"])
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
    assert "Traceback" not in missing.output + same.output + bad_date.output


OLIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "olist"


@pytest.mark.skipif(
    not (OLIST / "deliveries_train.csv.gz").exists(), reason="Olist data not present"
)
def test_olist_smoke() -> None:
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--history",
            str(OLIST / "deliveries_train.csv.gz"),
            "--format",
            "olist",
            "--evaluate-from",
            "2017-12-01",
            "--evaluate-to",
            "2018-02-28",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(next(x for x in result.stdout.splitlines() if x.startswith("{")))
    assert out["orders"] > 1000
    assert out["baseline"]["on_time_rate"] == pytest.approx(0.905, abs=0.001)
    assert 0.5 < out["calibration"]["0.9"]["on_time_rate"] <= 1.0


def test_one_row_per_evaluated_order_and_figures_from_the_rows() -> None:
    old, new = split_by_order_date(history(), date(2024, 3, 15))
    result = replay(old, new, every_day(), MODEL, BacktestConfig())
    rows = result.rows
    assert [r.key for r in rows] == sorted((d.key for d in new), key=lambda k: int(k[1:]))
    levels = BacktestConfig().levels()
    assert all(set(r.latest) == set(levels) == set(r.level_used) for r in rows)
    on_time = sum(r.delivered_day <= r.latest[0.9] for r in rows) / len(rows)
    assert result.summary["on_time_rate"] == round(on_time, 4)
    assert result.promises == {r.key: r.latest[0.9] for r in rows}
    # the recalibration's level, within its bound (no other correction by default)
    assert all(abs(r.level_used[0.9] - 0.9) <= 0.1 + 1e-9 for r in rows)
    assert result.summary["inputs"] == "in-flight"
    assert "orders in flight" in result.summary["inputs_fed"]
    assert "promise outcomes" in result.summary["inputs_fed"]


def test_delivered_inputs_leave_parcels_in_flight_out() -> None:
    """The same replay fed delivered records only: parcels in flight (here: stuck) say
    nothing, so its promises are those of a model without censoring."""
    records = history()
    target = next(d for d in records if d.order_time.date() == date(2024, 3, 20))
    stuck = [
        replace(d, delivered_at=d.delivered_at + timedelta(days=30))
        if target.order_time - timedelta(days=12) < d.order_time < target.order_time
        else d
        for d in records
    ]
    old, new = split_by_order_date(stuck, date(2024, 3, 15))
    fed = replay(old, new, every_day(), MODEL, BacktestConfig())
    delivered = replay(old, new, every_day(), MODEL, BacktestConfig(inputs="delivered"))
    uncensored = replay(
        old, new, every_day(), replace(MODEL, censoring=False), BacktestConfig(recalibration=None)
    )
    assert delivered.promises == uncensored.promises
    assert delivered.promises[target.key] < fed.promises[target.key]
    assert delivered.summary["inputs_fed"] == ["delivered records"]
    with pytest.raises(ValueError, match="inputs"):
        BacktestConfig(inputs="everything")


def test_orders_placed_near_the_datas_end_are_flagged() -> None:
    old, new = split_by_order_date(history(), date(2024, 3, 15))
    end = max(d.delivered_at for d in old + new)
    result = replay(old, new, every_day(), MODEL, BacktestConfig())
    flagged = {r.key for r in result.rows if r.truncated}
    assert flagged == {d.key for d in new if d.order_time >= end - timedelta(days=45)}
    assert result.summary["truncation"]["flagged_orders"] == len(flagged) > 0
    later = replay(old, new, every_day(), MODEL, BacktestConfig(data_end=end + timedelta(days=100)))
    assert later.summary["truncation"]["flagged_orders"] == 0
