"""The live demo of `make run`: seeded only under its setting, only on an empty database."""

from __future__ import annotations

import io
import random
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlmodel import col, func, select

from tracking_service import api_keys
from tracking_service.app import create_app
from tracking_service.carriers.sim.number import Scenario, decode
from tracking_service.clock import FixedClock
from tracking_service.db import unit_of_work
from tracking_service.demo import (
    DEMO_KEY_NAME,
    delivery_day,
    demo,
    demo_orders,
    shows_intent,
)
from tracking_service.models.api_keys import ApiKey
from tracking_service.models.tracking import Order, OutboxEvent, Shipment
from tracking_service.notifications import jobs as mail_jobs
from tracking_service.services import Services, open_services
from tracking_service.settings import Settings
from tracking_service.tracking import registration

from .helpers import lifespan_client

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)  # a Tuesday


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_settings(database_url: str, *, on: bool = True) -> Settings:
    return Settings(
        database_url=database_url,
        demo=on,
        simulated_base_url=f"http://127.0.0.1:{free_port()}",
        history_refresh_seconds=0,
    )


async def counts(services: Services) -> tuple[int, int]:
    async with unit_of_work(services.engine) as session:
        orders = (await session.exec(select(func.count()).select_from(Order))).one()
        shipments = (await session.exec(select(func.count()).select_from(Shipment))).one()
    return orders, shipments


def key_in(banner: str) -> str:
    return next(word for word in banner.split() if word.startswith(api_keys.KEY_PREFIX))


def test_demo_orders_show_on_time_late_exception_and_a_split_order() -> None:
    orders = demo_orders(NOW, random.Random(1))
    scenarios = [s.scenario for o in orders for s in o.shipments]
    assert scenarios.count(Scenario.NORMAL) >= 2
    assert Scenario.DELAYED in scenarios
    assert Scenario.CUSTOMS_HOLD in scenarios
    assert any(len(o.shipments) == 2 for o in orders)
    assert {o.intent for o in orders} == {"on_time", "late", "any"}
    numbers = [s.tracking_number for o in orders for s in o.shipments]
    assert len(set(numbers)) == len(numbers)
    for order in orders:
        assert order.placed_at < min(s.labelled_at for s in order.shipments) <= NOW
        assert order.quoted[0] <= order.quoted[1]
        for parcel in order.shipments:  # the number carries the simulated label instant
            assert decode(parcel.tracking_number).created_at == parcel.labelled_at


def test_the_carrier_quote_keeps_on_time_orders_on_time_and_the_late_one_late() -> None:
    for seed in range(30):
        for order in demo_orders(NOW + timedelta(hours=7 * seed), random.Random(seed)):
            assert order.delivered_on is not None  # every demo parcel arrives in the end
            if order.intent != "any":
                assert shows_intent(order, order.quoted[1]), (seed, order.order_id)


async def test_seeds_an_empty_database_once_and_prints_a_working_key(database_url: str) -> None:
    settings = demo_settings(database_url)
    clock = FixedClock(NOW)
    first, second = io.StringIO(), io.StringIO()
    async with open_services(settings, run_jobs=False, clock=clock) as services:
        async with demo(services, out=first):
            # the simulated carrier answers inside the process, on the service's clock
            async with httpx.AsyncClient(base_url=settings.simulated_base_url) as client:
                minted = await client.post("/v1/labels", json={"scenario": "normal"})
            assert minted.json()["labels"][0]["created_at"] == NOW.isoformat()
        assert await counts(services) == (5, 6)
        key = key_in(first.getvalue())
        list_url = f"http://{settings.host}:{settings.port}/v1/orders"
        assert f"curl -s -H 'Authorization: Bearer {key}' {list_url}" in first.getvalue()
        assert f"{settings.public_base_url}/t/" in first.getvalue()  # the late parcel's page
        async with unit_of_work(services.engine) as session:
            assert await api_keys.verify(session, key, NOW) is not None
            stored = {o.order_id: o for o in (await session.exec(select(Order))).all()}
            late = stored["DEMO-1003"]
            assert late.option == "next-day" and late.promise_basis in ("rules", "history")
            for order in stored.values():
                parcels = (
                    await session.exec(select(Shipment).where(Shipment.order_pk == order.id))
                ).all()
                days = [delivery_day(p.tracking_number) for p in parcels]
                assert None not in days
                last = max(d for d in days if d is not None)
                if order.order_id == "DEMO-1003":
                    assert last > order.promise_latest
                elif order.order_id != "DEMO-1004":
                    assert last <= order.promise_latest, order.order_id
            split = await registration.order_by_id(session, "DEMO-1005")
            parcels = (
                await session.exec(select(Shipment).where(Shipment.order_pk == split.id))
            ).all()
            assert len(parcels) == 2
            assert all(p.carrier == "simulated" and p.next_poll_at == NOW for p in parcels)

    clock.advance(timedelta(hours=1))
    async with open_services(settings, run_jobs=False, clock=clock) as services:
        async with demo(services, out=second):
            pass
        assert await counts(services) == (5, 6)  # a restart seeds nothing more
        assert "nothing seeded" in second.getvalue()
        async with unit_of_work(services.engine) as session:
            now = clock.now()
            assert await api_keys.verify(session, key_in(first.getvalue()), now) is None
            assert await api_keys.verify(session, key_in(second.getvalue()), now) is not None
            demo_keys = (
                await session.exec(select(ApiKey).where(col(ApiKey.name) == DEMO_KEY_NAME))
            ).all()
            assert len(demo_keys) == 2


