"""What to write for a shipment: a carrier's answer, a check without a scan, a cancellation.

The three entry points of the pipeline's pure core. Each takes the states as loaded (before),
the instant `now` (from the service's clock; nothing here reads a clock) and the config, and
answers a `ShipmentUpdate` (or a `CancelPlan`) that the edge writes in one transaction. Every
rule lives in the modules this one composes: `transitions` (events, status, hand-off and
delivery), `delays`, `cadence`, `messages`, `progress` (the order's status).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from tracking_service.carriers.base import FailureKind, TrackingFailure, TrackingResult
from tracking_service.carriers.status import Status
from tracking_service.tracking.cadence import next_poll_at
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.delays import DelayFacts, delay_reason
from tracking_service.tracking.messages import order_messages, shipment_messages
from tracking_service.tracking.progress import FINAL, order_status
from tracking_service.tracking.state import (
    POLL_BOOKKEEPING,
    CancelPlan,
    Estimate,
    NewEvent,
    OrderState,
    OutboxMessage,
    Revision,
    ShipmentState,
    ShipmentUpdate,
    column_changes,
)
from tracking_service.tracking.transitions import clip, progress_after

CANCELLED_KEY = "service:cancelled"
EXPIRED_KEY = "service:expired"
_ERROR_MAX = 512  # shipments.last_poll_error


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

    The estimate is the carrier's window when this answer gives one; else the carrier's last
    window (an answer without one, such as a pushed scan, does not take it back); else
    `reestimated`; else the order's promise. It no longer moves once the status is final. A
    pushed answer counts as a poll: the next poll is planned from it. A new estimate is a
    `revision` of the promise (see `_revision`).
    """
    if before.cancelled_at is not None:
        return _nothing(before, order)
    if isinstance(outcome, TrackingFailure):
        return _failure(before, order, outcome, now, config)
    progress = progress_after(before, outcome, known_keys)
    if progress.status in FINAL:
        estimate = before.estimate or order.promise
    elif outcome.estimated_delivery is not None:
        window = outcome.estimated_delivery
        estimate = Estimate(window.earliest, window.latest, "carrier")
    elif before.estimate is not None and before.estimate.source == "carrier":
        estimate = before.estimate  # the carrier's last word stands until it gives another
    else:
        estimate = reestimated or order.promise
    moved = progress.status != before.status
    fields: dict[str, Any] = {
        "status": progress.status,
        "raw_status_code": progress.raw_status_code,
        "raw_status_description": progress.raw_status_description,
        "status_changed_at": now if moved else before.status_changed_at,
        "status_event_at": progress.status_event_at,
        "estimate": estimate,
        "handed_off_at": progress.handed_off_at,
        "delivered_at": progress.delivered_at
        or (now if progress.status == Status.DELIVERED else None),
        "last_event_at": progress.last_event_at,
        "last_event_city": _last_city(before, progress.new_events, progress.last_event_at),
        "last_polled_at": now,
        "poll_failures": 0,
        "last_poll_error": None,
    }
    update = _finish(before, fields, order, now, config, progress.new_events, poll=True)
    revision = _revision(before.estimate, estimate, progress.handed_off_at, progress.last_event_at)
    return update if revision is None else replace(update, revision=revision)


