"""The live model is the backtest's model: built from the service's own tables (orders,
shipments, delivery records) at an instant, it gives the same windows as the backtest's replay
of the same parcels stopped at that instant (both backends)."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tracking_service.db import unit_of_work
from tracking_service.estimator.history import (
    HistoryConfig,
    LaneHistory,
    LaneQuery,
    RulesPrior,
)
from tracking_service.estimator.history.feed import ModelFeed, day_start
from tracking_service.estimator.option_history import (
    ParcelInFlight,
    build_option_histories,
    option_calendars,
)
from tracking_service.estimator.records import Delivery
from tracking_service.estimator.reestimate import reestimate
from tracking_service.estimator.rules import load_rules
from tracking_service.history import store as history_store
from tracking_service.history.runtime import HistoryRuntime
from tracking_service.models import Order, Shipment
from tracking_service.settings import bundled_rules_path
from tracking_service.tracking.feedback import record_delivery

RULES = load_rules(bundled_rules_path("br_shop.toml"))
OPTION = next(o for o in RULES.shipping_options if o.code == "standard")
ORIGIN = next(o for o in RULES.origins if o.id == "sp-mooca")
ZONE = "southeast"
SP = ZoneInfo("America/Sao_Paulo")
START = datetime(2024, 1, 2, 9, 15, tzinfo=SP)
NOW = START + timedelta(days=41, hours=5, minutes=7)  # the instant both models are built at
PLACES = (("RJ", "20040-020"), ("RJ", "22250-040"), ("MG", "30130-000"), ("ES", "29010-000"))


@dataclass(frozen=True)
class Truth:
    """One parcel's whole life; what is known of it at NOW depends on NOW."""

    n: int
    ordered: datetime
    handed_off: datetime
    delivered: datetime
    subdivision: str
    postal_code: str


def parcels() -> list[Truth]:
    """An order every 7 hours or so; handling half a day to two and a half; transit from one
    day to two weeks, slower in the last weeks (so the parcels still out say something)."""
    rng = random.Random(9)
    out = []
    for n in range(200):
        ordered = START + timedelta(hours=7 * n, minutes=rng.randrange(60))
        handed = ordered + timedelta(hours=rng.uniform(10, 60))
        slow = 4 if ordered > START + timedelta(days=30) else 0
        transit = timedelta(days=rng.choice((1, 2, 2, 3, 3, 4, 6, 9, 14)) + slow, hours=n % 11)
        sub, postal = PLACES[n % len(PLACES)]
        out.append(Truth(n, ordered, handed, handed + transit, sub, postal))
    return out


def record(t: Truth, key: str) -> Delivery:
    """The parcel as the backtest reads it from a history file: no carrier, no service."""
    return Delivery(
        key=key,
        order_time=t.ordered,
        handoff_time=t.handed_off,
        delivered_at=t.delivered,
        origin_country="BR",
        origin_subdivision="SP",
        origin_postal_code="03178-200",
        dest_country="BR",
        dest_subdivision=t.subdivision,
        dest_postal_code=t.postal_code,
        origin_id="sp-mooca",
        origin_tz="America/Sao_Paulo",
        dest_tz="America/Sao_Paulo",
    )


async def add(session: AsyncSession, row: Order | Shipment) -> int:
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row.id


def order_row(t: Truth, status: str, **values: object) -> Order:
    return Order(
        order_id=f"shop-{t.n}",
        placed_at=t.ordered,
        origin="sp-mooca",
        option="standard",
        dest_country="BR",
        dest_postal_code=t.postal_code,
        dest_subdivision=t.subdivision,
        promise_earliest=t.ordered.date() + timedelta(days=3),
        promise_latest=t.ordered.date() + timedelta(days=8),
        promise_confidence=0.9,
        promise_basis="history",
        status=status,
        **values,
    )


def shipment_row(order_pk: int, t: Truth, status: str, **values: object) -> Shipment:
    return Shipment(
        order_pk=order_pk,
        carrier="simulated",
        tracking_number=f"SIM{t.n:08d}",
        tracking_token=secrets.token_urlsafe(24),
        status=status,
        **values,
    )


