"""UPS Track API answer -> TrackingOutcome (pure: JSON in, result out, never raises).

Shape (`Tracking.yaml`): `trackResponse.shipment[].package[]`, activities newest first.

Multi-piece: one inquiry can return several packages (and, through the shipment endpoint,
several shipments). The result is built from the package whose `trackingNumber` equals the
inquired number; when none does (e.g. a reference or shipment number), from the first package.
The other packages' scans are not merged: their statuses can differ from the inquired one's.

Not found: UPS answers an unknown number with HTTP 200 and a `TW0001` warning and no package
(observed), or HTTP 404 (spec); both give `not_found`. HTTP 400 `TV1002` is `invalid_number`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tracking_service.carriers.base import (
    DeliveryWindow,
    FailureKind,
    Location,
    TrackingEvent,
    TrackingOutcome,
    TrackingResult,
    normalize_number,
)
from tracking_service.carriers.parse_support import (
    aware,
    codes_and_messages,
    country_and_region,
    dedupe_key,
    delivered_scan_at,
    describe,
    dicts,
    dig,
    failure,
    http_error_message,
    kind_for_http_status,
    local_date,
    location,
    oldest_first,
    parse_offset,
    settled,
    text,
    unreadable,
    zone_for_place,
)
from tracking_service.carriers.status import Status
from tracking_service.carriers.ups.mapping import map_status

CARRIER = "ups"
logger = logging.getLogger(__name__)

NOT_FOUND_WARNINGS = {"TW0001"}
INVALID_NUMBER_ERRORS = {"TV1002"}


def parse_track_response(tracking_number: str, http_status: int, body: object) -> TrackingOutcome:
    """One UPS answer for one inquired number: a result or a typed failure, never an exception."""
    try:
        return _parse(tracking_number, http_status, body)
    except Exception as exc:  # a parser bug must not fail the batch
        logger.exception("UPS answer for %s could not be parsed", tracking_number)
        return failure(
            CARRIER, tracking_number, FailureKind.BAD_RESPONSE, unreadable("UPS answer", exc)
        )


def _parse(number: str, http_status: int, body: object) -> TrackingOutcome:
    if http_status not in (200, 207):
        return _http_error(number, http_status, body)
    shipments = dicts(dig(body, "trackResponse", "shipment"))
    if not shipments:
        return failure(
            CARRIER,
            number,
            FailureKind.BAD_RESPONSE,
            f"UPS answer has no trackResponse.shipment: {describe(body)}",
        )
    packages = [package for shipment in shipments for package in dicts(shipment.get("package"))]
    if not packages:
        warnings = [w for shipment in shipments for w in dicts(shipment.get("warnings"))]
        codes, message = codes_and_messages(warnings)
        message = message or "no package in the answer"
        if codes & NOT_FOUND_WARNINGS:
            return failure(CARRIER, number, FailureKind.NOT_FOUND, f"UPS: {message}")
        return failure(CARRIER, number, FailureKind.BAD_RESPONSE, f"UPS: {message}")
    return _result(number, _pick_package(number, packages))


def _http_error(number: str, http_status: int, body: object) -> TrackingOutcome:
    codes, detail = codes_and_messages(dicts(dig(body, "response", "errors")))
    message = http_error_message("UPS", http_status, detail)
    if http_status == 404:
        return failure(CARRIER, number, FailureKind.NOT_FOUND, message)
    if http_status == 400 and codes & INVALID_NUMBER_ERRORS:
        return failure(CARRIER, number, FailureKind.INVALID_NUMBER, message)
    return failure(CARRIER, number, kind_for_http_status(http_status), message)


def _pick_package(number: str, packages: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    wanted = normalize_number(number)
    for package in packages:
        if normalize_number(package.get("trackingNumber")) == wanted:
            return package
    return packages[0]


def _result(number: str, package: Mapping[str, Any]) -> TrackingOutcome:
    activities = dicts(package.get("activity"))
    events = _events(number, activities)
    current = package.get("currentStatus")
    if isinstance(current, Mapping) and (current.get("type") or current.get("statusCode")):
        status = _map(current)
        raw_code = _raw_code(current)
        raw_text = text(current.get("description")) or text(
            current.get("simplifiedTextDescription")
        )
    elif events:
        newest = events[-1]
        status, raw_code, raw_text = newest.status, newest.raw_code, newest.description
    else:
        return failure(
            CARRIER,
            number,
            FailureKind.BAD_RESPONSE,
            f"UPS package has neither a current status nor activities: {describe(package)}",
        )
    signed_by = text(dig(package, "deliveryInformation", "receivedBy"))
    return settled(
        TrackingResult(
            carrier=CARRIER,
            tracking_number=number,
            status=status,
            raw_status_code=raw_code,
            raw_status_description=raw_text or "",
            events=tuple(events),
            estimated_delivery=_estimate(package),
            delivered_at=_delivered_at(package, events),
            signed_by=signed_by,
        )
    )


def _raw_code(status: Mapping[str, Any]) -> str:
    """The 3-digit statusCode (what the mapping reads first), else the activity code or type."""
    return (
        text(status.get("statusCode")) or text(status.get("code")) or text(status.get("type")) or ""
    )


def _events(number: str, activities: list[Mapping[str, Any]]) -> list[TrackingEvent]:
    timed: list[tuple[Mapping[str, Any], Location | None, datetime, bool]] = []
    for activity in activities:
        address = dig(activity, "location", "address")
        where = location(
            dig(address, "city"),
            dig(address, "stateProvince"),
            dig(address, "postalCode"),
            dig(address, "countryCode") or dig(address, "country"),
        )
        found = _activity_instant(activity, where)
        if found is None:
            logger.warning("UPS activity without a usable time for %s: %s", number, activity)
            continue
        timed.append((activity, where, found[0], found[1]))
    # A scan with neither GMT time nor offset in a multi-zone country (e.g. "US" alone) borrows
    # the zone of the nearest scan of the same package whose zone is known.
    known = [(i, item[2].tzinfo) for i, item in enumerate(timed) if item[3]]
    listed: list[TrackingEvent] = []
    for index, (activity, where, when, exact) in enumerate(timed):
        instant = when
        if not exact and known:
            zone = min(known, key=lambda pair: abs(pair[0] - index))[1]
            instant = when.replace(tzinfo=zone)
        status_obj = activity.get("status")
        status_obj = status_obj if isinstance(status_obj, Mapping) else {}
        raw_code = _raw_code(status_obj)
        listed.append(
            TrackingEvent(
                occurred_at=instant,
                status=_map(status_obj),
                raw_code=raw_code,
                description=text(status_obj.get("description")) or "",
                location=where,
                # A borrowed zone can change with the next answer's scans: the key of such a
                # scan is its local wall time, which UPS never changes.
                dedupe_key=dedupe_key(
                    CARRIER,
                    number,
                    instant,
                    raw_code,
                    where,
                    local=None if exact else when.replace(tzinfo=None),
                ),
            )
        )
    return oldest_first(listed)  # UPS lists newest first


def _map(status: Mapping[str, Any]) -> Status | None:
    return map_status(
        text(status.get("type")), text(status.get("statusCode")), text(status.get("code"))
    )


def _hhmmss(value: object) -> tuple[int, int, int] | None:
    raw = text(value)
    if raw is None or not raw.isdigit() or len(raw) > 6:
        return None
    padded = raw.zfill(6)  # gmtTime may drop its leading zero: "74700" is 07:47:00
    hour, minute, second = int(padded[:2]), int(padded[2:4]), int(padded[4:])
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


def _at(day_value: object, time_value: object) -> datetime | None:
    day = local_date(day_value)
    clock = _hhmmss(time_value) if text(time_value) is not None else (0, 0, 0)
    if day is None or clock is None:
        return None
    return datetime(day.year, day.month, day.day, *clock)


def _activity_instant(
    activity: Mapping[str, Any], where: Location | None
) -> tuple[datetime, bool] | None:
    """(instant, exact): GMT date+time; else local date+time at gmtOffset; else the place's zone."""
    gmt = _at(activity.get("gmtDate"), activity.get("gmtTime"))
    if gmt is not None and text(activity.get("gmtTime")) is not None:
        return gmt.replace(tzinfo=UTC), True
    local = _at(activity.get("date"), activity.get("time"))
    if local is None:
        return None
    offset = parse_offset(activity.get("gmtOffset"))
    if offset is not None:
        return local.replace(tzinfo=offset), True
    zone, exact = zone_for_place(local, *country_and_region(where))
    return local.replace(tzinfo=zone), exact


