"""The outbox messages for a change: which event types, their sequences and their payloads.

Pure. A message is written once per change because it is derived from the pair
(before, after) the change itself is: the same answer applied again gives before == after and
no message. Sequences continue each stream's counter from the before-state (`shipment:<id>`
from the shipment's `sequence`, `order:<pk>` from the order's), so a receiver can order a
stream and the unique (stream, sequence) pair stops a second writer racing on the same
before-state. The `event_id` (the Standard Webhooks `webhook-id`) is derived from the stream,
sequence, type, instant and the shipment's unguessable tracking URL: stable for one change,
different across deployments whose counters start over.

Payloads are the whole webhook body and carry no personal data: ids, carrier, number,
status and the status before, estimate and promise, delay (reason and a sentence naming at
most the city of the last scan) and the public tracking URL, never a name, street, email or
phone.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

from tracking_service.carriers.status import Status
from tracking_service.tracking.delay_note import delay_note
from tracking_service.tracking.progress import TROUBLE
from tracking_service.tracking.state import Estimate, OrderState, OutboxMessage, ShipmentState

STATUS_CHANGED = "shipment.status_changed"
DELAYED = "shipment.delayed"
EXCEPTION = "shipment.exception"
DELIVERED = "shipment.delivered"
ORDER_STATUS_CHANGED = "order.status_changed"
EVENT_TYPES: tuple[str, ...] = (STATUS_CHANGED, DELAYED, EXCEPTION, DELIVERED, ORDER_STATUS_CHANGED)


def shipment_stream(shipment_id: int) -> str:
    return f"shipment:{shipment_id}"


def order_stream(order_pk: int) -> str:
    return f"order:{order_pk}"


def iso(instant: datetime) -> str:
    """An instant as ISO 8601 in UTC with a `Z`."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_id(stream: str, sequence: int, event_type: str, secret: str, at: datetime) -> str:
    """`msg_` and 26 url-safe characters, stable for one (stream, sequence, type, instant)."""
    seed = f"{stream}|{sequence}|{event_type}|{secret}|{iso(at)}".encode()
    digest = base64.b32encode(hashlib.sha256(seed).digest()).decode("ascii").lower()
    return "msg_" + digest[:26]


def _dates(e: Estimate | None) -> dict[str, str] | None:
    return {"earliest": e.earliest.isoformat(), "latest": e.latest.isoformat()} if e else None


def shipment_payload(
    s: ShipmentState,
    order: OrderState,
    at: datetime,
    before: ShipmentState | None = None,
) -> dict[str, Any]:
    """A shipment as webhooks show it, after a change at `at` from `before`.

    `previous_status` is the status before the change when the change moved it or cancelled
    the shipment (null otherwise); `promise` is the order's promised window; `delay_note` the
    delay in a sentence ops read (`tracking.delay_note`; null when not delayed)."""
    moved = before is not None and (
        before.status != s.status or (before.cancelled_at is None and s.cancelled_at is not None)
    )
    return {
        "id": s.id,
        "carrier": s.carrier,
        "tracking_number": s.tracking_number,
        "status": str(s.status),
        "previous_status": str(before.status) if moved and before is not None else None,
        "estimate": _dates(s.estimate),
        "promise": _dates(order.promise),
        "delayed": s.delayed,
        "delay_reason": s.delay_reason,
        "delay_note": delay_note(s, order, at),
        "tracking_url": s.tracking_url,
        "cancelled": s.cancelled_at is not None,
    }


def order_payload(o: OrderState, before: OrderState | None = None) -> dict[str, Any]:
    """An order as webhooks show it; `previous_status` is its status before the change when
    the change moved it (null otherwise)."""
    moved = before is not None and before.status != o.status
    return {
        "order_id": o.order_id,
        "status": o.status,
        "previous_status": before.status if moved and before is not None else None,
    }


