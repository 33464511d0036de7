"""What `GET /metrics` reports, in the Prometheus text format (prometheus-client).

Two kinds of figures:

- **request latency**, observed by this process as it answers (`RequestMetrics`: a histogram
  by route template, method and status; `api/metrics.py` feeds it from a middleware). With
  `serve --workers N` each process has its own and a scrape reaches one of them;
- **the deployment's state**, read from the database at scrape time with a few aggregate
  queries (`read_figures`, in the caller's session), so every process answers the same and no
  process must run for them to be right: shipments by status, delayed shipments still being
  followed by reason, shipments due and the poll lag (the age of the oldest due shipment),
  carrier calls, numbers polled and errors by carrier since midnight UTC (from
  `carrier_calls`), the outbox backlog (events the webhook fan-out has not read yet) and the
  webhook deliveries still to send. `families` turns those figures into metric families: a
  pure function, tested without a database.

The carrier figures are counters that restart at 00:00 UTC (the day of the carriers' daily
limits): they are cheap to read (one range of the `(carrier, at)` index per carrier), and
Prometheus' `rate()` and `increase()` treat the daily drop as the counter reset it is.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate

import sqlalchemy as sa
from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.carriers.status import Status
from tracking_service.carriers.usage import NOT_ERRORS
from tracking_service.models.carriers import CarrierCall
from tracking_service.models.tracking import OutboxEvent, Shipment
from tracking_service.models.webhooks import OutboxCursor, WebhookDelivery
from tracking_service.webhooks.fanout import CURSOR as FANOUT_CURSOR

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The classic text format every Prometheus version reads."""

DELAY_REASONS = ("late_estimate", "promise_missed", "stalled", "carrier_exception")
TRACK_ENDPOINT = "track"

UNMATCHED_ROUTE = "unmatched"
"""The route label of requests no route matched (404s, and bodies refused before routing):
one label for all of them, so unknown paths cannot grow the number of series."""

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Seconds; finer than prometheus-client's default at the low end, where estimates answer."""


class RequestMetrics:
    """This process's request-latency histogram, with the process, platform and garbage
    collector figures prometheus-client offers.

    A histogram of its own rather than prometheus-client's `Histogram`: observing one there
    costs ~2.7 us (a lock per bucket and sum), here ~0.4 us (one bisect, two additions), and
    it is paid by every request, the estimate route's included. No lock is needed: requests
    are observed and scrapes read on the event loop's thread only."""

    NAME = "tracking_http_request_duration_seconds"

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(sorted(buckets))
        self._labels = (*(repr(float(b)) for b in self.bounds), "+Inf")
        self._series: dict[tuple[str, str, int], _Series] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(len(self.bounds) + 1)
        series.counts[bisect_left(self.bounds, seconds)] += 1
        series.sum += seconds

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            self.NAME,
            "Time to answer an HTTP request, by route template, method and status",
            labels=["route", "method", "status"],
        )
        for (route, method, status), series in sorted(self._series.items()):
            cumulative = list(accumulate(series.counts))
            family.add_metric(
                [route, method, str(status)],
                list(zip(self._labels, cumulative, strict=True)),
                series.sum,
            )
        yield family

    def process_collectors(self) -> Iterable[Collector]:
        """prometheus-client's process, platform and GC collectors (they read this process)."""
        return (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR)


