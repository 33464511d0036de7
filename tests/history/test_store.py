"""The delivery-history table on SQLite and PostgreSQL: idempotent import, counts, load back."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.db import unit_of_work
from tracking_service.estimator.records import Delivery
from tracking_service.history.files import read_deliveries
from tracking_service.history.store import (
    _FIELDS,
    InsertCounts,
    count,
    insert_batch,
    insert_deliveries,
    load_deliveries,
)
from tracking_service.models import DELIVERY_RECORDS

OLIST_SMALL = Path(__file__).parents[1] / "fixtures" / "handmade_marketplace_format.csv"
BRT = timezone(timedelta(hours=-3))


def small_olist() -> list[Delivery]:
    return [d for _, d in read_deliveries(OLIST_SMALL, "olist") if isinstance(d, Delivery)]


def made(key: str, day: int) -> Delivery:
    """A record whose instants carry a -03:00 offset, as a generic file may give them."""
    return Delivery(
        key=key,
        order_time=datetime(2024, 5, day, 9, 0, tzinfo=BRT),
        handoff_time=datetime(2024, 5, day, 18, 0, tzinfo=BRT),
        delivered_at=datetime(2024, 5, day + 3, 15, 0, tzinfo=BRT),
        origin_country="BR",
        origin_subdivision="SP",
        origin_postal_code="01001",
        dest_country="BR",
        dest_subdivision="RJ",
        dest_postal_code="20040",
        carrier="correios",
        service="sedex",
        promised_date=date(2024, 5, day + 5),
        origin_id="wh-1",
        origin_tz="America/Sao_Paulo",
        dest_tz="America/Sao_Paulo",
        origin_lat=-23.55,
        origin_lng=-46.63,
        dest_lat=-22.9,
        dest_lng=-43.2,
    )


# Each call in its own unit of work, as the import command and the runtime use them.
async def insert(engine: AsyncEngine, source: str, records: list[Delivery], **kw: Any) -> Any:
    async with unit_of_work(engine) as session:
        return await insert_deliveries(session, source, records, **kw)


async def stored(engine: AsyncEngine, source: str | None = None) -> int:
    async with unit_of_work(engine) as session:
        return await count(session, source)


async def load(engine: AsyncEngine, *args: Any, **kw: Any) -> list[Delivery]:
    async with unit_of_work(engine) as session:
        return await load_deliveries(session, *args, **kw)


async def test_importing_twice_adds_nothing(engine: AsyncEngine) -> None:
    records = small_olist()
    first = await insert(engine, "olist", records)
    again = await insert(engine, "olist", records)
    assert first == InsertCounts(inserted=len(records), already_present=0)
    assert again == InsertCounts(inserted=0, already_present=len(records))
    assert await stored(engine) == len(records)
    assert await stored(engine, "olist") == len(records)
    assert await stored(engine, "generic") == 0


async def test_same_key_in_another_source_is_another_record(engine: AsyncEngine) -> None:
    await insert(engine, "shop-a", [made("o-1", 1)])
    counts = await insert(engine, "shop-b", [made("o-1", 1)])
    assert counts == InsertCounts(inserted=1, already_present=0)
    assert await stored(engine) == 2


async def test_batches_mix_new_and_present_rows_and_report_each(engine: AsyncEngine) -> None:
    await insert(engine, "generic", [made("o-2", 2), made("o-4", 4)])
    seen: list[InsertCounts] = []
    total = await insert(
        engine,
        "generic",
        [made(f"o-{day}", day) for day in range(1, 6)],
        batch_size=2,
        on_batch=seen.append,
    )
    assert seen == [InsertCounts(1, 1), InsertCounts(1, 1), InsertCounts(1, 0)]
    assert total == InsertCounts(inserted=3, already_present=2)
    assert await stored(engine) == 5


async def test_load_back_gives_the_same_records_with_aware_utc_instants(
    engine: AsyncEngine,
) -> None:
    records = [*small_olist(), made("o-9", 9)]
    await insert(engine, "mixed", records)
    loaded = await load(engine)
    assert sorted(loaded, key=lambda d: d.key) == sorted(records, key=lambda d: d.key)
    assert [d.delivered_at for d in loaded] == sorted(d.delivered_at for d in records)
    for d in loaded:
        assert d.order_time.tzinfo is UTC and d.delivered_at.tzinfo is UTC
        assert d.handoff_time is None or d.handoff_time.tzinfo is UTC
    mine = next(d for d in loaded if d.key == "o-9")
    assert mine.order_time == datetime(2024, 5, 9, 12, 0, tzinfo=UTC)
    assert (mine.origin_tz, mine.carrier, mine.dest_lng) == ("America/Sao_Paulo", "correios", -43.2)


async def test_load_since_and_by_source(engine: AsyncEngine) -> None:
    await insert(engine, "a", [made("o-1", 1), made("o-5", 5)])
    await insert(engine, "b", [replace(made("o-3", 3), carrier="dhl")])
    since = datetime(2024, 5, 6, 18, 0, tzinfo=UTC)  # o-3 was delivered at exactly this instant
    assert [d.key for d in await load(engine, since)] == ["o-3", "o-5"]
    assert [d.key for d in await load(engine, since, source="a")] == ["o-5"]
    assert [d.key for d in await load(engine, source="a")] == ["o-1", "o-5"]


async def test_naive_since_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await load(engine, datetime(2024, 1, 1))


async def test_the_caller_owns_the_transaction(engine: AsyncEngine) -> None:
    """The store never commits: rows inserted in a unit of work that fails are not kept, and
    several calls in one unit of work land together."""
    with pytest.raises(RuntimeError, match="later step failed"):
        async with unit_of_work(engine) as session:
            assert await insert_batch(session, "a", [made("o-1", 1)]) == InsertCounts(1, 0)
            assert await count(session) == 1  # the session sees its own rows
            raise RuntimeError("later step failed")
    assert await stored(engine) == 0
    async with unit_of_work(engine) as session:
        await insert_batch(session, "a", [made("o-1", 1)])
        await insert_batch(session, "b", [made("o-2", 2)])
    assert await stored(engine) == 2


def test_every_delivery_field_has_its_column() -> None:
    """The column list comes from the `Delivery` dataclass; each field needs its column."""
    columns = set(DELIVERY_RECORDS.c.keys())
    assert set(_FIELDS) <= columns
    assert "key" not in _FIELDS and "external_id" in columns
    assert set(_FIELDS) == {f.name for f in fields(Delivery)} - {"key"}
    assert set(_FIELDS) == columns - {"id", "source", "external_id", "created_at"}
