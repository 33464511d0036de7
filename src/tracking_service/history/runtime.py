"""The service's delivery history at the edge: load from the database, build off the event loop,
publish an immutable snapshot.

`HistoryRuntime.refresh()` runs at start-up (the app lifespan), on the scheduler's interval
(`TRACKING_HISTORY_REFRESH_SECONDS`, see `scheduler`) and on `POST /v1/history/refresh`. It
first reads a cheap fingerprint of its inputs (`TableState`: aggregates of `delivery_records`,
`orders` and `shipments`, one query each); unchanged inputs are not rebuilt. Otherwise it loads
every record and the parcels in flight (orders and handed-over shipments not delivered yet,
`tracking.feedback.load_open_parcels`), builds and freezes the models in a worker thread
(`asyncio.to_thread`: the CPU work never runs on the event loop) and serves the new snapshot
(`HistoryRuntime.snapshot`, which the estimate route only reads; `publish`, when given, is told
too). A failed refresh keeps the snapshot being served. The fingerprint and the inputs are read
in one unit of work (`db.unit_of_work`), at one instant of the clock.

Parcels in flight make the model the backtest's: at the build instant it has learned the same
delivered records and counts the same parcels still on their way (see `option_history`). What
it knows of them grows with time alone (a parcel not delivered after three days says more than
after one), so while any order is open the fingerprint also holds the clock's hour: the model
is rebuilt at least once an hour of the service's clock, even when no row changed.

With `recalibrate` (`TRACKING_RECALIBRATE`) the refresh also reads the outcomes of the promises
made in the recalibration window (`tracking.ledger_outcomes`, in the same unit of work) and
each option's level is recalibrated from them at the build instant (`build_option_histories(
promises=...)`); the levels are logged with each rebuild. They change with new orders and
deliveries (counted by the fingerprint) and with time alone (open promises age, old ones leave
the window), so while a promise was made in the window the fingerprint holds the hour too.

`tracking-service import-history` runs in another process: the service picks its rows up on
its next refresh (or at once with `POST /v1/history/refresh`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tracking_service.db import unit_of_work
from tracking_service.estimator.history import HistoryConfig, PromiseOutcome, RecalibrationConfig
from tracking_service.estimator.option_history import (
    OptionHistories,
    build_option_histories,
    empty_histories,
)
from tracking_service.estimator.records import Delivery
from tracking_service.estimator.rules import Rules
from tracking_service.history.store import load_deliveries
from tracking_service.models import DELIVERY_RECORDS as _TABLE
from tracking_service.models import Order, Shipment
from tracking_service.tracking.feedback import (
    ORDER_OVER,
    OVER,
    TrackedParcel,
    as_in_flight_all,
    load_open_parcels,
)
from tracking_service.tracking.ledger_outcomes import load_outcomes

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TableState:
    """A cheap fingerprint of the model's inputs.

    `rows`, `max_id`: the history table's rows and highest id. New rows raise both; deleting
    rows lowers the count. (A delete plus an insert that reuses the deleted highest id is not
    seen; records are only ever added.)

    `tracking` (None while there is no order): of orders, the count, highest id, cancelled and
    open ones, those over and the newest promise's instant; of shipments, the count, highest
    id, cancelled, handed over and delivered ones, the latest hand-off, and those over. Every
    change that moves a parcel into, through or out of flight changes one of them, and so does
    every new promise and delivery. (A hand-off instant corrected to another that is not the
    latest is seen with the next change, or a forced refresh.)

    `hour`: the clock's hour while an order is open (parcels in flight age with time alone),
    or, when the level is recalibrated, while a promise was made in its window.
    """

    rows: int
    max_id: int | None
    tracking: tuple[object, ...] | None = None
    hour: datetime | None = None


_ORDERS = Order.__table__  # type: ignore[attr-defined]
_SHIPMENTS = Shipment.__table__  # type: ignore[attr-defined]


def _counted(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


async def table_state(
    session: AsyncSession, now: datetime | None = None, promise_window: timedelta | None = None
) -> TableState:
    """The fingerprint (see `TableState`); `hour` only when `now` is given. `promise_window`:
    the recalibration's window (None: no recalibration)."""
    conn = await session.connection()
    query = sa.select(sa.func.count(), sa.func.max(_TABLE.c.id)).select_from(_TABLE)
    rows, max_id = (await conn.execute(query)).one()
    state = TableState(int(rows), None if max_id is None else int(max_id))
    o = _ORDERS.c
    over = o.status.in_(sorted(ORDER_OVER))
    orders = (
        await conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.max(o.id),
                sa.func.count(o.cancelled_at),
                _counted(sa.and_(o.cancelled_at.is_(None), sa.not_(over))),
                _counted(over),
                sa.func.max(o.promise_made_at),
            ).select_from(_ORDERS)
        )
    ).one()
    if not orders[0]:
        return state
    s = _SHIPMENTS.c
    shipments = (
        await conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.max(s.id),
                sa.func.count(s.cancelled_at),
                sa.func.count(s.handed_off_at),
                sa.func.count(s.delivered_at),
                sa.func.max(s.handed_off_at),
                _counted(s.status.in_(sorted(OVER))),
            ).select_from(_SHIPMENTS)
        )
    ).one()
    open_orders = int(orders[3])
    newest_promise: datetime | None = orders[5]
    recent = (
        promise_window is not None
        and now is not None
        and newest_promise is not None
        and newest_promise > now - promise_window
    )
    hour = None
    if (open_orders or recent) and now is not None:
        hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    tracking = (*(_plain(x) for x in orders), *(_plain(x) for x in shipments))
    return replace(state, tracking=tracking, hour=hour)


