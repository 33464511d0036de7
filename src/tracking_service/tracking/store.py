"""The tracking pipeline's database edge: claim due shipments, load their state, write updates.

Every function takes the caller's session and never commits; the worker (`tracking.jobs`)
wraps each step in a unit of work of its own, so claiming, polling and applying are three
short transactions with no carrier call inside any of them.

- Claiming (`claim_due`) takes up to `limit` due shipments (`next_poll_at <= due_by`, oldest
  first) and, in the same statement, moves their `next_poll_at` to the lease's end and marks
  `claimed_by`/`claimed_until`. On PostgreSQL the rows are picked with `FOR UPDATE SKIP LOCKED`,
  so concurrent workers never claim one row twice and never wait on each other; moving
  `next_poll_at` forward takes the leased rows out of the front of the due index, so the next
  claim does not scan past them. A worker that dies keeps nothing: its rows simply come due
  again when the lease ends. SQLite runs one worker and takes the same statement without the
  lock clause (its writers are serialized anyway).
- Applying (`apply_outcome`, `apply_check`) locks the shipment's order row, then the order's
  shipments, loads the plain states and the dedupe keys already stored, lets the pure core
  (`tracking.plan`) decide, and writes its `ShipmentUpdate` as it is: events with ON CONFLICT
  DO NOTHING, the changed columns, the outbox rows with the sequences the plan took from the
  locked rows. Locking the order first serializes every writer of one order (two parcels of one
  order applied at once would otherwise both take the order stream's next sequence), in the
  order the cancel route takes them too: order, then shipments. Applying the same answer twice
  writes nothing new: its events are known, so the plan has nothing to say.
- A shipment that becomes delivered is handed to `on_delivered` (the history feedback's
  `record_delivery`) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from tracking_service.carriers.base import TrackingFailure, TrackingResult
from tracking_service.carriers.parse_support import zone_for_place
from tracking_service.carriers.status import Status
from tracking_service.history.files import zone_for
from tracking_service.models import Order, OutboxEvent, Shipment, TrackingEventRecord
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.plan import plan_check, plan_update
from tracking_service.tracking.progress import FINAL
from tracking_service.tracking.registration import tracking_url
from tracking_service.tracking.state import Estimate, OrderState, ShipmentState, ShipmentUpdate
from tracking_service.tracking.transitions import progress_after

_S: sa.Table = Shipment.__table__  # type: ignore[attr-defined]
_O: sa.Table = Order.__table__  # type: ignore[attr-defined]
_E: sa.Table = TrackingEventRecord.__table__  # type: ignore[attr-defined]
_X: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]

Row = Mapping[str, Any]
Reestimator = Callable[[Row, datetime, datetime | None], Estimate | None]
"""(order row, hand-off instant, last scan instant or None) -> the re-estimated window."""
DeliveryHook = Callable[[AsyncSession, Order, Shipment], Awaitable[object]]
"""Called in the applying transaction when a shipment becomes delivered."""

_FINAL_STATUSES = tuple(str(s) for s in FINAL)


@dataclass(frozen=True, slots=True)
class Claim:
    """A shipment this worker holds until `claimed_until`."""

    id: int
    carrier: str
    tracking_number: str
    claimed_until: datetime


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def claim_due(
    session: AsyncSession,
    *,
    worker: str,
    due_by: datetime,
    lease_until: datetime,
    limit: int,
) -> list[Claim]:
    """Claim up to `limit` shipments due by `due_by` for `worker` until `lease_until` (see the
    module docstring), oldest due first."""
    due = (
        sa.select(_S.c.id)
        .where(_S.c.next_poll_at <= due_by)
        .order_by(_S.c.next_poll_at)
        .limit(limit)
    )
    if _dialect(session) == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (
        sa.update(_S)
        .where(_S.c.id.in_(due.scalar_subquery()))
        .values(next_poll_at=lease_until, claimed_by=worker, claimed_until=lease_until)
        .returning(_S.c.id, _S.c.carrier, _S.c.tracking_number)
    )
    rows = (await session.execute(stmt)).all()
    claims = [Claim(r.id, r.carrier, r.tracking_number, lease_until) for r in rows]
    claims.sort(key=lambda c: c.id)
    return claims


async def shipment_id_for(session: AsyncSession, carrier: str, tracking_number: str) -> int | None:
    """The shipment of a carrier's tracking number (a push names only that), or None."""
    found = await session.execute(
        sa.select(_S.c.id).where(_S.c.carrier == carrier, _S.c.tracking_number == tracking_number)
    )
    return found.scalar_one_or_none()