class _Series:
    """One label set's bucket counts (not cumulative; the last is above every bound) and sum."""

    __slots__ = ("counts", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.sum = 0.0


@dataclass(frozen=True)
class CarrierCalls:
    """Calls to one carrier endpoint with one outcome since the start of the day."""

    carrier: str
    endpoint: str
    outcome: str
    calls: int
    numbers: int


@dataclass(frozen=True)
class Figures:
    """The deployment's state as the database holds it at `now` (see `read_figures`)."""

    now: datetime
    shipments_by_status: dict[str, int] = field(default_factory=dict)
    delayed_by_reason: dict[str, int] = field(default_factory=dict)
    due: int = 0
    oldest_due: datetime | None = None
    day_start: datetime | None = None
    carrier_calls: tuple[CarrierCalls, ...] = ()
    outbox_backlog: int = 0
    webhooks_pending: int = 0


def start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def read_figures(
    session: AsyncSession, now: datetime, wall_now: datetime, carriers: Sequence[str]
) -> Figures:
    """Five aggregate queries: shipments by status and delay (one pass over `shipments`), the
    due ones (a range of the `next_poll_at` index), the day's carrier calls (a range of the
    `(carrier, at)` index per carrier in `carriers`), the outbox events past the webhook
    fan-out's cursor (a range of the primary key) and the webhook deliveries still to send (a
    range of their `next_attempt_at` index).

    `now` is the service's clock (the poll times live on it); `wall_now` the real time, the
    clock of the carrier call records (carriers count real days)."""
    conn = await session.connection()
    status, reason, next_poll = (
        col(Shipment.status),
        col(Shipment.delay_reason),
        col(Shipment.next_poll_at),
    )
    delayed_followed = sa.and_(col(Shipment.delayed), next_poll.is_not(None))
    statuses: dict[str, int] = {}
    delayed: dict[str, int] = {}
    grouped = await conn.execute(
        sa.select(status, reason, delayed_followed, sa.func.count()).group_by(
            status, reason, delayed_followed
        )
    )
    for status_value, reason_value, is_delayed, count in grouped.all():
        statuses[status_value] = statuses.get(status_value, 0) + count
        if is_delayed:
            key = reason_value or "unknown"
            delayed[key] = delayed.get(key, 0) + count
    due_row = (
        await conn.execute(
            sa.select(sa.func.count(), sa.func.min(next_poll)).where(next_poll <= now)
        )
    ).one()
    day_start = start_of_day(wall_now)
    carrier, endpoint, outcome = (
        col(CarrierCall.carrier),
        col(CarrierCall.endpoint),
        col(CarrierCall.outcome),
    )
    calls = await conn.execute(
        sa.select(
            carrier,
            endpoint,
            outcome,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(col(CarrierCall.numbers)), 0),
        )
        .where(carrier.in_(list(carriers)), col(CarrierCall.at) >= day_start)
        .group_by(carrier, endpoint, outcome)
    )
    cursor = (
        sa.select(col(OutboxCursor.last_id))
        .where(col(OutboxCursor.name) == FANOUT_CURSOR)
        .scalar_subquery()
    )
    outbox = (
        await conn.execute(
            sa.select(sa.func.count())
            .select_from(OutboxEvent)
            .where(col(OutboxEvent.id) > sa.func.coalesce(cursor, 0))
        )
    ).scalar_one()
    pending = (
        await conn.execute(
            sa.select(sa.func.count())
            .select_from(WebhookDelivery)
            .where(col(WebhookDelivery.next_attempt_at).is_not(None))
        )
    ).scalar_one()
    return Figures(
        now=now,
        shipments_by_status=statuses,
        delayed_by_reason=delayed,
        due=int(due_row[0]),
        oldest_due=_aware(due_row[1]),
        day_start=day_start,
        carrier_calls=tuple(
            CarrierCalls(str(c), str(e), str(o), int(n), int(numbers))
            for c, e, o, n, numbers in calls.all()
        ),
        outbox_backlog=int(outbox),
        webhooks_pending=int(pending),
    )


