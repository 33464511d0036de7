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
- Applying (`apply_outcomes`; `apply_outcome` and `apply_check` for one shipment) takes a group of
  answers (a claimed batch's, as they come back) in ONE transaction of a handful of statements
  whatever the group's size: lock the shipments' orders (ascending ids), then those orders'
  shipments (ascending ids), load the dedupe keys already stored, let the pure core
  (`tracking.plan`) decide each shipment in turn, and write the `ShipmentUpdate`s as they are: the
  new events in one insert with ON CONFLICT DO NOTHING, the changed columns of shipments and orders
  in one executemany per set of columns changed (a chunk of polls that brought nothing new is one
  `UPDATE` of `next_poll_at`/`last_polled_at`), the outbox rows in one insert, with the sequences
  the plan took from the locked rows, and the promise ledger's revisions (each shipment whose
  estimate changed: `promise_revisions`) in one insert. The guarantees are the per-shipment ones:
  each shipment's update is planned on its locked, current state (two parcels of one order, or two
  answers for one shipment, are planned in turn, each on what the previous left), so the same answer
  twice writes nothing new (its events are known, the plan has nothing to say), a status never moves
  backwards, an outbox row lands in the transaction of its change and a stream's sequences follow
  each other. Locking the order first serializes every writer of one order (two parcels applied at
  once would otherwise both take the order stream's next sequence), in the order the cancel route
  and the push endpoint take them too: order, then shipments; ascending ids keep two groups sharing
  orders from deadlocking. A group whose transaction fails is applied again one shipment per
  transaction by the worker, so one shipment that cannot be applied blocks no other; one whose
  worker dies before it commits is simply polled again after the lease.
- A shipment that becomes delivered is handed to `on_delivered` (the history feedback's
  `record_delivery`) in the same transaction.
- Durability: a transaction that changes nothing a reader can see (only `next_poll_at`,
  `last_polled_at`, `poll_failures`, `last_poll_error` and the claim: no event, no outbox row,
  no status, no delivery record) may commit without waiting for the disk
  (`commit_without_waiting`: PostgreSQL's `synchronous_commit = off` for that transaction).
  A crash loses at most its last few hundred milliseconds of such commits, which leaves the
  rows as their claim did: due at the lease's end, polled again then, and their answer applied
  again finds what it found before. Transactions with visible changes wait for the disk: they
  are visible (to the webhook dispatcher, to the API) before they are durable, and a lost one
  would come back from the next poll at another instant, so with another `timestamp`,
  `status_changed_at` and `event_id` (derived from the instant): the same change sent twice
  under two ids. The sequences would match; the event ids would not.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tracking_service.carriers.base import TrackingFailure, TrackingResult
from tracking_service.carriers.parse_support import zone_for_place
from tracking_service.carriers.status import Status
from tracking_service.history.files import zone_for
from tracking_service.models import (
    Order,
    OutboxEvent,
    PromiseRevision,
    Shipment,
    TrackingEventRecord,
)
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.plan import plan_check, plan_update
from tracking_service.tracking.progress import FINAL
from tracking_service.tracking.state import (
    Estimate,
    NewEvent,
    OrderState,
    OutboxMessage,
    ShipmentState,
    ShipmentUpdate,
)
from tracking_service.tracking.transitions import progress_after
from tracking_service.tracking.urls import tracking_url

_S: sa.Table = Shipment.__table__  # type: ignore[attr-defined]
_O: sa.Table = Order.__table__  # type: ignore[attr-defined]
_E: sa.Table = TrackingEventRecord.__table__  # type: ignore[attr-defined]
_X: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]
_R: sa.Table = PromiseRevision.__table__  # type: ignore[attr-defined]

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


@functools.lru_cache(maxsize=4096)
def destination_zone(country: str, subdivision: str | None) -> str | None:
    """The IANA zone of a destination when country and subdivision tell it (Brazilian and US
    states, single-zone countries), else None (the pipeline reads its dates in UTC then).
    Cached: every order loaded asks it, and destinations repeat."""
    name = zone_for(country, subdivision)
    if name is not None:
        return name
    tz, exact = zone_for_place(datetime(2026, 1, 1), country, subdivision)
    key = getattr(tz, "key", None)
    return key if exact and isinstance(key, str) else None


# What an apply reads of its rows: everything the pipeline and the delivery record use, not the
# items (JSON, decoded for nothing), the promise's detail or the customer's personal data.
_ORDER_COLUMNS = tuple(
    c
    for c in _O.c
    if c.name not in {"items", "promise_detail"} and not c.name.startswith("customer_")
)
_SHIPMENT_COLUMNS = tuple(c for c in _S.c if c.name != "items")


@dataclass(frozen=True, slots=True)
class Loaded:
    """A shipment and its order as the pipeline sees them, with the rows they came from (the
    columns of `_ORDER_COLUMNS` and `_SHIPMENT_COLUMNS`)."""

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


def _among(column: sa.ColumnElement[int], ids: Sequence[int], postgres: bool) -> Any:
    """`column IN ids`; on PostgreSQL `= ANY(:array)`, one statement text whatever the count
    (asyncpg prepares each distinct text once per connection)."""
    if postgres:
        return column == sa.any_(sa.bindparam(None, list(ids), type_=postgresql.ARRAY(sa.Integer)))
    return column.in_(list(ids))


async def lock_and_load_many(
    session: AsyncSession, shipment_ids: Sequence[int], *, base_url: str
) -> dict[int, Loaded]:
    """Lock the shipments' orders (ascending ids), then those orders' shipments (ascending ids),
    and load them with the dedupe keys already stored: three statements whatever the count.
    Shipments that do not exist (any more) are left out of the answer."""
    ids = sorted(set(shipment_ids))
    if not ids:
        return {}
    conn = await session.connection()
    postgres = conn.dialect.name == "postgresql"
    their_orders = sa.select(_S.c.order_pk).where(_among(_S.c.id, ids, postgres))
    if postgres:
        order_stmt: sa.Executable = (
            sa.select(*_ORDER_COLUMNS)
            .where(_O.c.id.in_(their_orders))
            .order_by(_O.c.id)
            .with_for_update()
        )
    else:  # the first write takes SQLite's one write lock: nobody changes them meanwhile
        order_stmt = (
            sa.update(_O)
            .where(_O.c.id.in_(their_orders))
            .values(id=_O.c.id)
            .returning(*_ORDER_COLUMNS)
        )
    orders: dict[int, Row] = {
        r["id"]: dict(r) for r in (await conn.execute(order_stmt)).mappings().all()
    }
    if not orders:
        return {}
    # the orders' shipments (their statuses make the orders'), these ones locked with them: the
    # orders' locks already serialize their writers, so locking the siblings costs no wait
    ship_stmt = (
        sa.select(*_SHIPMENT_COLUMNS)
        .where(_among(_S.c.order_pk, sorted(orders), postgres))
        .order_by(_S.c.id)
    )
    if postgres:
        ship_stmt = ship_stmt.with_for_update()
    wanted = set(ids)
    rows: dict[int, Row] = {}
    statuses: dict[int, dict[int, Status]] = {pk: {} for pk in orders}
    for found in (await conn.execute(ship_stmt)).mappings().all():
        if found["id"] in wanted:
            rows[found["id"]] = dict(found)
        if found["cancelled_at"] is None:
            statuses[found["order_pk"]][found["id"]] = Status(found["status"])
    if not rows:
        return {}
    keys: dict[int, set[str]] = {sid: set() for sid in rows}
    status_event_at: dict[int, datetime] = {}
    last_city: dict[int, str] = {}
    events = await conn.execute(
        sa.select(
            _E.c.shipment_id, _E.c.dedupe_key, _E.c.status, _E.c.occurred_at, _E.c.city
        ).where(_among(_E.c.shipment_id, sorted(rows), postgres))
    )
    for sid, key, status, occurred_at, city in events.all():
        keys[sid].add(key)
        if city and occurred_at == rows[sid]["last_event_at"]:
            last_city[sid] = city
        if status == rows[sid]["status"]:
            newest = status_event_at.get(sid)
            if newest is None or occurred_at > newest:
                status_event_at[sid] = occurred_at
    order_states = {pk: order_state(row, statuses[pk]) for pk, row in orders.items()}
    return {
        sid: Loaded(
            shipment=replace(
                shipment_state(row, status_event_at=status_event_at.get(sid), base_url=base_url),
                last_event_city=last_city.get(sid),
            ),
            order=order_states[row["order_pk"]],
            known_keys=frozenset(keys[sid]),
            shipment_row=row,
            order_row=orders[row["order_pk"]],
        )
        for sid, row in rows.items()
    }


async def lock_and_load(session: AsyncSession, shipment_id: int, *, base_url: str) -> Loaded | None:
    """`lock_and_load_many` of one shipment; None when it does not exist (any more)."""
    return (await lock_and_load_many(session, [shipment_id], base_url=base_url)).get(shipment_id)


# --- writing ----------------------------------------------------------------------------------


def _insert_ignoring(dialect: str, table: sa.Table, keys: Sequence[str]) -> sa.Insert:
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))