# --- loading ----------------------------------------------------------------------------------


def destination_zone(country: str, subdivision: str | None) -> str | None:
    """The IANA zone of a destination when country and subdivision tell it (Brazilian and US
    states, single-zone countries), else None (the pipeline reads its dates in UTC then)."""
    name = zone_for(country, subdivision)
    if name is not None:
        return name
    tz, exact = zone_for_place(datetime(2026, 1, 1), country, subdivision)
    key = getattr(tz, "key", None)
    return key if exact and isinstance(key, str) else None


@dataclass(frozen=True, slots=True)
class Loaded:
    """A shipment and its order as the pipeline sees them, with the rows they came from."""

    shipment: ShipmentState
    order: OrderState
    known_keys: frozenset[str]
    shipment_row: Row
    order_row: Row


def shipment_state(row: Row, *, status_event_at: datetime | None, base_url: str) -> ShipmentState:
    """The plain state of a `shipments` row."""
    earliest, latest = row["estimate_earliest"], row["estimate_latest"]
    estimate = (
        Estimate(earliest, latest, row["estimate_source"] or "promise")
        if earliest is not None and latest is not None
        else None
    )
    return ShipmentState(
        id=row["id"],
        order_pk=row["order_pk"],
        carrier=row["carrier"],
        tracking_number=row["tracking_number"],
        created_at=row["created_at"],
        tracking_url=tracking_url(base_url, row["tracking_token"]),
        status=Status(row["status"]),
        raw_status_code=row["raw_status_code"],
        raw_status_description=row["raw_status_description"],
        status_changed_at=row["status_changed_at"],
        status_event_at=status_event_at,
        estimate=estimate,
        delayed=row["delayed"],
        delay_reason=row["delay_reason"],
        delayed_since=row["delayed_since"],
        handed_off_at=row["handed_off_at"],
        delivered_at=row["delivered_at"],
        last_event_at=row["last_event_at"],
        next_poll_at=row["next_poll_at"],
        last_polled_at=row["last_polled_at"],
        poll_failures=row["poll_failures"],
        last_poll_error=row["last_poll_error"],
        sequence=row["sequence"],
        cancelled_at=row["cancelled_at"],
        expired_at=row["expired_at"],
    )


def order_state(row: Row, statuses: Mapping[int, Status]) -> OrderState:
    """The plain state of an `orders` row and its live shipments' statuses."""
    return OrderState(
        id=row["id"],
        order_id=row["order_id"],
        status=row["status"],
        sequence=row["sequence"],
        promise=Estimate(row["promise_earliest"], row["promise_latest"], "promise"),
        dest_tz=destination_zone(row["dest_country"], row["dest_subdivision"]),
        cancelled_at=row["cancelled_at"],
        shipment_statuses=statuses,
    )


