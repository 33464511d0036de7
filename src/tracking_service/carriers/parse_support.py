"""Small pure helpers shared by the carrier parsers: safe JSON access, time, keys, failures.

Carrier bodies are untrusted JSON: every accessor here returns `None` (or an empty sequence)
instead of raising when a value has the wrong shape, so a parser only has to decide what a
missing value means.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any

from tracking_service.carriers.base import (
    DeliveryWindow,
    FailureKind,
    Location,
    TrackingEvent,
    TrackingFailure,
    TrackingOutcome,
    TrackingResult,
    normalize_number,
)
from tracking_service.carriers.status import Status
from tracking_service.timezones import zone_or_none, zones_by_country


def dig(value: object, *path: str | int) -> Any:
    """`value[p0][p1]...`, or None as soon as a step does not exist or has the wrong type."""
    current: Any = value
    for step in path:
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return None
            current = current[step]
        else:
            if not isinstance(current, Mapping):
                return None
            current = current.get(step)
    return current


def text(value: object) -> str | None:
    """A stripped non-empty string, or None (numbers are accepted and rendered)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def dicts(value: object) -> list[Mapping[str, Any]]:
    """The mapping items of a JSON array (anything else is dropped)."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def location(
    city: object = None, region: object = None, postal_code: object = None, country: object = None
) -> Location | None:
    """A Location, or None when every part is empty."""
    parts = (text(city), text(region), text(postal_code), text(country))
    if not any(parts):
        return None
    return Location(city=parts[0], region=parts[1], postal_code=parts[2], country=parts[3])


def dedupe_key(
    carrier: str,
    number: str,
    occurred_at: datetime,
    raw_code: str,
    where: Location | None,
    *,
    local: datetime | None = None,
) -> str:
    """Stable across polls: the same scan (instant, code, place) always gives the same key.

    Descriptions are left out on purpose: carriers reword and translate them. `local` (naive)
    replaces the instant for a scan whose zone was guessed: a guess can change between polls,
    the wall time the carrier wrote cannot.
    """
    place = (
        "|".join(
            part or "" for part in (where.city, where.region, where.postal_code, where.country)
        )
        if where
        else ""
    )
    instant = (
        f"local {local.isoformat()}"
        if local is not None
        else occurred_at.astimezone(UTC).isoformat()
    )
    material = "\x1f".join((carrier, normalize_number(number), instant, raw_code, place.upper()))
    return hashlib.sha1(material.encode("utf-8")).hexdigest()


def settled(result: TrackingResult) -> TrackingResult:
    """Only a delivered parcel has a delivery instant: a proof-of-delivery block or a delivery
    date on a parcel whose status is not delivered must not claim one. The estimate stays on a
    delivered result (it tells whether the carrier kept its word); views do not show it
    (`present.visible_estimate`)."""
    if result.status is Status.DELIVERED or result.delivered_at is None:
        return result
    return replace(result, delivered_at=None)


# --- scans, estimates and competing results ------------------------------------------------


def oldest_first(listed: Iterable[TrackingEvent]) -> list[TrackingEvent]:
    """Scans in the carrier's order (newest first) -> oldest first, as `TrackingResult` wants.

    Two scans at the same instant keep the carrier's order reversed: the later listed is older.
    """
    indexed = list(enumerate(listed))
    indexed.sort(key=lambda item: (item[1].occurred_at, -item[0]))
    return [event for _, event in indexed]


def delivered_scan_at(events: Sequence[TrackingEvent]) -> datetime | None:
    """When the newest delivered scan (events oldest first) happened, or None."""
    return next((e.occurred_at for e in reversed(events) if e.status is Status.DELIVERED), None)


def newest_scan_at(result: TrackingResult) -> datetime:
    """When the result's newest scan happened; the earliest possible instant when it has none."""
    return result.events[-1].occurred_at if result.events else datetime.min.replace(tzinfo=UTC)


def most_recent(outcomes: Sequence[TrackingOutcome]) -> TrackingOutcome:
    """Of several candidate answers for one number (a reused number, several services): the
    result with the newest scan; when none is a result, the first failure."""
    results = [outcome for outcome in outcomes if isinstance(outcome, TrackingResult)]
    return max(results, key=newest_scan_at) if results else outcomes[0]


def window_spanning(days: Iterable[date | None]) -> DeliveryWindow | None:
    """The window from the earliest to the latest of the given dates; None when there is none."""
    known = [day for day in days if day]
    if not known:
        return None
    return DeliveryWindow(earliest=min(known), latest=max(known))


# --- time ----------------------------------------------------------------------------------

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2}|[+-]\d{2})?$"
)


def parse_iso(value: object) -> datetime | None:
    """Parse ISO 8601 date or date-time; naive when the carrier gave no offset. None if bad."""
    raw = text(value)
    if raw is None:
        return None
    match = _ISO_RE.match(raw)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
        )
    except ValueError:
        return None
    if offset is None:
        return parsed
    zone = parse_offset(offset)
    if zone is None:
        return None
    return parsed.replace(tzinfo=zone)


def parse_offset(value: object) -> timezone | None:
    """`Z`, `-05:00`, `-0500`, `-05`, `-7:00` -> a fixed timezone, else None."""
    raw = text(value)
    if raw is None:
        return None
    if raw in ("Z", "z"):
        return UTC
    match = re.fullmatch(r"([+-])(\d{1,2}):?(\d{2})?", raw)
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
    if delta >= timedelta(hours=24):
        return None
    return timezone(-delta if sign == "-" else delta)


