"""The live demo of `make run`: demo orders on the simulated carrier, on accelerated time.

Only the `run` target of the Makefile sets `TRACKING_DEMO=true` (with `TRACKING_CLOCK_SPEED=1440`,
a simulated day per real minute); nothing else does, so `tracking-service serve` in production
never seeds anything. Under the setting the API process:

- serves the simulated carrier inside itself, on `TRACKING_SIMULATED_BASE_URL`'s port, with
  the service's own clock (`Services.clock`), so the labels, the scans, the promises, the
  polling cadence and the stall thresholds all live on one simulated timeline;
- on an empty database (no order at all), registers a handful of demo orders through the same
  registration functions as `POST /v1/orders` (on time, one that becomes late, one held by
  customs, one split in two parcels), whose labels were printed a few simulated hours ago so
  statuses move within the first minute;
- subscribes a webhook receiver of its own on a free loopback port (`webhooks.demo_receiver`:
  it verifies each alert's signature and prints it as a line a person reads), when the
  settings allow an http loopback URL, as the `run` target's do;
- runs a mail server of its own on `TRACKING_SMTP_HOST`:`TRACKING_SMTP_PORT` when they point
  at loopback (`notifications.demo_smtp`, as the `run` target sets them): the service's mailer
  sends the demo customers' email to it (each order has an address, some in Portuguese), and it
  writes each one as a `.eml` file under `TRACKING_DEMO_MAIL_DIR` and prints a line;
- creates a back-office API key named `demo` (revoking the previous demo keys, so a restart
  prints a key that works) and prints it with a `curl` for the order list and where to look.

The choice of orders (`demo_orders`) is pure: a function of the simulated "now".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TextIO
from urllib.parse import urlsplit

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service import api_keys
from tracking_service.carriers.sim.number import Scenario, decode, encode
from tracking_service.carriers.sim.server import SimCarrierApp, create_sim_app
from tracking_service.carriers.sim.timeline import Place, Plan, plan
from tracking_service.db import unit_of_work
from tracking_service.errors import InvalidInput
from tracking_service.models.tracking import Order
from tracking_service.notifications.demo_smtp import DemoSmtpServer, demo_smtp
from tracking_service.services import Services
from tracking_service.settings import Settings
from tracking_service.timezones import zone
from tracking_service.tracking import registration
from tracking_service.webhooks.demo_receiver import DemoReceiver, demo_receiver

log = logging.getLogger(__name__)

DEMO_KEY_NAME = "demo"


@dataclass(frozen=True, slots=True)
class DemoShipment:
    scenario: Scenario
    tracking_number: str
    labelled_at: datetime


@dataclass(frozen=True, slots=True)
class DemoOrder:
    """One demo order: what it shows, where it goes, its parcels and how its promise is made.

    `intent` says what the order is for: "on_time", "late" or "any". Its promise is the
    estimator's for the first of `options` the rules have (what the checkout showed), unless
    that promise would not show the intent with these parcels (an on-time parcel past it, a late
    one within it); then it is `quoted`, the carrier's first estimate (plus two days of slack for
    an on-time order)."""

    order_id: str
    shows: str
    intent: str
    options: tuple[str, ...]
    placed_at: datetime
    destination: Place
    quoted: tuple[date, date]
    delivered_on: date | None  # the last parcel's delivery day at its destination, if ever
    shipments: tuple[DemoShipment, ...]
    locale: str = "en"  # the customer's language (their email's)

    @property
    def email(self) -> str:
        """The demo customer's address (example.com: it never leaves the demo's mail server)."""
        return f"customer-{self.order_id.lower()}@example.com"


# (order id, what it shows, intent, options, [(scenario, label age in simulated hours)], locale)
_DEMO: tuple[
    tuple[str, str, str, tuple[str, ...], tuple[tuple[Scenario, float], ...], str], ...
] = (
    ("DEMO-1001", "on time", "on_time", ("standard",), ((Scenario.NORMAL, 20.0),), "en"),
    ("DEMO-1002", "on time", "on_time", ("standard",), ((Scenario.NORMAL, 2.0),), "pt-BR"),
    (
        "DEMO-1003",
        "becomes late (sold next-day, held at the hub)",
        "late",
        ("next-day", "express", "standard"),
        ((Scenario.DELAYED, 18.0),),
        "pt-BR",
    ),
    (
        "DEMO-1004",
        "exception (held by customs)",
        "any",
        ("standard",),
        ((Scenario.CUSTOMS_HOLD, 12.0),),
        "en",
    ),
    (
        "DEMO-1005",
        "split in two parcels (one failed attempt)",
        "on_time",
        ("standard",),
        ((Scenario.NORMAL, 10.0), (Scenario.FAILED_ATTEMPT, 4.0)),
        "en",
    ),
)


def _sim_plan(number: str) -> Plan:
    """The parcel's life on the simulated timeline (speed 1 on a clock that already runs fast)."""
    return plan(decode(number), 1.0)


