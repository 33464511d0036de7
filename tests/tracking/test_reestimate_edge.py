"""The re-estimate a tracked parcel gets: the history's public re-estimate, else the rules'."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from history_helpers import delivery

from tracking_service.estimator.estimate import Estimator
from tracking_service.estimator.history import LaneQuery
from tracking_service.estimator.option_history import build_option_histories, empty_histories
from tracking_service.estimator.rules import load_rules
from tracking_service.settings import bundled_rules_path
from tracking_service.tracking.reestimate import Reestimates

SP = ZoneInfo("America/Sao_Paulo")
HANDOFF = datetime(2024, 6, 4, 16, tzinfo=SP)  # a Tuesday


def order(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "origin": "sp-mooca",
        "option": "standard",
        "dest_country": "BR",
        "dest_postal_code": "20040-020",
        "dest_subdivision": "RJ",
        "promise_confidence": 0.9,
    }
    row.update(changes)
    return row


def estimator() -> Estimator:
    return Estimator(load_rules(bundled_rules_path("br_shop.toml")))


def test_without_history_the_rules_window_counts_from_the_hand_off() -> None:
    est = estimator()
    reestimates = Reestimates(est, lambda: empty_histories(HANDOFF))
    window = reestimates(order(), HANDOFF, None)
    assert window is not None and window.source == "rules"
    assert HANDOFF.date() < window.earliest <= window.latest <= HANDOFF.date() + timedelta(days=9)
    # a later scan still in transit: not delivered before that day
    seen = datetime.combine(window.latest + timedelta(days=2), datetime.min.time(), SP)
    later = reestimates(order(), HANDOFF, seen.replace(hour=10))
    assert later is not None and later.earliest == later.latest == seen.date()


def test_with_history_it_is_the_snapshots_public_re_estimate() -> None:
    est = estimator()
    ordered = datetime(2024, 3, 4, 10, tzinfo=SP)
    records = [
        delivery(f"r{i}", ordered + timedelta(days=i), 4, dest_postal="20040") for i in range(60)
    ]
    history = build_option_histories(est.rules, records, warm_up=False)
    window = Reestimates(est, lambda: history)(order(), HANDOFF, None)
    direct = history.reestimate(
        "standard",
        "southeast",
        LaneQuery("BR", "SP", "03178-200", "BR", "RJ", "20040-020", origin_id="sp-mooca"),
        handoff=HANDOFF,
        confidence=0.9,
        origin_tz="America/Sao_Paulo",
        dest_tz="America/Sao_Paulo",
    )
    assert direct is not None and window is not None
    assert (window.earliest, window.latest, window.source) == (
        direct.earliest,
        direct.latest,
        "history",
    )


def test_an_order_the_rules_cannot_place_gets_none() -> None:
    reestimates = Reestimates(estimator(), lambda: empty_histories(HANDOFF))
    assert reestimates(order(option="teleport"), HANDOFF, None) is None
    assert reestimates(order(origin="elsewhere"), HANDOFF, None) is None
    assert reestimates(order(dest_postal_code="nope"), HANDOFF, None) is None
