"""The promise ledger: every registered order's promise and what became of it.

One row per order placed in a date range (the order's date at its origin, the warehouse's
calendar day), cancelled orders left out: the promise as sold (window, stated confidence,
basis with the lanes and record counts it rested on), the hand-off, each re-estimate
(`promise_revisions`), and the delivery, as the destination-local date the order's last
parcel arrived. Loaded in two statements whatever the range: the orders with their shipments
(one outer join), then their revisions.

A promise is **on time** when the order was delivered by its latest date, **late** when it
was delivered after it or is still not delivered once that date has passed at the destination,
and **open** otherwise. An order is delivered when each of its parcels that is not cancelled
is; an order with no parcel yet is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.models.tracking import Order, PromiseRevision, Shipment
from tracking_service.timezones import zone_or_none
from tracking_service.tracking.store import destination_zone

Outcome = Literal["on_time", "late", "open"]
OUTCOMES: tuple[Outcome, ...] = ("on_time", "late", "open")
POSTAL_PREFIX_LENGTH = 3
"""The destination's postal code is kept to its first characters: a region of a few towns
(US 3-digit ZIP prefix, Brazil's CEP sub-region), never an address."""

_O: sa.Table = Order.__table__  # type: ignore[attr-defined]
_S: sa.Table = Shipment.__table__  # type: ignore[attr-defined]
_R: sa.Table = PromiseRevision.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class LaneBasis:
    """One lane a history-based promise rested on, with the delivery records it had."""

    part: str
    lane: str
    records: int


@dataclass(frozen=True, slots=True)
class Revision:
    """A re-estimate of the delivery after the promise (hand-off, scan, carrier's date)."""

    at: datetime
    kind: str
    earliest: date | None
    latest: date | None
    source: str | None


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One order's promise and its outcome, as of `today` at the destination."""

    order_id: str
    placed_at: datetime
    order_date: date  # the origin's local date of `placed_at`
    option: str
    origin: str
    carrier: str | None  # the first parcel's; None before any parcel is attached
    destination_country: str
    destination_region: str  # "US-CA"; the country alone when the subdivision is unknown
    postal_prefix: str
    earliest: date
    latest: date
    confidence: float
    basis: str  # given, rules or history
    lanes: tuple[LaneBasis, ...]
    handed_off_at: datetime | None
    revisions: tuple[Revision, ...]
    delivered_on: date | None  # the destination's local date of the last parcel's delivery
    status: str  # the order's status
    today: date  # the destination's local date at the ledger's instant

    @property
    def lane(self) -> str:
        return f"{self.origin} -> {self.destination_region}"

    @property
    def outcome(self) -> Outcome:
        return outcome(self.latest, self.delivered_on, self.today)

    @property
    def due(self) -> bool:
        """The latest promised date has passed at the destination: the outcome is final."""
        return self.today > self.latest

    @property
    def promised_lead(self) -> int:
        """Days from the order date to the latest promised date."""
        return (self.latest - self.order_date).days

    @property
    def delivered_lead(self) -> int | None:
        """Days from the order date to the delivery, None while not delivered."""
        return None if self.delivered_on is None else (self.delivered_on - self.order_date).days

    @property
    def days_early(self) -> int | None:
        """Days the delivery came before the latest promised date (0: on that day)."""
        if self.delivered_on is None or self.delivered_on > self.latest:
            return None
        return (self.latest - self.delivered_on).days

    @property
    def days_late(self) -> int | None:
        """Days past the latest promised date: to the delivery, or so far (to yesterday) for a
        late order still on its way; None when not late."""
        if self.outcome != "late":
            return None
        end = self.delivered_on if self.delivered_on is not None else self.today - timedelta(1)
        return (end - self.latest).days


def outcome(latest: date, delivered_on: date | None, today: date) -> Outcome:
    """On time (delivered by `latest`), late (delivered after, or not delivered and `latest`
    has passed on `today`, the destination's date), or open."""
    if delivered_on is not None:
        return "on_time" if delivered_on <= latest else "late"
    return "late" if today > latest else "open"


# --- from rows (pure) -------------------------------------------------------------------------


def _zone(name: str | None) -> tzinfo:
    found = zone_or_none(name) if name else None
    return found if found is not None else UTC


def _lanes(detail: Mapping[str, Any] | None) -> tuple[LaneBasis, ...]:
    out = []
    for lane in (detail or {}).get("lanes") or ():
        if isinstance(lane, Mapping):
            out.append(
                LaneBasis(
                    str(lane.get("part", "")),
                    str(lane.get("lane", "")),
                    int(lane.get("records") or 0),
                )
            )
    return tuple(out)


def region_of(country: str, subdivision: str | None) -> str:
    """ "US-CA" (ISO 3166-2), or the country alone when the subdivision is unknown."""
    return f"{country}-{subdivision}" if subdivision else country


def ledger_row(
    order: Mapping[str, Any],
    shipments: Sequence[Mapping[str, Any]],
    revisions: Iterable[Revision],
    *,
    now: datetime,
    origin_zone: str | None,
) -> LedgerRow:
    """An order's ledger row from its columns, its shipments' (in registration order) and its
    revisions (oldest first), as of the instant `now`."""
    dest_tz = _zone(
        order["dest_tz"] or destination_zone(order["dest_country"], order["dest_subdivision"])
    )
    live = [s for s in shipments if s["cancelled_at"] is None]
    first = live[0] if live else (shipments[0] if shipments else None)
    handoffs = [s["handed_off_at"] for s in shipments if s["handed_off_at"] is not None]
    delivered_on = None
    if live and all(s["delivered_at"] is not None for s in live):
        delivered_on = max(s["delivered_at"] for s in live).astimezone(dest_tz).date()
    placed_at: datetime = order["placed_at"]
    return LedgerRow(
        order_id=order["order_id"],
        placed_at=placed_at,
        order_date=placed_at.astimezone(_zone(origin_zone)).date(),
        option=order["option"],
        origin=order["origin"],
        carrier=first["carrier"] if first is not None else None,
        destination_country=order["dest_country"],
        destination_region=region_of(order["dest_country"], order["dest_subdivision"]),
        postal_prefix=(order["dest_postal_code"] or "")[:POSTAL_PREFIX_LENGTH],
        earliest=order["promise_earliest"],
        latest=order["promise_latest"],
        confidence=float(order["promise_confidence"]),
        basis=order["promise_basis"],
        lanes=_lanes(order["promise_detail"]),
        handed_off_at=min(handoffs) if handoffs else None,
        revisions=tuple(revisions),
        delivered_on=delivered_on,
        status=order["status"],
        today=now.astimezone(dest_tz).date(),
    )


# --- the database edge ------------------------------------------------------------------------

_ORDER_COLUMNS = (
    _O.c.id,
    _O.c.order_id,
    _O.c.placed_at,
    _O.c.origin,
    _O.c.option,
    _O.c.dest_country,
    _O.c.dest_subdivision,
    _O.c.dest_postal_code,
    _O.c.dest_tz,
    _O.c.promise_earliest,
    _O.c.promise_latest,
    _O.c.promise_confidence,
    _O.c.promise_basis,
    _O.c.promise_detail,
    _O.c.status,
)
_SHIPMENT_COLUMNS = (
    _S.c.id.label("s_id"),
    _S.c.carrier.label("s_carrier"),
    _S.c.handed_off_at.label("s_handed_off_at"),
    _S.c.delivered_at.label("s_delivered_at"),
    _S.c.cancelled_at.label("s_cancelled_at"),
)


def _placed_between(start: date, end: date) -> sa.ColumnElement[bool]:
    """Orders that may have been placed on a local date in [start, end] anywhere on earth
    (zones lie within a day of UTC); the exact local date is checked on each row."""
    first = max(start, date.min + timedelta(days=1))  # the ends of the calendar: no overflow
    last = min(end, date.max - timedelta(days=2))
    low = datetime.combine(first - timedelta(days=1), time(), UTC)
    high = datetime.combine(last + timedelta(days=2), time(), UTC)
    return sa.and_(
        _O.c.placed_at >= low,
        _O.c.placed_at < high,
        _O.c.cancelled_at.is_(None),
    )


async def load_ledger(
    session: AsyncSession,
    start: date,
    end: date,
    *,
    now: datetime,
    origin_zones: Mapping[str, str],
) -> list[LedgerRow]:
    """The ledger of orders placed on the origin's local dates `start` to `end` (inclusive),
    not cancelled, oldest first, as of `now`. `origin_zones` maps origin ids to their zone
    (from the rules; an origin the rules no longer have reads its dates in UTC)."""
    conn = await session.connection()
    where = _placed_between(start, end)
    joined = _O.outerjoin(_S, _S.c.order_pk == _O.c.id)
    found = await conn.execute(
        sa.select(*_ORDER_COLUMNS, *_SHIPMENT_COLUMNS)
        .select_from(joined)
        .where(where)
        .order_by(_O.c.placed_at, _O.c.id, _S.c.id)
    )
    orders: dict[int, dict[str, Any]] = {}
    shipments: dict[int, list[dict[str, Any]]] = {}
    for joined_row in found.mappings():
        pk = joined_row["id"]
        if pk not in orders:
            orders[pk] = {c.name: joined_row[c.name] for c in _ORDER_COLUMNS}
            shipments[pk] = []
        if joined_row["s_id"] is not None:
            shipments[pk].append(
                {
                    "carrier": joined_row["s_carrier"],
                    "handed_off_at": joined_row["s_handed_off_at"],
                    "delivered_at": joined_row["s_delivered_at"],
                    "cancelled_at": joined_row["s_cancelled_at"],
                }
            )
    revisions: dict[int, list[Revision]] = {}
    if orders:
        found = await conn.execute(
            sa.select(_R.c.order_pk, _R.c.at, _R.c.kind, _R.c.earliest, _R.c.latest, _R.c.source)
            .select_from(_R.join(_O, _O.c.id == _R.c.order_pk))
            .where(where)
            .order_by(_R.c.order_pk, _R.c.at, _R.c.id)
        )
        for r in found:
            revisions.setdefault(r.order_pk, []).append(
                Revision(r.at, r.kind, r.earliest, r.latest, r.source)
            )
    out = []
    for pk, order in orders.items():
        row = ledger_row(
            order,
            shipments[pk],
            revisions.get(pk, ()),
            now=now,
            origin_zone=origin_zones.get(order["origin"]),
        )
        if start <= row.order_date <= end:
            out.append(row)
    return out
