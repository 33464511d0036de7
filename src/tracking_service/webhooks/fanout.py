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
it cannot be filled any more: the pass that saw it notes the highest id it read and the
snapshot's `xmax`; once every transaction older than that has ended (the current snapshot's
`xmin` reached it), each id up to the noted one is committed or was rolled back for good, so
the next pass takes everything up to it. (This assumes an outbox writer has its transaction id
before it inserts, which the tracking pipeline has: it locks and updates the order and the
shipment first.) Transaction ids belong to the whole PostgreSQL cluster: a long write
transaction anywhere in it delays the fan-out past a gap; it never loses an event. SQLite
commits its writers one at a time: its ids have no such gaps.
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
    """What a process remembers between passes about a gap (see the module docstring)."""

    through_id: int = 0
    xmax: int = 0


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


async def _lock_cursor(session: AsyncSession, now: datetime) -> int:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        lock: sa.Executable = sa.select(_C.c.last_id).where(_C.c.name == CURSOR).with_for_update()
    else:
        lock = (
            sa.update(_C)
            .where(_C.c.name == CURSOR)
            .values(last_id=_C.c.last_id)
            .returning(_C.c.last_id)
        )
    found = (await session.execute(lock)).scalar_one_or_none()
    if found is not None:
        return int(found)
    insert = postgresql.insert(_C) if dialect == "postgresql" else sqlite.insert(_C)
    await session.execute(
        insert.values(name=CURSOR, last_id=0, updated_at=now).on_conflict_do_nothing(
            index_elements=["name"]
        )
    )
    return int((await session.execute(lock)).scalar_one())


async def _snapshot(session: AsyncSession) -> tuple[int, int]:
    row = (
        await session.execute(
            sa.text(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
                "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def fan_out(
    session: AsyncSession, *, now: datetime, limit: int = 1000, horizon: Horizon | None = None
) -> FanoutReport:
    """Fan out up to `limit` outbox events after the cursor in the caller's transaction (see
    the module docstring); `horizon` is the caller's memory of gaps across passes."""
    horizon = horizon if horizon is not None else Horizon()
    last = await _lock_cursor(session, now)
    rows = (
        (
            await session.execute(
                sa.select(_X.c.id, _X.c.event_id, _X.c.event_type, _X.c.stream, _X.c.sequence)
                .where(_X.c.id > last)
                .order_by(_X.c.id)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    if not rows:
        return FanoutReport(0, 0, last, False)
    safe_through = last
    gaps_possible = session.get_bind().dialect.name == "postgresql"
    if gaps_possible:
        xmin, xmax = await _snapshot(session)
        if horizon.xmax and xmin >= horizon.xmax:
            safe_through = max(last, horizon.through_id)
            horizon.through_id = horizon.xmax = 0
    taken: list[sa.RowMapping] = []
    expected = last + 1
    for row in rows:
        if gaps_possible and row["id"] != expected and row["id"] > safe_through:
            break
        taken.append(row)
        expected = row["id"] + 1
    blocked = len(taken) < len(rows)
    if blocked and not horizon.xmax:
        horizon.through_id, horizon.xmax = rows[-1]["id"], xmax
    if not taken:
        return FanoutReport(0, 0, last, True)
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
    await session.execute(
        sa.update(_C).where(_C.c.name == CURSOR).values(last_id=cursor, updated_at=now)
    )
    return FanoutReport(len(taken), len(values), cursor, blocked)
