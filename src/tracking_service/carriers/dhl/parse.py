"""DHL Shipment Tracking - Unified answer -> TrackingOutcome (pure, never raises).

Shape (`shipment-tracking-unified-1.4.1.yaml`): `shipments[]`, each with `status`, `events[]`
(newest first), estimates and `details`. HTTP 404 problem+json = unknown number.

Which shipment answers a number: the answer may hold the same number under several services.
We take the shipments whose `id` is the inquired number, else those listing it in
`details.pieceIds` (a piece of a multi-piece shipment), else all; among them the one with the
newest status. When the number is a piece id, events that name other pieces (`pieceIds`) are
left out; events without `pieceIds` concern the whole shipment and are kept.

Times: ISO 8601 whose offset may be missing; then the time is local to the event's place and
the zone comes from the country (or the US state written in `addressLocality`), else UTC, which
is logged as approximate.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
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
from tracking_service.carriers.dhl.mapping import map_status
from tracking_service.carriers.parse_support import (
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
    most_recent,
    oldest_first,
    parse_iso,
    settled,
    text,
    unreadable,
    window_spanning,
    zone_for_place,
)
from tracking_service.carriers.status import Status

CARRIER = "dhl"
logger = logging.getLogger(__name__)

_LOCALITY_STATE = re.compile(r",\s*([A-Z]{2}),\s*US\s*$")


def parse_track_response(tracking_number: str, http_status: int, body: object) -> TrackingOutcome:
    """One DHL answer for one number: a result or a typed failure, never an exception."""
    try:
        return _parse(tracking_number, http_status, body)
    except Exception as exc:
        logger.exception("DHL answer for %s could not be parsed", tracking_number)
        return failure(
            CARRIER, tracking_number, FailureKind.BAD_RESPONSE, unreadable("DHL answer", exc)
        )


def _problem(http_status: int, body: object) -> str:
    parts = [text(dig(body, key)) for key in ("title", "detail")]
    return http_error_message("DHL", http_status, ": ".join(p for p in parts if p))


def _parse(number: str, http_status: int, body: object) -> TrackingOutcome:
    if http_status == 404:
        return failure(CARRIER, number, FailureKind.NOT_FOUND, _problem(http_status, body))
    if http_status not in (200, 207):
        message = _problem(http_status, body)
        kind = kind_for_http_status(http_status)
        if http_status == 400 and "tracking number" in message.lower():
            kind = FailureKind.INVALID_NUMBER
        return failure(CARRIER, number, kind, message)
    shipments = dicts(dig(body, "shipments"))
    if not shipments:
        return failure(
            CARRIER,
            number,
            FailureKind.BAD_RESPONSE,
            f"DHL answer has no shipments: {describe(body)}",
        )
    wanted = normalize_number(number)
    by_id = [s for s in shipments if normalize_number(s.get("id")) == wanted]
    by_piece = [
        s
        for s in shipments
        if wanted in {normalize_number(p) for p in _strings(dig(s, "details", "pieceIds"))}
    ]
    candidates = by_id or by_piece or shipments
    piece = None if by_id or not by_piece else wanted
    return most_recent([_result(number, shipment, piece) for shipment in candidates])


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _place(value: object) -> Location | None:
    address = dig(value, "address")
    locality = text(dig(address, "addressLocality"))
    country = text(dig(address, "countryCode"))
    region = None
    if locality:
        match = _LOCALITY_STATE.search(locality)
        if match:  # "Whittier, CA, US": DHL eCommerce writes city, state, country
            region = match[1]
            locality = locality[: match.start()].strip() or locality
    return location(locality, region, dig(address, "postalCode"), country)


def _instant(value: object, where: Location | None, number: str) -> datetime | None:
    moment = parse_iso(value)
    if moment is None or moment.tzinfo is not None:
        return moment
    zone, exact = zone_for_place(moment, *country_and_region(where))
    if not exact:
        logger.info(
            "DHL time %s for %s has no offset and no single zone: read as UTC", value, number
        )
    return moment.replace(tzinfo=zone)


def _texts(item: Mapping[str, Any]) -> list[str | None]:
    return [text(item.get(k)) for k in ("status", "statusDetailed", "description", "remark")]


def _result(number: str, shipment: Mapping[str, Any], piece: str | None) -> TrackingOutcome:
    return_flag = shipment.get("returnFlag") is True
    events = _events(number, dicts(shipment.get("events")), piece)
    current = shipment.get("status")
    has_status = isinstance(current, Mapping) and bool(
        current.get("statusCode") or current.get("status")
    )
    if isinstance(current, Mapping) and has_status and (piece is None or not events):
        code = text(current.get("statusCode"))
        status = map_status(code, *_texts(current), return_flag=return_flag)
        raw_code = code or ""
        raw_text = (
            text(current.get("status"))
            or text(current.get("statusDetailed"))
            or text(current.get("description"))
        )
    elif events:  # no shipment status, or a piece: its own newest scan is its status
        newest = events[-1]
        status, raw_code, raw_text = newest.status, newest.raw_code, newest.description
        if return_flag:
            status = Status.RETURNED_TO_SENDER
    else:
        return failure(
            CARRIER,
            number,
            FailureKind.BAD_RESPONSE,
            f"DHL shipment has neither a status nor events: {describe(shipment)}",
        )
    delivered_at, signed_by = None, None
    proof = dig(shipment, "details", "proofOfDelivery")
    if status is Status.DELIVERED or isinstance(proof, Mapping):
        destination = _place(shipment.get("destination"))
        delivered_at = _instant(dig(proof, "timestamp"), destination, number)
        if delivered_at is None:
            delivered_at = delivered_scan_at(events)
        signed = dig(proof, "signed")
        given_family = " ".join(
            p for p in (text(dig(signed, "givenName")), text(dig(signed, "familyName"))) if p
        )
        signed_by = text(dig(signed, "name")) or given_family or None
    return settled(
        TrackingResult(
            carrier=CARRIER,
            tracking_number=number,
            status=status,
            raw_status_code=raw_code,
            raw_status_description=raw_text or "",
            events=tuple(events),
            estimated_delivery=_estimate(shipment),
            delivered_at=delivered_at,
            signed_by=signed_by,
        )
    )


def _events(
    number: str, raw_events: list[Mapping[str, Any]], piece: str | None
) -> list[TrackingEvent]:
    """Scans oldest first. `returnFlag` describes the shipment now, so it is not applied here.

    The dedupe key includes DHL's (English) text: the coarse code enum alone would make two
    different scans at the same place and second look the same."""
    listed: list[TrackingEvent] = []
    for raw in raw_events:
        pieces = {normalize_number(p) for p in _strings(raw.get("pieceIds"))}
        if piece and pieces and piece not in pieces:
            continue  # a scan of another piece of the shipment
        where = _place(raw.get("location"))
        instant = _instant(raw.get("timestamp"), where, number)
        if instant is None:
            logger.warning("DHL event without a usable timestamp for %s: %s", number, raw)
            continue
        code = text(raw.get("statusCode")) or ""
        description = text(raw.get("status")) or text(raw.get("statusDetailed")) or ""
        listed.append(
            TrackingEvent(
                occurred_at=instant,
                status=map_status(code, *_texts(raw)),
                raw_code=code,
                description=description,
                location=where,
                dedupe_key=dedupe_key(
                    CARRIER, number, instant, f"{code}|{description.upper()}", where
                ),
            )
        )
    return oldest_first(listed)  # DHL lists newest first


def _estimate(shipment: Mapping[str, Any]) -> DeliveryWindow | None:
    """estimatedDeliveryTimeFrame, else estimatedTimeOfDelivery; dates as DHL writes them."""
    frame = shipment.get("estimatedDeliveryTimeFrame")
    window = window_spanning(
        (local_date(dig(frame, "estimatedFrom")), local_date(dig(frame, "estimatedThrough")))
    )
    if window is not None:
        return window
    return window_spanning([local_date(shipment.get("estimatedTimeOfDelivery"))])
