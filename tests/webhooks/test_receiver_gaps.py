"""More of the dispatcher against a real receiver on loopback, each request verified by the
reference `standardwebhooks` package: a receiver down and back on the same address, a
disabled endpoint's deliveries held and sent when it is enabled again, the old secret refused
after a rotation's overlap, and a worker process killed (SIGKILL) after its POST reached the
receiver and before it recorded the answer."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from datetime import timedelta

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook, WebhookVerificationError

from tracking_service.clock import FixedClock, SystemClock
from tracking_service.db import unit_of_work
from tracking_service.webhooks import endpoints

from .core_helpers import EP, T0, A, D, Received, add_endpoint, add_events, config, dispatcher, rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve_on(port: int, got: list[Received]) -> web.AppRunner:
    async def hook(request: web.Request) -> web.Response:
        got.append(
            Received(
                request.path,
                {k.lower(): v for k, v in request.headers.items()},
                await request.read(),
            )
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    return runner


async def test_a_receiver_down_then_back_on_the_same_url_gets_the_same_id(
    engine: AsyncEngine,
) -> None:
    clock = FixedClock(T0)
    port = free_port()
    _, secret = await add_endpoint(engine, f"http://127.0.0.1:{port}/hook")
    await add_events(engine, "shipment:1", ["shipment.delayed", "shipment.delivered"])
    d = dispatcher(engine, clock)
    got: list[Received] = []
    try:
        await d.fanout_pass()
        await d.dispatch_pass()  # nobody listens: refused
        clock.advance(timedelta(seconds=5))
        await d.dispatch_pass()  # still down
        runner = await serve_on(port, got)
        try:
            clock.advance(timedelta(minutes=5))
            report = await d.dispatch_pass()
        finally:
            await runner.cleanup()
    finally:
        await d.close()
    assert report.succeeded == 2
    assert [g.webhook_id for g in got] == ["msg_shipment_1_1", "msg_shipment_1_2"]  # in order
    for g in got:
        Webhook(secret).verify(g.body, g.headers)
    codes = [(a["delivery_id"], a["attempt"], a["status_code"]) for a in await rows(engine, A)]
    first, second = (
        min(d["id"] for d in await rows(engine, D)),
        max(d["id"] for d in await rows(engine, D)),
    )
    assert codes == [(first, 1, None), (first, 2, None), (first, 3, 204), (second, 1, 204)]
    assert {d["status"] for d in await rows(engine, D)} == {"succeeded"}
    assert (await rows(engine, EP))[0]["failing_since"] is None


async def test_a_disabled_endpoint_gets_nothing_until_enabled_again(engine: AsyncEngine) -> None:
    clock = FixedClock(T0)
    got: list[Received] = []
    port = free_port()
    runner = await serve_on(port, got)
    endpoint, secret = await add_endpoint(engine, f"http://127.0.0.1:{port}/hook")
    d = dispatcher(engine, clock)
    loopback = config()
    try:
        await add_events(engine, "shipment:1", ["shipment.delayed"])
        await d.fanout_pass()
        async with unit_of_work(engine) as session:
            off = endpoints.EndpointChanges(given=frozenset({"enabled"}), enabled=False)
            await endpoints.update_endpoint(session, endpoint, off, config=loopback, now=T0)
        assert (await d.dispatch_pass()).claimed == 0
        await add_events(engine, "shipment:2", ["shipment.delayed"])  # while disabled
        assert await d.fanout_pass() == 0
        clock.advance(timedelta(hours=1))
        assert (await d.dispatch_pass()).claimed == 0
        assert got == []
        async with unit_of_work(engine) as session:
            on = endpoints.EndpointChanges(given=frozenset({"enabled"}), enabled=True)
            await endpoints.update_endpoint(session, endpoint, on, config=loopback, now=T0)
        report = await d.dispatch_pass()
    finally:
        await d.close()
        await runner.cleanup()
    assert report.succeeded == 1
    [sent] = got  # the delivery held while disabled; the event of that time is not sent
    assert sent.webhook_id == "msg_shipment_1_1"
    Webhook(secret).verify(sent.body, sent.headers)


async def test_after_the_overlap_the_old_secret_no_longer_verifies(engine: AsyncEngine) -> None:
    clock = FixedClock(T0)
    got: list[Received] = []
    port = free_port()
    runner = await serve_on(port, got)
    endpoint, old = await add_endpoint(engine, f"http://127.0.0.1:{port}/hook")
    d = dispatcher(engine, clock)
    try:
        async with unit_of_work(engine) as session:
            new = (
                await endpoints.rotate_secret(
                    session, endpoint, overlap=timedelta(hours=24), now=clock.now()
                )
            ).secret
        await add_events(engine, "shipment:1", ["shipment.delayed"])
        await d.fanout_pass()
        await d.dispatch_pass()
        clock.advance(timedelta(hours=24, seconds=1))
        await add_events(engine, "shipment:1", ["shipment.delivered"])
        await d.fanout_pass()
        await d.dispatch_pass()
    finally:
        await d.close()
        await runner.cleanup()
    during, after = got
    for secret in (old, new):
        Webhook(secret).verify(during.body, during.headers)
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


DOOMED_WORKER = """
import asyncio, sys
from tracking_service.clock import SystemClock
from tracking_service.db import create_engine
from tracking_service.webhooks.config import WebhookConfig
from tracking_service.webhooks.dispatcher import Dispatcher

