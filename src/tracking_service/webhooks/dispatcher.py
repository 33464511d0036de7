"""The webhook dispatcher: claim due deliveries, send them outside any transaction, record.

A round is three steps, like the tracking worker's: one short transaction claims up to
`batch_size` due deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so dispatchers sharing the
database never claim one delivery at once; SQLite takes the same statement without the
clause), moving each one's `next_attempt_at` to the lease's end so no other claim sees it
while it is being sent; the batch is signed and POSTed with no transaction open, up to
`concurrency` at a time; one transaction then records the whole batch (every attempt, every
delivery's new state, the endpoints' health), which is what lets one worker keep 1,000
deliveries a second recorded in PostgreSQL.

- Order per shipment: for one endpoint, a delivery is claimable only while no earlier delivery
  of its stream (`shipment:<id>`, `order:<pk>`) is pending, so a shipment's events arrive in
  their sequence order, and a delivery being retried holds up only its own stream.
- At least once: a dispatcher killed after sending and before recording loses nothing: its
  deliveries stay pending and come due again when the lease ends, and are sent again with the
  same `webhook-id`, which receivers deduplicate on.
- Answers (`schedule`): a 2xx succeeds; 410 disables the endpoint at once (its deliveries keep
  their place and go out if it is enabled again); anything else is retried on the schedule,
  honouring Retry-After on 429/502/503/504; after the last attempt a delivery is `failed`.
  An endpoint with no successful attempt for `disable_after` (5 days) since its first failure
  (`failing_since`) is disabled. Disabling sets `enabled=false`, `disabled_at` and
  `disabled_reason` (the API shows them) and writes a `webhook_endpoint.disabled` outbox event,
  fanned out like any other to the endpoints that subscribe to it.
- Times: `next_attempt_at`, `last_attempt_at`, the lease and `failing_since` are service-clock
  instants (a fast demo clock shrinks the retry delays); the `webhook-timestamp` header and
  each attempt's `at` are the real wall-clock time of the POST.

For the API: a retry is `make_due` (pending, due now; the next pass sends it) and a ping is a
delivery made with `fanout.ping_values`; `Dispatcher.dispatch_ids` sends given deliveries at
once and records them (committed deliveries only: it claims them in a transaction of its own).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tracking_service.clock import Clock, ScaledClock, SystemClock, simulated, speed_of
from tracking_service.db import unit_of_work
from tracking_service.models import OutboxEvent
from tracking_service.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tracking_service.tracking.messages import event_id, iso
from tracking_service.webhooks import fanout, schedule, signing
from tracking_service.webhooks.config import WebhookConfig
from tracking_service.webhooks.sender import Answer, Sender

log = logging.getLogger(__name__)

ENDPOINT_DISABLED = "webhook_endpoint.disabled"
ANALYZE_AFTER = 2_000
"""A fan-out pass that made this many deliveries refreshes their statistics (PostgreSQL)."""
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"

_D: sa.Table = WebhookDelivery.__table__  # type: ignore[attr-defined]
_A: sa.Table = WebhookAttempt.__table__  # type: ignore[attr-defined]
_EP: sa.Table = WebhookEndpoint.__table__  # type: ignore[attr-defined]
_X: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery, ready to sign and send."""

    delivery_id: int
    endpoint_id: int
    attempt: int
    """This attempt's number (1 for the first)."""
    webhook_id: str
    event_type: str
    url: str
    body: bytes
    secrets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Result:
    """One attempt and what it decided."""

    job: Job
    answer: Answer
    at: datetime
    """Real wall-clock instant of the POST."""
    verdict: schedule.Verdict
    status: str
    next_attempt_at: datetime | None


@dataclass
class DispatchReport:
    """What one pass did."""

    claimed: int = 0
    succeeded: int = 0
    retried: int = 0
    failed: int = 0
    not_recorded: int = 0
    disabled: list[int] = field(default_factory=list)

    def add(self, results: Sequence[Result]) -> None:
        for r in results:
            if r.status == SUCCEEDED:
                self.succeeded += 1
            elif r.status == FAILED:
                self.failed += 1
            else:
                self.retried += 1

    def line(self) -> str:
        text = (
            f"webhooks: {self.claimed} sent, {self.succeeded} succeeded, "
            f"{self.retried} to retry, {self.failed} failed"
        )
        if self.disabled:
            text += f", endpoint(s) disabled: {', '.join(map(str, self.disabled))}"
        if self.not_recorded:
            text += f", {self.not_recorded} not recorded (sent again after the lease)"
        return text