def _revision(
    before: Estimate | None,
    after: Estimate,
    handed_off_at: datetime | None,
    last_event_at: datetime | None,
) -> Revision | None:
    """The ledger's record of a changed estimate (None: unchanged, or only the promise copied
    onto a shipment that had no estimate). Its kind is what the new estimate rests on: the
    carrier's own date, else the re-estimate from the last scan after the hand-off (`scan`,
    the scan `tracking.store` re-estimates from) or from the hand-off itself."""
    if after == before or (before is None and after.source == "promise"):
        return None
    if after.source == "carrier":
        kind = "carrier"
    elif handed_off_at is not None and last_event_at is not None and last_event_at > handed_off_at:
        kind = "scan"
    else:
        kind = "handoff"
    return Revision(kind, after.earliest, after.latest, after.source)


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
    if before.cancelled_at is not None:
        return _nothing(before, order)
    if _expiry_due(before, now, config):
        return _expire(before, order, now, config)
    return _finish(before, {}, order, now, config, ())


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
    targets = [
        s
        for s in shipments
        if s.cancelled_at is None and (shipment_id is None or s.id == shipment_id)
    ]
    whole = shipment_id is None
    if not targets and (not whole or order.cancelled_at is not None):
        return CancelPlan(shipments=(), order_after=order)
    stopped = {s.id for s in targets}
    statuses = {s.id: s.status for s in shipments if s.cancelled_at is None and s.id not in stopped}
    cancelled_at = order.cancelled_at or (now if whole else None)
    derived = order_status(statuses.values(), cancelled=cancelled_at is not None)
    order_after = replace(
        order,
        status=derived,
        cancelled_at=cancelled_at,
        shipment_statuses=MappingProxyType(statuses),
    )
    updates: list[ShipmentUpdate] = []
    for s in targets:
        after = replace(s, cancelled_at=now, next_poll_at=None)
        event = _service_event(s.id, CANCELLED_KEY, now, None, "Cancelled by the shop")
        messages = shipment_messages(s, after, order_after, now, order)
        after = replace(after, sequence=s.sequence + len(messages))
        updates.append(
            ShipmentUpdate(
                shipment_id=s.id,
                order_pk=s.order_pk,
                after=after,
                order_after=order_after,
                new_events=(event,),
                shipment_changes=_with_updated_at(column_changes(s, after), now, visible=True),
                messages=messages,
            )
        )
    cause = targets[0] if len(targets) == 1 and not whole else None
    cause_after = updates[0].after if cause is not None else None
    o_messages = order_messages(order, order_after, now, cause_after, cause)
    order_after = replace(order_after, sequence=order.sequence + len(o_messages))
    return CancelPlan(
        shipments=tuple(replace(u, order_after=order_after) for u in updates),
        order_after=order_after,
        order_changes=_order_changes(order, order_after, now),
        order_messages=o_messages,
    )


def _last_city(
    before: ShipmentState, new_events: Sequence[NewEvent], last_event_at: datetime | None
) -> str | None:
    """The city of the newest scan: a new one's when a new scan is the newest, else the one
    known before."""
    for e in reversed(new_events):
        if e.occurred_at == last_event_at and e.source == "carrier":
            return e.city
    return before.last_event_city


def _nothing(before: ShipmentState, order: OrderState) -> ShipmentUpdate:
    return ShipmentUpdate(
        shipment_id=before.id, order_pk=before.order_pk, after=before, order_after=order
    )


def _failure(
    before: ShipmentState,
    order: OrderState,
    failure: TrackingFailure,
    now: datetime,
    config: TrackingConfig,
) -> ShipmentUpdate:
    """A carrier that does not know a number nobody scanned yet is normal (the label has not
    reached it): `pending`, polled at the pending cadence, until the expiry. Anything else is a
    failure: counted, and the next poll backs off."""
    unseen = before.status == Status.PENDING and before.last_event_at is None
    if failure.kind == FailureKind.NOT_FOUND and unseen:
        if _expiry_due(before, now, config):
            return _expire(before, order, now, config)
        fields = {"last_polled_at": now, "poll_failures": 0, "last_poll_error": None}
        return _finish(before, fields, order, now, config, (), poll=True)
    fields = {
        "last_polled_at": now,
        "poll_failures": before.poll_failures + 1,
        "last_poll_error": clip(f"{failure.kind}: {failure.message}", _ERROR_MAX),
    }
    return _finish(
        before, fields, order, now, config, (), poll=True, retry_after=failure.retry_after
    )


def _expiry_due(s: ShipmentState, now: datetime, config: TrackingConfig) -> bool:
    unseen = s.status == Status.PENDING and s.last_event_at is None
    return unseen and now >= s.created_at + timedelta(days=config.expiry_days)


