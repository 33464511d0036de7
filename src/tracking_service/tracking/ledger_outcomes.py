"""The outcomes of the service's own recent promises, read from the promise ledger for the
recalibration of the level (`estimator.history.recalibration`).

`load_outcomes(session, now, window)` gives one `PromiseOutcome` per order whose promise was
made in the `window` before `now` (`since < promise_made_at <= now`, the recalibration's own
rule): the predictive distribution stored when the promise was made (`orders.promise_distribution`,
never recomputed: a later model would leak what was learned since), and its fate as known at
`now`. The order is delivered when its last live shipment is (status `delivered`): on the
destination-local date of the latest of its shipments' deliveries; until then, and when that
delivery is after `now` (a clock behind the data), it is open (`delivered_on` None) and the
recalibration censors it. Cancelled orders are left out (no promise left to keep), and so are
orders without a stored distribution (rules-only, or registered before the ledger).

One statement: the orders in the window (bounded through the `placed_at` index: a promise is
made at its order's `placed_at`, see `tracking.registration`) with the latest delivery of their
live shipments as a correlated aggregate. The caller's session, never committed.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tracking_service.carriers.status import Status
from tracking_service.estimator.history import PromiseOutcome
from tracking_service.models import Order, Shipment
from tracking_service.timezones import zone

log = logging.getLogger(__name__)

_O = Order.__table__.c  # type: ignore[attr-defined]
_S = Shipment.__table__.c  # type: ignore[attr-defined]


def _query(since: datetime, now: datetime) -> sa.Select[Any]:
    delivered = (
        sa.select(sa.func.max(_S.delivered_at))
        .where(_S.order_pk == _O.id, _S.cancelled_at.is_(None))
        .correlate(Order.__table__)  # type: ignore[attr-defined]
        .scalar_subquery()
    )
    return (
        sa.select(
            _O.id,
            _O.option,
            _O.status,
            _O.promise_made_at,
            _O.promise_distribution,
            _O.dest_tz,
            delivered.label("delivered_at"),
        )
        .where(
            _O.placed_at > since,
            _O.placed_at <= now,
            _O.promise_made_at > since,
            _O.promise_made_at <= now,
            _O.cancelled_at.is_(None),
            _O.promise_distribution.is_not(None),
        )
        .order_by(_O.id)
    )


def outcome_of(row: Any, now: datetime) -> PromiseOutcome:
    """The outcome of one row of `_query` (pure); ValueError, KeyError or TypeError for a
    stored distribution that is not `{"start": "YYYY-MM-DD", "cdf": [numbers]}`."""
    stored = row.promise_distribution
    start = date.fromisoformat(stored["start"])
    cdf = tuple(float(p) for p in stored["cdf"])
    delivered_on = None
    at = row.delivered_at
    if row.status == str(Status.DELIVERED) and at is not None and at <= now:
        delivered_on = at.astimezone(zone(row.dest_tz or "UTC")).date()
    return PromiseOutcome(
        made_at=row.promise_made_at,
        start=start,
        cdf=cdf,
        delivered_on=delivered_on,
        dest_tz=row.dest_tz,
        option=row.option,
    )


async def load_outcomes(
    session: AsyncSession, now: datetime, window: timedelta
) -> list[PromiseOutcome]:
    """The outcomes of the promises made in `window` before `now` (see the module docstring),
    in order id order. A row whose stored distribution cannot be read is left out (logged):
    one bad row must not stop the model's rebuild."""
    conn = await session.connection()
    rows = (await conn.execute(_query(now - window, now))).all()
    found: list[PromiseOutcome] = []
    bad: list[int] = []
    for row in rows:
        if row.promise_distribution is None:  # JSON null (the column's None): rules-only
            continue
        try:
            found.append(outcome_of(row, now))
        except (KeyError, TypeError, ValueError):
            bad.append(row.id)
    if bad:
        log.warning(
            "promise ledger: %d orders with an unreadable promise_distribution left out "
            "of the recalibration (first ids %s)",
            len(bad),
            bad[:5],
        )
    return found
