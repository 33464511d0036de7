"""The dispatcher against a real receiver on loopback: signing, retries, timeouts, 410, the
five-day rule, order per stream, leases, and a crash between sending and recording."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from tracking_service.clock import FixedClock, ScaledClock
from tracking_service.db import unit_of_work
from tracking_service.webhooks import fanout, signing
from tracking_service.webhooks.dispatcher import (
    ENDPOINT_DISABLED,
    Dispatcher,
    Result,
    make_due,
)

from .core_helpers import (
    EP,
    T0,
    A,
    D,
    Received,
    X,
    add_endpoint,
    add_events,
    dispatcher,
    receiver,
    rows,
)


async def deliveries(engine: AsyncEngine) -> dict[str, dict[str, object]]:
    return {d["webhook_id"]: d for d in await rows(engine, D)}


async def test_signed_sent_once_and_recorded(engine: AsyncEngine) -> None:
    async with receiver() as r:
        endpoint, secret = await add_endpoint(engine, r.url())
        await add_events(engine, "shipment:1", ["shipment.status_changed", "shipment.delayed"])
        await add_events(engine, "shipment:2", ["shipment.delivered"])
        d = dispatcher(engine)
        try:
            assert await d.fanout_pass() == 3
            report = await d.dispatch_pass()
        finally:
            await d.close()
    assert (report.claimed, report.succeeded) == (3, 3)
    assert sorted(r.ids()) == ["msg_shipment_1_1", "msg_shipment_1_2", "msg_shipment_2_1"]
    for got in r.received:
        payload = Webhook(secret).verify(got.body, got.headers)
        assert payload["type"] in (
            "shipment.status_changed",
            "shipment.delayed",
            "shipment.delivered",
        )
        assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
        assert got.headers["content-type"] == "application/json"
    stored = await deliveries(engine)
    assert {v["status"] for v in stored.values()} == {"succeeded"}
    assert {v["attempts"] for v in stored.values()} == {1}
    attempts = await rows(engine, A)
    assert len(attempts) == 3 and {a["status_code"] for a in attempts} == {204}
    assert all(a["latency_ms"] >= 0 for a in attempts)
    assert (await rows(engine, EP))[0]["failing_since"] is None
    assert endpoint


async def test_retries_after_500s_with_the_same_id_until_it_succeeds(engine: AsyncEngine) -> None:
    answers = iter([500, 500])

    def respond(got: Received) -> web.Response:
        return web.Response(status=next(answers, 200), text="receiver says hi " * 200)

    clock = FixedClock(T0)
    async with receiver(respond) as r:
        _, secret = await add_endpoint(engine, r.url())
        await add_events(engine, "shipment:1", ["shipment.delayed"])
        d = dispatcher(engine, clock)
        try:
            await d.fanout_pass()
            await d.dispatch_pass()
            first = (await deliveries(engine))["msg_shipment_1_1"]
            assert first["status"] == "pending" and first["attempts"] == 1
            assert first["next_attempt_at"] == T0 + timedelta(seconds=5)
            assert first["last_status_code"] == 500
            assert (await d.dispatch_pass()).claimed == 0  # not due yet
            clock.advance(timedelta(seconds=5))
            await d.dispatch_pass()
            clock.advance(timedelta(minutes=5))
            await d.dispatch_pass()
        finally:
            await d.close()
    assert r.ids() == ["msg_shipment_1_1"] * 3
    for got in r.received:
        Webhook(secret).verify(got.body, got.headers)
    done = (await deliveries(engine))["msg_shipment_1_1"]
    assert (done["status"], done["attempts"], done["next_attempt_at"]) == ("succeeded", 3, None)
    attempts = await rows(engine, A)
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert all(len(a["response_head"]) == 1024 for a in attempts)


async def test_after_the_last_attempt_the_delivery_fails(engine: AsyncEngine) -> None:
    clock = FixedClock(T0)
    async with receiver(lambda got: web.Response(status=503)) as r:
        await add_endpoint(engine, r.url())
        await add_events(engine, "shipment:1", ["shipment.delayed", "shipment.delivered"])
        d = dispatcher(engine, clock, schedule=(timedelta(0), timedelta(seconds=5)))
        try:
            await d.fanout_pass()
            await d.dispatch_pass()
            clock.advance(timedelta(seconds=5))
            await d.dispatch_pass()
            # the failed first event no longer holds the second one back
            await d.dispatch_pass()
            clock.advance(timedelta(seconds=5))
            await d.dispatch_pass()
        finally:
            await d.close()
    assert r.ids() == ["msg_shipment_1_1"] * 2 + ["msg_shipment_1_2"] * 2
    stored = await deliveries(engine)
    for v in stored.values():
        assert (v["status"], v["attempts"], v["next_attempt_at"]) == ("failed", 2, None)


async def test_retry_after_is_honoured_on_the_service_clock(engine: AsyncEngine) -> None:
    clock = FixedClock(T0)
    async with receiver(lambda got: web.Response(status=429, headers={"Retry-After": "120"})) as r:
        await add_endpoint(engine, r.url())
        await add_events(engine, "shipment:1", ["shipment.delayed"])
        d = dispatcher(engine, clock)
        try:
            await d.fanout_pass()
            await d.dispatch_pass()
        finally:
            await d.close()
    assert (await deliveries(engine))["msg_shipment_1_1"]["next_attempt_at"] == T0 + timedelta(
        seconds=120
    )


async def test_a_timeout_is_a_failed_attempt(engine: AsyncEngine) -> None:
    async def slow(got: Received) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(status=200)

    async with receiver(slow) as r:
        await add_endpoint(engine, r.url())
        await add_events(engine, "shipment:1", ["shipment.delayed"])
        d = dispatcher(engine, timeout_seconds=0.3)
        try:
            await d.fanout_pass()
            started = time.perf_counter()
            await d.dispatch_pass()
            assert time.perf_counter() - started < 1.5
        finally:
            await d.close()
    [attempt] = await rows(engine, A)
    assert attempt["status_code"] is None and "timeout" in attempt["error"]
    stored = (await deliveries(engine))["msg_shipment_1_1"]
    assert stored["status"] == "pending" and "timeout" in str(stored["last_error"])
    assert (await rows(engine, EP))[0]["failing_since"] == T0


async def test_a_receiver_that_is_down_and_comes_back(engine: AsyncEngine) -> None:
    clock = FixedClock(T0)
    async with receiver() as r:
        port = r.port
    endpoint, _ = await add_endpoint(engine, f"http://127.0.0.1:{port}/hook")
    await add_events(engine, "shipment:1", ["shipment.delayed"])
    d = dispatcher(engine, clock)
    try:
        await d.fanout_pass()
        await d.dispatch_pass()
        [attempt] = await rows(engine, A)
        assert attempt["status_code"] is None and "connection" in attempt["error"]
        async with receiver() as back:
            async with unit_of_work(engine) as session:
                await session.execute(
                    sa.update(EP).where(EP.c.id == endpoint).values(url=back.url())
                )
            clock.advance(timedelta(seconds=5))
            await d.dispatch_pass()
    finally:
        await d.close()
    assert back.ids() == ["msg_shipment_1_1"]
    assert (await deliveries(engine))["msg_shipment_1_1"]["status"] == "succeeded"
    assert (await rows(engine, EP))[0]["failing_since"] is None


async def test_a_redirect_is_not_followed(engine: AsyncEngine) -> None:
    async with receiver() as target:
        async with receiver(
            lambda got: web.Response(status=307, headers={"Location": target.url()})
        ) as r:
            await add_endpoint(engine, r.url())
            await add_events(engine, "shipment:1", ["shipment.delayed"])
            d = dispatcher(engine)
            try:
                await d.fanout_pass()
                await d.dispatch_pass()
            finally:
                await d.close()
    assert target.received == [] and len(r.received) == 1
    assert (await deliveries(engine))["msg_shipment_1_1"]["last_status_code"] == 307


async def test_410_disables_the_endpoint_at_once_with_an_event(engine: AsyncEngine) -> None:
    clock = FixedClock(T0)
    async with receiver(lambda got: web.Response(status=410)) as gone:
        async with receiver() as other:
            gone_id, _ = await add_endpoint(engine, gone.url())
            await add_endpoint(engine, other.url())
            await add_events(engine, "shipment:1", ["shipment.delayed"])
            d = dispatcher(engine, clock)
            try:
                await d.fanout_pass()
                report = await d.dispatch_pass()
                assert report.disabled == [gone_id]
                clock.advance(timedelta(hours=1))
                await d.fanout_pass()
                await d.dispatch_pass()
            finally:
                await d.close()
    assert gone.ids() == ["msg_shipment_1_1"]
    endpoint = next(e for e in await rows(engine, EP) if e["id"] == gone_id)
    assert endpoint["enabled"] is False and endpoint["disabled_at"] == T0
    assert "410" in endpoint["disabled_reason"]
    [event] = await rows(engine, X, X.c.event_type == ENDPOINT_DISABLED)
    assert event["payload"]["data"]["endpoint"]["id"] == gone_id
    # the other endpoint (subscribed to every type) is told
    assert sorted(got.json()["type"] for got in other.received) == [
        "shipment.delayed",
        ENDPOINT_DISABLED,
    ]
    kept = next(v for v in await rows(engine, D) if v["endpoint_id"] == gone_id)
    assert kept["status"] == "pending"  # sent again if the endpoint is enabled again


async def test_an_endpoint_failing_every_delivery_for_five_days_is_disabled(
    engine: AsyncEngine,
) -> None:
    clock = FixedClock(T0)
    long = tuple(timedelta(days=1) for _ in range(10))
    async with receiver(lambda got: web.Response(status=500)) as r:
        endpoint, _ = await add_endpoint(engine, r.url())
        await add_events(engine, "shipment:1", ["shipment.delayed"])
        d = dispatcher(engine, clock, schedule=(timedelta(0), *long))
        try:
            await d.fanout_pass()
            for day in range(5):
                await d.dispatch_pass()
                ep = (await rows(engine, EP))[0]
                assert ep["enabled"] and ep["failing_since"] == T0, day
                clock.advance(timedelta(days=1))
            report = await d.dispatch_pass()
        finally:
            await d.close()
    assert report.disabled == [endpoint]
    ep = (await rows(engine, EP))[0]
    assert ep["enabled"] is False and "failed since" in ep["disabled_reason"]
    assert len(await rows(engine, X, X.c.event_type == ENDPOINT_DISABLED)) == 1


async def test_order_per_stream_and_other_streams_not_held_up(engine: AsyncEngine) -> None:
    failing = {"msg_shipment_1_1"}

    def respond(got: Received) -> web.Response:
        return web.Response(status=500 if got.webhook_id in failing else 200)

    clock = FixedClock(T0)
    async with receiver(respond) as r:
        await add_endpoint(engine, r.url())
        await add_events(engine, "shipment:1", ["shipment.status_changed", "shipment.delayed"])
        await add_events(engine, "shipment:2", ["shipment.status_changed", "shipment.delayed"])
        d = dispatcher(engine, clock)
        try:
            await d.fanout_pass()
            await d.dispatch_pass()
            # shipment 2 went through in order; shipment 1's second event waits
            assert r.ids() == ["msg_shipment_1_1", "msg_shipment_2_1", "msg_shipment_2_2"]
            stored = await deliveries(engine)
            assert stored["msg_shipment_1_2"]["attempts"] == 0
            failing.clear()
            clock.advance(timedelta(seconds=5))
            await d.dispatch_pass()
        finally:
            await d.close()
    assert r.ids()[3:] == ["msg_shipment_1_1", "msg_shipment_1_2"]
    assert {v["status"] for v in (await deliveries(engine)).values()} == {"succeeded"}


class CrashAfterSending(Dispatcher):
    """Sends, then dies before recording (once)."""

    crashed = False

    async def record(self, results: Sequence[Result]) -> list[int]:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("killed between send and record")
        return await super().record(results)


async def test_a_crash_between_send_and_record_resends_the_same_id(engine: AsyncEngine) -> None:
    clock = FixedClock(T0)
    async with receiver() as r:
        _, secret = await add_endpoint(engine, r.url())
        await add_events(engine, "shipment:1", ["shipment.delayed"])
        d = dispatcher(engine, clock)
        crashing = CrashAfterSending(engine, clock, d.config, worker="dies", rand=lambda: 0.5)
        try:
            await d.fanout_pass()
            report = await crashing.dispatch_pass()
            assert report.not_recorded == 1
            assert (await rows(engine, A)) == []
            assert (await d.dispatch_pass()).claimed == 0  # leased by the dead worker
            clock.advance(timedelta(seconds=61))
            assert (await d.dispatch_pass()).succeeded == 1
        finally:
            await d.close()
            await crashing.close()
    assert r.ids() == ["msg_shipment_1_1", "msg_shipment_1_1"]
    assert r.received[0].body == r.received[1].body
    for got in r.received:
        Webhook(secret).verify(got.body, got.headers)
    stored = (await deliveries(engine))["msg_shipment_1_1"]
    assert (stored["status"], stored["attempts"]) == ("succeeded", 1)


async def test_rotation_signs_with_both_secrets_during_the_overlap(engine: AsyncEngine) -> None:
    clock = FixedClock(T0)
    new, old = signing.new_secret(), signing.new_secret()
    async with receiver() as r:
        await add_endpoint(
            engine,
            r.url(),
            secret=new,
            previous_secret=old,
            previous_until=T0 + timedelta(hours=24),
        )
        await add_events(engine, "shipment:1", ["shipment.delayed"])
        d = dispatcher(engine, clock)
        try:
            await d.fanout_pass()
            await d.dispatch_pass()
            clock.advance(timedelta(hours=25))
            await add_events(engine, "shipment:1", ["shipment.delivered"])
            await d.fanout_pass()
            await d.dispatch_pass()
        finally:
            await d.close()
    during, after = r.received
    assert len(during.headers["webhook-signature"].split()) == 2
    Webhook(new).verify(during.body, during.headers)
    Webhook(old).verify(during.body, during.headers)
    assert len(after.headers["webhook-signature"].split()) == 1
    Webhook(new).verify(after.body, after.headers)


async def test_the_timestamp_is_real_time_on_a_fast_clock(engine: AsyncEngine) -> None:
    fast = ScaledClock(1440, T0 - timedelta(days=400))  # simulated time far ahead of real
    async with receiver() as r:
        _, secret = await add_endpoint(engine, r.url())
        await add_events(engine, "shipment:1", ["shipment.delayed"], at=fast.now())
        d = dispatcher(engine, fast)
        try:
            await d.fanout_pass()
            await d.dispatch_pass()
        finally:
            await d.close()
    [got] = r.received
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    Webhook(secret).verify(got.body, got.headers)


async def test_a_url_refused_at_send_time(engine: AsyncEngine) -> None:
    """A name that resolves to a private address by the time it is sent (DNS rebinding), and
    an address the allow-list no longer names, are never connected to."""

    async def rebound(host: str, port: int) -> list[str]:
        return ["10.0.0.7"]

    d = dispatcher(engine, allow_hosts=())
    from tracking_service.webhooks.sender import Sender

    d.sender = Sender(d.config, resolve=rebound)
    await add_endpoint(engine, "http://hooks.example.com/in")
    await add_endpoint(engine, "http://127.0.0.1:9/in")
    await add_events(engine, "shipment:1", ["shipment.delayed"])
    try:
        await d.fanout_pass()
        await d.dispatch_pass()
    finally:
        await d.close()
    errors = sorted(a["error"] for a in await rows(engine, A))
    assert len(errors) == 2
    assert "private" in errors[0] and "loopback" in errors[1]


async def test_retry_now_and_a_ping_sent_at_once(engine: AsyncEngine) -> None:
    clock = FixedClock(T0)
    async with receiver(lambda got: web.Response(status=500)) as r:
        endpoint, secret = await add_endpoint(engine, r.url())
        await add_events(engine, "shipment:1", ["shipment.delayed"])
        d = dispatcher(engine, clock)
        try:
            await d.fanout_pass()
            await d.dispatch_pass()
            [delivery] = await rows(engine, D)
            async with unit_of_work(engine) as session:
                assert await make_due(session, delivery["id"], now=clock.now())
                assert not await make_due(session, 999_999, now=clock.now())
            await d.dispatch_pass()
            async with unit_of_work(engine) as session:
                ping = await session.execute(
                    sa.insert(D)
                    .values(**fanout.ping_values(endpoint, clock.now()))
                    .returning(D.c.id)
                )
                ping_id = int(ping.scalar_one())
            [result] = await d.dispatch_ids([ping_id])
        finally:
            await d.close()
    assert result.answer.status_code == 500 and result.status == "pending"
    assert len(r.received) == 3
    assert r.received[2].json()["type"] == "ping"
    Webhook(secret).verify(r.received[2].body, r.received[2].headers)
    assert [a["attempt"] for a in await rows(engine, A, A.c.delivery_id == delivery["id"])] == [
        1,
        2,
    ]


async def test_two_dispatchers_never_send_a_delivery_twice_at_once(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("one dispatcher per SQLite database")

    async def slowish(got: Received) -> web.Response:
        await asyncio.sleep(0.002)
        return web.Response(status=200)

    async with receiver(slowish) as r:
        await add_endpoint(engine, r.url())
        for n in range(100):
            await add_events(
                engine,
                f"shipment:{n}",
                ["shipment.status_changed", "shipment.delayed", "shipment.delivered"],
            )
        one = dispatcher(engine, worker="one", batch_size=20)
        two = dispatcher(engine, worker="two", batch_size=20)
        try:
            await one.fanout_pass()
            reports = await asyncio.gather(one.dispatch_pass(), two.dispatch_pass())
        finally:
            await one.close()
            await two.close()
    assert sum(rep.succeeded for rep in reports) == 300
    assert all(rep.claimed > 0 for rep in reports)
    assert len(r.ids()) == len(set(r.ids())) == 300
    # in order per stream
    positions = {wid: n for n, wid in enumerate(r.ids())}
    for n in range(100):
        ids = [f"msg_shipment_{n}_{k}" for k in (1, 2, 3)]
        assert [positions[i] for i in ids] == sorted(positions[i] for i in ids)
    assert len(await rows(engine, A)) == 300