def _expire(
    before: ShipmentState, order: OrderState, now: datetime, config: TrackingConfig
) -> ShipmentUpdate:
    """The carrier never saw the parcel: `expired` (final), with a service event saying so."""
    text = f"No carrier scan {config.expiry_days} days after registration"
    event = _service_event(before.id, EXPIRED_KEY, now, Status.EXPIRED, text)
    fields = {
        "status": Status.EXPIRED,
        "raw_status_code": None,
        "raw_status_description": text,
        "status_changed_at": now,
        "status_event_at": now,
        "expired_at": now,
        "next_poll_at": None,
    }
    return _finish(before, fields, order, now, config, (event,))


def _service_event(
    shipment_id: int, key: str, now: datetime, status: Status | None, text: str
) -> NewEvent:
    return NewEvent(
        shipment_id=shipment_id,
        dedupe_key=key,
        occurred_at=now,
        status=str(status) if status is not None else None,
        raw_code=key.removeprefix("service:"),
        description=text,
        source="service",
    )


def _finish(
    before: ShipmentState,
    fields: dict[str, Any],
    order: OrderState,
    now: datetime,
    config: TrackingConfig,
    new_events: tuple[NewEvent, ...],
    *,
    poll: bool = False,
    retry_after: float | None = None,
) -> ShipmentUpdate:
    """The steps every update ends with, over the shipment's changed `fields`: the next poll
    (`poll`: this was a poll), the delay, the order's status, the messages and the sequences
    they use, and the columns that changed. Builds each after-state once: this runs for every
    poll of every shipment."""
    status: Status = fields.get("status", before.status)
    estimate: Estimate | None = fields.get("estimate", before.estimate)
    if poll:
        fields["next_poll_at"] = next_poll_at(
            status,
            before.id,
            now,
            config,
            expected=(estimate or order.promise).earliest,
            dest_tz=order.dest_tz,
            failures=fields.get("poll_failures", before.poll_failures),
            retry_after=retry_after,
        )
    facts = DelayFacts(
        status=status,
        promise=order.promise,
        estimate=estimate,
        last_event_at=fields.get("last_event_at", before.last_event_at),
        delivered_at=fields.get("delivered_at", before.delivered_at),
        dest_tz=order.dest_tz,
    )
    reason = delay_reason(facts, now, config)
    since = (before.delayed_since or now) if before.delayed else now
    fields["delayed"] = reason is not None
    fields["delay_reason"] = reason
    fields["delayed_since"] = since if reason is not None else None
    after = replace(before, **fields)
    order_after = order
    if order.shipment_statuses.get(before.id) != status:
        statuses = dict(order.shipment_statuses)
        statuses[before.id] = status
        derived = order_status(statuses.values(), cancelled=order.cancelled_at is not None)
        order_after = replace(order, status=derived, shipment_statuses=MappingProxyType(statuses))
    s_messages = shipment_messages(before, after, order_after, now, order)
    o_messages = order_messages(order, order_after, now, after, before)
    if s_messages:
        after = replace(after, sequence=before.sequence + len(s_messages))
    if o_messages:
        order_after = replace(order_after, sequence=order.sequence + len(o_messages))
    changes = column_changes(before, after)
    visible = bool(new_events) or bool(set(changes) - POLL_BOOKKEEPING)
    messages: tuple[OutboxMessage, ...] = s_messages + o_messages
    return ShipmentUpdate(
        shipment_id=before.id,
        order_pk=before.order_pk,
        after=after,
        order_after=order_after,
        new_events=new_events,
        shipment_changes=_with_updated_at(changes, now, visible=visible),
        order_changes=_order_changes(order, order_after, now),
        messages=messages,
    )


def _with_updated_at(changes: dict[str, Any], now: datetime, *, visible: bool) -> dict[str, Any]:
    """`updated_at` moves only with what a reader can see, so `updated_since` lists are not
    flooded by every poll."""
    return {**changes, "updated_at": now} if visible else changes


def _order_changes(before: OrderState, after: OrderState, now: datetime) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if after.status != before.status:
        changes["status"] = after.status
    if after.sequence != before.sequence:
        changes["sequence"] = after.sequence
    if after.cancelled_at != before.cancelled_at:
        changes["cancelled_at"] = after.cancelled_at
    if changes:
        changes["updated_at"] = now
    return changes
