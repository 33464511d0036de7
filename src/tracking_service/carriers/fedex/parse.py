"""FedEx Track by Tracking Number answer -> one TrackingOutcome per number (pure, never raises).

Shape (`track-trackingnumbers.json`): `output.completeTrackResults[]`, one entry per inquired
number (`.trackingNumber`), each with `trackResults[]`.

Which track result answers a number: `trackResults` holds several entries for duplicate numbers
(FedEx reuses numbers; told apart by `trackingNumberUniqueId`) and, for multi-piece shipments,
may hold the other pieces. We keep the entries that carry tracking data (no per-entry `error`),
prefer those whose `trackingNumberInfo.trackingNumber` is the inquired number, and among them
the one with the newest scan (the current use of a reused number); failing that, the first.
Other pieces are not merged in: `packageDetails.count`/`sequenceNumber` only describe them.

Per-entry `error` codes: `...NOTFOUND` -> not_found, `TRACKING.TRACKINGNUMBER.INVALID`/`EMPTY`
-> invalid_number. A number the answer does not mention -> bad_response.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
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
from tracking_service.carriers.fedex.mapping import is_attempt_reason, map_code
from tracking_service.carriers.parse_support import (
    aware,
    codes_and_messages,
    country_and_region,
    dedupe_key,
    delivered_scan_at,
    describe,
    dicts,
    dig,
    fail_all,
    failure,
    http_error_message,
    kind_for_http_status,
    local_date,
    location,
    most_recent,
    oldest_first,
    parse_iso,
    settled,
    text,
    unreadable,
    window_spanning,
)

CARRIER = "fedex"
logger = logging.getLogger(__name__)

INVALID_NUMBER_CODES = {"TRACKING.TRACKINGNUMBER.INVALID", "TRACKING.TRACKINGNUMBER.EMPTY"}


def parse_track_response(
    numbers: Sequence[str], http_status: int, body: object
) -> dict[str, TrackingOutcome]:
    """One FedEx answer for a batch: an outcome for every inquired number, never an exception."""
    outcomes: dict[str, TrackingOutcome] = {}
    try:
        entries = _entries_by_number(http_status, body)
    except _WholeAnswerError as error:
        return fail_all(CARRIER, numbers, error.kind, error.message)
    except Exception as exc:
        logger.exception("FedEx answer could not be read")
        return fail_all(CARRIER, numbers, FailureKind.BAD_RESPONSE, unreadable("FedEx answer", exc))
    for number in numbers:
        try:
            outcomes[number] = _outcome(number, entries.get(normalize_number(number)))
        except Exception as exc:  # a parser bug on one number must not fail the batch
            logger.exception("FedEx track result for %s could not be parsed", number)
            outcomes[number] = failure(
                CARRIER, number, FailureKind.BAD_RESPONSE, unreadable("FedEx track result", exc)
            )
    return outcomes


class _WholeAnswerError(Exception):
    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


def _entries_by_number(http_status: int, body: object) -> dict[str, list[Mapping[str, Any]]]:
    if http_status not in (200, 207):
        codes, detail = codes_and_messages(dicts(dig(body, "errors")))
        message = http_error_message("FedEx", http_status, detail)
        kind = kind_for_http_status(http_status)
        if http_status == 400 and codes and codes <= INVALID_NUMBER_CODES:
            kind = FailureKind.INVALID_NUMBER
        raise _WholeAnswerError(kind, message)
    output = dig(body, "output")
    complete = dig(output if isinstance(output, Mapping) else body, "completeTrackResults")
    if not isinstance(complete, list):
        _codes, message = codes_and_messages(dicts(dig(body, "errors")))
        raise _WholeAnswerError(
            FailureKind.BAD_RESPONSE,
            f"FedEx answer has no output.completeTrackResults: {message or describe(body)}",
        )
    entries: dict[str, list[Mapping[str, Any]]] = {}
    secondary: dict[str, list[Mapping[str, Any]]] = {}
    for item in dicts(complete):
        results = dicts(item.get("trackResults"))
        key = normalize_number(item.get("trackingNumber"))
        if not key and results:  # some answers only name the number inside the result
            key = normalize_number(dig(results[0], "trackingNumberInfo", "trackingNumber"))
        if key:
            entries.setdefault(key, []).extend(results)
        # a multi-piece answer may nest another piece's result under the inquired number
        for result in results:
            own = normalize_number(dig(result, "trackingNumberInfo", "trackingNumber"))
            if own and own != key and _has_data(result):
                secondary.setdefault(own, []).append(result)
    for own, results in secondary.items():
        entries.setdefault(own, results)
    return entries


def _has_data(result: Mapping[str, Any]) -> bool:
    """Tracking data we may use: an entry that carries an `error` is a failure even when it
    also carries a status or scans (FedEx fills them with placeholders then)."""
    if isinstance(result.get("error"), Mapping):
        return False
    return isinstance(result.get("latestStatusDetail"), Mapping) or bool(
        dicts(result.get("scanEvents"))
    )


def _outcome(number: str, results: list[Mapping[str, Any]] | None) -> TrackingOutcome:
    if results is None:
        return failure(
            CARRIER, number, FailureKind.BAD_RESPONSE, "FedEx answer does not mention this number"
        )
    with_data = [r for r in results if _has_data(r)]
    if not with_data:
        error = next((r.get("error") for r in results if isinstance(r.get("error"), Mapping)), None)
        return _entry_failure(number, error)
    wanted = normalize_number(number)
    matching = [
        r
        for r in with_data
        if normalize_number(dig(r, "trackingNumberInfo", "trackingNumber")) == wanted
    ] or with_data
    return most_recent([_result(number, r) for r in matching])


def _entry_failure(number: str, error: object) -> TrackingOutcome:
    code = text(dig(error, "code")) or ""
    message = f"FedEx {code}: {text(dig(error, 'message')) or 'no message'}"
    if code.endswith(".NOTFOUND") or code == "TRACKING.DATA.NOTFOUND":
        return failure(CARRIER, number, FailureKind.NOT_FOUND, message)
    if code in INVALID_NUMBER_CODES:
        return failure(CARRIER, number, FailureKind.INVALID_NUMBER, message)
    if not code:
        message = "FedEx track result has neither tracking data nor an error"
    return failure(CARRIER, number, FailureKind.BAD_RESPONSE, message)


def _where(address: object) -> Location | None:
    return location(
        dig(address, "city"),
        dig(address, "stateOrProvinceCode"),
        dig(address, "postalCode"),
        dig(address, "countryCode"),
    )


def _result(number: str, result: Mapping[str, Any]) -> TrackingOutcome:
    events = _events(number, dicts(result.get("scanEvents")))
    latest = result.get("latestStatusDetail")
    if isinstance(latest, Mapping):
        reasons = dicts(latest.get("ancillaryDetails"))
        attempts = text(dig(result, "deliveryDetails", "deliveryAttempts")) or "0"
        attempted = (attempts.isdigit() and int(attempts) > 0) or is_attempt_reason(
            [text(r.get("reason")) for r in reasons],
            [text(r.get("reasonDescription")) for r in reasons],
        )
        derived, code = text(latest.get("derivedCode")), text(latest.get("code"))
        status = map_code(derived, code, attempted=attempted)
        raw_code = derived or code or ""
        raw_text = text(latest.get("description")) or text(latest.get("statusByLocale")) or ""
    elif events:
        newest = events[-1]
        status, raw_code, raw_text = newest.status, newest.raw_code, newest.description
    else:
        return failure(
            CARRIER,
            number,
            FailureKind.BAD_RESPONSE,
            f"FedEx track result has neither a status nor a readable scan: {describe(result)}",
        )
    signed_by = text(dig(result, "deliveryDetails", "signedByName")) or text(
        dig(result, "deliveryDetails", "receivedByName")
    )
    return settled(
        TrackingResult(
            carrier=CARRIER,
            tracking_number=number,
            status=status,
            raw_status_code=raw_code,
            raw_status_description=raw_text,
            events=tuple(events),
            estimated_delivery=_estimate(result),
            delivered_at=_delivered_at(result, events),
            signed_by=signed_by,
        )
    )


def _events(number: str, scans: list[Mapping[str, Any]]) -> list[TrackingEvent]:
    listed: list[TrackingEvent] = []
    for scan in scans:
        where = _where(scan.get("scanLocation"))
        moment = parse_iso(scan.get("date"))
        if moment is None:
            logger.warning("FedEx scan without a usable date for %s: %s", number, scan)
            continue
        instant = aware(moment, *country_and_region(where))
        event_type, derived = text(scan.get("eventType")), text(scan.get("derivedStatusCode"))
        exception_text = text(scan.get("exceptionDescription"))
        attempted = is_attempt_reason([text(scan.get("exceptionCode"))], [exception_text])
        raw_code = event_type or derived or ""
        description = text(scan.get("eventDescription")) or text(scan.get("derivedStatus")) or ""
        if exception_text and exception_text.lower() not in description.lower():
            description = f"{description}: {exception_text}" if description else exception_text
        listed.append(
            TrackingEvent(
                occurred_at=instant,
                status=map_code(event_type, derived, attempted=attempted),
                raw_code=raw_code,
                description=description,
                location=where,
                dedupe_key=dedupe_key(CARRIER, number, instant, raw_code, where),
            )
        )
    return oldest_first(listed)  # FedEx lists newest first


def _window(window: object) -> DeliveryWindow | None:
    return window_spanning((local_date(dig(window, "begins")), local_date(dig(window, "ends"))))


def _dates_of(result: Mapping[str, Any], kind: str) -> list[str]:
    return [
        value
        for entry in dicts(result.get("dateAndTimes"))
        if (text(entry.get("type")) or "").upper() == kind
        and (value := text(entry.get("dateTime"))) is not None
    ]


def _estimate(result: Mapping[str, Any]) -> DeliveryWindow | None:
    """Estimated window, else ESTIMATED_DELIVERY, else COMMITMENT, else the standard transit
    window; dates as FedEx writes them (local to the destination)."""
    window = _window(dig(result, "estimatedDeliveryTimeWindow", "window"))
    if window is not None:
        return window
    for kind in ("ESTIMATED_DELIVERY", "COMMITMENT"):
        dated = window_spanning(map(local_date, _dates_of(result, kind)))
        if dated is not None:
            return dated
    return _window(dig(result, "standardTransitTimeWindow", "window"))


def _delivered_at(result: Mapping[str, Any], events: list[TrackingEvent]) -> datetime | None:
    """ACTUAL_DELIVERY when it has an offset; else the newest delivered scan; else
    ACTUAL_DELIVERY in the zone of the delivery address."""
    actual = next((m for m in map(parse_iso, _dates_of(result, "ACTUAL_DELIVERY")) if m), None)
    if actual is not None and actual.tzinfo is not None:
        return actual
    scanned = delivered_scan_at(events)
    if scanned is not None:
        return scanned
    if actual is None:
        return None
    place = _where(dig(result, "deliveryDetails", "actualDeliveryAddress")) or _where(
        dig(result, "lastUpdatedDestinationAddress")
    )
    return aware(actual, *country_and_region(place))