async def tables_at(engine: AsyncEngine, truths: list[Truth]) -> list[Delivery]:
    """Fill the service's tables as they are at NOW (records made by `record_delivery`, as the
    worker makes them); return the replay's inputs: every parcel ordered by NOW, with its
    whole life, under the key the service knows it by."""
    inputs: list[Delivery] = []
    async with unit_of_work(engine) as session:
        for t in truths:
            if t.ordered >= NOW:
                continue
            if t.delivered < NOW:
                pk = await add(session, order_row(t, "delivered"))
                order = await session.get(Order, pk)
                sid = await add(
                    session,
                    shipment_row(
                        pk, t, "delivered", handed_off_at=t.handed_off, delivered_at=t.delivered
                    ),
                )
                shipment = await session.get(Shipment, sid)
                assert order is not None and shipment is not None
                assert await record_delivery(session, order, shipment, RULES)
                key = f"shipment:{sid}"
            elif t.handed_off < NOW:
                pk = await add(session, order_row(t, "in_transit"))
                sid = await add(
                    session, shipment_row(pk, t, "in_transit", handed_off_at=t.handed_off)
                )
                key = f"shipment:{sid}"
            elif t.n % 2:
                pk = await add(session, order_row(t, "pending"))
                key = f"shipment:{await add(session, shipment_row(pk, t, 'pending'))}"
            else:
                key = f"order:{await add(session, order_row(t, 'processing'))}"
            inputs.append(record(t, key))
        # what the backtest never sees: a cancelled order, a parcel sent back
        gone = Truth(900, NOW - timedelta(days=3), NOW, NOW, "RJ", "20040-020")
        await add(session, order_row(gone, "cancelled", cancelled_at=NOW - timedelta(days=2)))
        back = Truth(901, NOW - timedelta(days=9), NOW, NOW, "RJ", "20040-020")
        pk = await add(session, order_row(back, "returned_to_sender"))
        await add(
            session,
            shipment_row(pk, back, "returned_to_sender", handed_off_at=NOW - timedelta(days=8)),
        )
    return inputs


def replayed_until(inputs: list[Delivery], now: datetime, config: HistoryConfig) -> LaneHistory:
    """The backtest's replay (`estimator.backtest.replay`) of `inputs`, stopped at `now`: every
    parcel in flight from its order, handed over, then delivered; events in time order, order
    before hand-off before delivery at one instant (`ModelFeed`, which also measures the
    drift at the start of `now`'s UTC day). With the option's calendars and prior for the
    zone, as the service's model of that zone has."""
    calendars = option_calendars(RULES, OPTION, date(2023, 1, 1), date(2026, 12, 31))
    transit = next(t for t in OPTION.transit if t.zone == ZONE)
    handling = ORIGIN.handling_days if OPTION.handling_days is None else OPTION.handling_days
    prior = RulesPrior(handling, handling, transit.min, transit.max)
    lanes = LaneHistory(config, calendars, prior=prior)
    feed = ModelFeed(lanes, measure_from=day_start(now))  # the replay's own feed
    for d in {d.key: d for d in inputs}.values():
        feed.add_record(d)
    feed.advance(now)
    return lanes


def query(subdivision: str, postal_code: str) -> LaneQuery:
    """An estimate's lane query (see `estimator.estimate`)."""
    return LaneQuery(
        origin_country=ORIGIN.country,
        origin_subdivision=ORIGIN.subdivision,
        origin_postal_code=ORIGIN.postal_code,
        dest_country="BR",
        dest_subdivision=subdivision,
        dest_postal_code=postal_code,
        origin_id=ORIGIN.id,
    )


QUERIES = [query(s, p) for s, p in (*PLACES, ("RJ", "24020-000"), ("MG", "36010-000"))]


async def test_the_service_sees_what_the_backtest_sees(engine: AsyncEngine) -> None:
    truths = parcels()
    inputs = await tables_at(engine, truths)
    in_flight = [d for d in inputs if d.delivered_at >= NOW]
    assert 10 < len(in_flight) < len(inputs) - 50  # many delivered, a good few on their way
    assert any(d.handoff_time and d.handoff_time < NOW for d in in_flight)
    assert any(d.key.startswith("order:") for d in in_flight)

    runtime = HistoryRuntime(engine, RULES, clock=lambda: NOW)
    live = (await runtime.refresh()).snapshot
    assert live.in_flight == len(in_flight)
    assert live.options["standard"].in_flight == len(in_flight)
    assert live.options["standard"].records == len(inputs) - len(in_flight)

    config = HistoryConfig()
    replayed = replayed_until(inputs, NOW, config)
    order_date = NOW.astimezone(SP).date()
    for q in QUERIES:
        for confidence in (0.8, 0.9, 0.95):
            served = live.window("standard", ZONE, q, order_date, confidence)
            assert served is not None
            assert served == replayed.window(q, order_date, NOW, confidence), (q, confidence)
        handoff = NOW - timedelta(hours=3)
        assert live.reestimate(
            "standard", ZONE, q, handoff=handoff, confidence=0.9, origin_tz="America/Sao_Paulo"
        ) == reestimate(
            replayed.blend(q, NOW, weekday=None),
            q,
            replayed.calendars,
            handoff=handoff,
            confidence=0.9,
            origin_tz="America/Sao_Paulo",
            earliest_level=config.earliest_level,
        )

    # the parcels in flight are what makes them equal: on delivered records alone the model
    # is another one (frozen at its newest delivery, blind to the slow parcels still out)
    async with unit_of_work(engine) as session:
        delivered = await history_store.load_deliveries(session)
    blind = build_option_histories(RULES, delivered, now=NOW)
    q = QUERIES[0]
    blind_window = blind.window("standard", ZONE, q, order_date, 0.9)
    live_window = live.window("standard", ZONE, q, order_date, 0.9)
    assert blind_window is not None and live_window is not None
    assert blind_window.latest < live_window.latest


