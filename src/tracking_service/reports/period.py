"""The date range of a report, with its defaults and limits (pure): one rule for the API, the
page and the command."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from tracking_service.errors import InvalidInput
from tracking_service.estimator.rules import Rules
from tracking_service.timezones import zone

DEFAULT_DAYS = 90
MAX_DAYS = 731
"""The longest range a report covers (two years): its orders are read into memory."""


def home_today(rules: Rules, now: datetime) -> date:
    """Today on the default origin's calendar (order dates are the origin's)."""
    return now.astimezone(zone(rules.origins[0].time_zone)).date()


def _shift(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def report_range(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """[from, to], both included: `to` defaults to `today` (or `from` when that is later),
    `from` to DEFAULT_DAYS days ending on `to`. `InvalidInput` naming `to` when it is before
    `from`, naming `from` when the range is longer than MAX_DAYS."""
    if end is None:
        end = max(today, start) if start is not None else today
    if start is None:
        start = _shift(end, -(DEFAULT_DAYS - 1))
    if end < start:
        raise InvalidInput(f"to ({end}) is before from ({start})", field="to")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise InvalidInput(
            f"a report covers at most {MAX_DAYS} days; this range has {days}", field="from"
        )
    return start, end
