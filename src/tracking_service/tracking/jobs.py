"""The tracking worker's jobs: poll due shipments, check promises and stalls, expire the unseen.

Plain async functions over a `Services`; APScheduler only triggers them (`add_tracking_jobs`,
registered in `services.SHARED_JOBS`, so they run once per deployment: in the one `serve`
process or in `tracking-service worker`, one or many sharing PostgreSQL).

A poll pass claims batches of due shipments (one short transaction each, see
`tracking.store`), asks each carrier for its shipments with no transaction open, in chunks of
the adapter's `max_batch`, and applies the answers as soon as their chunk is back, so a slow or
failing carrier holds up nobody else's shipments: a failure is an answer too (the plan backs the
shipment off). The answers of one claimed batch that are back are applied together, in one
transaction of a handful of statements (`tracking.store.apply_outcomes`, with each shipment's
guarantees); answers arriving meanwhile wait for the next one. A group that fails is applied
again one shipment per transaction. Up to `poll_concurrency` batches wait for their carriers
at once, and as many more for their answers to be applied, so claiming, carrier calls and
applying overlap. A pass takes only what was due when it started: each claim moves
`next_poll_at` past that instant, so a pass ends, and every shipment due at its start is polled
exactly once by the workers together.

One shipment never fails a pass: one that cannot be applied is logged and keeps its lease, so
it comes due again when the lease ends. (A database that cannot be reached at all fails the
pass; the scheduler logs it and the next tick tries again.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession

from tracking_service.carriers.base import (
    FailureKind,
    TrackingFailure,
    TrackingOutcome,
    TrackingResult,
    normalize_number,
)
from tracking_service.carriers.registry import UnknownCarrierError
from tracking_service.clock import simulated, speed_of
from tracking_service.db import unit_of_work
from tracking_service.models import Order, Shipment
from tracking_service.tracking import store
from tracking_service.tracking.feedback import record_delivery
from tracking_service.tracking.reestimate import Reestimates
from tracking_service.tracking.state import ShipmentUpdate

if TYPE_CHECKING:
    from tracking_service.services import Services

log = logging.getLogger(__name__)

POLL_JOB = "poll-shipments"
CHECK_JOB = "check-delays"
EXPIRE_JOB = "expire-shipments"
APPLY_CONCURRENCY = 12
"""Answers one process applies at once on PostgreSQL (each holds a pooled connection)."""
APPLY_BATCH = 250
"""Most answers one transaction applies (a claimed batch's answers, as they come back)."""
WORKER_ID = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
"""This process's name on its claims (host, pid and a random part: pids are reused)."""


@dataclass
class PollReport:
    """What one poll pass did."""

    claimed: int = 0
    results: int = 0
    failures: int = 0
    changed: int = 0
    errors: int = 0
    by_carrier: Counter[str] = field(default_factory=Counter)
    failures_by_kind: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        carriers = ", ".join(f"{c} {n}" for c, n in sorted(self.by_carrier.items())) or "none"
        text = (
            f"polled {self.claimed} shipment(s) ({carriers}): {self.results} answered, "
            f"{self.failures} failed, {self.changed} changed"
        )
        if self.failures_by_kind:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.failures_by_kind.items()))
            text += f" ({kinds})"
        if self.errors:
            text += f", {self.errors} not applied (retried after the lease)"
        return text


@dataclass
class CheckReport:
    """What one check (or expiry) pass did."""

    checked: int = 0
    changed: int = 0
    errors: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def line(self, what: str) -> str:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.reasons.items()))
        text = f"{what}: {self.checked} checked, {self.changed} changed"
        if reasons:
            text += f" ({reasons})"
        if self.errors:
            text += f", {self.errors} failed"
        return text


