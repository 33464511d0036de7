"""The delivery-history table at the edge: idempotent bulk insert, load, count.

`(source, external_id)` is the idempotency key: rows go in with `INSERT ... ON CONFLICT DO
NOTHING`, so importing the same file twice (or two imports racing) adds nothing the second time,
and `RETURNING id` tells which rows were really new.

Every function takes the caller's session and never commits: the caller decides what lands
together (the import command commits each batch with `db.unit_of_work`, so a crash leaves whole
batches and re-running the import fills in the rest).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from tracking_service.estimator.records import Delivery
from tracking_service.models import DELIVERY_RECORDS as _TABLE
from tracking_service.models import utcnow

BATCH_SIZE = 2000

# Columns shared one-to-one by the record and the table: every field of `Delivery` but its key
# (`external_id` in the table), so a field added to the record needs only its column.
_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Delivery) if f.name != "key")


@dataclass(frozen=True, slots=True)
class InsertCounts:
    """What an import did: rows that are new, and rows the table already had."""

    inserted: int = 0
    already_present: int = 0

    def __add__(self, other: InsertCounts) -> InsertCounts:
        return InsertCounts(
            self.inserted + other.inserted, self.already_present + other.already_present
        )


def _row(source: str, delivery: Delivery, now: datetime) -> dict[str, Any]:
    row = {field: getattr(delivery, field) for field in _FIELDS}
    row["source"] = source
    row["external_id"] = delivery.key
    row["created_at"] = now
    return row


def _insert_ignoring_duplicates(dialect: str) -> sa.Insert:
    keys = ["source", "external_id"]
    if dialect == "postgresql":
        pg = postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=keys)
        return pg.returning(_TABLE.c.id)
    if dialect == "sqlite":
        lite = sqlite.insert(_TABLE).on_conflict_do_nothing(index_elements=keys)
        return lite.returning(_TABLE.c.id)
    raise ValueError(f"unsupported database dialect {dialect!r}")


def _batches(items: Iterable[Delivery], size: int) -> Iterator[list[Delivery]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


async def insert_batch(session: AsyncSession, source: str, batch: list[Delivery]) -> InsertCounts:
    """Insert one batch in the session's transaction; rows whose (source, key) exists are left
    alone."""
    if not batch:
        return InsertCounts()
    now = utcnow()
    conn = await session.connection()
    statement = _insert_ignoring_duplicates(conn.dialect.name)
    result = await conn.execute(statement, [_row(source, d, now) for d in batch])
    inserted = len(result.all())
    return InsertCounts(inserted, len(batch) - inserted)


async def insert_deliveries(
    session: AsyncSession,
    source: str,
    deliveries: Iterable[Delivery],
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[InsertCounts], None] | None = None,
) -> InsertCounts:
    """Insert records idempotently in batches (all in the session's transaction); returns the
    totals."""
    total = InsertCounts()
    for batch in _batches(deliveries, batch_size):
        counts = await insert_batch(session, source, batch)
        total += counts
        if on_batch is not None:
            on_batch(counts)
    return total


def _delivery(row: sa.Row[Any]) -> Delivery:
    mapping = row._mapping
    return Delivery(key=mapping["external_id"], **{field: mapping[field] for field in _FIELDS})


async def load_deliveries(
    session: AsyncSession, since: datetime | None = None, *, source: str | None = None
) -> list[Delivery]:
    """Every stored record (delivered at or after `since`, of `source`), oldest delivery first.

    Instants come back aware in UTC. This is what feeds the history model at start-up and on
    refresh; it reads plain columns, not ORM objects, so 100,000 records load in about a second.
    """
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    columns = [_TABLE.c.external_id, *(_TABLE.c[field] for field in _FIELDS)]
    query = sa.select(*columns).order_by(_TABLE.c.delivered_at, _TABLE.c.id)
    if since is not None:
        query = query.where(_TABLE.c.delivered_at >= since)
    if source is not None:
        query = query.where(_TABLE.c.source == source)
    conn = await session.connection()
    result = await conn.execute(query)
    return [_delivery(row) for row in result]


async def count(session: AsyncSession, source: str | None = None) -> int:
    """How many delivery records are stored (of `source`, when given)."""
    query = sa.select(sa.func.count()).select_from(_TABLE)
    if source is not None:
        query = query.where(_TABLE.c.source == source)
    conn = await session.connection()
    return int((await conn.execute(query)).scalar_one())
