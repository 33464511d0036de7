"""The notification store on SQLite and PostgreSQL: the fan-out from the outbox (start at the
end, one row per intent, skipped rows with their reason, quiet hours, language), claims with
a lease, outcomes, the list and erasure."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.db import unit_of_work
from tracking_service.errors import InvalidInput, NotFound
from tracking_service.notifications import store
from tracking_service.notifications.config import MailConfig

from .mail_helpers import (
    T0,
    N,
    X,
    add_event,
    add_order,
    late,
    mail_config,
    notifications,
    order_row,
    shipment_body,
    shipped,
)


async def fan(
    engine: AsyncEngine, config: MailConfig | None = None, now: datetime = T0
) -> store.FanoutReport:
    async with unit_of_work(engine) as session:
        return await store.fan_out(session, now=now, config=config or mail_config())


async def start(engine: AsyncEngine) -> int:
    async with unit_of_work(engine) as session:
        return await store.start_cursor(session, now=T0)


async def claim(
    engine: AsyncEngine, now: datetime = T0, worker: str = "w1", limit: int = 50
) -> list[store.Job]:
    async with unit_of_work(engine) as session:
        return await store.claim(
            session, worker=worker, now=now, lease_until=now + timedelta(minutes=2), limit=limit
        )


async def test_a_new_deployment_starts_at_the_outbox_end(engine: AsyncEngine) -> None:
    parcel = await add_order(engine)
    before = await shipped(engine, parcel)
    assert await start(engine) == before
    assert await start(engine) == before  # placed once: a restart keeps its place
    assert (await fan(engine)).events == 0
    after = await add_event(
        engine, parcel, shipment_body(parcel, "shipment.status_changed", "out_for_delivery")
    )
    report = await fan(engine)
    assert (report.events, report.made, report.cursor) == (1, 1, after)
    [row] = await notifications(engine)
    assert row["outbox_id"] == after and row["kind"] == "out_for_delivery"


async def test_a_fan_out_without_a_start_also_begins_at_the_end(engine: AsyncEngine) -> None:
    parcel = await add_order(engine)
    await shipped(engine, parcel)
    assert (await fan(engine)).events == 0
    assert await notifications(engine) == []


async def test_one_row_per_intent_never_two(engine: AsyncEngine) -> None:
    await start(engine)
    parcel = await add_order(engine)
    await shipped(engine, parcel)
    await late(engine, parcel, "2026-12-07")
    await late(engine, parcel, "2026-12-07")  # the same estimate again: no second notice
    await late(engine, parcel, "2026-12-09")  # a new estimate: a new notice
    report = await fan(engine)
    assert (report.events, report.made) == (4, 3)
    made = await notifications(engine)
    assert [(n["kind"], n["dedupe_key"]) for n in made] == [
        ("shipped", f"shipment:{parcel.shipment_id}:shipped"),
        ("late", f"shipment:{parcel.shipment_id}:late:2026-12-07"),
        ("late", f"shipment:{parcel.shipment_id}:late:2026-12-09"),
    ]
    assert len({n["message_id"] for n in made}) == 3
    for n in made:
        assert n["status"] == "pending" and n["next_attempt_at"] == T0 and n["attempts"] == 0
        assert n["message_id"].endswith("@acme.example>")
    # the same events read again (a cursor moved back by hand): the dedupe keys hold
    async with unit_of_work(engine) as session:
        await session.execute(
            sa.text("UPDATE outbox_cursors SET last_id = 0 WHERE name = 'notifications'")
        )
    await late(engine, parcel, "2026-12-07", at=T0 + timedelta(hours=1))
    again = await fan(engine)
    assert again.made == 0 and len(await notifications(engine)) == 3


async def test_the_payload_holds_no_personal_data_and_the_customer_s_zone(
    engine: AsyncEngine,
) -> None:
    await start(engine)
    parcel = await add_order(engine)
    await shipped(engine, parcel)
    await fan(engine)
    [row] = await notifications(engine)
    text = json.dumps(row["payload"])
    for personal in ("maria", "Silva", "Paulista", "5555"):
        assert personal not in text
    assert row["payload"]["tracking_url"] == f"https://track.example.com/t/{parcel.token}"
    assert row["payload"]["dest_tz"] == "America/Sao_Paulo"  # from the destination (BR, SP)


async def test_switched_off_kinds_and_unusable_contacts_are_listed_as_skipped(
    engine: AsyncEngine,
) -> None:
    await start(engine)
    no_email = await add_order(engine, "A-1", email=None)
    bounced = await add_order(engine, "A-2", contact_state="bounced")
    erased = await add_order(engine, "A-3", email=None, contact_state="erased")
    fine = await add_order(engine, "A-4")
    for parcel in (no_email, bounced, erased, fine):
        await shipped(engine, parcel)
    await late(engine, fine, "2026-12-08")
    await fan(engine, mail_config(kinds=frozenset({"shipped", "delivered"})))
    by_order = {(n["order_pk"], n["kind"]): n for n in await notifications(engine)}
    expected = {
        (no_email.order_pk, "shipped"): "not sent: the order has no customer email",
        (bounced.order_pk, "shipped"): "not sent: the address was refused earlier as bounced",
        (erased.order_pk, "shipped"): "not sent: the customer's contact was erased",
        (fine.order_pk, "late"): "not sent: late email is switched off (TRACKING_MAIL_KINDS)",
    }
    for key, reason in expected.items():
        row = by_order[key]
        assert (row["status"], row["last_error"], row["next_attempt_at"]) == (
            "skipped",
            reason,
            None,
        )
    assert by_order[(fine.order_pk, "shipped")]["status"] == "pending"
    assert [j.order_pk for j in await claim(engine)] == [fine.order_pk]


async def test_quiet_hours_hold_until_the_customer_s_morning(engine: AsyncEngine) -> None:
    await start(engine)
    sao_paulo = await add_order(engine, "A-1")  # zone from the destination: UTC-3
    by_zone = await add_order(engine, "A-2", dest_tz="Asia/Tokyo")  # the order's own zone
    night = datetime(2026, 12, 2, 1, 30, tzinfo=UTC)  # 22:30 in São Paulo, 10:30 in Tokyo
    await shipped(engine, sao_paulo, at=night)
    await shipped(engine, by_zone, at=night)
    await fan(engine, now=night)
    first, second = await notifications(engine)
    morning = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)  # 08:00 in São Paulo
    assert (first["not_before"], first["next_attempt_at"]) == (morning, morning)
    assert (second["not_before"], second["next_attempt_at"]) == (None, night)
    assert [j.order_pk for j in await claim(engine, now=night)] == [by_zone.order_pk]
    # (the Tokyo one comes back once its lease is over: it was never recorded)
    just_before = await claim(engine, now=morning - timedelta(seconds=1))
    assert sao_paulo.order_pk not in [j.order_pk for j in just_before]
    assert [j.order_pk for j in await claim(engine, now=morning)] == [sao_paulo.order_pk]


async def test_the_language_is_the_order_s_else_the_default(engine: AsyncEngine) -> None:
    await start(engine)
    orders = [
        await add_order(engine, "A-1", locale="pt-BR"),
        await add_order(engine, "A-2", locale=None),
        await add_order(engine, "A-3", locale="fr"),  # stored before locales were checked
    ]
    for parcel in orders:
        await shipped(engine, parcel)
    await fan(engine, mail_config(default_locale="pt-BR"))
    assert [n["locale"] for n in await notifications(engine)] == ["pt-BR", "pt-BR", "pt-BR"]
    async with unit_of_work(engine) as session:
        await session.execute(sa.delete(N))
        await session.execute(sa.text("UPDATE outbox_cursors SET last_id = 0"))
    await fan(engine, mail_config(default_locale="en"))
    assert [n["locale"] for n in await notifications(engine)] == ["pt-BR", "en", "en"]


async def test_a_claim_leases_and_reads_the_address_from_the_order(engine: AsyncEngine) -> None:
    await start(engine)
    parcel = await add_order(engine)
    await shipped(engine, parcel)
    await fan(engine)
    [job] = await claim(engine)
    assert (job.to, job.locale, job.kind, job.attempt) == (
        "maria@example.com",
        "pt-BR",
        "shipped",
        1,
    )
    assert job.zone == "America/Sao_Paulo"
    [row] = await notifications(engine)
    assert row["claimed_by"] == "w1" and row["next_attempt_at"] == T0 + timedelta(minutes=2)
    assert row["message_id"] == job.message_id
    assert await claim(engine, worker="w2") == []  # leased
    [again] = await claim(engine, now=T0 + timedelta(minutes=2), worker="w2")  # lease over
    assert again.message_id == job.message_id and again.attempt == 1


async def test_concurrent_claims_never_take_one_row_twice(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    await start(engine)
    for n in range(30):
        await shipped(engine, await add_order(engine, f"A-{n}"))
    await fan(engine)
    batches = await asyncio.gather(*(claim(engine, worker=f"w{i}", limit=4) for i in range(8)))
    taken = [j.notification_id for batch in batches for j in batch]
    assert len(taken) == len(set(taken)) == 30


async def test_a_claim_cancels_what_can_no_longer_be_sent(engine: AsyncEngine) -> None:
    await start(engine)
    erased, cancelled = await add_order(engine, "A-1"), await add_order(engine, "A-2")
    await shipped(engine, erased)
    await shipped(engine, cancelled)
    await fan(engine)
    async with unit_of_work(engine) as session:
        await session.execute(
            sa.text("UPDATE orders SET customer_email = NULL WHERE id = :id"),
            {"id": erased.order_pk},
        )
        await session.execute(
            sa.text("UPDATE orders SET cancelled_at = :at WHERE id = :id"),
            {"id": cancelled.order_pk, "at": T0},
        )
    assert await claim(engine) == []
    assert [(n["status"], n["last_error"]) for n in await notifications(engine)] == [
        ("cancelled", "not sent: the order has no customer email"),
        ("cancelled", "not sent: the order was cancelled"),
    ]


def _outcome(
    job: store.Job, status: str, detail: str = "", at: datetime | None = None
) -> store.Outcome:
    return store.Outcome(job, status, detail, "Acme: seu pedido A-1001 foi enviado", at)


async def test_outcomes_sent_retry_and_a_refusal_that_stops_the_order(engine: AsyncEngine) -> None:
    await start(engine)
    parcel = await add_order(engine)
    await shipped(engine, parcel)
    await late(engine, parcel, "2026-12-08")
    await late(engine, parcel, "2026-12-09")
    await fan(engine)
    first, second, third = await claim(engine)
    later = T0 + timedelta(minutes=1)
    async with unit_of_work(engine) as session:
        refused = await store.record(
            session,
            [
                _outcome(first, store.SENT, "accepted: 250 queued"),
                _outcome(second, store.PENDING, "connection failed", later),
            ],
            worker="w1",
            now=T0,
        )
    assert refused == []
    sent, retry, _ = await notifications(engine)
    assert (sent["status"], sent["sent_at"], sent["attempts"], sent["last_error"]) == (
        "sent",
        T0,
        1,
        None,
    )
    assert sent["subject"] == "Acme: seu pedido A-1001 foi enviado" and sent["claimed_by"] is None
    assert (retry["status"], retry["next_attempt_at"], retry["attempts"]) == ("pending", later, 1)
    assert retry["last_error"] == "connection failed"
    async with unit_of_work(engine) as session:
        refused = await store.record(
            session,
            [_outcome(third, store.REJECTED, "recipient refused: 550 5.1.1 no such user")],
            worker="w1",
            now=T0,
        )
    assert refused == [parcel.order_pk]
    order = await order_row(engine, parcel.order_pk)
    assert order["contact_state"] == "bounced"
    assert order["contact_state_reason"] == "recipient refused: 550 5.1.1 no such user"
    _, retry, rejected = await notifications(engine)
    assert rejected["status"] == "rejected"
    assert retry["status"] == "cancelled"  # the order's other pending email stops
    assert retry["last_error"] == (
        "not sent: the address was refused as bounced (recipient refused: 550 5.1.1 no such user)"
    )


async def test_a_late_record_of_another_worker_changes_nothing_but_a_send(
    engine: AsyncEngine,
) -> None:
    await start(engine)
    parcel = await add_order(engine)
    await shipped(engine, parcel)
    await late(engine, parcel, "2026-12-08")
    await fan(engine)
    old_shipped, old_late = await claim(engine, worker="w1")
    after = T0 + timedelta(minutes=2)
    await claim(engine, now=after, worker="w2")  # w1's lease ran out
    async with unit_of_work(engine) as session:
        await store.record(
            session,
            [
                _outcome(old_shipped, store.PENDING, "timeout", after),
                _outcome(old_late, store.SENT, "accepted"),
            ],
            worker="w1",
            now=after,
        )
    first, second = await notifications(engine)
    assert (first["claimed_by"], first["attempts"], first["status"]) == ("w2", 0, "pending")
    assert (second["status"], second["attempts"]) == ("sent", 1)  # it went out: say so


def test_refusals_that_name_the_address_itself_mark_it_invalid() -> None:
    assert store.contact_state_for("recipient refused: 553 5.1.3 bad address syntax") == "invalid"
    assert store.contact_state_for("recipient refused: 501 5.1.7 bad address") == "invalid"
    assert store.contact_state_for("recipient refused: 550 5.1.1 no such user") == "bounced"
    assert store.contact_state_for("recipient refused: 554 5.7.1 refused") == "bounced"


async def test_the_list_pages_oldest_first_with_the_contact(engine: AsyncEngine) -> None:
    await start(engine)
    parcel = await add_order(engine)
    other = await add_order(engine, "B-1")
    await shipped(engine, parcel)
    for day in ("2026-12-07", "2026-12-08", "2026-12-09"):
        await late(engine, parcel, day)
    await shipped(engine, other)
    await fan(engine)
    async with unit_of_work(engine) as session:
        first = await store.list_notifications(session, "A-1001", limit=3)
        assert first.next_cursor is not None
        rest = await store.list_notifications(session, "A-1001", limit=3, cursor=first.next_cursor)
        with pytest.raises(NotFound):
            await store.list_notifications(session, "nope")
        with pytest.raises(InvalidInput) as bad:
            await store.list_notifications(session, "A-1001", cursor="junk")
    assert bad.value.field == "cursor"
    assert [r["kind"] for r in first.items] == ["shipped", "late", "late"]
    assert [r["kind"] for r in rest.items] == ["late"] and rest.next_cursor is None
    assert first.contact == store.Contact(None, None, None)


async def test_erasure_blanks_the_person_stops_email_and_is_idempotent(
    engine: AsyncEngine,
) -> None:
    await start(engine)
    parcel = await add_order(engine)
    await shipped(engine, parcel)
    await fan(engine)
    later = T0 + timedelta(hours=1)
    async with unit_of_work(engine) as session:
        assert await store.erase_contact(session, "A-1001", now=T0) is True
    async with unit_of_work(engine) as session:
        assert await store.erase_contact(session, "A-1001", now=later) is False
        with pytest.raises(NotFound):
            await store.erase_contact(session, "nope", now=T0)
    order = await order_row(engine, parcel.order_pk)
    assert [order[c] for c in ("customer_email", "customer_name", "customer_phone")] == [None] * 3
    assert order["customer_street"] is None
    assert (order["contact_state"], order["contact_state_at"]) == ("erased", T0)
    [row] = await notifications(engine)
    assert (row["status"], row["last_error"]) == (
        "cancelled",
        "not sent: the customer's contact was erased",
    )
    assert await claim(engine, now=later) == []
    # and later events of the order make skipped rows, never pending ones
    await late(engine, parcel, "2026-12-09")
    await fan(engine, now=later)
    assert [n["status"] for n in await notifications(engine)] == ["cancelled", "skipped"]
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(X.c.payload))).scalars().all()
    assert "maria" not in json.dumps(stored)