class Tracker:
    """The pipeline's edge wired to one process's runtime: what every writer of carrier answers
    (the poller, the push endpoint) and every check needs."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.config = services.settings.tracking_config()
        self.base_url = services.settings.public_base_url
        self.reestimate = Reestimates(services.estimator, lambda: services.history.snapshot)
        # Transactions applying answers at once: a commit waits for the disk, so PostgreSQL
        # groups concurrent ones; SQLite has one writer, so one at a time.
        sqlite = services.engine.dialect.name == "sqlite"
        self.applying = asyncio.Semaphore(1 if sqlite else APPLY_CONCURRENCY)

    async def on_delivered(self, session: AsyncSession, order: Order, shipment: Shipment) -> None:
        await record_delivery(session, order, shipment, self.services.estimator.rules)

    async def apply(
        self,
        session: AsyncSession,
        shipment_id: int,
        outcome: TrackingOutcome,
        *,
        release_claim: bool = True,
    ) -> ShipmentUpdate | None:
        """Apply one carrier answer to one shipment in the caller's transaction (`apply_many`
        of one)."""
        (update,) = await self.apply_many(
            session, [(shipment_id, outcome)], release_claim=release_claim
        )
        return update

    async def apply_many(
        self,
        session: AsyncSession,
        outcomes: Sequence[tuple[int, TrackingOutcome]],
        *,
        release_claim: bool = True,
    ) -> list[ShipmentUpdate | None]:
        """Apply carrier answers, each to its shipment, in the caller's transaction (one lock
        and load, one write per table: see `tracking.store`); the updates in the same order."""
        return await store.apply_outcomes(
            session,
            outcomes,
            now=self.services.clock.now(),
            config=self.config,
            base_url=self.base_url,
            reestimate=self.reestimate,
            on_delivered=self.on_delivered,
            release_claim=release_claim,
        )

    async def apply_now(
        self, shipment_id: int, outcome: TrackingOutcome, *, release_claim: bool = False
    ) -> ShipmentUpdate | None:
        """Apply one carrier answer in a transaction of its own (a pushed scan: the poller's
        claim, if any, is left alone)."""
        async with unit_of_work(self.services.engine) as session:
            return await self.apply(session, shipment_id, outcome, release_claim=release_claim)

    async def check(self, session: AsyncSession, shipment_id: int) -> ShipmentUpdate | None:
        return await store.apply_check(
            session,
            shipment_id,
            now=self.services.clock.now(),
            config=self.config,
            base_url=self.base_url,
            on_delivered=self.on_delivered,
        )


def _outcome_for(claim: store.Claim, answers: object) -> TrackingOutcome:
    """The adapter's answer for a claimed number (keyed as given), or a typed failure."""
    if isinstance(answers, BaseException):
        return TrackingFailure(
            claim.carrier,
            claim.tracking_number,
            FailureKind.UNAVAILABLE,
            f"{claim.carrier}: {type(answers).__name__}: {answers}",
        )
    assert isinstance(answers, dict)
    found = answers.get(claim.tracking_number)
    if found is None:
        found = answers.get(normalize_number(claim.tracking_number))
    if isinstance(found, TrackingResult | TrackingFailure):
        return found
    return TrackingFailure(
        claim.carrier, claim.tracking_number, FailureKind.BAD_RESPONSE, "no answer for it"
    )


async def _track(services: Services, carrier: str, claims: Sequence[store.Claim]) -> object:
    try:
        adapter = services.carriers.adapter(carrier)
    except UnknownCarrierError as exc:
        return {
            c.tracking_number: TrackingFailure(
                carrier, c.tracking_number, FailureKind.NOT_CONFIGURED, str(exc)
            )
            for c in claims
        }
    try:
        return dict(await adapter.track([c.tracking_number for c in claims]))
    except Exception as exc:  # adapters never raise; if one does, its shipments back off
        log.exception("%s: tracking a batch failed", carrier)
        return exc


async def _apply_one(
    tracker: Tracker, claim: store.Claim, outcome: TrackingOutcome, report: PollReport
) -> None:
    async with tracker.applying:
        try:
            async with unit_of_work(tracker.services.engine) as session:
                update = await tracker.apply(session, claim.id, outcome)
                if update is None or not update.visible:
                    await store.commit_without_waiting(session)
        except Exception:
            report.errors += 1
            log.exception("shipment %s: applying the %s answer failed", claim.id, claim.carrier)
            return
    if update is not None and update.visible:
        report.changed += 1


