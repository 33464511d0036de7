"""Quiet hours: no customer email at night in the customer's time zone.

Pure. An email due in the customer's quiet hours (from `quiet_from_hour` in the evening to
`morning_hour` the next morning, local time) waits until `morning_hour`; one due outside them
is sent at once. The zone is the destination's (`orders.dest_tz`); None or a name the tz
database does not know is read as UTC, never an error (a misfiled zone must not stop email).

Local hours are wall-clock hours, so a DST change moves the UTC instant of the morning and
not its local hour. A morning hour that does not exist on a spring-forward day (02:00 in the
US) is read with the offset before the change, which lands just after the gap; one that
exists twice on a fall-back day is its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

from tracking_service.timezones import zone_or_none


def is_quiet(hour: int, quiet_from_hour: int, morning_hour: int) -> bool:
    """Whether a local hour of the day falls in the quiet hours. `quiet_from_hour` after
    `morning_hour` (21 and 8): the span crosses midnight; before it (1 and 6): the span lies
    within one night; equal: there are no quiet hours."""
    if quiet_from_hour == morning_hour:
        return False
    if quiet_from_hour > morning_hour:
        return hour >= quiet_from_hour or hour < morning_hour
    return quiet_from_hour <= hour < morning_hour


def not_before(
    at: datetime, tz: str | None, quiet_from_hour: int, morning_hour: int
) -> datetime | None:
    """None: an email due at `at` may go now; else the UTC instant of the next local
    `morning_hour` in zone `tz` (None or unknown: UTC), when it may go."""
    where: tzinfo = (zone_or_none(tz) if tz else None) or UTC
    local = at.astimezone(where)
    if not is_quiet(local.hour, quiet_from_hour, morning_hour):
        return None
    day = local.date()
    if local.hour >= morning_hour:  # the evening: tomorrow's morning
        day += timedelta(days=1)
    morning = datetime.combine(day, time(morning_hour), where).astimezone(UTC)
    return morning if morning > at else None