async def test_a_database_with_orders_is_never_seeded(database_url: str) -> None:
    settings = demo_settings(database_url)
    async with open_services(settings, run_jobs=False, clock=FixedClock(NOW)) as services:
        async with unit_of_work(services.engine) as session:
            await registration.create_order(
                session,
                registration.OrderInput(
                    order_id="REAL-1",
                    placed_at=NOW,
                    destination=registration.DestinationInput("US", "60638"),
                    option="standard",
                ),
                estimator=services.estimator,
                history=None,
                now=NOW,
            )
        async with demo(services, out=io.StringIO()):
            pass
        assert await counts(services) == (1, 0)


async def test_several_api_processes_get_no_demo(database_url: str) -> None:
    settings = demo_settings(database_url).model_copy(update={"run_jobs_in_api": False})
    async with open_services(settings, run_jobs=False, clock=FixedClock(NOW)) as services:
        async with demo(services, out=io.StringIO()):
            pass
        assert await counts(services) == (0, 0)


async def test_without_the_setting_serve_seeds_nothing_and_runs_no_carrier(
    database_url: str,
) -> None:
    settings = demo_settings(database_url, on=False)
    assert Settings().demo is False  # never a default
    app = create_app(settings, clock=FixedClock(NOW))
    async with lifespan_client(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        services: Services = app.state.services
        assert await counts(services) == (0, 0)
        async with unit_of_work(services.engine) as session:
            assert not await api_keys.any_active(session)
        async with httpx.AsyncClient(base_url=settings.simulated_base_url) as sim:
            try:
                await sim.get("/healthz")
                raise AssertionError("a simulated carrier answers without the demo setting")
            except httpx.ConnectError:
                pass


async def test_the_demo_mail_server_receives_the_customers_email(
    database_url: str, tmp_path: Path
) -> None:
    """With the `run` target's mail settings: a mail server on loopback inside the process,
    demo customers with an address (some in Portuguese), and their email arriving as files."""
    port = free_port()
    settings = demo_settings(database_url).model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "mail_from": "Demo Shop <orders@shop.example>",
            "demo_mail_dir": tmp_path / "mail",
            "mail_quiet_from_hour": 8,  # no quiet hours: whatever the hour at the destination
            "mail_morning_hour": 8,
        }
    )
    out = io.StringIO()
    async with open_services(settings, run_jobs=False, clock=FixedClock(NOW)) as services:
        await mail_jobs.start(services)  # as a process that runs the jobs does
        async with demo(services, out=out):
            assert f"mail server (inside this process, 127.0.0.1:{port})" in out.getvalue()
            async with unit_of_work(services.engine) as session:
                stored = (await session.exec(select(Order))).all()
                parcel = (await session.exec(select(Shipment).order_by(col(Shipment.id)))).first()
                assert parcel is not None
                order = next(o for o in stored if o.id == parcel.order_pk)
                session.add(shipped_event(order, parcel))
            report = await mail_jobs.mailer_for(services).run_once()
    assert {o.locale for o in stored} == {"en", "pt-BR"}
    assert all(o.customer_email == f"customer-{o.order_id.lower()}@example.com" for o in stored)
    assert report.sent == 1
    [line] = [x for x in out.getvalue().splitlines() if x.startswith("email to ")]
    assert line.startswith(f"email to {order.customer_email}: ")
    assert len(eml_files(tmp_path / "mail")) == 1


def eml_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.eml"))


def shipped_event(order: Order, parcel: Shipment) -> OutboxEvent:
    """The outbox event of the parcel's first move onto the road, as the pipeline writes it."""
    assert order.id is not None and parcel.id is not None
    shipment = {
        "id": parcel.id,
        "carrier": parcel.carrier,
        "tracking_number": parcel.tracking_number,
        "status": "in_transit",
        "previous_status": "pending",
        "estimate": None,
        "promise": None,
        "delayed": False,
        "delay_reason": None,
        "tracking_url": f"https://track.example.com/t/{parcel.tracking_token}",
        "cancelled": False,
    }
    return OutboxEvent(
        event_id="msg_demo_test",
        event_type="shipment.status_changed",
        stream=f"shipment:{parcel.id}",
        sequence=99,
        shipment_id=parcel.id,
        order_pk=order.id,
        occurred_at=NOW,
        payload={
            "type": "shipment.status_changed",
            "timestamp": NOW.isoformat(),
            "data": {"shipment": shipment, "order": {"order_id": order.order_id}},
        },
        created_at=NOW,
    )
