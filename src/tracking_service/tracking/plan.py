"""What to write for a shipment: a carrier's answer, a check without a scan, a cancellation.

The three entry points of the pipeline's pure core. Each takes the states as loaded (before),
the instant `now` (from the service's clock; nothing here reads a clock) and the config, and
answers a `ShipmentUpdate` (or a `CancelPlan`) that the edge writes in one transaction. Every
rule lives in the modules this one composes: `transitions` (events, status, hand-off and
delivery), `delays`, `cadence`, `messages`, `progress` (the order's status).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tracking_service.carriers.base import TrackingFailure, TrackingResult
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.state import (
    CancelPlan,
    Estimate,
    OrderState,
    ShipmentState,
    ShipmentUpdate,
)


def plan_update(
    before: ShipmentState,
    order: OrderState,
    outcome: TrackingResult | TrackingFailure,
    known_keys: frozenset[str],
    now: datetime,
    reestimated: Estimate | None,
    config: TrackingConfig,
) -> ShipmentUpdate:
    """Apply one carrier answer (a poll's or a push's) to a shipment.

    `known_keys` are the dedupe keys of the events already stored for the shipment.
    `reestimated` is the estimator's re-estimate from the hand-off or the last scan after this
    answer (the edge computes it from `transitions.progress_after(before, outcome, known_keys)`;
    None when there is none). A result stores its new events, moves the status to the newest
    event's (never backwards for a late, older scan; final statuses win), re-estimates, checks
    the delay reasons and plans the next poll; a failure backs off, except `not_found` while
    nothing was scanned yet, which is `pending` (no failure counted) until `expiry_days` after
    registration, then `expired`. A cancelled shipment plans nothing. Applying the same answer
    again (same `now`) plans no change.
    """
    raise NotImplementedError


def plan_check(
    before: ShipmentState,
    order: OrderState,
    now: datetime,
    config: TrackingConfig,
) -> ShipmentUpdate:
    """The delay check without a scan, for the periodic job: `promise_missed` once the promised
    latest date has passed at the destination undelivered, `stalled` after too long without a
    scan, and expiry of a shipment still `pending` `expiry_days` after registration. Does not
    touch the polling schedule (except expiry, which stops it)."""
    raise NotImplementedError


def plan_cancel(
    order: OrderState,
    shipments: Sequence[ShipmentState],
    now: datetime,
    config: TrackingConfig,
    *,
    shipment_id: int | None = None,
) -> CancelPlan:
    """Cancel a whole order (`shipment_id` None) or one of its shipments.

    `shipments` are the order's shipments (all of them; those already cancelled are skipped).
    Each shipment stopped gets `cancelled_at`, `next_poll_at` None, a service event
    (`service:cancelled`) and a `shipment.status_changed` message whose payload says
    `"cancelled": true`; the order gets `cancelled` (whole order) or its status derived from
    the shipments left, with `order.status_changed` when that changes.
    """
    raise NotImplementedError
