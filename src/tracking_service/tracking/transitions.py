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

from dataclasses import dataclass
from datetime import datetime

from tracking_service.carriers.base import TrackingResult
from tracking_service.carriers.status import Status
from tracking_service.tracking.state import NewEvent, ShipmentState


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


def progress_after(
    before: ShipmentState, result: TrackingResult, known_keys: frozenset[str]
) -> Progress:
    """The shipment's status, hand-off, delivery and last scan once `result` is applied, and
    the events of it not stored yet (the edge uses `handed_off_at` and `last_event_at` to ask
    the estimator for its re-estimate before calling `plan.plan_update`)."""
    raise NotImplementedError