async def lock_and_load(session: AsyncSession, shipment_id: int, *, base_url: str) -> Loaded | None:
    """Lock the shipment's order, then the order's shipments (see the module docstring), and
    load them; None when the shipment does not exist (any more)."""
    order_pk = sa.select(_S.c.order_pk).where(_S.c.id == shipment_id).scalar_subquery()
    if _dialect(session) == "postgresql":
        order_stmt: sa.Executable = sa.select(_O).where(_O.c.id == order_pk).with_for_update()
    else:  # the first write takes SQLite's one write lock: nobody changes them meanwhile
        order_stmt = sa.update(_O).where(_O.c.id == order_pk).values(id=_O.c.id).returning(*_O.c)
    found_order = (await session.execute(order_stmt)).mappings().one_or_none()
    if found_order is None:
        return None
    order_row: Row = dict(found_order)
    # the order's shipments (their statuses make the order's), this one locked with them: the
    # order's lock already serializes their writers, so locking the siblings costs no wait
    ship_stmt = sa.select(_S).where(_S.c.order_pk == order_row["id"])
    if _dialect(session) == "postgresql":
        ship_stmt = ship_stmt.with_for_update()
    found_ship: Row | None = None
    statuses: dict[int, Status] = {}
    for found in (await session.execute(ship_stmt)).mappings().all():
        if found["id"] == shipment_id:
            found_ship = dict(found)
        if found["cancelled_at"] is None:
            statuses[found["id"]] = Status(found["status"])
    if found_ship is None:
        return None
    ship_row: Row = found_ship
    events = await session.execute(
        sa.select(_E.c.dedupe_key, _E.c.status, _E.c.occurred_at).where(
            _E.c.shipment_id == shipment_id
        )
    )
    keys: set[str] = set()
    status_event_at: datetime | None = None
    for key, status, occurred_at in events.all():
        keys.add(key)
        if status == ship_row["status"] and (
            status_event_at is None or occurred_at > status_event_at
        ):
            status_event_at = occurred_at
    return Loaded(
        shipment=shipment_state(ship_row, status_event_at=status_event_at, base_url=base_url),
        order=order_state(order_row, statuses),
        known_keys=frozenset(keys),
        shipment_row=ship_row,
        order_row=order_row,
    )


# --- writing ----------------------------------------------------------------------------------


def _insert_ignoring(session: AsyncSession, table: sa.Table, keys: Sequence[str]) -> sa.Insert:
    if _dialect(session) == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))


async def write_update(
    session: AsyncSession,
    update: ShipmentUpdate,
    *,
    now: datetime,
    release_claim: bool,
) -> None:
    """Write a planned update as it is (events, shipment, order, outbox), in the caller's
    transaction. `release_claim` clears this worker's claim on the shipment."""
    if update.new_events:
        rows = [
            {
                "shipment_id": e.shipment_id,
                "dedupe_key": e.dedupe_key,
                "occurred_at": e.occurred_at,
                "status": e.status,
                "raw_code": e.raw_code,
                "description": e.description,
                "city": e.city,
                "region": e.region,
                "postal_code": e.postal_code,
                "country": e.country,
                "source": e.source,
                "created_at": now,
            }
            for e in update.new_events
        ]
        await session.execute(_insert_ignoring(session, _E, ["shipment_id", "dedupe_key"]), rows)
    changes = dict(update.shipment_changes)
    if release_claim:
        changes.update(claimed_by=None, claimed_until=None)
    if changes:
        await session.execute(sa.update(_S).where(_S.c.id == update.shipment_id).values(changes))
    if update.order_changes:
        await session.execute(
            sa.update(_O).where(_O.c.id == update.order_pk).values(dict(update.order_changes))
        )
    if update.messages:
        await session.execute(
            sa.insert(_X),
            [
                {
                    "event_id": m.event_id,
                    "event_type": m.event_type,
                    "stream": m.stream,
                    "sequence": m.sequence,
                    "shipment_id": m.shipment_id,
                    "order_pk": m.order_pk,
                    "occurred_at": m.occurred_at,
                    "payload": dict(m.payload),
                    "created_at": now,
                }
                for m in update.messages
            ],
        )


def became_delivered(loaded: Loaded, update: ShipmentUpdate) -> bool:
    return update.after.status == Status.DELIVERED and loaded.shipment.status != Status.DELIVERED


async def _after_write(
    session: AsyncSession,
    loaded: Loaded,
    update: ShipmentUpdate,
    on_delivered: DeliveryHook | None,
) -> None:
    if on_delivered is None or not became_delivered(loaded, update):
        return
    order = Order(**{**dict(loaded.order_row), **dict(update.order_changes)})
    shipment = Shipment(**{**dict(loaded.shipment_row), **dict(update.shipment_changes)})
    await on_delivered(session, order, shipment)


