"""The Alembic chain runs on both databases, up and down, and is idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from tracking_service.db import create_engine, unit_of_work
from tracking_service.migrate import current_revision, downgrade, head_revision, upgrade_if_behind
from tracking_service.models import CarrierToken


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_from_empty_then_noop_then_down(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        assert await current_revision(engine) is None
        before, after = await upgrade_if_behind(engine)
        assert (before, after) == (None, head_revision())
        assert {"delivery_records", "carrier_tokens"} <= await _tables(engine)
        assert await upgrade_if_behind(engine) == (head_revision(), head_revision())
        await downgrade(engine, "base")
        assert await current_revision(engine) is None
        assert not {"delivery_records", "carrier_tokens"} & await _tables(engine)
    finally:
        await engine.dispose()


async def test_aware_instants_round_trip_as_utc(engine: AsyncEngine) -> None:
    sao_paulo = timezone(timedelta(hours=-3))
    expires = datetime(2026, 11, 23, 21, 30, tzinfo=sao_paulo)
    async with unit_of_work(engine) as session:
        session.add(
            CarrierToken(carrier="ups", client_id="c", access_token="t", expires_at=expires)
        )
    async with unit_of_work(engine) as session:
        token = (await session.exec(select(CarrierToken))).scalars().one()
    assert token.expires_at == expires
    assert token.expires_at.tzinfo is not None
    assert token.expires_at.utcoffset() == timedelta(0)
    assert token.expires_at == datetime(2026, 11, 24, 0, 30, tzinfo=UTC)


async def test_naive_instants_are_refused(engine: AsyncEngine) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with unit_of_work(engine) as session:
            session.add(
                CarrierToken(
                    carrier="ups",
                    client_id="c",
                    access_token="t",
                    expires_at=datetime(2026, 11, 23, 12, 0),
                )
            )


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return compare_metadata(context, SQLModel.metadata)


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    """Autogenerate finds nothing to do against a migrated database: the models and the
    migrations describe the same schema (names from the naming convention included)."""
    async with engine.connect() as conn:
        differences = await conn.run_sync(_differences)
    assert differences == []
