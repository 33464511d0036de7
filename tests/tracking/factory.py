"""Plain states and carrier answers for the pipeline's pure tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType

from tracking_service.carriers.base import (
    DeliveryWindow,
    Location,
    TrackingEvent,
    TrackingResult,
)
from tracking_service.carriers.status import Status
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.plan import plan_update
from tracking_service.tracking.progress import order_status
from tracking_service.tracking.state import Estimate, OrderState, ShipmentState, ShipmentUpdate

# Monday 2 March 2026, noon UTC
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
CONFIG = TrackingConfig()
PROMISE = Estimate(date(2026, 3, 5), date(2026, 3, 6))


def at(hours: float) -> datetime:
    """An instant `hours` after NOW (negative: before)."""
    return NOW + timedelta(hours=hours)


def order(
    statuses: Mapping[int, Status] | None = None,
    *,
    status: str | None = None,
    sequence: int = 0,
    promise: Estimate = PROMISE,
    dest_tz: str | None = "America/New_York",
) -> OrderState:
    live = dict(statuses if statuses is not None else {7: Status.PENDING})
    return OrderState(
        id=1,
        order_id="shop-1001",
        status=status or order_status(live.values()),
        sequence=sequence,
        promise=promise,
        dest_tz=dest_tz,
        shipment_statuses=MappingProxyType(live),
    )


def shipment(id: int = 7, **fields: object) -> ShipmentState:
    base: dict[str, object] = {
        "id": id,
        "order_pk": 1,
        "carrier": "ups",
        "tracking_number": f"1Z999AA1012345678{id}",
        "created_at": at(-24),
        "tracking_url": f"https://track.example/t/token-{id}",
        "next_poll_at": NOW,
    }
    base.update(fields)
    return ShipmentState(**base)  # type: ignore[arg-type]


def scan(key: str, when: datetime, status: Status | None, code: str = "") -> TrackingEvent:
    return TrackingEvent(
        occurred_at=when,
        status=status,
        raw_code=code or f"code-{key}",
        description=f"scan {key}",
        location=Location(city="Newark", region="NJ", postal_code="07102", country="US"),
        dedupe_key=key,
    )


def result(
    *events: TrackingEvent,
    status: Status | None = None,
    window: tuple[date, date] | None = None,
) -> TrackingResult:
    newest = max(events, key=lambda e: e.occurred_at) if events else None
    return TrackingResult(
        carrier="ups",
        tracking_number="1Z999AA10123456787",
        status=status if status is not None else (newest.status if newest else None),
        raw_status_code=newest.raw_code if newest else "",
        raw_status_description=newest.description if newest else "",
        events=events,
        estimated_delivery=DeliveryWindow(*window) if window else None,
    )


def apply(
    s: ShipmentState,
    o: OrderState,
    outcome: object,
    now: datetime = NOW,
    known: frozenset[str] = frozenset(),
    reestimated: Estimate | None = None,
    config: TrackingConfig = CONFIG,
) -> ShipmentUpdate:
    """One update, with the dedupe keys the edge would have loaded."""
    return plan_update(s, o, outcome, known, now, reestimated, config)  # type: ignore[arg-type]


class Store:
    """What the edge keeps between updates: the states and the stored event keys, updated
    from each `ShipmentUpdate` the way the store applies it."""

    def __init__(self, s: ShipmentState, o: OrderState) -> None:
        self.shipment = s
        self.order = o
        self.keys: frozenset[str] = frozenset()
        self.events: list[object] = []
        self.messages: list[object] = []

    def apply(self, outcome: object, now: datetime = NOW, **kw: object) -> ShipmentUpdate:
        update = plan_update(
            self.shipment,
            self.order,
            outcome,  # type: ignore[arg-type]
            self.keys,
            now,
            kw.get("reestimated"),  # type: ignore[arg-type]
            kw.get("config", CONFIG),  # type: ignore[arg-type]
        )
        self.take(update)
        return update

    def take(self, update: ShipmentUpdate) -> None:
        self.shipment = update.after
        self.order = update.order_after
        self.keys = self.keys | {e.dedupe_key for e in update.new_events}
        self.events.extend(update.new_events)
        self.messages.extend(update.messages)