def body_bytes(payload: Any) -> bytes:
    """The exact bytes sent and signed for a payload (compact JSON, UTF-8)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def wall_clock(clock: Clock) -> Clock:
    """The real clock behind a service clock (`webhook-timestamp` is real time)."""
    return clock.real if isinstance(clock, ScaledClock) else SystemClock()


# --- claiming ---------------------------------------------------------------------------------


async def claim(
    session: AsyncSession,
    *,
    worker: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    ids: Sequence[int] | None = None,
) -> list[Job]:
    """Claim up to `limit` due deliveries (or, with `ids`, those of them not leased now) of
    enabled endpoints whose stream has no earlier pending delivery (see the module docstring)
    for `worker` until `lease_until`; oldest due first."""
    d, e = _D.alias("d"), _D.alias("e")
    earlier = (
        sa.select(e.c.id)
        .where(
            e.c.endpoint_id == d.c.endpoint_id,
            e.c.stream == d.c.stream,
            e.c.sequence < d.c.sequence,
            e.c.status == PENDING,
        )
        .exists()
    )
    enabled = sa.select(_EP.c.id).where(_EP.c.enabled.is_(True))
    conditions = [d.c.status == PENDING, d.c.endpoint_id.in_(enabled), ~earlier]
    if ids is None:
        conditions.append(d.c.next_attempt_at <= now)
    else:
        conditions += [
            d.c.id.in_(list(ids)),
            sa.or_(d.c.claimed_until.is_(None), d.c.claimed_until <= now),
        ]
    due = sa.select(d.c.id).where(*conditions).order_by(d.c.next_attempt_at, d.c.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=d)
    claimed = (
        await session.execute(
            sa.update(_D)
            .where(_D.c.id.in_(due.scalar_subquery()))
            .values(next_attempt_at=lease_until, claimed_by=worker, claimed_until=lease_until)
            .returning(
                _D.c.id,
                _D.c.endpoint_id,
                _D.c.attempts,
                _D.c.webhook_id,
                _D.c.event_type,
                _D.c.outbox_id,
                _D.c.payload,
            )
        )
    ).all()
    if not claimed:
        return []
    endpoint_ids = {r.endpoint_id for r in claimed}
    endpoints = {
        r.id: r
        for r in (
            await session.execute(
                sa.select(
                    _EP.c.id,
                    _EP.c.url,
                    _EP.c.secret,
                    _EP.c.previous_secret,
                    _EP.c.previous_secret_until,
                ).where(_EP.c.id.in_(endpoint_ids))
            )
        ).all()
    }
    outbox_ids = {r.outbox_id for r in claimed if r.outbox_id is not None}
    bodies: dict[int, bytes] = {}
    if outbox_ids:
        for oid, payload in (
            await session.execute(sa.select(_X.c.id, _X.c.payload).where(_X.c.id.in_(outbox_ids)))
        ).all():
            bodies[oid] = body_bytes(payload)
    jobs = []
    for r in sorted(claimed, key=lambda r: r.id):
        ep = endpoints[r.endpoint_id]
        if r.outbox_id is not None:
            body = bodies.get(r.outbox_id) or body_bytes(r.payload or {})
        else:
            body = body_bytes(r.payload or {})
        jobs.append(
            Job(
                delivery_id=r.id,
                endpoint_id=r.endpoint_id,
                attempt=r.attempts + 1,
                webhook_id=r.webhook_id,
                event_type=r.event_type,
                url=ep.url,
                body=body,
                secrets=signing.signing_secrets(
                    ep.secret, ep.previous_secret, ep.previous_secret_until, now
                ),
            )
        )
    return jobs


# --- deciding ---------------------------------------------------------------------------------


def decide(
    job: Job,
    answer: Answer,
    *,
    at: datetime,
    now: datetime,
    config: WebhookConfig,
    speed: float,
    rand: Callable[[], float],
) -> Result:
    """What an answer makes of a delivery (pure): its status and next attempt."""
    verdict = schedule.verdict(answer.status_code)
    if verdict is schedule.Verdict.SUCCEEDED:
        return Result(job, answer, at, verdict, SUCCEEDED, None)
    retry_after = schedule.parse_retry_after(answer.retry_after, at)
    delay = schedule.next_delay(
        job.attempt,
        config.schedule,
        jitter=config.jitter,
        rand=rand,
        status_code=answer.status_code,
        retry_after=retry_after * speed if retry_after is not None else None,
        retry_after_max=config.retry_after_max,
    )
    if delay is None:
        return Result(job, answer, at, verdict, FAILED, None)
    return Result(job, answer, at, verdict, PENDING, now + delay)


# --- recording --------------------------------------------------------------------------------


async def disable_endpoint(
    session: AsyncSession, endpoint_id: int, *, reason: str, now: datetime
) -> bool:
    """Disable an endpoint (if enabled) and write a `webhook_endpoint.disabled` outbox event in
    the caller's transaction. True if it was enabled."""
    row = (
        await session.execute(
            sa.update(_EP)
            .where(_EP.c.id == endpoint_id, _EP.c.enabled.is_(True))
            .values(enabled=False, disabled_at=now, disabled_reason=reason[:256], updated_at=now)
            .returning(_EP.c.id, _EP.c.url, _EP.c.secret)
        )
    ).one_or_none()
    if row is None:
        return False
    stream = f"webhook_endpoint:{endpoint_id}"
    last = (
        await session.execute(sa.select(sa.func.max(_X.c.sequence)).where(_X.c.stream == stream))
    ).scalar_one_or_none()
    sequence = int(last or 0) + 1
    payload = {
        "type": ENDPOINT_DISABLED,
        "timestamp": iso(now),
        "data": {
            "endpoint": {"id": endpoint_id, "url": row.url, "reason": reason, "enabled": False}
        },
    }
    await session.execute(
        sa.insert(_X).values(
            event_id=event_id(stream, sequence, ENDPOINT_DISABLED, row.secret, now),
            event_type=ENDPOINT_DISABLED,
            stream=stream,
            sequence=sequence,
            occurred_at=now,
            payload=payload,
            created_at=now,
        )
    )
    log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
    return True


