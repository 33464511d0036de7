"""Reading orders and shipments back: one with its events, or a page of them.

Lists are paged by keyset over `(updated_at, id)`, oldest change first, with an opaque cursor
(the last row's pair, base64url JSON). Oldest first is what makes the cursor safe to follow
while the rows change underneath: a row updated after it was listed moves to the end and is
listed again, never skipped, so a client that pages with `updated_since` sees every change.
Filters: `status`, `delayed`, `carrier` and `updated_since` (inclusive). For an order,
`delayed` and `carrier` ask about its shipments that are not cancelled, and `updated_since`
also takes an order one of whose shipments changed since (its view shows them).

A page loads in three queries whatever its size: the rows, their shipments, their events.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.errors import InvalidInput, NotFound
from tracking_service.models.tracking import Order, Shipment, TrackingEventRecord

T = TypeVar("T")
MAX_LIMIT = 200
DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class ShipmentView:
    shipment: Shipment
    order_id: str  # the shop's id of its order
    events: tuple[TrackingEventRecord, ...]  # oldest first


@dataclass(frozen=True, slots=True)
class OrderView:
    order: Order
    shipments: tuple[ShipmentView, ...]  # in registration order, cancelled ones included

    @property
    def delayed(self) -> bool:
        """Some shipment that is not cancelled is delayed."""
        return any(v.shipment.delayed and v.shipment.cancelled_at is None for v in self.shipments)


@dataclass(frozen=True, slots=True)
class ListFilter:
    status: str | None = None
    delayed: bool | None = None
    carrier: str | None = None
    updated_since: datetime | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None  # None: this is the last page


# --- the cursor -------------------------------------------------------------------------------


def encode_cursor(updated_at: datetime, row_id: int) -> str:
    raw = json.dumps([updated_at.astimezone(UTC).isoformat(), row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (updated_at, id) a cursor stands for; `InvalidInput` on `cursor` for anything that
    is not a cursor this service made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        instant, row_id = json.loads(raw)
        at = datetime.fromisoformat(instant).astimezone(UTC)
        if instant[-6:] != "+00:00" or type(row_id) is not int or not 0 <= row_id < 2**31:
            raise ValueError
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "not a cursor of this list: pass next_cursor from the previous page", field="cursor"
        ) from None
    return at, row_id


def _after(updated: Any, row_id: Any, cursor: str | None) -> ColumnElement[bool] | None:
    if cursor is None:
        return None
    at, last = decode_cursor(cursor)
    return sa.or_(updated > at, sa.and_(updated == at, row_id > last))


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


# --- loading views ----------------------------------------------------------------------------


async def _events_by_shipment(
    session: AsyncSession, shipment_ids: Sequence[int]
) -> dict[int, list[TrackingEventRecord]]:
    out: dict[int, list[TrackingEventRecord]] = defaultdict(list)
    if not shipment_ids:
        return out
    found = await session.exec(
        select(TrackingEventRecord)
        .where(col(TrackingEventRecord.shipment_id).in_(shipment_ids))
        .order_by(col(TrackingEventRecord.occurred_at), col(TrackingEventRecord.id))
    )
    for event in found.all():
        out[event.shipment_id].append(event)
    return out


async def shipment_views(
    session: AsyncSession, shipments: Sequence[Shipment], order_ids: dict[int, str]
) -> list[ShipmentView]:
    """Each shipment with its events; `order_ids` maps order primary keys to the shop's ids."""
    events = await _events_by_shipment(session, [s.id for s in shipments if s.id is not None])
    return [
        ShipmentView(s, order_ids[s.order_pk], tuple(events.get(s.id or 0, ()))) for s in shipments
    ]


async def order_views(session: AsyncSession, orders: Sequence[Order]) -> list[OrderView]:
    """Each order with its shipments and their events."""
    pks = [o.id for o in orders if o.id is not None]
    by_order: dict[int, list[ShipmentView]] = defaultdict(list)
    if pks:
        found = await session.exec(
            select(Shipment).where(col(Shipment.order_pk).in_(pks)).order_by(col(Shipment.id))
        )
        shipments = list(found.all())
        order_ids = {o.id: o.order_id for o in orders if o.id is not None}
        for view in await shipment_views(session, shipments, order_ids):
            by_order[view.shipment.order_pk].append(view)
    return [OrderView(o, tuple(by_order.get(o.id or 0, ()))) for o in orders]