async def main() -> None:
    engine = create_engine(sys.argv[1])
    config = WebhookConfig(
        allow_http=True, allow_hosts=("127.0.0.1",), lease_seconds=1.0, timeout_seconds=60
    )
    await Dispatcher(engine, SystemClock(), config, worker="doomed").dispatch_pass()

asyncio.run(main())
"""


async def test_a_worker_killed_between_send_and_record_loses_nothing(
    engine: AsyncEngine, database_url: str
) -> None:
    """The receiver has the POST; the worker process is killed before the answer is recorded;
    after the lease another worker sends the same webhook-id again, verified, and records it."""
    arrived = asyncio.Event()
    first_call = True
    bodies: list[Received] = []

    async def hook(request: web.Request) -> web.Response:
        nonlocal first_call
        bodies.append(
            Received(
                request.path,
                {k.lower(): v for k, v in request.headers.items()},
                await request.read(),
            )
        )
        if first_call:
            first_call = False
            arrived.set()
            await asyncio.sleep(30)  # the worker dies while waiting for this answer
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    _, secret = await add_endpoint(engine, f"http://127.0.0.1:{port}/hook")
    await add_events(engine, "shipment:1", ["shipment.delayed"], at=SystemClock().now())
    survivor = dispatcher(engine, SystemClock(), lease_seconds=1.0)
    try:
        await survivor.fanout_pass()
        doomed = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            DOOMED_WORKER,
            database_url,
            env={**os.environ, "TRACKING_LOG_LEVEL": "warning"},
        )
        try:
            await asyncio.wait_for(arrived.wait(), timeout=30)
        finally:
            doomed.send_signal(signal.SIGKILL)
            await asyncio.wait_for(doomed.wait(), timeout=10)
        assert await rows(engine, A) == []  # sent, never recorded
        [held] = await rows(engine, D)
        assert held["status"] == "pending" and held["claimed_by"] == "doomed"
        await asyncio.sleep(1.2)  # the dead worker's lease runs out
        report = await survivor.dispatch_pass()
    finally:
        await survivor.close()
        await runner.cleanup()
    assert report.succeeded == 1
    assert [b.webhook_id for b in bodies] == [held["webhook_id"]] * 2
    assert bodies[0].body == bodies[1].body
    for b in bodies:
        Webhook(secret).verify(b.body, b.headers)
    [attempt] = await rows(engine, A)
    assert attempt["status_code"] == 204
    [done] = await rows(engine, D)
    assert (done["status"], done["attempts"]) == ("succeeded", 1)
