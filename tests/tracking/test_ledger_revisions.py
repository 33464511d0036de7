"""The promise ledger's re-estimates: a `promise_revisions` row for each change of a shipment's
estimate (hand-off, later scan, carrier's date), written with the change, and none when the
estimate stays (pure plan, then both backends through the store)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.carriers.base import TrackingResult
from tracking_service.carriers.status import Status
from tracking_service.db import unit_of_work
from tracking_service.models import PromiseRevision
from tracking_service.tracking import store
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.state import Estimate, Revision

from .factory import NOW, PROMISE, Store, at, order, result, scan, shipment
from .worker_helpers import T0, S, rows, seed, sim_numbers

R = PromiseRevision.__table__  # type: ignore[attr-defined]

HANDOFF = scan("pickup", at(-20), Status.IN_TRANSIT)
LATER = scan("hub", at(-2), Status.IN_TRANSIT)
FROM_HANDOFF = Estimate(date(2026, 3, 4), date(2026, 3, 6), "history")
FROM_SCAN = Estimate(date(2026, 3, 5), date(2026, 3, 7), "history")


# --- pure -------------------------------------------------------------------------------------


def test_no_revision_before_the_hand_off_nor_for_the_promise_copied() -> None:
    s = Store(shipment(estimate=PROMISE), order())
    update = s.apply(result(scan("label", at(-30), Status.INFO_RECEIVED)))
    assert update.revision is None
    fresh = Store(shipment(), order())  # no estimate yet: the promise is copied, not revised
    assert fresh.apply(result(scan("label", at(-30), Status.INFO_RECEIVED))).revision is None


def test_the_hand_off_then_a_later_scan_each_revise_once() -> None:
    s = Store(shipment(estimate=PROMISE), order())
    first = s.apply(result(HANDOFF), reestimated=FROM_HANDOFF)
    assert first.revision == Revision("handoff", date(2026, 3, 4), date(2026, 3, 6), "history")
    same = s.apply(result(HANDOFF), now=NOW + timedelta(minutes=5), reestimated=FROM_HANDOFF)
    assert same.revision is None  # the same window again: nothing changed
    later = s.apply(result(HANDOFF, LATER), reestimated=FROM_SCAN)
    assert later.revision == Revision("scan", date(2026, 3, 5), date(2026, 3, 7), "history")


def test_the_carriers_own_date_is_a_carrier_revision_and_it_stands() -> None:
    s = Store(shipment(estimate=PROMISE), order())
    window = (date(2026, 3, 3), date(2026, 3, 4))
    update = s.apply(result(HANDOFF, window=window), reestimated=FROM_HANDOFF)
    assert update.revision == Revision("carrier", *window, "carrier")
    # a later scan without a date: the carrier's window stands, no revision
    assert s.apply(result(HANDOFF, LATER), reestimated=FROM_SCAN).revision is None


def test_a_failure_or_a_delivery_revises_nothing() -> None:
    s = Store(shipment(estimate=FROM_HANDOFF, handed_off_at=HANDOFF.occurred_at), order())
    delivered = s.apply(
        result(HANDOFF, scan("drop", at(-1), Status.DELIVERED)), reestimated=FROM_SCAN
    )
    assert delivered.after.status == Status.DELIVERED and delivered.revision is None


# --- the store (both backends) ----------------------------------------------------------------


def _reestimate(window: Estimate) -> store.Reestimator:
    def reestimate(_order: Any, _handoff: datetime, _scan: datetime | None) -> Estimate:
        return window

    return reestimate


def _answer(number: str, *events: Any, window: tuple[date, date] | None = None) -> TrackingResult:
    return replace(result(*events, window=window), carrier="simulated", tracking_number=number)


async def _apply(
    engine: AsyncEngine, sid: int, answer: TrackingResult, now: datetime, window: Estimate
) -> None:
    async with unit_of_work(engine) as session:
        await store.apply_outcomes(
            session,
            [(sid, answer)],
            now=now,
            config=TrackingConfig(),
            base_url="http://x",
            reestimate=_reestimate(window),
        )


async def test_a_revision_row_per_change_of_estimate_in_the_same_transaction(
    engine: AsyncEngine,
) -> None:
    (number,) = sim_numbers(1)
    (sid,) = await seed(engine, [number], now=NOW)
    ((order_pk,),) = await rows(engine, sa.select(S.c.order_pk).where(S.c.id == sid))
    label = scan("label", at(-30), Status.INFO_RECEIVED)
    await _apply(engine, sid, _answer(number, label), NOW, FROM_HANDOFF)
    await _apply(
        engine, sid, _answer(number, label, HANDOFF), NOW + timedelta(hours=1), FROM_HANDOFF
    )
    await _apply(
        engine, sid, _answer(number, label, HANDOFF), NOW + timedelta(hours=2), FROM_HANDOFF
    )
    await _apply(
        engine, sid, _answer(number, label, HANDOFF, LATER), NOW + timedelta(hours=3), FROM_SCAN
    )
    carrier = (date(2026, 3, 6), date(2026, 3, 6))
    await _apply(
        engine,
        sid,
        _answer(number, label, HANDOFF, LATER, window=carrier),
        NOW + timedelta(hours=4),
        FROM_SCAN,
    )
    columns = ("order_pk", "shipment_id", "at", "kind", "earliest", "latest", "source")
    got = await rows(engine, sa.select(*(R.c[c] for c in columns)).order_by(R.c.at))
    hour = timedelta(hours=1)
    assert [tuple(r) for r in got] == [
        (order_pk, sid, NOW + hour, "handoff", date(2026, 3, 4), date(2026, 3, 6), "history"),
        (order_pk, sid, NOW + 3 * hour, "scan", date(2026, 3, 5), date(2026, 3, 7), "history"),
        (order_pk, sid, NOW + 4 * hour, "carrier", *carrier, "carrier"),
    ]


async def test_a_failed_transaction_leaves_no_revision(engine: AsyncEngine) -> None:
    (number,) = sim_numbers(1)
    (sid,) = await seed(engine, [number], now=T0)

    class Boom(Exception):
        pass

    try:
        async with unit_of_work(engine) as session:
            await store.apply_outcomes(
                session,
                [(sid, _answer(number, HANDOFF))],
                now=NOW,
                config=TrackingConfig(),
                base_url="http://x",
                reestimate=_reestimate(FROM_HANDOFF),
            )
            assert await session.scalar(sa.select(sa.func.count()).select_from(R)) == 1
            raise Boom
    except Boom:
        pass
    assert await rows(engine, sa.select(R.c.id)) == []
