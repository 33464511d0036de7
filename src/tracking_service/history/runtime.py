"""The service's delivery history at the edge: load from the database, build off the event loop,
publish an immutable snapshot.

`HistoryRuntime.refresh()` runs at start-up (the app lifespan), on the scheduler's interval
(`TRACKING_HISTORY_REFRESH_SECONDS`, see `scheduler`) and on `POST /v1/history/refresh`. It
first reads a cheap fingerprint of the `delivery_records` table (row count and highest id); an
unchanged table is not rebuilt. Otherwise it loads every record, builds and freezes the models
in a worker thread (`asyncio.to_thread`: the CPU work never runs on the event loop) and serves
the new snapshot (`HistoryRuntime.snapshot`, which the estimate route only reads; `publish`, when
given, is told too). A failed refresh keeps the snapshot being served. The fingerprint and the
records are read in one unit of work (`db.unit_of_work`).

`tracking-service import-history` runs in another process: the service picks its rows up on
its next refresh (or at once with `POST /v1/history/refresh`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tracking_service.db import unit_of_work
from tracking_service.estimator.history import HistoryConfig
from tracking_service.estimator.option_history import (
    OptionHistories,
    build_option_histories,
    empty_histories,
)
from tracking_service.estimator.rules import Rules
from tracking_service.history.store import load_deliveries
from tracking_service.models import DELIVERY_RECORDS as _TABLE

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TableState:
    """A cheap fingerprint of the history table: rows and the highest id.

    New rows raise both; deleting rows lowers the count. (A delete plus an insert that reuses
    the deleted highest id is not seen; records are only ever added.)
    """

    rows: int
    max_id: int | None


async def table_state(session: AsyncSession) -> TableState:
    query = sa.select(sa.func.count(), sa.func.max(_TABLE.c.id)).select_from(_TABLE)
    conn = await session.connection()
    rows, max_id = (await conn.execute(query)).one()
    return TableState(int(rows), None if max_id is None else int(max_id))


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What a refresh did: rebuilt or not, the table it saw, how long it took."""

    rebuilt: bool
    state: TableState
    seconds: float
    snapshot: OptionHistories


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
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.config = config
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
            async with unit_of_work(self.engine) as session:
                state = await table_state(session)
                if state == self.state and not force:
                    return RefreshResult(False, state, time.perf_counter() - started, self.snapshot)
                records = await load_deliveries(session)
            snapshot = await asyncio.to_thread(
                build_option_histories,
                self.rules,
                records,
                now=self._clock(),
                config=self.config,
            )
            self.snapshot, self.state = snapshot, state
            self.builds += 1
            if self._publish is not None:
                self._publish(snapshot)
            seconds = time.perf_counter() - started
            log.info(
                "delivery history rebuilt: %d records, options %s, in %.2f s",
                state.rows,
                {code: s.records for code, s in snapshot.options.items()} or "none",
                seconds,
            )
            return RefreshResult(True, state, seconds, snapshot)

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
