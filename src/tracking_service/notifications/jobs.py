"""The customer-email jobs of a service process: fan the outbox out to notifications, send.

A send pass is three steps, like the webhook dispatcher's: one short transaction claims up to
`TRACKING_MAIL_BATCH_SIZE` due notifications (`store.claim`, leased); each is rendered
(`render.render`), built (`message.build_message`, with the Message-ID fixed when the row was
made) and handed to the SMTP server with no transaction open; one transaction then records
the batch (`store.record`). A worker killed between the server's acceptance and the record
leaves its rows pending until the lease ends; the next pass sends them again with the same
Message-ID: that is the one window in which a customer can get a second copy, and the copy is
recognisably the same message. A live worker never lets a lease run out under a send: a send
starts only while the lease still covers a whole SMTP conversation (`send_budget`); the rest
of a slow batch is released unsent and claimed again.

Registered in `services.SHARED_JOBS` (once per deployment). Without `TRACKING_SMTP_HOST`
there is neither fan-out nor mailer, and the log says so once; `open_services` places the
cursor at the outbox's end before any job runs (`start`), so turning email on sends no
backlog.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tracking_service.clock import Clock, simulated
from tracking_service.db import unit_of_work
from tracking_service.notifications import store
from tracking_service.notifications.config import MailConfig
from tracking_service.notifications.message import build_message
from tracking_service.notifications.quiet_hours import not_before
from tracking_service.notifications.render import render
from tracking_service.notifications.smtp import Outcome, SendResult, SmtpSender
from tracking_service.tracking.jobs import WORKER_ID
from tracking_service.webhooks import fanout
from tracking_service.webhooks.dispatcher import wall_clock

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tracking_service.services import Services

log = logging.getLogger(__name__)

FANOUT_JOB = "mail-fanout"
SEND_JOB = "mail-send"
FANOUT_BATCH = 500
"""Outbox events per fan-out transaction."""
SENDS_IN_FLIGHT = 8
"""SMTP conversations one mailer holds at once."""


def decide(
    job: store.Job,
    result: SendResult,
    subject: str | None,
    *,
    now: datetime,
    config: MailConfig,
) -> store.Outcome:
    """What a send's result makes of a notification (pure): sent; refused for good; or the
    next attempt after `TRACKING_MAIL_RETRY_SECONDS[attempt]` (service clock), moved past
    the customer's night, and `failed` once the schedule is spent."""
    if result.outcome is Outcome.SENT:
        return store.Outcome(job, store.SENT, result.detail, subject, None)
    if result.outcome is Outcome.REJECTED:
        return store.Outcome(job, store.REJECTED, result.detail, subject, None)
    if job.attempt >= len(config.retry):
        detail = f"gave up after {job.attempt} attempts: {result.detail}"
        return store.Outcome(job, store.FAILED, detail, subject, None)
    due = now + config.retry[job.attempt]
    held = not_before(due, job.zone, config.quiet_from_hour, config.morning_hour)
    if held is not None and held > due:
        due = held
    return store.Outcome(job, store.PENDING, result.detail, subject, due)