def delivery_day(number: str) -> date | None:
    """The local date the simulated parcel is delivered, None when it never is."""
    life = _sim_plan(number)
    last = life.events[-1]
    return last.at.astimezone(zone(last.place.tz)).date() if last.code == "DL" else None


def demo_orders(now: datetime, rng: random.Random) -> list[DemoOrder]:
    """The demo orders for simulated instant `now`: labels printed a few hours before `now`
    (so statuses move at once), each order placed three hours before its first label."""
    orders = []
    for order_id, shows, intent, options, parcels, locale in _DEMO:
        shipments = []
        for scenario, age_hours in parcels:
            labelled = (now - timedelta(hours=age_hours)).replace(microsecond=0)
            number = encode(scenario, labelled, rng.randint(0, 99_999))
            shipments.append(DemoShipment(scenario, number, labelled))
        plans = [_sim_plan(s.tracking_number) for s in shipments]
        quotes = [window for p in plans for _, window in p.estimates[:1] if window]
        first = min(s.labelled_at for s in shipments)
        slack = timedelta(days=2 if intent == "on_time" else 0)
        earliest = min((q.earliest for q in quotes), default=first.date())
        latest = max((q.latest for q in quotes), default=first.date()) + slack
        days = [delivery_day(s.tracking_number) for s in shipments]
        orders.append(
            DemoOrder(
                order_id=order_id,
                shows=shows,
                intent=intent,
                options=options,
                placed_at=first - timedelta(hours=3),
                destination=plans[0].destination,
                quoted=(earliest, latest),
                delivered_on=None if None in days else max(d for d in days if d is not None),
                shipments=tuple(shipments),
                locale=locale,
            )
        )
    return orders


def shows_intent(order: DemoOrder, promised_latest: date) -> bool:
    """Whether a promise ending `promised_latest` lets the order show what it is for."""
    if order.intent == "on_time":
        return order.delivered_on is not None and order.delivered_on <= promised_latest
    if order.intent == "late":
        return order.delivered_on is None or order.delivered_on > promised_latest
    return True


