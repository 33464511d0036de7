"""The public tracking page's read: a token to the plain facts of its order, in one statement.

One indexed query answers a page: the token's shipment is found by the unique index on
`shipments.tracking_token` (a subquery), and the same statement returns every shipment of its
order with the order's public columns and, joined, their events, oldest first (index on
`tracking_events (shipment_id, occurred_at)`). An unknown token costs exactly that one
statement too, and a token that is not well formed none at all (its shape says nothing about
any real token). The token is then compared with the stored one in constant time
(`secrets.compare_digest`), which also keeps a database whose collation ignores case or
trailing spaces from accepting a near miss.

One statement is one consistent snapshot, so the caller needs no transaction: it passes a
connection in autocommit mode and saves the BEGIN and COMMIT round trips, which on this,
the service's most frequent request, cost more than the query.

Only public columns are selected: the customer's name, email, phone and street never leave
the database on this path, so no later change to the page can show them by mistake.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tracking_service.models.tracking import Order, Shipment, TrackingEventRecord
from tracking_service.tracking.public_view import EventFacts, OrderFacts, ShipmentFacts

_O: sa.Table = Order.__table__  # type: ignore[attr-defined]
_S: sa.Table = Shipment.__table__  # type: ignore[attr-defined]
_E: sa.Table = TrackingEventRecord.__table__  # type: ignore[attr-defined]

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""What a token can look like: registration makes 32 URL-safe characters; anything outside
this shape is answered "not found" without a query (its shape says nothing about a token)."""

_SHIPMENT_COLUMNS = (  # after the token, in the order of ShipmentFacts' fields
    _S.c.id,
    _S.c.carrier,
    _S.c.tracking_number,
    _S.c.status,
    _S.c.status_changed_at,
    _S.c.estimate_earliest,
    _S.c.estimate_latest,
    _S.c.estimate_source,
    _S.c.delayed,
    _S.c.delay_reason,
    _S.c.handed_off_at,
    _S.c.delivered_at,
    _S.c.last_event_at,
    _S.c.cancelled_at.label("shipment_cancelled_at"),
)
_ORDER_COLUMNS = (  # in the order of OrderFacts' fields
    _O.c.order_id,
    _O.c.dest_country,
    _O.c.dest_subdivision,
    _O.c.dest_city,
    _O.c.promise_earliest,
    _O.c.promise_latest,
    _O.c.promise_confidence,
    _O.c.promise_basis,
    _O.c.locale,
    _O.c.cancelled_at,
)
_EVENT_COLUMNS = (
    _E.c.occurred_at,
    _E.c.status.label("event_status"),
    _E.c.city,
    _E.c.region,
    _E.c.source,
    _E.c.raw_code,
)
_SHIPMENT = slice(1, 1 + len(_SHIPMENT_COLUMNS))
_ORDER = slice(_SHIPMENT.stop, _SHIPMENT.stop + len(_ORDER_COLUMNS))
_EVENT = _ORDER.stop

_STATEMENT = (
    sa.select(_S.c.tracking_token, *_SHIPMENT_COLUMNS, *_ORDER_COLUMNS, *_EVENT_COLUMNS)
    .select_from(_S)
    .join(_O, _O.c.id == _S.c.order_pk)
    .outerjoin(_E, _E.c.shipment_id == _S.c.id)
    .where(
        _S.c.order_pk
        == sa.select(_S.c.order_pk)
        .where(_S.c.tracking_token == sa.bindparam("token", type_=sa.String))
        .scalar_subquery()
    )
    .order_by(_S.c.id, _E.c.occurred_at, _E.c.id)
)
"""Built once: only the token changes, and SQLAlchemy's compiled cache then finds it at once.
Rows are read as plain tuples, by position: token, the shipment's fields, the order's, the
event's (null when the shipment has none)."""
assert tuple(ShipmentFacts.__dataclass_fields__)[:-1] == tuple(
    c.name.removeprefix("shipment_") for c in _SHIPMENT_COLUMNS
)
assert tuple(OrderFacts.__dataclass_fields__) == tuple(c.name for c in _ORDER_COLUMNS)


@dataclass(frozen=True, slots=True)
class PublicFacts:
    """A token's order, its shipments with their events, and which one the token is."""

    order: OrderFacts
    shipments: tuple[ShipmentFacts, ...]  # registration order
    focus_id: int


def _shipment(row: tuple[Any, ...], events: tuple[EventFacts, ...]) -> ShipmentFacts:
    fields: tuple[Any, ...] = (*row[_SHIPMENT], events)
    return ShipmentFacts(*fields)


def well_formed(token: str) -> bool:
    return TOKEN_PATTERN.fullmatch(token) is not None


async def find_by_token(conn: AsyncConnection, token: str) -> PublicFacts | None:
    """The facts behind a public token, or None for a token that is unknown or malformed."""
    if not well_formed(token):
        return None
    rows: Sequence[tuple[Any, ...]] = (await conn.execute(_STATEMENT, {"token": token})).all()
    wanted = token.encode()
    focus = None
    for row in rows:  # every row is compared: the time does not depend on which one matches
        if secrets.compare_digest(row[0].encode(), wanted):
            focus = row[1]
    if focus is None:
        return None
    firsts: dict[int, tuple[Any, ...]] = {}  # shipment id -> its first row
    events: dict[int, list[EventFacts]] = {}
    for row in rows:
        sid = row[1]
        if sid not in firsts:
            firsts[sid] = row
            events[sid] = []
        occurred_at, status, city, region, source, raw_code = row[_EVENT:]
        if occurred_at is not None:
            kind = raw_code if source == "service" else ""
            events[sid].append(EventFacts(occurred_at, status, city, region, source, kind))
    return PublicFacts(
        OrderFacts(*rows[0][_ORDER]),
        tuple(_shipment(row, tuple(events[sid])) for sid, row in firsts.items()),
        focus,
    )
