"""`ModelFeed`: the one way a lane model learns, in time order.

The service's build (`option_history.build_option_histories`) and the backtest's replay
(`backtest.replay`) both learn through it, so a window they state for the same information at
the same instant is the same window (tests/estimator/test_one_model.py):

* a delivered record is in flight from its order (censored in handling), handed over
  (handling known, censored in transit), then delivered; a parcel in flight the same without
  the delivery. In-flight phases are learned only with `censoring` (the model's, unless the
  caller turns it off: the service has no parcels in flight to give, the backtest's
  `--inputs delivered`);
* events run by instant, then order before hand-off before delivery, then the order they
  were given in (records before parcels in flight, in the service);
* the drift signal of a UTC day is measured at its start (00:00 UTC) from what was learned
  before it (`LaneHistory.measure_drift_at`), whenever the feed crosses into that day. A
  model frozen or read at any instant of the day then uses the same drift, whether it was
  built at that instant (the service) or has been learning all along (the replay).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Final

from tracking_service.estimator.history.learning import InFlight, LaneHistory
from tracking_service.estimator.records import Delivery

ORDER: Final = 0
HANDOFF: Final = 1
DELIVERY: Final = 2
LAST: Final = 3  # after every event at an instant (`advance(at, LAST)`)


def day_start(at: datetime) -> datetime:
    """00:00 UTC of `at`'s UTC day: the instant a day's drift is measured at."""
    return datetime.combine(at.astimezone(UTC).date(), time(0), tzinfo=UTC)


class ModelFeed:
    """Feeds a `LaneHistory` with records and parcels in flight, in time order, on demand.

    `advance(at, kind, seq)` learns every event up to and including the key (at, kind, seq);
    a replay interleaves its own work (an estimate at an order's instant, after that order's
    own event) by advancing to that key first. `on_delivery(record, at)` is called after a
    record is learned as delivered. Days are measured from `measure_from` on (None: from the
    first event).
    """

    def __init__(
        self,
        lanes: LaneHistory,
        *,
        censoring: bool | None = None,
        measure_from: datetime | None = None,
        on_delivery: Callable[[Delivery, datetime], None] | None = None,
    ) -> None:
        self.lanes = lanes
        self.censoring = lanes.config.censoring if censoring is None else censoring
        self.measure_from = measure_from
        self.on_delivery = on_delivery
        self._events: list[tuple[datetime, int, int]] = []
        self._records: dict[int, Delivery] = {}
        self._parcels: dict[int, InFlight] = {}
        self._seq = 0
        self._day: date | None = None  # UTC day of the last event learned
        self.used = 0  # records learned as delivered (with a usable hand-off)
        self.newest_delivery: datetime | None = None

    def add_record(self, d: Delivery) -> int:
        """Queue a delivered record's events; returns its sequence number (the order event's
        seq; the hand-off is seq + 1 and the delivery seq + 2)."""
        seq = self._next()
        self._records[seq] = d
        if self.censoring:
            self._push(d.order_time, ORDER, seq)
            if d.handoff_time is not None:
                self._push(d.handoff_time, HANDOFF, seq + 1)
        self._push(d.delivered_at, DELIVERY, seq + 2)
        return seq

    def add_in_flight(self, p: InFlight) -> int:
        """Queue a parcel in flight (ordered, maybe handed over, not delivered)."""
        seq = self._next()
        self._parcels[seq] = p
        if self.censoring:
            self._push(p.order_time, ORDER, seq)
            if p.handoff_time is not None:
                self._push(p.handoff_time, HANDOFF, seq + 1)
        return seq

    def _next(self) -> int:
        seq = self._seq
        self._seq += 3
        return seq

    def _push(self, at: datetime, kind: int, seq: int) -> None:
        heapq.heappush(self._events, (at, kind, seq))

    def advance(self, at: datetime, kind: int = LAST, seq: int = -1) -> None:
        """Learn every event up to the key (at, kind, seq), that key included (`seq` -1: all
        of that kind at that instant); then, if `at` is in a later UTC day than the last
        event learned, measure that day's drift (nothing happened since its start)."""
        events = self._events
        while events:
            head = events[0]
            if head[0] > at or (
                head[0] == at and (head[1] > kind or (head[1] == kind and 0 <= seq < head[2]))
            ):
                break
            heapq.heappop(events)
            self._learn(*head)
        self._cross(at)

    def advance_all(self) -> None:
        """Learn every event queued."""
        while self._events:
            self._learn(*heapq.heappop(self._events))

    def _cross(self, at: datetime) -> None:
        day = at.astimezone(UTC).date()
        if self._day is not None and day <= self._day:
            return
        self._day = day
        start = day_start(at)
        if self.measure_from is None or start >= self.measure_from:
            self.lanes.measure_drift_at(start)

    def _learn(self, at: datetime, kind: int, seq: int) -> None:
        self._cross(at)
        base = seq - kind
        if kind == DELIVERY:
            d = self._records[base]
            self.used += self.lanes.add(d)
            if self.newest_delivery is None or at > self.newest_delivery:
                self.newest_delivery = at
            if self.on_delivery is not None:
                self.on_delivery(d, at)
            return
        record = self._records.get(base)
        if record is not None:
            self.lanes.add_in_flight(InFlight.of(record, handed_off=kind == HANDOFF))
            return
        p = self._parcels[base]
        self.lanes.add_in_flight(p if kind == HANDOFF else replace(p, handoff_time=None))