async def test_parcels_in_flight_age_and_move_the_model(engine: AsyncEngine) -> None:
    """Unchanged tables within the hour: no rebuild. The next hour (parcels in flight waited
    longer), a hand-off, a new order: a rebuild."""
    truths = parcels()
    await tables_at(engine, truths)
    clock = [NOW]
    runtime = HistoryRuntime(engine, RULES, clock=lambda: clock[0])
    first = await runtime.refresh()
    assert first.rebuilt and first.state.hour is not None
    clock[0] = NOW + timedelta(minutes=20)
    assert not (await runtime.refresh()).rebuilt
    clock[0] = NOW + timedelta(hours=1)
    assert (await runtime.refresh()).rebuilt
    assert not (await runtime.refresh()).rebuilt

    async with unit_of_work(engine) as session:
        conn = await session.connection()
        first_pending = sa.select(sa.func.min(Shipment.__table__.c.id)).where(  # type: ignore[attr-defined]
            Shipment.__table__.c.status == "pending"  # type: ignore[attr-defined]
        )
        pending = await session.get(Shipment, (await conn.execute(first_pending)).scalar_one())
        assert pending is not None
        pending.handed_off_at = clock[0] - timedelta(minutes=5)
        pending.status = "in_transit"
    handed = await runtime.refresh()
    assert handed.rebuilt
    assert handed.snapshot.in_flight == first.snapshot.in_flight

    async with unit_of_work(engine) as session:
        await add(
            session, order_row(Truth(950, clock[0], NOW, NOW, "MG", "30130-000"), "processing")
        )
    grown = await runtime.refresh()
    assert grown.rebuilt and grown.snapshot.in_flight == first.snapshot.in_flight + 1


def test_parcels_already_delivered_or_not_yet_ordered_change_nothing() -> None:
    """A parcel in flight that also has its delivery record is learned as delivered only; one
    ordered after `now` is not known yet: with only those, the model is the delivered-only
    one (frozen at its newest delivery)."""
    inputs = [record(t, f"p{t.n}") for t in parcels()]
    delivered = [d for d in inputs if d.delivered_at < NOW]
    future = [d for d in inputs if d.order_time > NOW]
    noise = [ParcelInFlight.of(d, handed_off=True) for d in delivered[-20:] + future[:20]]
    alone = build_option_histories(RULES, delivered, now=NOW, warm_up=False)
    with_noise = build_option_histories(RULES, delivered, in_flight=noise, now=NOW, warm_up=False)
    assert with_noise.in_flight == 0 and with_noise.as_of == alone.as_of
    order_date = NOW.astimezone(SP).date()
    for q in QUERIES:
        assert with_noise.window("standard", ZONE, q, order_date, 0.9) == alone.window(
            "standard", ZONE, q, order_date, 0.9
        )


def test_a_parcel_for_a_zone_without_records_is_left_out() -> None:
    """Parcels in flight add censored evidence where delivered records made a model; alone
    they make none (a zone known only from parcels still out stays on the rules)."""
    inputs = [record(t, f"p{t.n}") for t in parcels()]
    delivered = [d for d in inputs if d.delivered_at < NOW]
    to_the_south = replace(
        inputs[-1],
        key="south",
        order_time=NOW - timedelta(days=2),
        dest_subdivision="PR",
        dest_postal_code="80010-000",
    )
    live = build_option_histories(
        RULES,
        delivered,
        in_flight=[ParcelInFlight.of(to_the_south, handed_off=False)],
        now=NOW,
        warm_up=False,
    )
    assert live.in_flight == 1
    assert live.options["standard"].in_flight == 0
    assert live.options["standard"].zones == (ZONE,)
    assert live.as_of == NOW
