"""Outbox -> deliveries: one `webhook_deliveries` row per enabled endpoint that wants the event.

The fan-out reads the outbox after its cursor (`outbox_cursors`, row `webhooks`), in id order,
and in one transaction creates the deliveries and moves the cursor: the cursor row is locked
first (`FOR UPDATE` on PostgreSQL; SQLite's one write lock), so two workers never fan out one
event twice and a crash leaves the cursor where the last committed batch put it. An endpoint
gets the events written after it was created (`id > start_after_outbox_id`) whose type it
subscribed to (`event_types` None: all).

Never skipping an event on PostgreSQL: outbox ids come from a sequence when a row is inserted,
but transactions commit in any order, so when id 105 is visible, 104 may belong to a
transaction still running; moving the cursor past 105 would lose 104. The fan-out therefore
takes ids in an unbroken run from the cursor, and stops at a gap. A gap is skipped only once
it cannot be filled any more. The pass that sees it notes the highest id it read and the
transactions that may still write outbox rows: those holding a write lock on the outbox table
(`pg_locks`, read after the rows, excluding the fan-out's own). An INSERT takes that lock
before it draws its id from the sequence and keeps it until its transaction ends, so whoever
holds a missing id below the noted one is among them. Once none of them holds a lock any more
(checked at the start of a later pass, before it reads the rows, so what they committed is
in that read), each id up to the noted one is committed or was rolled back for good, and the
pass takes everything up to it.

Only this database's outbox table counts: the check names the table (its oid) and the
transactions by their virtual ids, so a long transaction elsewhere on the server, in another
database or on other tables of this one, never holds the fan-out back (cluster-wide horizons
such as a snapshot's `xmin` would: transaction ids belong to the whole PostgreSQL cluster).
A prepared transaction that inserted keeps its locks, and counts, until it is resolved.
SQLite commits its writers one at a time: its ids have no such gaps.

The cursor and the reading rule (`lock_cursor`, `read_outbox`, `move_cursor`) are shared by
every reader of the outbox with a cursor of its own: the customer-email fan-out
(`notifications/store.py`, cursor `notifications`) reads the outbox exactly as this one does.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from tracking_service.models import OutboxEvent
from tracking_service.models.webhooks import OutboxCursor, WebhookDelivery, WebhookEndpoint
from tracking_service.tracking.messages import iso

CURSOR = "webhooks"
PING = "ping"

_X: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]
_C: sa.Table = OutboxCursor.__table__  # type: ignore[attr-defined]
_D: sa.Table = WebhookDelivery.__table__  # type: ignore[attr-defined]
_EP: sa.Table = WebhookEndpoint.__table__  # type: ignore[attr-defined]


@dataclass
class Horizon:
    """What a process remembers between passes about a gap (see the module docstring): the
    highest id read when it was seen (0: no gap noted) and the virtual transaction ids that
    then held a write lock on the outbox."""

    through_id: int = 0
    writers: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FanoutReport:
    events: int
    deliveries: int
    cursor: int
    blocked: bool
    """True when the pass stopped at a gap it may not skip yet."""


def wants(event_types: Sequence[str] | None, event_type: str) -> bool:
    """Whether an endpoint subscribed to `event_type` (None or empty: every type)."""
    return not event_types or event_type in event_types


def delivery_values(endpoint_id: int, event: Mapping[Any, Any], now: datetime) -> dict[str, Any]:
    """The row of one delivery of an outbox event (as the fan-out and a replay write it): due
    at once, its `webhook_id` the event's id."""
    return {
        "endpoint_id": endpoint_id,
        "outbox_id": event["id"],
        "webhook_id": event["event_id"],
        "event_type": event["event_type"],
        "stream": event["stream"],
        "sequence": event["sequence"],
        "payload": None,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def ping_values(endpoint_id: int, now: datetime) -> dict[str, Any]:
    """A `ping` delivery for an endpoint's test: its own id and payload, no stream."""
    msg_id = "msg_ping_" + secrets.token_hex(10)
    return {
        "endpoint_id": endpoint_id,
        "outbox_id": None,
        "webhook_id": msg_id,
        "event_type": PING,
        "stream": None,
        "sequence": None,
        "payload": {"type": PING, "timestamp": iso(now), "data": {"endpoint_id": endpoint_id}},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


async def lock_cursor(
    session: AsyncSession, name: str, *, now: datetime, start_at_end: bool = False
) -> int:
    """Lock the cursor row `name` for this transaction (`FOR UPDATE` on PostgreSQL, SQLite's
    write lock) and return its `last_id`. A missing row is made first: at 0 (every event
    there is), or with `start_at_end` at the outbox's newest id (only what comes next)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        lock: sa.Executable = sa.select(_C.c.last_id).where(_C.c.name == name).with_for_update()
    else:
        lock = (
            sa.update(_C)
            .where(_C.c.name == name)
            .values(last_id=_C.c.last_id)
            .returning(_C.c.last_id)
        )
    found = (await session.execute(lock)).scalar_one_or_none()
    if found is not None:
        return int(found)
    start: Any = 0
    if start_at_end:
        start = sa.select(sa.func.coalesce(sa.func.max(_X.c.id), 0)).scalar_subquery()
    insert = postgresql.insert(_C) if dialect == "postgresql" else sqlite.insert(_C)
    await session.execute(
        insert.values(name=name, last_id=start, updated_at=now).on_conflict_do_nothing(
            index_elements=["name"]
        )
    )
    return int((await session.execute(lock)).scalar_one())


async def move_cursor(session: AsyncSession, name: str, to: int, *, now: datetime) -> None:
    """Set the (locked) cursor row `name` to `to`, in the caller's transaction."""
    await session.execute(sa.update(_C).where(_C.c.name == name).values(last_id=to, updated_at=now))


_WRITE_MODES = ("RowExclusiveLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")

_OUTBOX_WRITERS = sa.text(
    "SELECT DISTINCT virtualtransaction FROM pg_locks"
    " WHERE locktype = 'relation'"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND relation = to_regclass(:table)"
    " AND mode = ANY(:modes)"
    " AND pid IS DISTINCT FROM pg_backend_pid()"
)

_STILL_RUNNING = sa.text(
    "SELECT DISTINCT virtualtransaction FROM pg_locks WHERE virtualtransaction = ANY(:ids)"
)


async def _outbox_writers(session: AsyncSession) -> frozenset[str]:
    """The transactions (virtual ids) other than this one holding a write lock on the
    outbox table of this database now."""
    found = await session.execute(
        _OUTBOX_WRITERS, {"table": _X.fullname, "modes": list(_WRITE_MODES)}
    )
    return frozenset(str(r[0]) for r in found.all())


async def _any_running(session: AsyncSession, writers: frozenset[str]) -> bool:
    """Whether any of these transactions still runs (every running transaction holds locks
    under its virtual id; a prepared one keeps its own)."""
    if not writers:
        return False
    found = await session.execute(_STILL_RUNNING, {"ids": sorted(writers)})
    return found.first() is not None


@dataclass(frozen=True, slots=True)
class OutboxRead:
    """The outbox rows a pass may take after its cursor, in id order, and whether it stopped
    at a gap it may not skip yet."""

    rows: list[sa.RowMapping]
    blocked: bool


async def read_outbox(
    session: AsyncSession,
    *,
    after: int,
    limit: int,
    horizon: Horizon,
    columns: Sequence[sa.ColumnElement[Any]],
) -> OutboxRead:
    """Up to `limit` outbox rows after id `after` (the caller's locked cursor) in an unbroken
    run of ids, stopping at a gap that may still fill (the module docstring's rule; `horizon`
    is the caller's memory of gaps across passes). `columns` are read besides `id`. Every
    reader of the outbox with a cursor (the webhook fan-out, the notification fan-out) goes
    through here, so none of them skips a late commit."""
    gaps_possible = session.get_bind().dialect.name == "postgresql"
    safe_through = after
    if gaps_possible and horizon.through_id and not await _any_running(session, horizon.writers):
        # checked before the rows are read: what those writers committed is in this read
        safe_through = max(after, horizon.through_id)
        horizon.through_id, horizon.writers = 0, frozenset()
    wanted = [_X.c.id, *(c for c in columns if c is not _X.c.id)]
    rows = (
        (
            await session.execute(
                sa.select(*wanted).where(_X.c.id > after).order_by(_X.c.id).limit(limit)
            )
        )
        .mappings()
        .all()
    )
    if not rows:
        return OutboxRead([], False)
    taken: list[sa.RowMapping] = []
    expected = after + 1
    for row in rows:
        if gaps_possible and row["id"] != expected and row["id"] > safe_through:
            break
        taken.append(row)
        expected = row["id"] + 1
    blocked = len(taken) < len(rows)
    if blocked and not horizon.through_id:
        # read after the rows: whoever holds a missing id and has not ended is listed
        horizon.through_id = rows[-1]["id"]
        horizon.writers = await _outbox_writers(session)
    return OutboxRead(taken, blocked)


async def fan_out(
    session: AsyncSession, *, now: datetime, limit: int = 1000, horizon: Horizon | None = None
) -> FanoutReport:
    """Fan out up to `limit` outbox events after the cursor in the caller's transaction (see
    the module docstring); `horizon` is the caller's memory of gaps across passes."""
    horizon = horizon if horizon is not None else Horizon()
    last = await lock_cursor(session, CURSOR, now=now)
    read = await read_outbox(
        session,
        after=last,
        limit=limit,
        horizon=horizon,
        columns=(_X.c.event_id, _X.c.event_type, _X.c.stream, _X.c.sequence),
    )
    taken = read.rows
    if not taken:
        return FanoutReport(0, 0, last, read.blocked)
    endpoints = (
        await session.execute(
            sa.select(_EP.c.id, _EP.c.event_types, _EP.c.start_after_outbox_id).where(
                _EP.c.enabled.is_(True)
            )
        )
    ).all()
    values = [
        delivery_values(ep.id, event, now)
        for event in taken
        for ep in endpoints
        if event["id"] > ep.start_after_outbox_id and wants(ep.event_types, event["event_type"])
    ]
    if values:
        await session.execute(sa.insert(_D), values)
    cursor = taken[-1]["id"]
    await move_cursor(session, CURSOR, cursor, now=now)
    return FanoutReport(len(taken), len(values), cursor, read.blocked)
