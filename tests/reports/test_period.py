"""A report's date range: defaults and limits (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tracking_service.errors import InvalidInput
from tracking_service.estimator.rules import load_rules
from tracking_service.reports.period import MAX_DAYS, home_today, report_range
from tracking_service.settings import bundled_rules_path

TODAY = date(2025, 12, 1)


def test_defaults() -> None:
    assert report_range(None, None, TODAY) == (date(2025, 9, 3), TODAY)  # 90 days
    assert report_range(None, date(2025, 1, 31), TODAY) == (date(2024, 11, 3), date(2025, 1, 31))
    assert report_range(date(2025, 11, 2), None, TODAY) == (date(2025, 11, 2), TODAY)
    # a `from` after today alone is a range of one day, not a backwards one
    assert report_range(date(2026, 1, 5), None, TODAY) == (date(2026, 1, 5), date(2026, 1, 5))
    assert report_range(None, date(1, 1, 2), TODAY) == (date.min, date(1, 1, 2))


def test_limits_name_the_field() -> None:
    with pytest.raises(InvalidInput, match="before from") as backwards:
        report_range(date(2025, 11, 2), date(2025, 11, 1), TODAY)
    assert backwards.value.field == "to"
    first = date(2024, 1, 1)
    assert report_range(first, date.fromordinal(first.toordinal() + MAX_DAYS - 1), TODAY)
    with pytest.raises(InvalidInput, match="at most 731 days") as long:
        report_range(first, date.fromordinal(first.toordinal() + MAX_DAYS), TODAY)
    assert long.value.field == "from"


def test_today_is_the_default_origins_date() -> None:
    rules = load_rules(bundled_rules_path("us_shop.toml"))  # Queens, New York
    assert home_today(rules, datetime(2025, 12, 2, 3, tzinfo=UTC)) == date(2025, 12, 1)
