"""Which customer email an outbox event calls for: pure, one event in, intents out.

The outbox already says what changed, once per change (`tracking.messages`), so the email
follows from the event alone:

- `shipped`: a shipment's move from `pending`/`info_received` to `in_transit`, its first move
  onto the road (a first scan that is already out for delivery, at a pickup point or
  delivered gets that kind's email instead of two at once). Once per shipment.
- `out_for_delivery`: each move to `out_for_delivery` (a second round after a failed attempt
  is news again). Once per event.
- `delivered`: `shipment.delivered`. Once per shipment.
- `late`: `shipment.delayed` of a shipment still on its way, once per estimate: the key holds
  the estimate's latest date, and the pipeline writes the event again whenever that date
  moves later, so a poll that brings the same date sends nothing. A delay that is itself a
  failed attempt, a hold or a pickup point is told by `action_needed`, which says what to
  do; its late notice waits for the next estimate.
- `action_needed`: each move to `failed_attempt`, `available_for_pickup` or `exception`
  (customs and other holds map to `exception`). Once per event.

Events of cancelled shipments and `order.status_changed` call for no email.

An intent's payload holds only what the tracking page shows anyway (`PAYLOAD_KEYS`): the
order's own id, carrier, tracking number, status, the promise and the estimate (local
dates), the delay reason, the public tracking URL and the instant. Never a name, address,
phone or email: the recipient is read from the order when the email is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracking_service.carriers.status import Status
from tracking_service.notifications.kinds import (
    ACTION_NEEDED,
    DELIVERED,
    LATE,
    OUT_FOR_DELIVERY,
    SHIPPED,
)
from tracking_service.tracking.delays import CARRIER_EXCEPTION
from tracking_service.tracking.messages import DELAYED, STATUS_CHANGED, iso
from tracking_service.tracking.messages import DELIVERED as DELIVERED_EVENT

S = Status

NOT_SHIPPED: frozenset[str] = frozenset({S.PENDING, S.INFO_RECEIVED})
"""Statuses of a parcel still at the shop."""

ACTION_STATUSES: frozenset[str] = frozenset({S.FAILED_ATTEMPT, S.AVAILABLE_FOR_PICKUP, S.EXCEPTION})
"""Statuses after which the customer has something to do."""

PER_EVENT: frozenset[str] = frozenset({OUT_FOR_DELIVERY, ACTION_NEEDED})
"""Kinds sent once per event (a second round or a second problem is news again); the others
once per shipment (or per estimate, for `late`)."""

NO_LATE_NOTICE: frozenset[str] = frozenset({S.DELIVERED, S.EXPIRED})
"""Statuses for which a late notice is no news: arrived, or the carrier never had it."""

PAYLOAD_KEYS: tuple[str, ...] = (
    "order_id",
    "shipment_id",
    "carrier",
    "tracking_number",
    "status",
    "estimate",
    "promise",
    "delay_reason",
    "tracking_url",
    "occurred_at",
)
"""The keys of an intent's payload: public facts only (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class OutboxFacts:
    """One `outbox_events` row; `payload` is the webhook body (`tracking.messages.body`)."""

    outbox_id: int
    event_id: str
    event_type: str
    order_pk: int | None
    shipment_id: int | None
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Intent:
    """One email to send to the order's customer, unique by `dedupe_key`."""

    kind: str
    dedupe_key: str
    order_pk: int
    shipment_id: int | None
    outbox_id: int
    occurred_at: datetime
    payload: dict[str, Any]  # public facts only, for the template (PAYLOAD_KEYS)


def _public(
    event: OutboxFacts, shipment: Mapping[str, Any], order: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "order_id": order.get("order_id"),
        "shipment_id": event.shipment_id,
        "carrier": shipment.get("carrier"),
        "tracking_number": shipment.get("tracking_number"),
        "status": shipment.get("status"),
        "estimate": _window(shipment.get("estimate")),
        "promise": _window(shipment.get("promise")),
        "delay_reason": shipment.get("delay_reason"),
        "tracking_url": shipment.get("tracking_url"),
        "occurred_at": iso(event.occurred_at),
    }


def _window(value: object) -> dict[str, str] | None:
    if isinstance(value, Mapping) and value.get("earliest") and value.get("latest"):
        return {"earliest": str(value["earliest"]), "latest": str(value["latest"])}
    return None


def kind_for(event_type: str, shipment: Mapping[str, Any]) -> tuple[str, str] | None:
    """The kind of email one shipment event calls for, with the part of its dedupe key after
    `shipment:<id>:`, or None. `shipment` is the event's `data.shipment`."""
    if shipment.get("cancelled"):
        return None
    status = shipment.get("status")
    if event_type == STATUS_CHANGED:
        if status == S.IN_TRANSIT and shipment.get("previous_status") in NOT_SHIPPED:
            return SHIPPED, SHIPPED
        if status == S.OUT_FOR_DELIVERY:
            return OUT_FOR_DELIVERY, OUT_FOR_DELIVERY
        if status in ACTION_STATUSES:
            return ACTION_NEEDED, ACTION_NEEDED
        return None
    if event_type == DELIVERED_EVENT:
        return DELIVERED, DELIVERED
    if event_type == DELAYED and shipment.get("delayed"):
        if status in NO_LATE_NOTICE:
            return None
        if status in ACTION_STATUSES and shipment.get("delay_reason") == CARRIER_EXCEPTION:
            return None
        estimate = _window(shipment.get("estimate"))
        return LATE, f"{LATE}:{estimate['latest'] if estimate else 'none'}"
    return None


def intents_for(event: OutboxFacts) -> list[Intent]:
    """The emails one outbox event calls for (see the module docstring): none or one. None
    for an event without an order or a shipment, or whose payload is not of the shape the
    pipeline writes."""
    data = event.payload.get("data")
    if event.order_pk is None or event.shipment_id is None or not isinstance(data, Mapping):
        return []
    shipment, order = data.get("shipment"), data.get("order")
    if not isinstance(shipment, Mapping) or not isinstance(order, Mapping):
        return []
    found = kind_for(event.event_type, shipment)
    if found is None:
        return []
    kind, key = found
    dedupe = f"shipment:{event.shipment_id}:{key}"
    if kind in PER_EVENT:
        dedupe += f":{event.event_id}"
    return [
        Intent(
            kind=kind,
            dedupe_key=dedupe,
            order_pk=event.order_pk,
            shipment_id=event.shipment_id,
            outbox_id=event.outbox_id,
            occurred_at=event.occurred_at,
            payload=_public(event, shipment, order),
        )
    ]