async def apply_outcome(
    session: AsyncSession,
    shipment_id: int,
    outcome: TrackingResult | TrackingFailure,
    *,
    now: datetime,
    config: TrackingConfig,
    base_url: str,
    reestimate: Reestimator | None = None,
    on_delivered: DeliveryHook | None = None,
    release_claim: bool = True,
) -> ShipmentUpdate | None:
    """Apply one carrier answer to one shipment in the caller's transaction; the update written,
    or None when the shipment is gone. Re-estimates from the hand-off (or the last scan after
    it) the answer leads to, before the plan decides."""
    loaded = await lock_and_load(session, shipment_id, base_url=base_url)
    if loaded is None:
        return None
    reestimated: Estimate | None = None
    if isinstance(outcome, TrackingResult) and reestimate is not None:
        progress = progress_after(loaded.shipment, outcome, loaded.known_keys)
        if progress.handed_off_at is not None:
            last = progress.last_event_at
            scan = last if last is not None and last > progress.handed_off_at else None
            reestimated = reestimate(loaded.order_row, progress.handed_off_at, scan)
    update = plan_update(
        loaded.shipment, loaded.order, outcome, loaded.known_keys, now, reestimated, config
    )
    await write_update(session, update, now=now, release_claim=release_claim)
    await _after_write(session, loaded, update, on_delivered)
    return update


async def apply_check(
    session: AsyncSession,
    shipment_id: int,
    *,
    now: datetime,
    config: TrackingConfig,
    base_url: str,
    on_delivered: DeliveryHook | None = None,
) -> ShipmentUpdate | None:
    """The promise, stall and expiry check of one shipment without a scan, written in the
    caller's transaction (a poller's claim on it is left alone)."""
    loaded = await lock_and_load(session, shipment_id, base_url=base_url)
    if loaded is None:
        return None
    update = plan_check(loaded.shipment, loaded.order, now, config)
    if update.changed:
        await write_update(session, update, now=now, release_claim=False)
        await _after_write(session, loaded, update, on_delivered)
    return update


# --- what the periodic checks look at -------------------------------------------------------


def _active() -> sa.ColumnElement[bool]:
    return sa.and_(
        _S.c.next_poll_at.is_not(None),
        _S.c.cancelled_at.is_(None),
        _S.c.status.not_in(_FINAL_STATUSES),
    )


async def check_candidates(
    session: AsyncSession,
    *,
    now: datetime,
    config: TrackingConfig,
    after_id: int = 0,
    limit: int = 500,
) -> list[int]:
    """Ids of active shipments (above `after_id`, in id order) that may have a delay to add:
    the promise's latest date has passed somewhere on Earth and it is not `promise_missed` yet,
    or no scan for longer than the shortest stall threshold of a status that stalls and it is
    neither `stalled` nor `promise_missed`. A superset: `plan_check` decides."""
    today_east = (now + timedelta(hours=14)).astimezone(UTC).date()
    promise_passed = sa.and_(
        _O.c.promise_latest < today_east,
        sa.or_(_S.c.delay_reason.is_(None), _S.c.delay_reason != "promise_missed"),
    )
    conditions = [promise_passed]
    stalls = {str(status): hours for status, hours in config.stall_hours.items() if hours > 0}
    if stalls:
        quiet_since = now - timedelta(hours=min(stalls.values()))
        seen = sa.func.coalesce(_S.c.last_event_at, _S.c.status_changed_at, _S.c.created_at)
        conditions.append(
            sa.and_(
                _S.c.status.in_(list(stalls)),
                seen <= quiet_since,
                sa.or_(
                    _S.c.delay_reason.is_(None),
                    _S.c.delay_reason.not_in(["stalled", "promise_missed"]),
                ),
            )
        )
    stmt = (
        sa.select(_S.c.id)
        .join(_O, _O.c.id == _S.c.order_pk)
        .where(_active(), _S.c.id > after_id, sa.or_(*conditions))
        .order_by(_S.c.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def expiry_candidates(
    session: AsyncSession,
    *,
    now: datetime,
    config: TrackingConfig,
    after_id: int = 0,
    limit: int = 500,
) -> list[int]:
    """Ids of shipments still `pending` (the carrier never saw them) `expiry_days` after their
    registration, in id order above `after_id`."""
    stmt = (
        sa.select(_S.c.id)
        .where(
            _active(),
            _S.c.status == str(Status.PENDING),
            _S.c.created_at <= now - timedelta(days=config.expiry_days),
            _S.c.id > after_id,
        )
        .order_by(_S.c.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())
