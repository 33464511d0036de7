"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from `TEST_DATABASE_URL` (a server we may create databases on). Each test gets
its own database, cloned from a template migrated once per session, so tests and parallel runs
never see each other's rows. Without the URL the PostgreSQL half is skipped, except under CI,
where a missing PostgreSQL is an error.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.db import create_engine
from tracking_service.migrate import upgrade_if_behind

BACKENDS = ["sqlite", "postgresql"]


def _pg_admin_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL")


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _pg_exec(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_if_behind(engine)
    finally:
        await engine.dispose()


class DatabaseFactory:
    """Makes empty or migrated databases of one backend and drops them at the end."""

    def __init__(self, backend: str, tmp_root: Path) -> None:
        self.backend = backend
        self.tmp_root = tmp_root
        self.created: list[str] = []
        self._template: str | None = None
        self.admin_url = _pg_admin_url() if backend == "postgresql" else None

    def empty(self) -> str:
        name = f"ts_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp_root / (name + '.db')}"
        assert self.admin_url
        asyncio.run(_pg_exec(self.admin_url, f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return _dsn(self.admin_url, name)

    def migrated(self) -> str:
        if self._template is None:
            self._template = self.empty()
            asyncio.run(_migrate(self._template))
        if self.backend == "sqlite":
            target = self.tmp_root / f"ts_test_{uuid.uuid4().hex[:12]}.db"
            shutil.copyfile(make_url(self._template).database or "", target)
            return f"sqlite:///{target}"
        assert self.admin_url
        name = f"ts_test_{uuid.uuid4().hex[:12]}"
        template = make_url(self._template).database
        asyncio.run(_pg_exec(self.admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        self.created.append(name)
        return _dsn(self.admin_url, name)

    def drop_all(self) -> None:
        if self.backend != "postgresql" or not self.admin_url:
            return

        # Each DROP DATABASE waits for a checkpoint; run side by side, their checkpoints are
        # shared, which turns minutes of teardown into seconds.
        limit = asyncio.Semaphore(16)

        async def drop_one(name: str) -> None:
            async with limit:
                await _pg_exec(
                    self.admin_url or "", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                )

        async def drop() -> None:
            await asyncio.gather(*(drop_one(name) for name in self.created))

        asyncio.run(drop())


@pytest.fixture(scope="session", params=BACKENDS)
def database_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseFactory]:
    """A factory of databases, once per backend; PostgreSQL must run under CI."""
    backend: str = request.param
    if backend == "postgresql" and not _pg_admin_url():
        if os.environ.get("CI"):
            pytest.fail("CI is set but TEST_DATABASE_URL is not: PostgreSQL tests must run")
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL")
    factory = DatabaseFactory(backend, tmp_path_factory.mktemp(f"db-{backend}"))
    yield factory
    factory.drop_all()


@pytest.fixture
def database_url(database_factory: DatabaseFactory) -> str:
    """A fresh database at the newest schema, on each backend."""
    return database_factory.migrated()


@pytest.fixture
def empty_database_url(database_factory: DatabaseFactory) -> str:
    """A fresh database with no schema at all, on each backend."""
    return database_factory.empty()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An async engine on a fresh migrated database, on each backend."""
    eng = create_engine(database_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def make_database(database_factory: DatabaseFactory) -> Callable[[], str]:
    """Make more migrated databases of the same backend within one test."""
    return database_factory.migrated
