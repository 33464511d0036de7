"""A carrier's answer applied to a shipment's scan history: new events, status, hand-off.

Pure. Carriers answer with their whole history or, when they push, a scan or two, in any
order and more than once; the rules here make the outcome independent of that:
- an event is new only if its dedupe key is unknown (the same answer twice adds nothing);
- the status is the status of the newest event by (final first, then time, then progress), so
  a late, older scan never moves a status backwards and a final status is never undone by a
  scan after it; the raw code shown beside it is that event's;
- the hand-off is the earliest scan showing the parcel with the carrier, the last event the
  newest scan of any kind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from tracking_service.carriers.base import TrackingEvent, TrackingResult
from tracking_service.carriers.status import Status
from tracking_service.tracking.progress import FINAL, HANDED_OFF, rank
from tracking_service.tracking.state import NewEvent, ShipmentState

_LONG_AGO = datetime.min.replace(tzinfo=UTC)
_KEY_MAX = 128  # tracking_events.dedupe_key
_CODE_MAX = 64  # raw codes
_TEXT_MAX = 512  # descriptions


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a shipment stands after an answer, before estimates and delays.

    `status_event_at` is the time of the event the status came from (None: no event gave
    it); `raw_status_code`/`raw_status_description` are the carrier's own words for it.
    """

    status: Status
    raw_status_code: str | None
    raw_status_description: str | None
    status_event_at: datetime | None
    handed_off_at: datetime | None
    delivered_at: datetime | None
    last_event_at: datetime | None
    new_events: tuple[NewEvent, ...]


def stored_key(key: str) -> str:
    """A dedupe key as stored: itself, or a digest when it is longer than the column (a
    digest, not a prefix, so two long keys sharing a prefix stay two events)."""
    if len(key) <= _KEY_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def clip(text: str | None, most: int) -> str | None:
    """Text cut to a column's length (carriers' free text has no length limit)."""
    return None if text is None else text[:most]


StatusKey = tuple[bool, datetime, int, str, str]


def status_key(
    status: Status, at: datetime | None, code: str | None, description: str | None
) -> StatusKey:
    """The order in which scans decide the status: any final status first, then the newest,
    then the most advanced at one instant, then (two scans alike but for their words) the
    carrier's code and text as stored. A total order over what the shipment keeps of the
    winner, so the outcome does not depend on the order scans arrive in."""
    return (
        status in FINAL,
        at or _LONG_AGO,
        rank(status),
        clip(code, _CODE_MAX) or "",
        clip(description, _TEXT_MAX) or "",
    )


def new_event(shipment_id: int, event: TrackingEvent) -> NewEvent:
    """The row of one carrier scan."""
    loc = event.location
    return NewEvent(
        shipment_id=shipment_id,
        dedupe_key=stored_key(event.dedupe_key),
        occurred_at=event.occurred_at,
        status=str(event.status) if event.status is not None else None,
        raw_code=clip(event.raw_code, _CODE_MAX) or "",
        description=clip(event.description, _TEXT_MAX) or "",
        city=clip(loc.city, 128) if loc else None,
        region=clip(loc.region, 64) if loc else None,
        postal_code=clip(loc.postal_code, 16) if loc else None,
        country=clip(loc.country, 2) if loc else None,
        source="carrier",
    )


def progress_after(
    before: ShipmentState, result: TrackingResult, known_keys: frozenset[str]
) -> Progress:
    """The shipment's status, hand-off, delivery and last scan once `result` is applied, and
    the events of it not stored yet (the edge uses `handed_off_at` and `last_event_at` to ask
    the estimator for its re-estimate before calling `plan.plan_update`).

    Events already stored take part in the decisions too: their effect is already in
    `before`, so counting them again changes nothing, and it keeps the rules simple.
    """
    seen: set[str] = set()
    events: list[TrackingEvent] = []
    for event in result.events:
        key = stored_key(event.dedupe_key)
        if key not in seen:
            seen.add(key)
            events.append(event)

    status = before.status
    raw_code = before.raw_status_code
    raw_description = before.raw_status_description
    status_at = before.status_event_at
    best = (
        status_key(status, status_at, raw_code, raw_description) if status_at is not None else None
    )
    for event in events:
        if event.status is None:
            continue
        rival = status_key(event.status, event.occurred_at, event.raw_code, event.description)
        if best is None or rival > best:
            best = rival
            status, status_at = event.status, event.occurred_at
            raw_code, raw_description = rival[3], rival[4]
    if best is None and result.status is not None and status not in FINAL:
        # no scan says anything we know: the carrier's current status is all there is
        status = result.status
        raw_code, raw_description = result.raw_status_code, result.raw_status_description

    handed_off = before.handed_off_at
    last_event = before.last_event_at
    for event in events:
        if last_event is None or event.occurred_at > last_event:
            last_event = event.occurred_at
        if event.status in HANDED_OFF and (handed_off is None or event.occurred_at < handed_off):
            handed_off = event.occurred_at

    delivered = before.delivered_at
    if status == Status.DELIVERED:
        if status_at is not None and best is not None:
            delivered = status_at
        elif delivered is None:
            delivered = result.delivered_at
    else:
        delivered = None

    fresh = tuple(
        sorted(
            (new_event(before.id, e) for e in events if stored_key(e.dedupe_key) not in known_keys),
            key=lambda e: e.occurred_at,
        )
    )
    return Progress(
        status=status,
        raw_status_code=clip(raw_code, _CODE_MAX),
        raw_status_description=clip(raw_description, _TEXT_MAX),
        status_event_at=status_at,
        handed_off_at=handed_off,
        delivered_at=delivered,
        last_event_at=last_event,
        new_events=fresh,
    )