async def _apply_together(
    tracker: Tracker, answers: Sequence[tuple[store.Claim, TrackingOutcome]], report: PollReport
) -> None:
    """Apply answers in one transaction; if it fails, each in a transaction of its own, so one
    shipment that cannot be applied holds up no other."""
    if len(answers) == 1:
        await _apply_one(tracker, *answers[0], report)
        return
    async with tracker.applying:
        try:
            async with unit_of_work(tracker.services.engine) as session:
                updates = await tracker.apply_many(session, [(c.id, o) for c, o in answers])
                if not any(u is not None and u.visible for u in updates):
                    await store.commit_without_waiting(session)
        except Exception:
            log.warning(
                "applying %d answers at once failed; applying them one by one",
                len(answers),
                exc_info=True,
            )
            updates = []
    if updates:
        report.changed += sum(1 for u in updates if u is not None and u.visible)
        return
    for claim, outcome in answers:
        await _apply_one(tracker, claim, outcome, report)


class _Applier:
    """The answers of one claimed batch, applied as they come back: whatever arrived while the
    previous transaction ran goes into the next one (up to `APPLY_BATCH`), so a carrier asked
    one number at a time still gets its answers applied in bulk, and none waits for a slower
    chunk."""

    def __init__(self, tracker: Tracker, report: PollReport) -> None:
        self.tracker = tracker
        self.report = report
        self.waiting: list[tuple[store.Claim, TrackingOutcome]] = []
        self.running: asyncio.Task[None] | None = None

    def add(self, answers: Sequence[tuple[store.Claim, TrackingOutcome]]) -> None:
        self.waiting.extend(answers)
        if self.running is None:
            self.running = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.waiting:
                taken, self.waiting = self.waiting[:APPLY_BATCH], self.waiting[APPLY_BATCH:]
                await _apply_together(self.tracker, taken, self.report)
        finally:
            self.running = None

    async def done(self) -> None:
        """Wait until everything added is applied."""
        while self.running is not None:
            await asyncio.shield(self.running)


async def _poll_chunk(
    tracker: Tracker,
    carrier: str,
    claims: Sequence[store.Claim],
    report: PollReport,
    applier: _Applier,
) -> None:
    answers = await _track(tracker.services, carrier, claims)
    speed = speed_of(tracker.services.clock)
    outcomes: list[tuple[store.Claim, TrackingOutcome]] = []
    for claim in claims:
        outcome = _outcome_for(claim, answers)
        if isinstance(outcome, TrackingFailure) and outcome.retry_after and speed != 1:
            # a carrier's Retry-After is real seconds; the plan counts on the service's clock
            outcome = replace(outcome, retry_after=outcome.retry_after * speed)
        report.by_carrier[carrier] += 1
        if isinstance(outcome, TrackingFailure):
            report.failures += 1
            report.failures_by_kind[str(outcome.kind)] += 1
        else:
            report.results += 1
        outcomes.append((claim, outcome))
    applier.add(outcomes)


async def _poll_batch(
    tracker: Tracker,
    claims: Sequence[store.Claim],
    report: PollReport,
    asked: Callable[[], None] = lambda: None,
) -> None:
    """Ask the carriers for a claimed batch and apply their answers; `asked` is called once
    every carrier has answered (the answers may still be applying)."""
    by_carrier: defaultdict[str, list[store.Claim]] = defaultdict(list)
    for claim in claims:
        by_carrier[claim.carrier].append(claim)
    chunks: list[tuple[str, list[store.Claim]]] = []
    for carrier, mine in by_carrier.items():
        try:
            size = max(1, tracker.services.carriers.adapter(carrier).max_batch)
        except UnknownCarrierError:
            size = len(mine)
        chunks.extend((carrier, mine[i : i + size]) for i in range(0, len(mine), size))
    applier = _Applier(tracker, report)
    try:
        await asyncio.gather(
            *(_poll_chunk(tracker, c, chunk, report, applier) for c, chunk in chunks)
        )
    finally:
        asked()
        await applier.done()