async def record(
    session: AsyncSession,
    results: Sequence[Result],
    *,
    worker: str,
    now: datetime,
    config: WebhookConfig,
) -> list[int]:
    """Record a batch of attempts in the caller's transaction: the attempts, the deliveries'
    new states and the endpoints' health. Returns the endpoints it disabled.

    A success is recorded whoever holds the delivery now; a retry or a failure only while this
    worker still holds it (if its lease ran out and another dispatcher took the delivery, that
    one decides what comes next)."""
    if not results:
        return []
    await session.execute(
        sa.insert(_A),
        [
            {
                "delivery_id": r.job.delivery_id,
                "attempt": r.job.attempt,
                "at": r.at,
                "status_code": r.answer.status_code,
                "latency_ms": round(r.answer.latency_ms, 3),
                "response_head": r.answer.head,
                "error": r.answer.error,
            }
            for r in results
        ],
    )
    common: dict[str, Any] = {
        "attempts": _D.c.attempts + 1,
        "claimed_by": None,
        "claimed_until": None,
        "last_attempt_at": now,
        "last_status_code": sa.bindparam("b_code"),
        "last_error": sa.bindparam("b_error"),
        "updated_at": now,
    }
    ok = [r for r in results if r.status == SUCCEEDED]
    not_ok = [r for r in results if r.status != SUCCEEDED]
    if ok:
        await session.execute(
            sa.update(_D)
            .where(_D.c.id == sa.bindparam("b_id"), _D.c.status == PENDING)
            .values(status=SUCCEEDED, next_attempt_at=None, **common),
            [
                {"b_id": r.job.delivery_id, "b_code": r.answer.status_code, "b_error": None}
                for r in ok
            ],
        )
    if not_ok:
        await session.execute(
            sa.update(_D)
            .where(
                _D.c.id == sa.bindparam("b_id"),
                _D.c.status == PENDING,
                _D.c.claimed_by == worker,
            )
            .values(
                status=sa.bindparam("b_status"),
                next_attempt_at=sa.bindparam("b_next", type_=_D.c.next_attempt_at.type),
                **common,
            ),
            [
                {
                    "b_id": r.job.delivery_id,
                    "b_code": r.answer.status_code,
                    "b_error": _error_text(r.answer),
                    "b_status": r.status,
                    "b_next": r.next_attempt_at,
                }
                for r in not_ok
            ],
        )
    healthy = sorted({r.job.endpoint_id for r in ok})
    failing = sorted({r.job.endpoint_id for r in not_ok} - set(healthy))
    if healthy:
        await session.execute(
            sa.update(_EP)
            .where(_EP.c.id.in_(healthy), _EP.c.failing_since.is_not(None))
            .values(failing_since=None)
        )
    disabled: list[int] = []
    if failing:
        await session.execute(
            sa.update(_EP)
            .where(_EP.c.id.in_(failing), _EP.c.failing_since.is_(None))
            .values(failing_since=now)
        )
        stale = (
            await session.execute(
                sa.select(_EP.c.id, _EP.c.failing_since).where(
                    _EP.c.id.in_(failing),
                    _EP.c.enabled.is_(True),
                    _EP.c.failing_since <= now - config.disable_after,
                )
            )
        ).all()
        for endpoint_id, since in stale:
            reason = f"every delivery failed since {iso(since)}"
            if await disable_endpoint(session, endpoint_id, reason=reason, now=now):
                disabled.append(endpoint_id)
    for endpoint_id in sorted({r.job.endpoint_id for r in results if r.verdict == "gone"}):
        reason = "the receiver answered 410 Gone"
        if await disable_endpoint(session, endpoint_id, reason=reason, now=now):
            disabled.append(endpoint_id)
    return disabled


