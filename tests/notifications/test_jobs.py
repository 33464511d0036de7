"""The mailer against a real SMTP server on loopback (aiosmtpd), on SQLite and PostgreSQL:
what arrives (subject, language, link, no personal data beyond the address), the quiet-hours
hold, one late notice per new estimate, a server down then back, a crash between send and
record (the one second copy, with the same Message-ID), erasure, refusals; and the wiring:
no SMTP host, no email."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.clock import FixedClock
from tracking_service.db import unit_of_work
from tracking_service.notifications import jobs, store
from tracking_service.notifications.jobs import Mailer
from tracking_service.services import open_services
from tracking_service.settings import Settings, bundled_rules_path

from .mail_helpers import (
    T0,
    add_event,
    add_order,
    free_port,
    late,
    mail_server,
    mailer,
    notifications,
    order_row,
    shipment_body,
    shipped,
)


async def started(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        await store.start_cursor(session, now=T0)


async def test_what_the_customer_receives(engine: AsyncEngine) -> None:
    await started(engine)
    parcel = await add_order(engine, locale="pt-BR")
    english = await add_order(engine, "B-2002", email="john@example.com", locale="en")
    await shipped(engine, parcel)
    await late(engine, english, "2026-12-08")
    async with mail_server() as server:
        m = mailer(engine, FixedClock(T0), server.port)
        report = await m.run_once()
    assert (report.claimed, report.sent) == (2, 2)
    pt, en = sorted(server.got, key=lambda g: g.rcpt)[::-1]
    assert pt.rcpt == ("maria@example.com",) and en.rcpt == ("john@example.com",)
    assert pt.message["Subject"] == "Acme: seu pedido A-1001 foi enviado"
    assert en.message["Subject"] == "Acme: your order B-2002 is running late"
    assert (pt.message["Content-Language"], en.message["Content-Language"]) == ("pt-BR", "en")
    assert pt.message["From"] == "Acme Shop <orders@acme.example>"
    for got, token in ((pt, parcel.token), (en, english.token)):
        text = got.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = got.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        link = f"https://track.example.com/t/{token}"
        assert link in text and link in html
        raw = got.raw.decode("ascii", "replace")
        # the address is the only personal data: no name, phone or street anywhere
        for personal in ("Maria Silva", "Silva", "Paulista", "5555"):
            assert personal not in raw and personal not in text and personal not in html
    rows = {n["order_pk"]: n for n in await notifications(engine)}
    sent = rows[parcel.order_pk]
    assert (sent["status"], sent["attempts"], sent["sent_at"]) == ("sent", 1, T0)
    assert sent["subject"] == pt.message["Subject"]
    assert sent["message_id"] == pt.message_id


async def test_quiet_hours_hold_the_email_until_the_morning(engine: AsyncEngine) -> None:
    await started(engine)
    parcel = await add_order(engine)  # São Paulo, UTC-3
    night = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 23:00 there
    clock = FixedClock(night)
    await late(engine, parcel, "2026-12-08", at=night)
    async with mail_server() as server:
        m = mailer(engine, clock, server.port)
        await m.run_once()
        clock.advance(timedelta(hours=8, minutes=59))  # 07:59 there
        await m.run_once()
        assert server.got == []
        clock.advance(timedelta(minutes=1))  # 08:00
        await m.run_once()
    [got] = server.got
    assert got.message["Subject"] == "Acme: seu pedido A-1001 está atrasado"
    [row] = await notifications(engine)
    assert row["sent_at"] == datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


async def test_one_late_notice_per_new_estimate(engine: AsyncEngine) -> None:
    await started(engine)
    parcel = await add_order(engine)
    clock = FixedClock(T0)
    async with mail_server() as server:
        m = mailer(engine, clock, server.port)
        await late(engine, parcel, "2026-12-08")
        await m.run_once()
        for _ in range(3):  # polls that bring the same estimate, and restarts
            clock.advance(timedelta(minutes=10))
            await late(engine, parcel, "2026-12-08", at=clock.now())
            await mailer(engine, clock, server.port).run_once()
        await late(engine, parcel, "2026-12-10", at=clock.now())
        await m.run_once()
    assert len(server.got) == 2
    assert len({g.message_id for g in server.got}) == 2
    assert [n["dedupe_key"].rsplit(":", 1)[1] for n in await notifications(engine)] == [
        "2026-12-08",
        "2026-12-10",
    ]


async def test_a_server_down_then_back(engine: AsyncEngine) -> None:
    await started(engine)
    parcel = await add_order(engine)
    await shipped(engine, parcel)
    clock = FixedClock(T0)
    port = free_port()
    m = mailer(engine, clock, port)
    report = await m.run_once()  # nobody listens
    assert (report.claimed, report.retried) == (1, 1)
    [row] = await notifications(engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["next_attempt_at"] == T0 + timedelta(seconds=60)  # the second delay
    assert "connection" in row["last_error"]
    async with mail_server(port=port) as server:
        clock.advance(timedelta(seconds=59))
        assert (await m.send_pass()).claimed == 0  # not due yet
        clock.advance(timedelta(seconds=1))
        assert (await m.send_pass()).sent == 1
    [got] = server.got
    [row] = await notifications(engine)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None)
    assert got.message_id == row["message_id"]


async def test_after_the_last_retry_the_email_is_given_up(engine: AsyncEngine) -> None:
    await started(engine)
    await shipped(engine, await add_order(engine))
    clock = FixedClock(T0)
    m = mailer(engine, clock, free_port())
    await m.run_once()
    clock.advance(timedelta(seconds=60))
    await m.send_pass()
    clock.advance(timedelta(seconds=300))
    report = await m.send_pass()
    assert report.failed == 1
    [row] = await notifications(engine)
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("failed", 3, None)
    assert row["last_error"].startswith("gave up after 3 attempts: ")
    clock.advance(timedelta(days=2))
    assert (await m.send_pass()).claimed == 0


async def test_a_retry_due_at_night_waits_for_the_morning(engine: AsyncEngine) -> None:
    await started(engine)
    await shipped(engine, await add_order(engine))
    evening = datetime(2026, 12, 1, 23, 59, 30, tzinfo=UTC)  # 20:59:30 in São Paulo
    m = mailer(engine, FixedClock(evening), free_port())
    await m.run_once()
    [row] = await notifications(engine)
    assert row["next_attempt_at"] == datetime(2026, 12, 2, 11, 0, tzinfo=UTC)  # 08:00 there


async def test_a_crash_between_send_and_record_resends_with_the_same_message_id(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await started(engine)
    await shipped(engine, await add_order(engine))
    clock = FixedClock(T0)
    async with mail_server() as server:
        crashing = mailer(engine, clock, server.port, worker="dies")
        record = Mailer.record

        async def record_fails(self: Mailer, outcomes: object, unsent: object = ()) -> list[int]:
            raise ConnectionError("the database went away after the server accepted")

        monkeypatch.setattr(Mailer, "record", record_fails)
        report = await crashing.run_once()
        assert (report.claimed, report.not_recorded) == (1, 1)
        monkeypatch.setattr(Mailer, "record", record)
        other = mailer(engine, clock, server.port, worker="next")
        clock.advance(timedelta(seconds=119))
        assert (await other.send_pass()).claimed == 0  # the lease still holds
        clock.advance(timedelta(seconds=1))
        assert (await other.send_pass()).sent == 1
        clock.advance(timedelta(hours=1))
        assert (await other.run_once()).claimed == 0  # recorded now: never a third
    first, second = server.got
    assert first.message_id == second.message_id
    [row] = await notifications(engine)
    assert (row["status"], row["attempts"], row["message_id"]) == ("sent", 1, first.message_id)


async def test_a_record_that_fails_once_is_tried_again(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await started(engine)
    await shipped(engine, await add_order(engine))
    record = store.record
    calls: list[int] = []

    async def flaky(*args: Any, **kw: Any) -> list[int]:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the database hiccuped")
        return await record(*args, **kw)

    monkeypatch.setattr(store, "record", flaky)
    clock = FixedClock(T0)
    async with mail_server() as server:
        m = mailer(engine, clock, server.port)
        report = await m.run_once()
        clock.advance(timedelta(hours=1))
        assert (await m.run_once()).claimed == 0
    assert (report.sent, report.not_recorded, len(calls), len(server.got)) == (1, 0, 2, 1)
    [row] = await notifications(engine)
    assert (row["status"], row["attempts"]) == ("sent", 1)


async def test_a_send_starts_only_while_the_lease_covers_it(engine: AsyncEngine) -> None:
    """A slow batch: what could not start while the lease still covered a whole SMTP
    conversation is released unsent, never left to run past the lease (where another worker
    would send it too), and goes out in the next claim."""
    await started(engine)
    for n in range(3):
        await shipped(engine, await add_order(engine, f"A-{n}"))
    # real seconds: claim at 0; the sends would start at 10, 116 and 200; then the next pass
    seconds = iter([0.0, 10.0, 116.0, 200.0, 1000.0, 1001.0, 1002.0])
    async with mail_server() as server:
        m = mailer(engine, FixedClock(T0), server.port, lease_seconds=120.0)
        m.monotonic = lambda: next(seconds)
        assert m.send_budget == 115.0  # the lease less the 5 s conversation limit
        await m.fanout_pass()
        first = await m.send_pass()
        assert (first.claimed, first.sent, first.released) == (3, 1, 2)
        assert [n["claimed_by"] for n in await notifications(engine)] == [None] * 3
        second = await m.send_pass()  # released: due at once, not after the lease
    assert (second.claimed, second.sent) == (2, 2)
    assert len({g.message_id for g in server.got}) == len(server.got) == 3
    assert [(n["status"], n["attempts"]) for n in await notifications(engine)] == [("sent", 1)] * 3


async def test_erasure_stops_what_is_pending(engine: AsyncEngine) -> None:
    await started(engine)
    parcel = await add_order(engine)
    night = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    clock = FixedClock(night)
    await shipped(engine, parcel, at=night)  # held for the morning
    async with mail_server() as server:
        m = mailer(engine, clock, server.port)
        await m.fanout_pass()
        async with unit_of_work(engine) as session:
            await store.erase_contact(session, parcel.order_id, now=night)
        clock.advance(timedelta(hours=12))
        await late(engine, parcel, "2026-12-09", at=clock.now())
        await m.run_once()
    assert server.got == []
    assert [(n["kind"], n["status"]) for n in await notifications(engine)] == [
        ("shipped", "cancelled"),
        ("late", "skipped"),
    ]


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        ("550 5.1.1 <maria@example.com>: no such user", "bounced"),
        ("553 5.1.3 bad destination mailbox address syntax", "invalid"),
    ],
)
async def test_a_refused_address_is_recorded_on_the_order_and_not_retried(
    engine: AsyncEngine, answer: str, state: str
) -> None:
    await started(engine)
    parcel = await add_order(engine)
    await shipped(engine, parcel)
    await late(engine, parcel, "2026-12-08")
    clock = FixedClock(T0)
    async with mail_server(refuse=lambda address: answer) as server:
        m = mailer(engine, clock, server.port, batch_size=1)  # the late notice waits its turn
        await m.fanout_pass()
        report = await m.send_pass()
        assert report.rejected == 1
        clock.advance(timedelta(days=3))
        assert (await m.run_once()).claimed == 0
    assert server.got == []
    order = await order_row(engine, parcel.order_pk)
    assert order["contact_state"] == state
    assert order["contact_state_reason"].startswith(f"recipient refused: {answer[:9]}")
    assert "maria@example.com" not in order["contact_state_reason"]  # the words, no address
    rejected, stopped = await notifications(engine)
    assert (rejected["status"], rejected["attempts"]) == ("rejected", 1)
    assert stopped["status"] == "cancelled"


async def test_an_erased_contact_during_a_send_is_still_listed_as_sent(
    engine: AsyncEngine,
) -> None:
    """The erasure cancels what is pending; an email already handed to the server went out,
    and the list says so."""
    await started(engine)
    parcel = await add_order(engine)
    await shipped(engine, parcel)
    clock = FixedClock(T0)
    async with mail_server() as server:
        m = mailer(engine, clock, server.port)
        await m.fanout_pass()
        jobs_ = await m._claim()
        async with unit_of_work(engine) as session:
            await store.erase_contact(session, parcel.order_id, now=T0)
        await m.record(await m.send(jobs_))
    [row] = await notifications(engine)
    assert row["status"] == "sent" and len(server.got) == 1


# --- the wiring -------------------------------------------------------------------------------


def settings_for(database_url: str, **changes: object) -> Settings:
    return Settings(
        database_url=database_url,
        rules_file=bundled_rules_path("br_shop.toml"),
        history_refresh_seconds=0,
        poll_every_seconds=0,
        webhook_dispatch_every_seconds=0,
        **changes,  # type: ignore[arg-type]
    )


async def test_without_an_smtp_host_there_is_no_email_said_once(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tracking_service.notifications.jobs")
    async with open_services(settings_for(database_url), run_jobs=True) as s:
        jobs_ = {job.id for job in s.scheduler.get_jobs()} if s.scheduler else set()
        async with s.engine.connect() as conn:
            cursors = (await conn.exec_driver_sql("SELECT name FROM outbox_cursors")).all()
    assert not {jobs.FANOUT_JOB, jobs.SEND_JOB} & jobs_
    assert cursors == []  # no fan-out: no cursor
    said = [r.getMessage() for r in caplog.records if "TRACKING_SMTP_HOST" in r.getMessage()]
    assert said == [
        "customer email off: TRACKING_SMTP_HOST is not set (no notifications are made or sent)"
    ]


async def test_with_a_host_the_jobs_run_and_the_cursor_starts_at_the_end(
    database_url: str, engine: AsyncEngine
) -> None:
    parcel = await add_order(engine)
    last = await add_event(
        engine,
        parcel,
        shipment_body(parcel, "shipment.status_changed", "in_transit", previous="pending"),
    )
    settings = settings_for(
        database_url,
        smtp_host="127.0.0.1",
        smtp_security="none",
        mail_from="Acme <orders@acme.example>",
        mail_every_seconds=3600,
    )
    async with open_services(settings, run_jobs=True, clock=FixedClock(T0)) as s:
        assert s.scheduler is not None
        assert {jobs.FANOUT_JOB, jobs.SEND_JOB} <= {job.id for job in s.scheduler.get_jobs()}
    async with engine.connect() as conn:
        cursor = (
            await conn.exec_driver_sql(
                "SELECT last_id FROM outbox_cursors WHERE name = 'notifications'"
            )
        ).scalar_one()
    assert cursor == last  # what was in the outbox before email was on is never mailed


def test_the_scheduler_gets_nothing_when_the_interval_is_zero(database_url: str) -> None:
    class Fake:
        settings = settings_for(
            database_url,
            smtp_host="127.0.0.1",
            mail_from="Acme <orders@acme.example>",
            mail_every_seconds=0,
        )

    scheduler = AsyncIOScheduler()
    assert jobs.add_mail_jobs(scheduler, Fake()) is False  # type: ignore[arg-type]
    assert scheduler.get_jobs() == []