def _aware(value: datetime | None) -> datetime | None:
    """An aware UTC instant (`min()` keeps the column's type, but a driver may differ)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def families(figures: Figures | None, carriers: Sequence[str]) -> list[Metric]:
    """The database figures as metric families; `figures` None: the database did not answer
    (only `tracking_database_up 0` then). Every known status, delay reason and configured
    carrier appears, at 0 when it has nothing, so a series never vanishes."""
    up = GaugeMetricFamily(
        "tracking_database_up",
        "1 when the database answered this scrape's queries, 0 when it did not",
        value=0 if figures is None else 1,
    )
    if figures is None:
        return [up]
    shipments = GaugeMetricFamily(
        "tracking_shipments", "Shipments by status (all stored shipments)", labels=["status"]
    )
    statuses = dict.fromkeys((str(s) for s in Status), 0) | figures.shipments_by_status
    for status, count in statuses.items():
        shipments.add_metric([status], count)
    delayed = GaugeMetricFamily(
        "tracking_shipments_delayed",
        "Delayed shipments still being followed (not delivered, cancelled or expired), "
        "by delay reason",
        labels=["reason"],
    )
    for reason, count in (dict.fromkeys(DELAY_REASONS, 0) | figures.delayed_by_reason).items():
        delayed.add_metric([reason], count)
    due = GaugeMetricFamily(
        "tracking_shipments_due", "Shipments whose next poll time has passed", value=figures.due
    )
    lag_seconds = 0.0
    if figures.oldest_due is not None:
        lag_seconds = max(0.0, (figures.now - figures.oldest_due).total_seconds())
    lag = GaugeMetricFamily(
        "tracking_poll_lag_seconds",
        "Age of the oldest due shipment: how long past its poll time it waits (0: none due)",
        value=lag_seconds,
    )
    polls = CounterMetricFamily(
        "tracking_carrier_polls",
        "Tracking requests sent to each carrier since 00:00 UTC (carrier_calls, retries "
        "included); restarts at 0 each day, which rate() treats as a counter reset",
        labels=["carrier"],
    )
    numbers = CounterMetricFamily(
        "tracking_carrier_numbers_polled",
        "Tracking numbers asked of each carrier since 00:00 UTC (a batch counts its numbers)",
        labels=["carrier"],
    )
    errors = CounterMetricFamily(
        "tracking_carrier_errors",
        "Carrier requests that failed since 00:00 UTC, by carrier and outcome (rate_limited, "
        "auth_failed, http_4xx, http_5xx, timeout, unavailable; any endpoint); restarts at 0 "
        "each day",
        labels=["carrier", "outcome"],
    )
    poll_counts = dict.fromkeys(carriers, 0)
    number_counts = dict.fromkeys(carriers, 0)
    error_counts: dict[tuple[str, str], int] = {}
    for row in figures.carrier_calls:
        if row.endpoint == TRACK_ENDPOINT:
            poll_counts[row.carrier] = poll_counts.get(row.carrier, 0) + row.calls
            number_counts[row.carrier] = number_counts.get(row.carrier, 0) + row.numbers
        if row.outcome not in NOT_ERRORS:
            key = (row.carrier, row.outcome)
            error_counts[key] = error_counts.get(key, 0) + row.calls
    for carrier, count in poll_counts.items():
        polls.add_metric([carrier], count)
        numbers.add_metric([carrier], number_counts[carrier])
    for (carrier, outcome), count in sorted(error_counts.items()):
        errors.add_metric([carrier, outcome], count)
    outbox = GaugeMetricFamily(
        "tracking_outbox_backlog",
        "Outbox events the webhook fan-out has not read yet (newer than its cursor; every "
        "outbox event before the fan-out first runs)",
        value=figures.outbox_backlog,
    )
    webhooks = GaugeMetricFamily(
        "tracking_webhook_deliveries_pending",
        "Webhook deliveries still to be sent (first tries and retries)",
        value=figures.webhooks_pending,
    )
    return [up, shipments, delayed, due, lag, polls, numbers, errors, outbox, webhooks]


class _Exposition:
    """What `generate_latest` reads: the request metrics' registry, then the given families."""

    def __init__(self, parts: Iterable[Collector], extra: list[Metric]) -> None:
        self.parts = parts
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part.collect()
        yield from self.extra


def render(requests: RequestMetrics, database: list[Metric]) -> bytes:
    """The text exposition of this process's metrics followed by the database's."""
    parts = [requests, *requests.process_collectors()]
    return generate_latest(_Exposition(parts, database))


__all__ = [
    "CONTENT_TYPE",
    "CarrierCalls",
    "Figures",
    "RequestMetrics",
    "families",
    "read_figures",
    "render",
]