async def get_order(session: AsyncSession, order_id: str) -> OrderView:
    """The order the shop calls `order_id`, with its shipments; `NotFound` otherwise."""
    found = await session.exec(select(Order).where(Order.order_id == order_id))
    order = found.first()
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    return (await order_views(session, [order]))[0]


async def get_shipment(session: AsyncSession, shipment_id: int) -> ShipmentView:
    """A shipment by its id, with its events; `NotFound` otherwise."""
    shipment = await session.get(Shipment, shipment_id)
    if shipment is None:
        raise NotFound(f"no shipment {shipment_id}")
    order = await session.get(Order, shipment.order_pk)
    assert order is not None and order.id is not None
    return (await shipment_views(session, [shipment], {order.id: order.order_id}))[0]


# --- lists ------------------------------------------------------------------------------------


def _active_shipment_of_order(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return sa.exists(
        select(Shipment.id).where(
            col(Shipment.order_pk) == col(Order.id),
            col(Shipment.cancelled_at).is_(None),
            *conditions,
        )
    )


def _page_cursor(rows: list[T], limit: int, key: Any) -> tuple[list[T], str | None]:
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    updated_at, row_id = key(rows[-1])
    return rows, encode_cursor(updated_at, row_id)


async def list_orders(session: AsyncSession, f: ListFilter) -> Page[OrderView]:
    """A page of orders, oldest change first (see the module docstring)."""
    limit = _limit(f.limit)
    conditions: list[ColumnElement[bool]] = []
    if f.status is not None:
        conditions.append(col(Order.status) == f.status)
    if f.delayed is not None:
        delayed = _active_shipment_of_order(col(Shipment.delayed).is_(True))
        conditions.append(delayed if f.delayed else sa.not_(delayed))
    if f.carrier is not None:
        conditions.append(_active_shipment_of_order(col(Shipment.carrier) == f.carrier))
    if f.updated_since is not None:
        # An order's view holds its shipments: a scan that moved one of them is a change of
        # the order too, even when the order's own columns stayed as they were.
        shipment_changed = sa.exists(
            select(Shipment.id).where(
                col(Shipment.order_pk) == col(Order.id),
                col(Shipment.updated_at) >= f.updated_since,
            )
        )
        conditions.append(sa.or_(col(Order.updated_at) >= f.updated_since, shipment_changed))
    after = _after(col(Order.updated_at), col(Order.id), f.cursor)
    if after is not None:
        conditions.append(after)
    found = await session.exec(
        select(Order)
        .where(*conditions)
        .order_by(col(Order.updated_at), col(Order.id))
        .limit(limit + 1)
    )
    rows, next_cursor = _page_cursor(list(found.all()), limit, lambda o: (o.updated_at, o.id))
    return Page(tuple(await order_views(session, rows)), next_cursor)


async def list_shipments(session: AsyncSession, f: ListFilter) -> Page[ShipmentView]:
    """A page of shipments, oldest change first (see the module docstring)."""
    limit = _limit(f.limit)
    conditions: list[ColumnElement[bool]] = []
    if f.status is not None:
        conditions.append(col(Shipment.status) == f.status)
    if f.delayed is not None:
        conditions.append(col(Shipment.delayed).is_(f.delayed))
    if f.carrier is not None:
        conditions.append(col(Shipment.carrier) == f.carrier)
    if f.updated_since is not None:
        conditions.append(col(Shipment.updated_at) >= f.updated_since)
    after = _after(col(Shipment.updated_at), col(Shipment.id), f.cursor)
    if after is not None:
        conditions.append(after)
    found = await session.exec(
        select(Shipment)
        .where(*conditions)
        .order_by(col(Shipment.updated_at), col(Shipment.id))
        .limit(limit + 1)
    )
    rows, next_cursor = _page_cursor(list(found.all()), limit, lambda s: (s.updated_at, s.id))
    order_ids = await _order_ids(session, {s.order_pk for s in rows})
    return Page(tuple(await shipment_views(session, rows, order_ids)), next_cursor)


async def _order_ids(session: AsyncSession, pks: Iterable[int]) -> dict[int, str]:
    wanted = sorted(pks)
    if not wanted:
        return {}
    found = await session.exec(select(Order.id, Order.order_id).where(col(Order.id).in_(wanted)))
    return {pk: order_id for pk, order_id in found.all() if pk is not None}