def body(
    event_type: str,
    at: datetime,
    order: OrderState,
    shipment: ShipmentState | None,
    *,
    order_before: OrderState | None = None,
    shipment_before: ShipmentState | None = None,
) -> dict[str, Any]:
    """The webhook body: `{"type", "timestamp", "data": {"shipment"?, "order"}}`; `shipment`
    is there for every shipment event and for an order change a shipment caused. The
    `*_before` states are the ones before the change, for the previous statuses."""
    data: dict[str, Any] = {}
    if shipment is not None:
        data["shipment"] = shipment_payload(shipment, order, at, shipment_before)
    data["order"] = order_payload(order, order_before)
    return {"type": event_type, "timestamp": iso(at), "data": data}


def shipment_event_types(before: ShipmentState, after: ShipmentState) -> tuple[str, ...]:
    """The shipment events one change causes, in the order they are written.

    `shipment.delayed` when the shipment becomes delayed, when its reason changes, and when a
    delayed shipment's estimated latest date moves later (one event per new estimate, which
    the customer's late notice is keyed by)."""
    types: list[str] = []
    status_moved = after.status != before.status
    if status_moved or (after.cancelled_at is not None and before.cancelled_at is None):
        types.append(STATUS_CHANGED)
    if status_moved and after.status in TROUBLE:
        types.append(EXCEPTION)
    if status_moved and after.status == Status.DELIVERED:
        types.append(DELIVERED)
    if after.delayed and (
        not before.delayed
        or after.delay_reason != before.delay_reason
        or _later_estimate(before.estimate, after.estimate)
    ):
        types.append(DELAYED)
    return tuple(types)


def _later_estimate(before: Estimate | None, after: Estimate | None) -> bool:
    """A new estimate whose latest date is later than the one before (or the first one): a
    delayed shipment's customer is told again once per such estimate."""
    return after is not None and (before is None or after.latest > before.latest)


def shipment_messages(
    before: ShipmentState,
    after: ShipmentState,
    order: OrderState,
    at: datetime,
    order_before: OrderState | None = None,
) -> tuple[OutboxMessage, ...]:
    """The `shipment:<id>` messages of a change, numbered from `before.sequence + 1`
    (`order` is the order after the change, as the payload shows it; `order_before` the order
    before it, for its previous status)."""
    stream = shipment_stream(before.id)
    out = []
    for n, event_type in enumerate(shipment_event_types(before, after), start=1):
        sequence = before.sequence + n
        out.append(
            OutboxMessage(
                event_id=event_id(stream, sequence, event_type, after.tracking_url, at),
                event_type=event_type,
                stream=stream,
                sequence=sequence,
                shipment_id=before.id,
                order_pk=before.order_pk,
                occurred_at=at,
                payload=body(
                    event_type, at, order, after, order_before=order_before, shipment_before=before
                ),
            )
        )
    return tuple(out)


def order_messages(
    before: OrderState,
    after: OrderState,
    at: datetime,
    shipment: ShipmentState | None = None,
    shipment_before: ShipmentState | None = None,
) -> tuple[OutboxMessage, ...]:
    """`order.status_changed` when the order's status changed, numbered from
    `before.sequence + 1` (`shipment`: the shipment that caused it, after the change;
    `shipment_before`: that shipment before it)."""
    if after.status == before.status:
        return ()
    stream = order_stream(before.id)
    sequence = before.sequence + 1
    secret = shipment.tracking_url if shipment is not None else before.order_id
    return (
        OutboxMessage(
            event_id=event_id(stream, sequence, ORDER_STATUS_CHANGED, secret, at),
            event_type=ORDER_STATUS_CHANGED,
            stream=stream,
            sequence=sequence,
            shipment_id=shipment.id if shipment is not None else None,
            order_pk=before.id,
            occurred_at=at,
            payload=body(
                ORDER_STATUS_CHANGED,
                at,
                after,
                shipment,
                order_before=before,
                shipment_before=shipment_before,
            ),
        ),
    )