async def poll_pass(
    services: Services,
    *,
    worker: str = WORKER_ID,
    batch: int | None = None,
    concurrency: int | None = None,
    tracker: Tracker | None = None,
) -> PollReport:
    """Poll every shipment due now once (see the module docstring)."""
    settings = services.settings
    tracker = tracker or Tracker(services)
    batch = batch or settings.poll_batch_size
    # `asking`: batches whose carrier calls are in flight; `holding`: batches claimed and not
    # applied yet. A batch gives its asking slot back once its answers are in, so the carrier
    # calls of the next batches overlap its applying, and at most as many again wait to apply.
    slots = concurrency or settings.poll_concurrency
    asking = asyncio.Semaphore(slots)
    holding = asyncio.Semaphore(2 * slots)
    lease = simulated(services.clock, settings.poll_lease_seconds)
    due_by = services.clock.now()
    report = PollReport()
    running: set[asyncio.Task[None]] = set()
    try:
        while True:
            await holding.acquire()
            try:
                await asking.acquire()
            except BaseException:
                holding.release()
                raise
            try:
                async with unit_of_work(services.engine) as session:
                    claims = await store.claim_due(
                        session,
                        worker=worker,
                        due_by=due_by,
                        lease_until=services.clock.now() + lease,
                        limit=batch,
                    )
            except BaseException:
                asking.release()
                holding.release()
                raise
            if not claims:
                asking.release()
                holding.release()
                break
            report.claimed += len(claims)
            task = asyncio.create_task(_poll_batch(tracker, claims, report, asking.release))
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: holding.release())
            if len(claims) < batch:
                break
    finally:
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    if report.claimed:
        log.info(report.line())
    return report


async def _check_ids(
    services: Services,
    tracker: Tracker,
    report: CheckReport,
    ids: Sequence[int],
) -> None:
    for shipment_id in ids:
        report.checked += 1
        try:
            async with unit_of_work(services.engine) as session:
                update = await tracker.check(session, shipment_id)
        except Exception:
            report.errors += 1
            log.exception("shipment %s: the delay check failed", shipment_id)
            continue
        if update is not None and update.changed:
            report.changed += 1
            if update.after.delay_reason:
                report.reasons[update.after.delay_reason] += 1
            if update.after.expired_at is not None and update.after.next_poll_at is None:
                report.reasons["expired"] += 1


async def _candidates_pass(
    services: Services,
    tracker: Tracker | None,
    candidates: Callable[..., Awaitable[list[int]]],
    label: str,
) -> CheckReport:
    """`plan_check` on every shipment `candidates` names, a page of ids per transaction."""
    tracker = tracker or Tracker(services)
    report = CheckReport()
    after = 0
    while True:
        async with unit_of_work(services.engine) as session:
            ids = await candidates(
                session, now=services.clock.now(), config=tracker.config, after_id=after
            )
        if not ids:
            break
        await _check_ids(services, tracker, report, ids)
        after = ids[-1]
    if report.changed:
        log.info(report.line(label))
    return report


async def check_pass(services: Services, *, tracker: Tracker | None = None) -> CheckReport:
    """Look for `promise_missed` and `stalled` without waiting for a scan (`plan_check` on
    every active shipment that may have one)."""
    return await _candidates_pass(services, tracker, store.check_candidates, "delay check")


async def expiry_pass(services: Services, *, tracker: Tracker | None = None) -> CheckReport:
    """Expire shipments the carrier still has not seen `expiry_days` after registration."""
    return await _candidates_pass(services, tracker, store.expiry_candidates, "expiry")


def add_tracking_jobs(scheduler: AsyncIOScheduler, services: Services) -> bool:
    """Schedule the poll, check and expiry passes at the settings' real-time intervals (0:
    that job is off). True if any was added."""
    settings = services.settings
    tracker = Tracker(services)
    jobs: list[tuple[str, str, float, object]] = [
        (POLL_JOB, "poll due shipments", settings.poll_every_seconds, poll_pass),
        (CHECK_JOB, "check promises and stalls", settings.check_every_seconds, check_pass),
        (EXPIRE_JOB, "expire unseen shipments", settings.expire_every_seconds, expiry_pass),
    ]
    added = False
    for job_id, name, seconds, work in jobs:
        if seconds <= 0:
            continue
        scheduler.add_job(
            work,
            "interval",
            seconds=seconds,
            kwargs={"services": services, "tracker": tracker},
            id=job_id,
            name=name,
            replace_existing=True,
        )
        added = True
    if added:
        log.info(
            "tracking jobs: poll every %g s, checks every %g s, expiry every %g s",
            settings.poll_every_seconds,
            settings.check_every_seconds,
            settings.expire_every_seconds,
        )
    return added