@functools.lru_cache(maxsize=256)
def _update_by_id(table: sa.Table, columns: tuple[str, ...]) -> sa.Update:
    """`UPDATE table SET c = :v_c ... WHERE id = :pk_`, for executemany over many rows."""
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam("pk_", type_=table.c.id.type))
        .values({c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in columns})
    )


async def _update_rows(
    conn: AsyncConnection, table: sa.Table, changes: Mapping[int, Mapping[str, Any]]
) -> None:
    """Each row's changed columns, in one executemany per set of columns changed (a chunk of
    polls that brought nothing new is one statement)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for pk, values in changes.items():
        if values:
            params = {f"v_{c}": v for c, v in values.items()}
            params["pk_"] = pk
            groups.setdefault(tuple(sorted(values)), []).append(params)
    for columns, params_list in groups.items():
        await conn.execute(_update_by_id(table, columns), params_list)


def event_row(e: NewEvent, now: datetime) -> dict[str, Any]:
    """The `tracking_events` row of `e`, stored at `now`."""
    return {
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


def outbox_row(m: OutboxMessage, now: datetime) -> dict[str, Any]:
    """The `outbox_events` row of `m`, stored at `now`."""
    return {
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


def revision_row(update: ShipmentUpdate, now: datetime) -> dict[str, Any] | None:
    """The `promise_revisions` row of `update`'s new estimate made at `now` (None: the
    estimate did not change)."""
    r = update.revision
    if r is None:
        return None
    return {
        "order_pk": update.order_pk,
        "shipment_id": update.shipment_id,
        "at": now,
        "kind": r.kind,
        "earliest": r.earliest,
        "latest": r.latest,
        "source": r.source,
        "created_at": now,
    }


_RELEASE = {"claimed_by": None, "claimed_until": None}


class _Batch:
    """The updates planned for loaded shipments, each planned on the state the previous ones
    left (two parcels of one order, or one shipment answered twice, chain: the second sees the
    first's order status, sequences and stored keys), and written together: one multi-row
    statement per table (per set of changed columns for the updates)."""

    def __init__(self, loaded: Mapping[int, Loaded]) -> None:
        self.loaded = loaded
        self.shipments: dict[int, ShipmentState] = {}
        self.orders: dict[int, OrderState] = {}
        self.keys: dict[int, frozenset[str]] = {}
        self.events: list[NewEvent] = []
        self.shipment_changes: dict[int, dict[str, Any]] = {}
        self.order_changes: dict[int, dict[str, Any]] = {}
        self.messages: list[OutboxMessage] = []
        self.revisions: list[ShipmentUpdate] = []
        self.delivered: list[int] = []

    def state(self, shipment_id: int) -> tuple[ShipmentState, OrderState, frozenset[str]] | None:
        """The shipment, its order and its stored keys as the updates so far left them."""
        loaded = self.loaded.get(shipment_id)
        if loaded is None:
            return None
        return (
            self.shipments.get(shipment_id, loaded.shipment),
            self.orders.get(loaded.order.id, loaded.order),
            self.keys.get(shipment_id, loaded.known_keys),
        )

    def take(self, before: ShipmentState, known: frozenset[str], update: ShipmentUpdate) -> None:
        sid = update.shipment_id
        self.shipments[sid] = update.after
        self.orders[update.order_pk] = update.order_after
        self.keys[sid] = known | {e.dedupe_key for e in update.new_events}
        self.events.extend(update.new_events)
        self.shipment_changes.setdefault(sid, {}).update(update.shipment_changes)
        if update.order_changes:
            self.order_changes.setdefault(update.order_pk, {}).update(update.order_changes)
        self.messages.extend(update.messages)
        if update.revision is not None:
            self.revisions.append(update)
        if update.after.status == Status.DELIVERED and before.status != Status.DELIVERED:
            self.delivered.append(sid)

    async def write(
        self,
        session: AsyncSession,
        *,
        now: datetime,
        release_claim: bool,
        on_delivered: DeliveryHook | None,
    ) -> None:
        """Write everything taken (events, shipments, orders, outbox, the ledger's revisions, in
        that order) in the caller's transaction; `release_claim` clears the claim on every
        shipment taken."""
        conn = await session.connection()
        if self.events:
            insert = _insert_ignoring(conn.dialect.name, _E, ("shipment_id", "dedupe_key"))
            await conn.execute(insert, [event_row(e, now) for e in self.events])
        changes = self.shipment_changes
        if release_claim:
            changes = {sid: {**values, **_RELEASE} for sid, values in changes.items()}
        await _update_rows(conn, _S, changes)
        await _update_rows(conn, _O, self.order_changes)
        if self.messages:
            await conn.execute(sa.insert(_X), [outbox_row(m, now) for m in self.messages])
        if self.revisions:
            revisions = [revision_row(u, now) for u in self.revisions]
            await conn.execute(sa.insert(_R), [r for r in revisions if r is not None])
        if on_delivered is not None:
            for sid in self.delivered:
                loaded = self.loaded[sid]
                order_pk = loaded.order.id
                order = Order(**{**loaded.order_row, **self.order_changes.get(order_pk, {})})
                shipment = Shipment(**{**loaded.shipment_row, **self.shipment_changes[sid]})
                await on_delivered(session, order, shipment)


async def write_update(
    session: AsyncSession,
    update: ShipmentUpdate,
    *,
    now: datetime,
    release_claim: bool,
) -> None:
    """Write a planned update as it is (events, shipment, order, outbox, revision), in the
    caller's transaction. `release_claim` clears this worker's claim on the shipment."""
    batch = _Batch({})
    batch.events.extend(update.new_events)
    batch.shipment_changes[update.shipment_id] = dict(update.shipment_changes)
    if update.order_changes:
        batch.order_changes[update.order_pk] = dict(update.order_changes)
    batch.messages.extend(update.messages)
    if update.revision is not None:
        batch.revisions.append(update)
    await batch.write(session, now=now, release_claim=release_claim, on_delivered=None)


def became_delivered(loaded: Loaded, update: ShipmentUpdate) -> bool:
    return update.after.status == Status.DELIVERED and loaded.shipment.status != Status.DELIVERED


def _reestimated(
    before: ShipmentState,
    order_row: Row,
    outcome: TrackingResult | TrackingFailure,
    known: frozenset[str],
    reestimate: Reestimator | None,
) -> Estimate | None:
    """The re-estimate from the hand-off (or the last scan after it) the answer leads to."""
    if not isinstance(outcome, TrackingResult) or reestimate is None:
        return None
    if outcome.estimated_delivery is not None or (
        before.estimate is not None and before.estimate.source == "carrier"
    ):
        return None  # the carrier's window stands: `plan_update` would not read a re-estimate
    progress = progress_after(before, outcome, known)
    if progress.handed_off_at is None:
        return None
    last = progress.last_event_at
    scan = last if last is not None and last > progress.handed_off_at else None
    return reestimate(order_row, progress.handed_off_at, scan)


async def apply_outcomes(
    session: AsyncSession,
    outcomes: Sequence[tuple[int, TrackingResult | TrackingFailure]],
    *,
    now: datetime,
    config: TrackingConfig,
    base_url: str,
    reestimate: Reestimator | None = None,
    on_delivered: DeliveryHook | None = None,
    release_claim: bool = True,
) -> list[ShipmentUpdate | None]:
    """Apply carrier answers, each to its shipment, in the caller's transaction (see the module
    docstring); the updates written, in the order of `outcomes` (None: the shipment is gone).
    Answers for one shipment or one order are planned in turn, each on what the previous left.
    """
    loaded = await lock_and_load_many(session, [sid for sid, _ in outcomes], base_url=base_url)
    batch = _Batch(loaded)
    updates: list[ShipmentUpdate | None] = []
    for shipment_id, outcome in outcomes:
        current = batch.state(shipment_id)
        if current is None:
            updates.append(None)
            continue
        before, order, known = current
        order_row = loaded[shipment_id].order_row
        reestimated = _reestimated(before, order_row, outcome, known, reestimate)
        update = plan_update(before, order, outcome, known, now, reestimated, config)
        batch.take(before, known, update)
        updates.append(update)
    await batch.write(session, now=now, release_claim=release_claim, on_delivered=on_delivered)
    return updates


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
    """Apply one carrier answer to one shipment in the caller's transaction (`apply_outcomes`
    of one); the update written, or None when the shipment is gone."""
    (update,) = await apply_outcomes(
        session,
        [(shipment_id, outcome)],
        now=now,
        config=config,
        base_url=base_url,
        reestimate=reestimate,
        on_delivered=on_delivered,
        release_claim=release_claim,
    )
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
    loaded = await lock_and_load_many(session, [shipment_id], base_url=base_url)
    batch = _Batch(loaded)
    current = batch.state(shipment_id)
    if current is None:
        return None
    before, order, known = current
    update = plan_check(before, order, now, config)
    if update.changed:
        batch.take(before, known, update)
        await batch.write(session, now=now, release_claim=False, on_delivered=on_delivered)
    return update


async def commit_without_waiting(session: AsyncSession) -> None:
    """Let this transaction's commit return before its WAL reaches the disk (PostgreSQL's
    `synchronous_commit = off` for this transaction only; elsewhere nothing). Only for a
    transaction whose loss in a crash is harmless: see the module docstring."""
    if _dialect(session) == "postgresql":
        await session.execute(sa.text("SET LOCAL synchronous_commit = off"))


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
