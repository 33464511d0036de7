"""The tracking page survives a database restart without a failed answer.

The engine does not ping a connection at every checkout (`db.create_engine`): the page's
statement meets a dead pooled connection instead, and the page retries it once on a fresh one.
PostgreSQL only: the test ends the service's server sessions as a restart would."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tracking_service.db import create_engine, is_sqlite

from .test_tracking_page import delivered, site

pytestmark = pytest.mark.usefixtures("database_url")


async def _end_other_sessions(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            ended = await conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return int(ended.scalar_one())
    finally:
        await engine.dispose()


async def test_a_page_after_its_pooled_connections_died_is_answered(database_url: str) -> None:
    if is_sqlite(database_url):
        pytest.skip("PostgreSQL only: a SQLite file has no server session to end")
    async with site(database_url) as s:
        token = await delivered(s)
        first = await s.page(token)
        assert first.status_code == 200
        assert await _end_other_sessions(database_url) >= 1
        again = await s.page(token)
        assert again.status_code == 200
        assert again.headers["ETag"] == first.headers["ETag"]
        assert (await s.data(token)).status_code == 200