def _estimate(package: Mapping[str, Any]) -> DeliveryWindow | None:
    """Rescheduled delivery date, else scheduled: one local date (UPS times do not cross days)."""
    by_type: dict[str, Any] = {}
    for entry in dicts(package.get("deliveryDate")):
        kind = (text(entry.get("type")) or "").upper()
        day = local_date(entry.get("date"))
        if kind and day is not None:
            by_type.setdefault(kind, day)
    day = by_type.get("RDD") or by_type.get("SDD")
    if day is None:
        return None
    return DeliveryWindow(earliest=day, latest=day)


def _delivered_at(package: Mapping[str, Any], events: list[TrackingEvent]) -> datetime | None:
    """The newest delivered scan's instant; else the DEL date and time at the scans' offset."""
    scanned = delivered_scan_at(events)
    if scanned is not None:
        return scanned
    day = None
    for entry in dicts(package.get("deliveryDate")):
        if (text(entry.get("type")) or "").upper() == "DEL":
            day = text(entry.get("date"))
    if day is None:
        return None
    delivery_time = package.get("deliveryTime")
    end = None
    if isinstance(delivery_time, Mapping) and (text(delivery_time.get("type")) or "") == "DEL":
        end = delivery_time.get("endTime")
    local = _at(day, end)
    if local is None:
        return None
    offsets = [parse_offset(a.get("gmtOffset")) for a in dicts(package.get("activity"))]
    offset = next((o for o in offsets if o is not None), None)
    if offset is not None:
        return local.replace(tzinfo=offset)
    place = next((e.location for e in reversed(events) if e.location), None)
    return aware(local, place.country, place.region) if place else local.replace(tzinfo=UTC)


__all__ = ["parse_track_response"]
