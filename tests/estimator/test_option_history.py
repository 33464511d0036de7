"""Which records teach which option, one model per (option, zone), the rules as the prior."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from history_helpers import SP, delivery

from tracking_service.estimator.backtest import CorrectionConfig
from tracking_service.estimator.history import LaneQuery
from tracking_service.estimator.option_history import build_option_histories, learns_from
from tracking_service.estimator.records import Delivery
from tracking_service.estimator.rules import Rules, load_rules
from tracking_service.settings import bundled_rules_path


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(bundled_rules_path("br_shop.toml"))


def parcel(i: int, state: str, postal: str, transit_days: int) -> Delivery:
    ordered = datetime(2024, 3, 4, 10, tzinfo=SP) + timedelta(days=i)
    return delivery(
        f"{state}-{i}", ordered, transit_days, dest_subdivision=state, dest_postal=postal
    )


def query(state: str, postal: str) -> LaneQuery:
    return LaneQuery("BR", "SP", "03178-200", "BR", state, postal)


def test_learns_from(rules: Rules) -> None:
    options = {o.code: o for o in rules.shipping_options}
    unlabelled = parcel(0, "RJ", "20040", 2)
    sedex = replace(unlabelled, carrier="CORREIOS", service="sedex")
    sedex10 = replace(unlabelled, carrier="correios", service="SEDEX 10")
    assert learns_from(options["standard"], unlabelled)
    assert learns_from(options["standard"], sedex)
    assert not learns_from(options["standard"], sedex10)
    assert learns_from(options["express"], sedex10)
    assert not learns_from(options["express"], unlabelled)
    assert not learns_from(options["economy"], sedex)


def test_records_go_to_the_zone_they_were_delivered_in(rules: Rules) -> None:
    records = [parcel(i, "RJ", "20040", 2) for i in range(40)]
    records += [parcel(100 + i, "PA", "66010", 12) for i in range(40)]
    records += [parcel(200 + i, "XX", "99999", 1) for i in range(5)]  # no zone: unused
    h = build_option_histories(rules, records, warm_up=False)
    assert h.options["standard"].zones == ("north", "southeast")
    assert h.options["standard"].records == 80
    assert h.records == 85
    day = date(2024, 6, 4)
    rio = h.window("standard", "southeast", query("RJ", "20040-020"), day, 0.9)
    belem = h.window("standard", "north", query("PA", "66010-000"), day, 0.9)
    assert rio is not None and belem is not None
    assert rio.transit.records == belem.transit.records == 40
    assert (belem.latest - rio.latest).days >= 10  # north learns its own 12 days


def test_rules_prior_of_the_zone_speaks_for_a_thin_lane(rules: Rules) -> None:
    # Two parcels to Rio took 20 days; the rules say 2-3 days to the southeast. The lane is
    # blended with the prior (15 pseudo-records), so the median stays near the rules.
    records = [parcel(i, "RJ", "20040", 20) for i in range(2)]
    h = build_option_histories(rules, records, warm_up=False)
    win = h.window("standard", "southeast", query("RJ", "20040-020"), date(2024, 3, 11), 0.5)
    assert win is not None
    assert (win.percentiles[50] - date(2024, 3, 11)).days <= 6
    # the evidence is not lost: the tail is longer than the rules' 1 + 2-3 days
    assert (win.percentiles[99] - date(2024, 3, 11)).days >= 8


def test_window_outside_the_indexed_span_stays_on_the_rules(rules: Rules) -> None:
    h = build_option_histories(
        rules, [parcel(i, "RJ", "20040", 2) for i in range(20)],
        now=datetime(2025, 1, 1, tzinfo=UTC), warm_up=False,
    )  # fmt: skip
    q = query("RJ", "20040-020")
    assert h.window("standard", "southeast", q, date(2025, 6, 2), 0.9) is not None
    assert h.window("standard", "southeast", q, date(2150, 6, 2), 0.9) is None
    assert h.window("express", "southeast", q, date(2025, 6, 2), 0.9) is None


def test_warm_up_replays_recent_promises_and_stays_bounded(rules: Rules) -> None:
    records = [parcel(i, "RJ", "20040", 2 + (i % 7 == 0) * 6) for i in range(200)]
    off = build_option_histories(rules, records, correction=CorrectionConfig(enabled=False))
    assert off.options["standard"].warmup_promises == 0
    assert off.level("standard", 0.9) == 0.9
    h = build_option_histories(rules, records, correction=CorrectionConfig(enabled=True))
    summary = h.options["standard"]
    assert summary.warmup_promises > 50
    assert abs(summary.level_shift) <= 0.03 + 1e-9  # the correction's bound
    assert h.level("standard", 0.85) == pytest.approx(0.85 + summary.level_shift)
    assert h.level("standard", 0.99) <= 0.995


def test_no_records_no_models(rules: Rules) -> None:
    h = build_option_histories(rules, [])
    assert h.as_of is None and not h.models and not h.options
    future = build_option_histories(
        rules, [parcel(0, "RJ", "20040", 2)], now=datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert future.records == 0  # delivered after "now": not known yet
