from datetime import date, timedelta

from tracking_service.estimator.bootstrap import ratio_interval, week_start, weekly_sums


def test_week_start_is_monday() -> None:
    assert week_start(date(2026, 12, 3)) == date(2026, 11, 30)
    assert week_start(date(2026, 11, 30)) == date(2026, 11, 30)


def test_weekly_sums_groups_by_iso_week() -> None:
    days = [date(2026, 11, 30) + timedelta(days=i) for i in range(10)]
    sums = weekly_sums(days, lambda d: d, lambda d: 1.0 if d.day % 2 else 0.0)
    assert [n for _, n in sums] == [7.0, 3.0]


def test_interval_brackets_the_value_and_widens_with_fewer_weeks() -> None:
    # on-time share 0.9 overall, but weeks differ (0.7 .. 1.0)
    weekly = [(7.0, 10.0), (10.0, 10.0), (9.0, 10.0), (10.0, 10.0)]
    few = ratio_interval(weekly)
    many = ratio_interval(weekly * 10)
    assert few.value == many.value == 0.9
    assert few.low is not None and few.high is not None
    assert many.low is not None and many.high is not None
    assert few.low <= 0.9 <= few.high
    assert few.high - few.low > many.high - many.low


def test_one_week_has_no_interval_and_nothing_has_no_value() -> None:
    one = ratio_interval([(3.0, 4.0)])
    assert (one.value, one.low, one.high, one.weeks) == (0.75, None, None, 1)
    assert ratio_interval([]).value is None


def test_same_seed_same_interval() -> None:
    weekly = [(7.0, 10.0), (10.0, 10.0), (9.0, 12.0)]
    assert ratio_interval(weekly, seed=3) == ratio_interval(weekly, seed=3)