def _plain(value: object) -> object:
    """Aggregates as comparable plain values (drivers give ints, Decimals or datetimes)."""
    if value is None or isinstance(value, datetime):
        return value
    return int(value)  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What a refresh did: rebuilt or not, the table it saw, how long it took."""

    rebuilt: bool
    state: TableState
    seconds: float
    snapshot: OptionHistories


def recalibrated_levels(rules: Rules, snapshot: OptionHistories) -> str:
    """Each option with history, in words: the level read for its configured confidence after
    recalibration, and the promises (delivered of them) it was learned from ("": none)."""
    parts = []
    for option in rules.shipping_options:
        summary = snapshot.options.get(option.code)
        if summary is None:
            continue
        r = summary.recalibration
        level = snapshot.level(option.code, option.confidence)
        parts.append(
            f"{option.code} {option.confidence:g} -> {level:.3f} "
            f"({r.promises} promises, {r.delivered} delivered)"
        )
    return ", ".join(parts)


class HistoryRuntime:
    """Holds the current snapshot and rebuilds it when the table changed (one at a time)."""

    def __init__(
        self,
        engine: AsyncEngine,
        rules: Rules,
        publish: Callable[[OptionHistories], None] | None = None,
        *,
        config: HistoryConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        recalibrate: bool = False,
        recalibration: RecalibrationConfig | None = None,
    ) -> None:
        """`recalibrate`: recalibrate each option's level from the outcomes of its recent
        promises (with `recalibration`, the estimator's default configuration when None)."""
        self.engine = engine
        self.rules = rules
        self.config = config
        self.recalibration = (recalibration or RecalibrationConfig()) if recalibrate else None
        self._publish = publish
        self._clock = clock
        self._lock = asyncio.Lock()
        self.state: TableState | None = None
        self.snapshot: OptionHistories = empty_histories(clock())
        self.builds = 0
        self._closed = False

    async def refresh(self, *, force: bool = False) -> RefreshResult:
        """Rebuild if the table changed since the last build (or when `force`)."""
        async with self._lock:
            started = time.perf_counter()
            if self._closed:  # a job that fired while the app was stopping
                return RefreshResult(False, self.state or TableState(0, None), 0.0, self.snapshot)
            now = self._clock()
            window = self._promise_window()
            async with unit_of_work(self.engine) as session:
                state = await table_state(session, now, window)
                if state == self.state and not force:
                    return RefreshResult(False, state, time.perf_counter() - started, self.snapshot)
                records = await load_deliveries(session)
                tracked = (
                    await load_open_parcels(session, now) if state.tracking is not None else []
                )
                promises = (
                    await load_outcomes(session, now, window)
                    if window is not None and state.tracking is not None
                    else []
                )
            snapshot = await asyncio.to_thread(self._build, records, tracked, promises, now)
            self.snapshot, self.state = snapshot, state
            self.builds += 1
            if self._publish is not None:
                self._publish(snapshot)
            seconds = time.perf_counter() - started
            log.info(
                "delivery history rebuilt: %d records, %d parcels in flight, options %s, in %.2f s",
                state.rows,
                snapshot.in_flight,
                {code: s.records for code, s in snapshot.options.items()} or "none",
                seconds,
            )
            levels = recalibrated_levels(self.rules, snapshot) if self.recalibration else ""
            if levels:
                log.info("recalibrated levels: %s", levels)
            return RefreshResult(True, state, seconds, snapshot)

    def _promise_window(self) -> timedelta | None:
        if self.recalibration is None:
            return None
        return timedelta(days=self.recalibration.window_days)

    def _build(
        self,
        records: list[Delivery],
        tracked: list[TrackedParcel],
        promises: list[PromiseOutcome],
        now: datetime,
    ) -> OptionHistories:
        """The CPU part of a refresh, in a worker thread."""
        in_flight = as_in_flight_all(self.rules, tracked)
        return build_option_histories(
            self.rules,
            records,
            in_flight=in_flight,
            now=now,
            config=self.config,
            promises=promises,
            recalibration=self.recalibration,
        )

    async def close(self) -> None:
        """Wait for a refresh in progress to end; later refreshes do nothing (call it before
        disposing of the engine)."""
        self._closed = True
        async with self._lock:
            pass

    async def refresh_logged(self) -> RefreshResult | None:
        """`refresh()` for start-up and the scheduler: a failure is logged, the old snapshot
        (or the rules alone) keeps serving."""
        try:
            return await self.refresh()
        except Exception:
            log.exception("delivery history refresh failed; serving the previous snapshot")
            return None