class _QuietServer:
    """uvicorn serving the simulated carrier on a socket bound here, without touching the
    process's signal handlers (the API's own server owns SIGINT and SIGTERM)."""

    def __init__(self, app: SimCarrierApp, sock: socket.socket) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        config = uvicorn.Config(
            app, lifespan="off", access_log=False, log_level="warning", loop="none"
        )
        self.server = Server(config)
        self.sock = sock
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                await self.task  # raises what stopped it
                raise RuntimeError("the simulated carrier stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task
        self.sock.close()


def _bind(base_url: str) -> socket.socket:
    """A listening socket for the simulated carrier's URL (it must be this machine's)."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
        raise RuntimeError(
            f"the demo serves the simulated carrier itself, but TRACKING_SIMULATED_BASE_URL "
            f"({base_url}) is not on this machine: point it at http://127.0.0.1:<free port>"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(
            f"the demo's simulated carrier cannot listen on {host}:{port} ({exc.strerror}); "
            "stop what uses it or set TRACKING_SIMULATED_BASE_URL=http://127.0.0.1:<free port>"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


# --- seeding ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seeded:
    """What the banner shows: each order and its parcels."""

    order_id: str
    shows: str
    parcels: tuple[tuple[str, str, int, str], ...]  # (scenario, number, shipment id, page URL)


def _order_input(demo: DemoOrder, services: Services) -> registration.OrderInput:
    """The order as a shop would register it: the first of the demo's options the rules can
    serve, with the estimator's promise when it shows what the order is for (see `DemoOrder`),
    else with the carrier's quote as the promise it was sold with."""
    place = demo.destination
    codes = [o.code for o in services.estimator.rules.shipping_options]
    base = registration.OrderInput(
        order_id=demo.order_id,
        placed_at=demo.placed_at,
        destination=registration.DestinationInput(
            place.country, place.postal_code, place.region, place.city
        ),
        option=codes[0],
        items=(registration.ItemInput(sku="DEMO-SKU", quantity=len(demo.shipments)),),
        customer=registration.CustomerInput(name="Demo Customer", email=demo.email),
        locale=demo.locale,
    )
    for option in [c for c in demo.options if c in codes] or codes[:1]:
        candidate = replace(base, option=option)
        try:
            planned = registration.plan_order(
                services.estimator, services.history.snapshot, candidate
            )
        except InvalidInput:
            continue
        if shows_intent(demo, planned.promise.latest):
            return candidate
        base = candidate
        break
    return replace(base, promise=registration.PromiseInput(*demo.quoted))


async def has_orders(session: AsyncSession) -> bool:
    return (await session.exec(select(Order.id).limit(1))).first() is not None


async def seed_if_empty(
    session: AsyncSession, services: Services, rng: random.Random | None = None
) -> list[Seeded] | None:
    """Register the demo orders when the database holds no order at all (None otherwise:
    a restarted demo keeps what it has, and a database with real orders is never touched)."""
    if await has_orders(session):
        return None
    now = services.clock.now()
    base_url = services.settings.public_base_url
    seeded = []
    for demo in demo_orders(now, rng or random.Random()):
        registered = await registration.create_order(
            session,
            _order_input(demo, services),
            estimator=services.estimator,
            history=services.history.snapshot,
            now=demo.placed_at,
        )
        parcels = []
        for parcel in demo.shipments:
            shipment = (
                await registration.create_shipment(
                    session,
                    registered.order,
                    registration.ShipmentInput("simulated", parcel.tracking_number),
                    now=now,
                    public_base_url=base_url,
                )
            ).shipment
            assert shipment.id is not None
            url = registration.tracking_url(base_url, shipment.tracking_token)
            parcels.append((parcel.scenario.value, parcel.tracking_number, shipment.id, url))
        seeded.append(Seeded(demo.order_id, demo.shows, tuple(parcels)))
    return seeded


async def fresh_key(session: AsyncSession, now: datetime) -> str:
    """A new `demo` key; the older demo keys are revoked (their text was printed and lost)."""
    for row in await api_keys.list_keys(session):
        if row.name == DEMO_KEY_NAME and row.revoked_at is None and row.id is not None:
            await api_keys.revoke(session, row.id, now)
    key, _ = await api_keys.create(session, DEMO_KEY_NAME, now)
    return key


# --- the banner ------------------------------------------------------------------------------


def banner(
    settings: Settings,
    now: datetime,
    speed: float,
    key: str,
    seeded: list[Seeded] | None,
    receiver: DemoReceiver | None = None,
    mail: DemoSmtpServer | None = None,
) -> str:
    api = f"http://{settings.host}:{settings.port}"
    auth = f"-H 'Authorization: Bearer {key}'"
    lines = [
        "",
        "=" * 78,
        f"tracking-service demo: simulated time runs x{speed:g}"
        + (" (a simulated day each real minute)" if speed == 1440 else "")
        + f", now {now:%Y-%m-%d %H:%M} UTC",
        f"simulated carrier (inside this process): {settings.simulated_base_url}",
    ]
    if seeded is None:
        lines.append("the database already holds orders: nothing seeded (delete it to start over)")
    else:
        lines.append(f"seeded {len(seeded)} demo orders:")
        for order in seeded:
            lines.append(f"  {order.order_id}  {order.shows}")
            for scenario, number, _, _ in order.parcels:
                lines.append(f"      simulated {number}  ({scenario})")
    pace = (
        " (statuses move within a minute; DEMO-1003 is flagged delayed within about three)"
        if seeded
        else ""
    )
    lines += [
        "",
        f"back-office API key (shown once; earlier demo keys revoked): {key}",
        "",
        f"the order list{pace}:",
        f"  curl -s {auth} {api}/v1/orders",
        "one order with its shipments and their events, and the delayed shipments:",
        f"  curl -s {auth} {api}/v1/orders/DEMO-1003",
        f"  curl -s {auth} '{api}/v1/shipments?delayed=true'",
    ]
    if seeded:
        late = next((o for o in seeded if o.order_id == "DEMO-1003"), seeded[0])
        lines += [
            f"{late.order_id}'s parcel as the back office sees it, and its public tracking page:",
            f"  curl -s {auth} {api}/v1/shipments/{late.parcels[0][2]}",
            f"  {late.parcels[0][3]}",
        ]
    if receiver is not None:
        lines += [
            f"webhook receiver (inside this process, subscribed to every event): {receiver.url}",
            "  it verifies each alert's signature and prints it below as a `webhook ...` line",
            f"  the subscription and its delivery log: curl -s {auth} {api}/v1/webhook-endpoints",
        ]
    if mail is not None:
        asked = "DEMO-1003" if seeded else "<order id>"
        lines += [
            f"mail server (inside this process, {mail.host}:{mail.port}): the customers' email "
            f"is written to {mail.drop.directory}/*.eml",
            "  and printed below as an `email to ...` line (none in the customer's night: "
            "held until 08:00 their time)",
            f"  what {asked}'s customer was sent: "
            f"curl -s {auth} {api}/v1/orders/{asked}/notifications",
        ]
    lines += [f"API reference: {api}/docs", "=" * 78, ""]
    return "\n".join(lines)


# --- the hook --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def demo(services: Services, out: TextIO | None = None) -> AsyncIterator[None]:
    """Under `TRACKING_DEMO`: serve the simulated carrier on the service's clock, seed an
    empty database, print a key and where to look; stop the carrier on exit. Otherwise:
    nothing at all."""
    settings = services.settings
    if not settings.demo:
        yield
        return
    if not settings.run_jobs_in_api:  # `serve --workers N`: N processes, one carrier port
        log.warning("TRACKING_DEMO needs one `serve` process that runs the jobs: no demo here")
        yield
        return
    sim_app = create_sim_app(speed=1.0, clock=services.clock.now)  # the clock runs fast itself
    server = _QuietServer(sim_app, _bind(settings.simulated_base_url))
    await server.start()
    mail = settings.mail_config()
    try:
        async with (
            demo_smtp(
                mail.host, mail.port, mail.security, settings.demo_mail_dir, out or sys.stdout
            ) as mail_server,
            demo_receiver(  # subscribed before seeding: it hears every event
                services.engine, settings.webhook_config(), services.clock.now(), out or sys.stdout
            ) as receiver,
        ):
            async with unit_of_work(services.engine) as session:
                seeded = await seed_if_empty(session, services)
                now = services.clock.now()
                key = await fresh_key(session, now)
            speed = float(getattr(services.clock, "speed", 1.0))
            text = banner(settings, now, speed, key, seeded, receiver, mail_server)
            print(text, file=out or sys.stdout, flush=True)
            yield
    finally:
        await server.stop()
