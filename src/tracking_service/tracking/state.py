"""The plain data the tracking pipeline reads and writes: states before, the update after.

The pipeline's core (`tracking.plan`) is a set of pure functions from a `ShipmentState` and an
`OrderState` (loaded by the edge from the `shipments` and `orders` rows) to a `ShipmentUpdate`
that says exactly what to write: the new event rows, the changed columns of the shipment and
of the order, and the outbox rows with their stream and sequence already assigned. The edge
writes it in one transaction and decides nothing. Keeping these types free of SQLModel lets the
rules be tested without a database and lets every writer (the poller, the push endpoint, the
cancel route) share one set of rules.

Column names in `ShipmentUpdate.shipment_changes` and `order_changes` are the columns of
`models.tracking.Shipment` and `models.tracking.Order`; `NewEvent` and `OutboxMessage` fields
are the columns of `TrackingEventRecord` and `OutboxEvent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from tracking_service.carriers.status import Status


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Estimate:
    """A delivery window as local dates at the destination, and where it came from.

    `source` is `carrier` (the carrier's own date), `history` or `rules` (the estimator's
    re-estimate), or `promise` (the order's promise, when nothing better is known).
    """

    earliest: date
    latest: date
    source: str = "promise"


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the pipeline needs of an order (the `orders` row and its live shipments).

    `shipment_statuses` holds the status of each of the order's shipments that is not
    cancelled, keyed by shipment id (the shipment being updated included, with its status
    before the update); the order's status is derived from them. `dest_tz` is the IANA zone of
    the destination (None: UTC): the promise is a local date there, so "the promised latest
    date has passed" is decided on the destination's calendar, not UTC's.
    """

    id: int
    order_id: str
    status: str
    sequence: int
    promise: Estimate
    dest_tz: str | None = None
    cancelled_at: datetime | None = None
    shipment_statuses: Mapping[int, Status] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class ShipmentState:
    """A shipment as stored (the `shipments` row), plus what the edge computes on loading it.

    Two fields are not columns:
    - `tracking_url`: the public URL of the shipment (`TRACKING_PUBLIC_BASE_URL` + `/t/<token>`),
      carried into outbox payloads;
    - `status_event_at`: `occurred_at` of the newest stored event whose status is the current
      status (`SELECT max(occurred_at) FROM tracking_events WHERE shipment_id = :id AND status =
      :current_status`; None when there is none). A scan only moves the status if it is newer
      than this one, which is what keeps a late, older scan from moving a status backwards;
    - `last_event_city`: the city of the newest scan (the one at `last_event_at`), when the
      carrier named one: the delay sentence of webhook payloads says where the parcel was
      last seen (`tracking.delay_note`).

    `created_at` is the registration instant (expiry counts from it); `estimate` is None until
    the first estimate is written (the pipeline then falls back to the order's promise).
    """

    id: int
    order_pk: int
    carrier: str
    tracking_number: str
    created_at: datetime
    tracking_url: str = ""
    status: Status = Status.PENDING
    raw_status_code: str | None = None
    raw_status_description: str | None = None
    status_changed_at: datetime | None = None
    status_event_at: datetime | None = None
    estimate: Estimate | None = None
    delayed: bool = False
    delay_reason: str | None = None
    delayed_since: datetime | None = None
    handed_off_at: datetime | None = None
    delivered_at: datetime | None = None
    last_event_at: datetime | None = None
    next_poll_at: datetime | None = None
    last_polled_at: datetime | None = None
    poll_failures: int = 0
    last_poll_error: str | None = None
    sequence: int = 0
    cancelled_at: datetime | None = None
    expired_at: datetime | None = None
    last_event_city: str | None = None


# Shipment fields that are not columns the pipeline writes: identity, the registration
# instant and the values the loader computes.
_NOT_WRITTEN = frozenset(
    {
        "id",
        "order_pk",
        "carrier",
        "tracking_number",
        "created_at",
        "tracking_url",
        "status_event_at",
        "last_event_city",
    }
)
_WRITTEN = tuple(f.name for f in fields(ShipmentState) if f.name not in _NOT_WRITTEN)
# Columns that only record polling; a change to these alone is not a visible change.
POLL_BOOKKEEPING = frozenset({"next_poll_at", "last_polled_at", "poll_failures", "last_poll_error"})


def shipment_columns(state: ShipmentState) -> dict[str, Any]:
    """The `shipments` columns the pipeline owns, as stored (status as its string value, the
    estimate as `estimate_earliest`/`estimate_latest`/`estimate_source`)."""
    out: dict[str, Any] = {}
    for name in _WRITTEN:
        value = getattr(state, name)
        if name == "estimate":
            out["estimate_earliest"] = value.earliest if value else None
            out["estimate_latest"] = value.latest if value else None
            out["estimate_source"] = value.source if value else None
        elif name == "status":
            out["status"] = str(value)
        else:
            out[name] = value
    return out


def column_changes(before: ShipmentState, after: ShipmentState) -> dict[str, Any]:
    """The columns whose values differ between two states of one shipment."""
    old, new = shipment_columns(before), shipment_columns(after)
    return {name: value for name, value in new.items() if old[name] != value}


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A `tracking_events` row to insert (ON CONFLICT (shipment_id, dedupe_key) DO NOTHING).

    `source` is `carrier` for a scan and `service` for an event the service wrote itself
    (cancelled, expired), whose `dedupe_key` starts with `service:`. `status` is the
    normalized status (None: a carrier code we do not know), `raw_code` the carrier's own.
    """

    shipment_id: int
    dedupe_key: str
    occurred_at: datetime
    status: str | None
    raw_code: str
    description: str
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None
    source: str = "carrier"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """An `outbox_events` row to insert, sequence already assigned.

    `stream` is `shipment:<id>` or `order:<id>` (the order's primary key); `sequence` is the
    stream's previous sequence (from the before-state) plus one per message, so the edge only
    writes it; the same before-state can never produce two rows for one (stream, sequence).
    `payload` is the whole webhook body (see `tracking.messages`).
    """

    event_id: str
    event_type: str
    stream: str
    sequence: int
    shipment_id: int | None
    order_pk: int | None
    occurred_at: datetime
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Revision:
    """A change of a shipment's estimate, for the promise ledger (a `promise_revisions` row,
    written with the change it records; `at` is the update's instant).

    `kind` is what brought it: `carrier` (the carrier's own date), `handoff` (the re-estimate
    from the hand-off) or `scan` (from a later scan still in transit); `source` is the new
    estimate's (`carrier`, `history`, `rules` or `promise`)."""

    kind: str
    earliest: date
    latest: date
    source: str


@dataclass(frozen=True, slots=True)
class ShipmentUpdate:
    """Everything to write for one shipment, in one transaction.

    - `new_events`: insert them (deduplicated against the known keys already; insert with ON
      CONFLICT DO NOTHING anyway, so a race with another writer is harmless).
    - `shipment_changes`: only the `shipments` columns whose value changed (empty: do not
      update the row); `after` is the whole state after the update, for callers that prefer
      it. Includes `updated_at` (= now) when anything beyond polling bookkeeping changed, so
      `updated_since` lists follow what a reader can see. Never includes the claim columns:
      the store releases its own claim.
    - `order_changes`: the `orders` columns that changed (`status`, `sequence`, `cancelled_at`,
      `updated_at`); empty: leave the order alone. `order_after` is the order after.
    - `messages`: outbox rows of both streams, in the order they happened.
    - `revision`: the new estimate when it changed (a `promise_revisions` row), else None.
    """

    shipment_id: int
    order_pk: int
    after: ShipmentState
    order_after: OrderState
    new_events: tuple[NewEvent, ...] = ()
    shipment_changes: Mapping[str, Any] = field(default_factory=_empty)
    order_changes: Mapping[str, Any] = field(default_factory=_empty)
    messages: tuple[OutboxMessage, ...] = ()
    revision: Revision | None = None

    @property
    def order_status(self) -> str | None:
        """The order's new status, or None when it did not change."""
        status = self.order_changes.get("status")
        return status if isinstance(status, str) else None

    @property
    def next_poll_at(self) -> datetime | None:
        """When to poll next (None: never again)."""
        return self.after.next_poll_at

    @property
    def poll_failures(self) -> int:
        return self.after.poll_failures

    @property
    def changed(self) -> bool:
        """Anything at all to write."""
        return bool(self.new_events or self.shipment_changes or self.order_changes or self.messages)

    @property
    def visible(self) -> bool:
        """Anything beyond polling bookkeeping changed (events, status, estimate, delay ...)."""
        return bool(
            self.new_events
            or self.order_changes
            or self.messages
            or set(self.shipment_changes) - POLL_BOOKKEEPING
        )


@dataclass(frozen=True, slots=True)
class CancelPlan:
    """What to write to cancel an order or one shipment: one update per shipment stopped
    (each with a service event and its shipment-stream message), then the order's changes
    and its order-stream messages. Cancelling what is already cancelled plans nothing."""

    shipments: tuple[ShipmentUpdate, ...]
    order_after: OrderState
    order_changes: Mapping[str, Any] = field(default_factory=_empty)
    order_messages: tuple[OutboxMessage, ...] = ()

    @property
    def messages(self) -> tuple[OutboxMessage, ...]:
        """Every outbox row to insert, shipments' first."""
        return tuple(m for u in self.shipments for m in u.messages) + self.order_messages