def _error_text(answer: Answer) -> str | None:
    if answer.error:
        return answer.error[:512]
    if answer.status_code is not None:
        return f"HTTP {answer.status_code}"
    return None


async def make_due(session: AsyncSession, delivery_id: int, *, now: datetime) -> bool:
    """Make a delivery pending and due now (the API's retry), in the caller's transaction:
    the next dispatch pass sends it, one more attempt (a failed one stays failed if that one
    fails too: its attempts are spent). False if there is no such delivery."""
    done = await session.execute(
        sa.update(_D)
        .where(_D.c.id == delivery_id)
        .values(
            status=PENDING,
            next_attempt_at=now,
            claimed_by=None,
            claimed_until=None,
            updated_at=now,
        )
        .returning(_D.c.id)
    )
    return done.scalar_one_or_none() is not None


# --- the dispatcher ---------------------------------------------------------------------------


class Dispatcher:
    """Fan-out and dispatch passes for one process (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        config: WebhookConfig,
        *,
        worker: str,
        sender: Sender | None = None,
        wall: Clock | None = None,
        rand: Callable[[], float] = random.random,
        batches_in_flight: int = 2,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.config = config
        self.worker = worker
        self.sender = sender or Sender(config)
        self.wall = wall or wall_clock(clock)
        self.rand = rand
        self.batches_in_flight = max(1, batches_in_flight)
        self.horizon = fanout.Horizon()
        self._posts: asyncio.Semaphore | None = None

    async def close(self) -> None:
        await self.sender.close()

    # fan-out

    async def fanout_pass(self) -> int:
        """Fan out every outbox event there is now (batches of `fanout_batch_size`, each in its
        own transaction); the number of deliveries made."""
        made = 0
        while True:
            async with unit_of_work(self.engine) as session:
                report = await fanout.fan_out(
                    session,
                    now=self.clock.now(),
                    limit=self.config.fanout_batch_size,
                    horizon=self.horizon,
                )
            made += report.deliveries
            if report.blocked or report.events < self.config.fanout_batch_size:
                if made >= ANALYZE_AFTER and self.engine.dialect.name == "postgresql":
                    await self._analyze()
                return made

    async def _analyze(self) -> None:
        """Refresh the planner's statistics of the deliveries after a burst: with the counts
        of before it, PostgreSQL plans each claim as a scan and sort of every due row (50 ms
        at 20,000 due, growing with the backlog) instead of walking `next_attempt_at`'s index
        until the batch is full (a few ms); autovacuum's own ANALYZE comes a minute or more
        later."""
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("ANALYZE webhook_deliveries"))
            await conn.commit()

    # dispatch

    def _lease_until(self, now: datetime) -> datetime:
        return now + simulated(self.clock, self.config.lease_seconds)

    async def _claim(self, ids: Sequence[int] | None = None) -> list[Job]:
        async with unit_of_work(self.engine) as session:
            now = self.clock.now()
            return await claim(
                session,
                worker=self.worker,
                now=now,
                lease_until=self._lease_until(now),
                limit=self.config.batch_size if ids is None else len(ids),
                ids=ids,
            )

    async def _send_one(self, job: Job) -> tuple[Job, Answer, datetime]:
        if self._posts is None:
            self._posts = asyncio.Semaphore(max(1, self.config.concurrency))
        async with self._posts:
            at = self.wall.now()
            headers = signing.headers(job.webhook_id, int(at.timestamp()), job.body, job.secrets)
            answer = await self.sender.post(job.url, job.body, headers)
        return job, answer, at

    async def send(self, jobs: Iterable[Job]) -> list[Result]:
        """Sign and POST claimed deliveries (no transaction open) and decide each outcome."""
        sent = await asyncio.gather(*(self._send_one(job) for job in jobs))
        now = self.clock.now()
        speed = speed_of(self.clock)
        return [
            decide(job, answer, at=at, now=now, config=self.config, speed=speed, rand=self.rand)
            for job, answer, at in sent
        ]

    async def record(self, results: Sequence[Result]) -> list[int]:
        """Record a batch in one transaction (tried twice: a lost race is worth a retry)."""
        for attempt in (1, 2):
            try:
                async with unit_of_work(self.engine) as session:
                    return await record(
                        session,
                        results,
                        worker=self.worker,
                        now=self.clock.now(),
                        config=self.config,
                    )
            except Exception:
                if attempt == 2:
                    raise
                log.warning("recording %d webhook attempt(s) failed; retrying", len(results))
        return []

    async def _run(self, jobs: Sequence[Job], report: DispatchReport) -> list[Result]:
        results = await self.send(jobs)
        try:
            report.disabled += await self.record(results)
        except Exception:
            report.not_recorded += len(results)
            log.exception("%d webhook attempt(s) sent but not recorded", len(results))
            return results
        report.add(results)
        return results

    async def _round(self, report: DispatchReport) -> int:
        """Claim batches until a claim comes back short, sending up to `batches_in_flight`
        at once; the number claimed."""
        slots = asyncio.Semaphore(self.batches_in_flight)
        running: set[asyncio.Task[list[Result]]] = set()
        claimed = 0
        try:
            while True:
                await slots.acquire()
                try:
                    jobs = await self._claim()
                except BaseException:
                    slots.release()
                    raise
                if not jobs:
                    slots.release()
                    break
                claimed += len(jobs)
                task = asyncio.create_task(self._run(jobs, report))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _: slots.release())
                if len(jobs) < self.config.batch_size:
                    break
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        return claimed

    async def dispatch_pass(self) -> DispatchReport:
        """Send every delivery due now, and those the sends made claimable (the next event of
        a stream whose earlier one just succeeded), until nothing is left to claim."""
        report = DispatchReport()
        while True:
            claimed = await self._round(report)
            report.claimed += claimed
            if claimed == 0:
                break
        if report.claimed:
            log.info(report.line())
        return report

    async def dispatch_ids(self, ids: Sequence[int]) -> list[Result]:
        """Send the given deliveries now (those pending, not leased and not held behind an
        earlier event of their stream) and record them; their results."""
        if not ids:
            return []
        jobs = await self._claim(list(ids))
        if not jobs:
            return []
        results = await self.send(jobs)
        await self.record(results)
        return results

    async def run_once(self) -> DispatchReport:
        """One fan-out pass, then one dispatch pass (the job's tick)."""
        await self.fanout_pass()
        return await self.dispatch_pass()
