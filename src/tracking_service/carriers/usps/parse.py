"""USPS Tracking 3.2 answer -> one TrackingOutcome per number (pure, never raises).

Shape (`tracking-v3r2.yaml`): HTTP 200 is an array of tracking details; HTTP 207 an array that
mixes `{"statusCode": "200", ...detail}` and `{"statusCode": "404", "trackingNumber", "error"}`.
Elements are matched to the inquired numbers by `trackingNumber`. The legacy v3 single object
(`GET /tracking/v3/tracking/{n}`) is read too.

USPS message codes (tracking-error-codes.csv): 150001/150002/150003/150009 (and 150013) say
"no status yet": a `pending` result for a number the caller still considers fresh, `not_found`
for the numbers it passes in `stale` (e.g. registered days ago and still unknown).
150004/150008 -> not_found; 150006/150007/150010/150011 (not a trackable USPS item number) ->
invalid_number; 150012 (fraudulent postage: USPS holds the item, shows no tracking) -> an
`exception` result. Another 404 element -> not_found.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tracking_service.carriers.base import (
    DeliveryWindow,
    FailureKind,
    TrackingEvent,
    TrackingOutcome,
    TrackingResult,
    normalize_number,
)
from tracking_service.carriers.parse_support import (
    aware,
    dedupe_key,
    describe,
    dicts,
    dig,
    fail_all,
    failure,
    kind_for_http_status,
    local_date,
    location,
    oldest_first,
    parse_iso,
    parse_offset,
    settled,
    text,
    unreadable,
)
from tracking_service.carriers.status import Status
from tracking_service.carriers.usps.mapping import DELIVERED_EVENT_CODES, map_event

CARRIER = "usps"
logger = logging.getLogger(__name__)

NO_STATUS_YET = frozenset({"150001", "150002", "150003", "150009", "150013"})
NOT_FOUND_CODES = frozenset({"150004", "150008"})
INVALID_NUMBER_CODES = frozenset({"150006", "150007", "150010", "150011"})
FRAUDULENT_POSTAGE = "150012"
_MESSAGE_CODE = re.compile(r"\b150\d{3}\b")


def parse_track_response(
    numbers: Sequence[str], http_status: int, body: object, *, stale: Collection[str] = ()
) -> dict[str, TrackingOutcome]:
    """One USPS answer for a batch: an outcome for every inquired number, never an exception.

    `stale`: numbers the caller no longer considers fresh; "no status yet" becomes not_found.
    """
    stale_keys = {normalize_number(n) for n in stale}
    try:
        if http_status in (200, 207):
            return _parse_elements(numbers, body, stale_keys)
        return _parse_whole_error(numbers, http_status, body, stale_keys)
    except Exception as exc:  # a parser bug must not fail the caller
        logger.exception("USPS answer could not be parsed")
        return fail_all(CARRIER, numbers, FailureKind.BAD_RESPONSE, unreadable("USPS answer", exc))


def _parse_elements(
    numbers: Sequence[str], body: object, stale: set[str]
) -> dict[str, TrackingOutcome]:
    if isinstance(body, Mapping) and "trackingNumber" in body:
        body = [body]  # legacy v3 single detail
    if not isinstance(body, list):
        message = f"USPS answer is not an array of tracking details: {describe(body)}"
        return fail_all(CARRIER, numbers, FailureKind.BAD_RESPONSE, message)
    by_number: dict[str, Mapping[str, Any]] = {}
    for item in dicts(body):
        key = normalize_number(item.get("trackingNumber"))
        if key:
            by_number.setdefault(key, item)
    outcomes: dict[str, TrackingOutcome] = {}
    for number in numbers:
        key = normalize_number(number)
        element = by_number.get(key)
        try:
            if element is None:
                outcomes[number] = failure(
                    CARRIER,
                    number,
                    FailureKind.BAD_RESPONSE,
                    "USPS answer does not mention this number",
                )
            elif _is_error_element(element):
                status = text(element.get("statusCode")) or "404"
                outcomes[number] = _classify_error(number, status, element, key in stale)
            else:
                outcomes[number] = _detail(number, element)
        except Exception as exc:  # one bad element must not fail the batch
            logger.exception("USPS element for %s could not be parsed", number)
            outcomes[number] = failure(
                CARRIER, number, FailureKind.BAD_RESPONSE, unreadable("USPS tracking detail", exc)
            )
    return outcomes


def _is_error_element(element: Mapping[str, Any]) -> bool:
    status = text(element.get("statusCode"))
    return (status is not None and status != "200") or isinstance(element.get("error"), Mapping)


def _error_codes_and_message(body: object) -> tuple[set[str], str]:
    error = dig(body, "error")
    parts = [text(dig(error, "code")), text(dig(error, "message"))]
    for item in dicts(dig(error, "errors")):
        parts += [text(item.get(k)) for k in ("status", "code", "title", "detail")]
    found = [p for p in parts if p]
    codes = {p for p in found if _MESSAGE_CODE.fullmatch(p)}
    codes |= {m for p in found for m in _MESSAGE_CODE.findall(p)}
    message = "; ".join(dict.fromkeys(found)) or describe(body)
    return codes, message


def _classify_error(number: str, http_status: str, body: object, stale: bool) -> TrackingOutcome:
    codes, message = _error_codes_and_message(body)
    message = f"USPS {http_status}: {message}"
    if codes & NO_STATUS_YET:
        code = min(codes & NO_STATUS_YET)
        if stale:
            return failure(CARRIER, number, FailureKind.NOT_FOUND, message)
        return _bare_result(number, Status.PENDING, code, message)
    if FRAUDULENT_POSTAGE in codes:
        return _bare_result(number, Status.EXCEPTION, FRAUDULENT_POSTAGE, message)
    if codes & NOT_FOUND_CODES:
        return failure(CARRIER, number, FailureKind.NOT_FOUND, message)
    if codes & INVALID_NUMBER_CODES:
        return failure(CARRIER, number, FailureKind.INVALID_NUMBER, message)
    if http_status == "404":
        return failure(CARRIER, number, FailureKind.NOT_FOUND, message)
    if http_status in ("401", "403", "429") or http_status.startswith("5"):
        return failure(CARRIER, number, kind_for_http_status(int(http_status)), message)
    return failure(CARRIER, number, FailureKind.BAD_RESPONSE, message)


def _parse_whole_error(
    numbers: Sequence[str], http_status: int, body: object, stale: set[str]
) -> dict[str, TrackingOutcome]:
    """A non-2xx answer. A 400/404 about one number (USPS names it, or it was alone) is that
    number's answer; otherwise every number gets the request's failure."""
    _codes, message = _error_codes_and_message(body)
    if http_status not in (400, 404):
        kind = kind_for_http_status(http_status)
        return fail_all(CARRIER, numbers, kind, f"USPS HTTP {http_status}: {message}")
    outcomes: dict[str, TrackingOutcome] = {}
    for number in numbers:
        about_it = len(numbers) == 1 or normalize_number(number) in normalize_number(message)
        if about_it:
            key = normalize_number(number)
            outcomes[number] = _classify_error(number, str(http_status), body, key in stale)
        else:
            outcomes[number] = failure(
                CARRIER,
                number,
                FailureKind.BAD_RESPONSE,
                f"USPS rejected the request (HTTP {http_status}): {message}",
            )
    return outcomes


def _bare_result(number: str, status: Status, code: str, message: str) -> TrackingResult:
    return TrackingResult(
        carrier=CARRIER,
        tracking_number=number,
        status=status,
        raw_status_code=code,
        raw_status_description=message,
    )


def _detail(number: str, detail: Mapping[str, Any]) -> TrackingOutcome:
    events, by_event = _events(number, dicts(detail.get("trackingEvents")))
    category = text(detail.get("statusCategory"))
    if events:
        newest = events[-1]
        status = map_event(newest.raw_code, category)
        raw_code = newest.raw_code or category or ""
        raw_text = text(detail.get("status")) or newest.description
    elif category or text(detail.get("status")):
        status = map_event(None, category)
        raw_code = category or ""
        raw_text = text(detail.get("status")) or text(detail.get("statusSummary")) or ""
    else:
        return failure(
            CARRIER,
            number,
            FailureKind.BAD_RESPONSE,
            f"USPS tracking detail has neither events nor a status: {describe(detail)}",
        )
    delivered_at, signed_by = None, None
    for event in reversed(events):
        if event.raw_code in DELIVERED_EVENT_CODES:
            source = by_event[event.dedupe_key]
            delivered_at = event.occurred_at
            signed_by = (
                text(source.get("recipientName"))
                or text(source.get("name"))
                or text(source.get("firm"))
            )
            break
    return settled(
        TrackingResult(
            carrier=CARRIER,
            tracking_number=number,
            status=status,
            raw_status_code=raw_code,
            raw_status_description=raw_text or "",
            events=tuple(events),
            estimated_delivery=_estimate(detail.get("deliveryDateExpectation")),
            delivered_at=delivered_at,
            signed_by=signed_by,
        )
    )


def _event_instant(event: Mapping[str, Any]) -> datetime | None:
    """GMTTimestamp is the instant; else eventTimestamp with its offset, or with GMTOffset, or in
    the zone of the event's state."""
    gmt = parse_iso(event.get("GMTTimestamp"))
    if gmt is not None:
        return gmt if gmt.tzinfo is not None else gmt.replace(tzinfo=UTC)
    local = parse_iso(event.get("eventTimestamp"))
    if local is None:
        return None
    if local.tzinfo is not None:
        return local
    offset = parse_offset(event.get("GMTOffset"))
    if offset is not None:
        return local.replace(tzinfo=offset)
    return aware(local, text(event.get("eventCountry")) or "US", event.get("eventState"))


