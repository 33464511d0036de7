"""Outcomes of recent promises read from the ledger for the recalibration: open, delivered (on
the destination's local date of the last parcel), cancelled and out-of-window orders left out,
in one statement (both backends)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.db import unit_of_work
from tracking_service.estimator.history import PromiseOutcome
from tracking_service.tracking.ledger_outcomes import load_outcomes

from .test_store_batch import statements
from .worker_helpers import ORD, S

NOW = datetime(2024, 11, 20, 15, tzinfo=UTC)
WINDOW = timedelta(days=28)
SP = "America/Sao_Paulo"
CDF = {"start": "2024-11-04", "cdf": [0.1, 0.5, 0.9, 1.0]}


async def add_order(
    engine: AsyncEngine,
    name: str,
    *,
    made: datetime,
    parcels: Sequence[tuple[str, datetime | None, bool]] = (),
    status: str = "in_transit",
    distribution: Any = CDF,
    cancelled: bool = False,
    option: str = "standard",
) -> None:
    """An order made at `made` with its parcels (status, delivered_at, cancelled)."""
    async with unit_of_work(engine) as session:
        row = {
            "order_id": name,
            "placed_at": made,
            "origin": "sp-mooca",
            "option": option,
            "dest_country": "BR",
            "dest_postal_code": "20040-020",
            "dest_subdivision": "RJ",
            "items": [],
            "promise_earliest": date(2024, 11, 5),
            "promise_latest": date(2024, 11, 6),
            "promise_confidence": 0.9,
            "promise_basis": "history",
            "promise_detail": {},
            "promise_made_at": made,
            "promise_level": 0.9,
            "promise_distribution": distribution,
            "dest_tz": SP,
            "status": "cancelled" if cancelled else status,
            "cancelled_at": made if cancelled else None,
            "sequence": 0,
            "created_at": made,
            "updated_at": made,
        }
        pk = (await session.execute(sa.insert(ORD).values(row).returning(ORD.c.id))).scalar_one()
        for i, (parcel_status, delivered_at, parcel_cancelled) in enumerate(parcels):
            await session.execute(
                sa.insert(S).values(
                    order_pk=pk,
                    carrier="simulated",
                    tracking_number=f"{name}-{i}",
                    items=[],
                    tracking_token=secrets.token_urlsafe(24),
                    status=parcel_status,
                    delivered_at=delivered_at,
                    cancelled_at=made if parcel_cancelled else None,
                    poll_failures=0,
                    sequence=0,
                    delayed=False,
                    created_at=made,
                    updated_at=made,
                )
            )


async def load(engine: AsyncEngine) -> dict[str, PromiseOutcome]:
    async with unit_of_work(engine) as session:
        found = await load_outcomes(session, NOW, WINDOW)
        names = dict(
            (await session.execute(sa.select(ORD.c.promise_made_at, ORD.c.order_id))).all()
        )
    return {names[o.made_at]: o for o in found}


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def test_open_delivered_and_cancelled_promises(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    # delivered late in the evening in Sao Paulo: already the next day in UTC
    evening = datetime(2024, 11, 7, 1, 30, tzinfo=UTC)
    await add_order(
        engine,
        "delivered",
        made=ago(16),
        status="delivered",
        parcels=[("delivered", ago(15), False), ("delivered", evening, False)],
    )
    await add_order(engine, "open", made=ago(15), parcels=[("in_transit", None, False)])
    await add_order(engine, "processing", made=ago(14), status="processing")
    await add_order(
        engine,
        "partly",
        made=ago(13),
        status="partially_delivered",
        parcels=[("delivered", ago(10), False), ("in_transit", None, False)],
    )
    # a cancelled parcel is not the order's last delivery
    await add_order(
        engine,
        "one-cancelled",
        made=ago(12),
        status="delivered",
        parcels=[("delivered", ago(9), False), ("in_transit", None, True)],
    )
    await add_order(
        engine, "cancelled", made=ago(11), cancelled=True, parcels=[("in_transit", None, True)]
    )
    # delivered after NOW (a clock behind the data): not known yet
    await add_order(
        engine,
        "future-delivery",
        made=ago(10),
        status="delivered",
        parcels=[("delivered", NOW + timedelta(hours=2), False)],
    )
    await add_order(engine, "too-old", made=ago(28.1), status="processing")
    await add_order(engine, "not-made-yet", made=NOW + timedelta(minutes=1), status="processing")
    await add_order(engine, "rules-only", made=ago(9), status="processing", distribution=None)
    await add_order(engine, "express", made=ago(8), status="processing", option="express")

    with statements(engine) as seen, caplog.at_level(logging.WARNING):
        got = await load(engine)
    assert not caplog.records  # rules-only is no error
    assert sum(1 for s in seen if s == "SELECT") == 2  # the outcomes, and the test's names

    assert sorted(got) == [
        "delivered",
        "express",
        "future-delivery",
        "one-cancelled",
        "open",
        "partly",
        "processing",
    ]
    delivered = got["delivered"]
    assert delivered == PromiseOutcome(
        made_at=ago(16),
        start=date(2024, 11, 4),
        cdf=(0.1, 0.5, 0.9, 1.0),
        delivered_on=date(2024, 11, 6),  # the evening of the 6th in Sao Paulo
        dest_tz=SP,
        option="standard",
    )
    assert got["one-cancelled"].delivered_on == ago(9).astimezone(UTC).date()
    for name in ("open", "processing", "partly", "future-delivery"):
        assert got[name].delivered_on is None, name
    assert got["express"].option == "express"


@pytest.mark.parametrize(
    "broken", [{"start": "2024-13-01", "cdf": [1.0]}, {"cdf": [1.0]}, {"start": "2024-11-04"}]
)
async def test_an_unreadable_distribution_is_left_out(
    engine: AsyncEngine, broken: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    await add_order(engine, "good", made=ago(3), status="processing")
    await add_order(engine, "bad", made=ago(2), status="processing", distribution=broken)
    assert sorted(await load(engine)) == ["good"]
    assert "unreadable promise_distribution" in caplog.text