def local_date(value: object) -> date | None:
    """The calendar date as the carrier wrote it (its local date), from ISO or `YYYYMMDD`."""
    raw = text(value)
    if raw is None:
        return None
    compact = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", raw)
    try:
        if compact:
            return date(int(compact[1]), int(compact[2]), int(compact[3]))
    except ValueError:
        return None
    parsed = parse_iso(raw)
    return parsed.date() if parsed else None


# Country aliases carriers use that are not ISO 3166 codes (DHL's own sample says "UK").
_COUNTRY_ALIASES = {"UK": "GB", "EL": "GR"}

# The usual zone of each US state and territory (a few states span two zones; the zone of most
# of their population is used). Carriers that send a state but no offset need it.
_US_STATE_ZONES = {
    **dict.fromkeys(
        "CT DC DE FL GA IN MA MD ME MI NC NH NJ NY OH PA RI SC VA VT WV".split(), "America/New_York"
    ),
    **dict.fromkeys(
        "AL AR IA IL KS KY LA MN MO MS ND NE OK SD TN TX WI".split(), "America/Chicago"
    ),
    **dict.fromkeys("CO ID MT NM UT WY".split(), "America/Denver"),
    "AZ": "America/Phoenix",
    **dict.fromkeys("CA NV OR WA".split(), "America/Los_Angeles"),
    "AK": "America/Anchorage",
    "HI": "Pacific/Honolulu",
    "PR": "America/Puerto_Rico",
    "VI": "America/St_Thomas",
    "GU": "Pacific/Guam",
    "MP": "Pacific/Saipan",
    "AS": "Pacific/Pago_Pago",
}


def zone_for_place(naive: datetime, country: object, region: object = None) -> tuple[tzinfo, bool]:
    """The zone of a local, offset-less carrier time: (zone, exact).

    US states and territories use their usual zone. Other countries use their zone when every
    zone of the country (tz database `zone.tab`) agrees on the offset at that moment, e.g.
    Germany's two zones always do. Otherwise UTC, with `exact=False` so the caller can say so.
    """
    code = (text(country) or "").upper()
    code = _COUNTRY_ALIASES.get(code, code)
    state = (text(region) or "").upper()
    if code in ("US", "PR", "VI", "GU", "MP", "AS", "") and state in _US_STATE_ZONES:
        zone = zone_or_none(_US_STATE_ZONES[state])
        if zone is not None:
            return zone, True
    if code in ("PR", "VI", "GU", "MP", "AS") and code in _US_STATE_ZONES:
        zone = zone_or_none(_US_STATE_ZONES[code])
        if zone is not None:
            return zone, True
    names = zones_by_country().get(code, ())
    zones = [zone for zone in (zone_or_none(name) for name in names) if zone is not None]
    if zones:
        offsets = {naive.replace(tzinfo=zone).utcoffset() for zone in zones}
        if len(offsets) == 1:
            return zones[0], True
    return UTC, False


def country_and_region(where: Location | None) -> tuple[str | None, str | None]:
    """The two parts of a place that decide its zone (`zone_for_place`, `aware`)."""
    return (where.country, where.region) if where else (None, None)


def aware(naive_or_aware: datetime, country: object = None, region: object = None) -> datetime:
    """Attach the place's zone to a naive carrier time; aware times pass through."""
    if naive_or_aware.tzinfo is not None:
        return naive_or_aware
    zone, _exact = zone_for_place(naive_or_aware, country, region)
    return naive_or_aware.replace(tzinfo=zone)


# --- failures ------------------------------------------------------------------------------


def failure(carrier: str, number: str, kind: FailureKind, message: str) -> TrackingFailure:
    return TrackingFailure(carrier=carrier, tracking_number=number, kind=kind, message=message)


def fail_all(
    carrier: str,
    numbers: Iterable[str],
    kind: FailureKind,
    message: str,
    retry_after: float | None = None,
) -> dict[str, TrackingOutcome]:
    """The same failure for every number (a whole request or answer went wrong)."""
    return {n: TrackingFailure(carrier, n, kind, message, retry_after=retry_after) for n in numbers}


def unreadable(what: str, exc: Exception) -> str:
    """The message of a `bad_response` caused by a parser bug: what could not be read, and why."""
    return f"unreadable {what} ({type(exc).__name__}: {exc})"


def http_error_message(carrier_label: str, http_status: int, detail: str) -> str:
    """`UPS HTTP 400: <detail>`, or just `UPS HTTP 400` when the carrier said nothing."""
    return f"{carrier_label} HTTP {http_status}" + (f": {detail}" if detail else "")


def codes_and_messages(entries: Sequence[Mapping[str, Any]]) -> tuple[set[str], str]:
    """The codes of a carrier's `[{code, message}, ...]` errors or warnings, and their text
    `code: message; ...` ("" when the list is empty)."""
    codes = {code for code in (text(e.get("code")) for e in entries) if code}
    message = "; ".join(f"{text(e.get('code'))}: {text(e.get('message'))}" for e in entries)
    return codes, message


def kind_for_http_status(http_status: int) -> FailureKind:
    """The failure kind of a whole-request HTTP error the carrier-specific rules left over."""
    if http_status in (401, 403):
        return FailureKind.AUTH_FAILED
    if http_status == 429:
        return FailureKind.RATE_LIMITED
    if http_status >= 500:
        return FailureKind.UNAVAILABLE
    return FailureKind.BAD_RESPONSE


def describe(value: object, limit: int = 200) -> str:
    """A short rendering of an unexpected body for a failure message."""
    rendered = repr(value)
    return rendered if len(rendered) <= limit else rendered[: limit - 3] + "..."


def first(values: Iterable[Any]) -> Any:
    """The first value that is not None, else None."""
    return next((value for value in values if value is not None), None)