@dataclass
class MailReport:
    """What one send pass did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    rejected: int = 0
    not_recorded: int = 0
    released: int = 0
    """Claimed but not sent: their lease no longer covered a send (taken again at once)."""

    def add(self, outcomes: Sequence[store.Outcome]) -> None:
        for o in outcomes:
            if o.status == store.SENT:
                self.sent += 1
            elif o.status == store.REJECTED:
                self.rejected += 1
            elif o.status == store.FAILED:
                self.failed += 1
            else:
                self.retried += 1

    def line(self) -> str:
        text = (
            f"email: {self.claimed} claimed, {self.sent} sent, {self.retried} to retry, "
            f"{self.failed} given up, {self.rejected} refused for good"
        )
        if self.not_recorded:
            text += (
                f", {self.not_recorded} not recorded (sent again after the lease, same Message-ID)"
            )
        if self.released:
            text += f", {self.released} released unsent (their lease was running out)"
        return text


class Mailer:
    """Fan-out and send passes for one process (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        config: MailConfig,
        *,
        worker: str = WORKER_ID,
        sender: SmtpSender | None = None,
        wall: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`monotonic`: real seconds, to keep every send inside its claim's lease (tests pass
        their own)."""
        self.engine = engine
        self.clock = clock
        self.config = config
        self.worker = worker
        self.sender = sender or SmtpSender(config)
        self.wall = wall or wall_clock(clock)
        self.monotonic = monotonic
        self.horizon = fanout.Horizon()
        self._sends: asyncio.Semaphore | None = None

    @property
    def send_budget(self) -> float:
        """Real seconds after a claim within which a send may still start: the lease less one
        SMTP conversation's time limit, so no send can still run when the lease ends and
        another worker takes the email (which would send it twice)."""
        lease, conversation = self.config.lease_seconds, self.config.timeout_seconds
        return lease - conversation if lease > conversation else lease / 2

    # fan-out

    async def fanout_pass(self) -> int:
        """Turn every outbox event there is now into notifications (batches, each in its own
        transaction); the number of rows made."""
        made = 0
        while True:
            async with unit_of_work(self.engine) as session:
                report = await store.fan_out(
                    session,
                    now=self.clock.now(),
                    config=self.config,
                    limit=FANOUT_BATCH,
                    horizon=self.horizon,
                )
            made += report.made
            if report.blocked or report.events < FANOUT_BATCH:
                return made

    # sending

    async def _claim(self) -> list[store.Job]:
        async with unit_of_work(self.engine) as session:
            now = self.clock.now()
            return await store.claim(
                session,
                worker=self.worker,
                now=now,
                lease_until=now + simulated(self.clock, self.config.lease_seconds),
                limit=self.config.batch_size,
            )

    async def _send_one(
        self, job: store.Job, deadline: float
    ) -> tuple[store.Job, SendResult, str | None] | None:
        if self._sends is None:
            self._sends = asyncio.Semaphore(SENDS_IN_FLIGHT)
        async with self._sends:
            if self.monotonic() > deadline:
                return None  # the lease would end during the send: leave it unsent
            try:
                rendered = render(
                    job.kind,
                    job.payload,
                    job.locale,
                    shop_name=self.config.shop_name,
                    shop_color=self.config.shop_color,
                )
                message = build_message(
                    rendered,
                    to=job.to,
                    sender=self.config.mail_from or "",
                    message_id=job.message_id,
                    at=self.wall.now(),
                    locale=job.locale,
                )
            except Exception as exc:  # a template or data fault: retried, then given up
                log.exception("email %s (%s) could not be built", job.notification_id, job.kind)
                return job, SendResult(Outcome.RETRY, f"not built: {exc!r}"[:512]), None
            return job, await self.sender.send(message), rendered.subject

    async def send(
        self, jobs: Sequence[store.Job], claimed_at: float | None = None
    ) -> list[store.Outcome]:
        """Render and send claimed notifications (no transaction open) and decide each. A job
        whose send would start later than `send_budget` after `claimed_at` (monotonic; None:
        now) is not sent and has no outcome."""
        deadline = (self.monotonic() if claimed_at is None else claimed_at) + self.send_budget
        sent = await asyncio.gather(*(self._send_one(job, deadline) for job in jobs))
        now = self.clock.now()
        return [
            decide(job, result, subject, now=now, config=self.config)
            for job, result, subject in (s for s in sent if s is not None)
        ]

    async def record(
        self, outcomes: Sequence[store.Outcome], unsent: Sequence[int] = ()
    ) -> list[int]:
        """Record a batch in one transaction, and release the claimed notifications that were
        not sent (`unsent`); the orders whose address was refused. Tried twice: the emails
        are out, and a record lost for good means a second copy after the lease (a second
        try of a commit that did land changes nothing: the updates are conditional)."""
        for attempt in (1, 2):
            try:
                async with unit_of_work(self.engine) as session:
                    now = self.clock.now()
                    await store.release(session, unsent, worker=self.worker, now=now)
                    return await store.record(session, outcomes, worker=self.worker, now=now)
            except Exception:
                if attempt == 2:
                    raise
                log.warning("recording %d email outcome(s) failed; retrying", len(outcomes))
        return []

    async def send_pass(self) -> MailReport:
        """Send every notification due now, a claim at a time, until a claim comes back
        empty."""
        report = MailReport()
        while True:
            claimed_at = self.monotonic()
            jobs = await self._claim()
            if not jobs:
                break
            report.claimed += len(jobs)
            outcomes = await self.send(jobs, claimed_at)
            done = {o.job.notification_id for o in outcomes}
            unsent = [j.notification_id for j in jobs if j.notification_id not in done]
            try:
                refused = await self.record(outcomes, unsent)
                report.released += len(unsent)
            except Exception:
                report.not_recorded += len(outcomes)
                log.exception("%d email(s) sent but not recorded", len(outcomes))
                break
            report.add(outcomes)
            for order_pk in refused:
                log.warning(
                    "order %s: the customer's address was refused; its email stops", order_pk
                )
            if len(jobs) < self.config.batch_size:
                break
        if report.claimed:
            log.info(report.line())
        return report

    async def run_once(self) -> MailReport:
        """One fan-out pass, then one send pass."""
        await self.fanout_pass()
        return await self.send_pass()


def mailer_for(services: Services, *, worker: str = WORKER_ID) -> Mailer:
    """A mailer on this process's engine, clock and mail settings."""
    return Mailer(services.engine, services.clock, services.settings.mail_config(), worker=worker)


def add_mail_jobs(scheduler: AsyncIOScheduler, services: Services) -> bool:
    """Schedule the fan-out and send passes; False (said once in the log) without an SMTP
    host, False when the interval is 0."""
    config = services.settings.mail_config()
    if not config.enabled:
        log.info(
            "customer email off: TRACKING_SMTP_HOST is not set (no notifications are made or sent)"
        )
        return False
    every = config.every_seconds
    if every <= 0:
        log.info("customer email: TRACKING_MAIL_EVERY_SECONDS is 0, no mailer in this process")
        return False
    mailer = mailer_for(services)
    scheduler.add_job(
        mailer.fanout_pass,
        "interval",
        seconds=every,
        id=FANOUT_JOB,
        name="turn outbox events into customer email",
        replace_existing=True,
    )
    scheduler.add_job(
        mailer.send_pass,
        "interval",
        seconds=every,
        id=SEND_JOB,
        name="send due customer email",
        replace_existing=True,
    )
    log.info(
        "customer email: via %s:%d (%s), fan-out and send every %g s, %d per claim",
        config.host,
        config.port,
        config.security,
        every,
        config.batch_size,
    )
    return True


async def start(services: Services) -> None:
    """Before the jobs run: place the notification cursor at the outbox's end if email was
    never on here (nothing old is sent). Nothing without an SMTP host."""
    config = services.settings.mail_config()
    if config.enabled and config.every_seconds > 0:
        async with unit_of_work(services.engine) as session:
            await store.start_cursor(session, now=services.clock.now())