def _events(
    number: str, raw_events: list[Mapping[str, Any]]
) -> tuple[list[TrackingEvent], dict[str, Mapping[str, Any]]]:
    listed: list[TrackingEvent] = []
    sources: dict[str, Mapping[str, Any]] = {}
    for raw in raw_events:
        instant = _event_instant(raw)
        if instant is None:
            logger.warning("USPS event without a usable time for %s: %s", number, raw)
            continue
        where = location(
            raw.get("eventCity"),
            raw.get("eventState"),
            raw.get("eventZIPCode") or raw.get("eventZIP"),
            raw.get("eventCountry"),
        )
        raw_code = text(raw.get("eventCode")) or ""
        event = TrackingEvent(
            occurred_at=instant,
            status=map_event(raw_code) if raw_code else None,
            raw_code=raw_code,
            description=text(raw.get("eventType")) or "",
            location=where,
            dedupe_key=dedupe_key(CARRIER, number, instant, raw_code, where),
        )
        sources[event.dedupe_key] = raw
        listed.append(event)
    return oldest_first(listed), sources  # USPS lists newest first


def _estimate(expectation: object) -> DeliveryWindow | None:
    """Predicted, else expected, else guaranteed date (a text like "3 Business Days" is no date)."""
    for field in ("predictedDeliveryDate", "expectedDeliveryDate", "guaranteedDeliveryDate"):
        day = local_date(dig(expectation, field))
        if day is not None:
            return DeliveryWindow(earliest=day, latest=day)
    return None
