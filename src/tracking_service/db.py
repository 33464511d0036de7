"""Async engine and sessions: SQLite by default, PostgreSQL by URL.

Users give plain URLs (`sqlite:///var/x.db`, `postgresql://user@host/db`); we map them to the
asyncio drivers (aiosqlite, asyncpg) here so nothing else needs to know about drivers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}

log = logging.getLogger(__name__)


class DatabaseURLError(ValueError):
    """The database URL is not one we can use."""


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise DatabaseURLError(f"cannot parse database URL {url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise DatabaseURLError(
            f"unsupported database {backend!r} in {url!r}: use sqlite:///... or postgresql://..."
        )
    return parsed


def async_url(url: str) -> URL:
    """Map a plain URL to its asyncio driver (an explicit async driver is kept)."""
    parsed = _parse(url)
    return parsed.set(drivername=_ASYNC_DRIVERS[parsed.get_backend_name()])


def is_sqlite(url: str) -> bool:
    return _parse(url).get_backend_name() == "sqlite"


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite file so a fresh checkout just works."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def describe_url(url: str) -> str:
    """The database a URL names, for people: password hidden, a SQLite file as an absolute
    path (a relative one depends on the current directory, which is what must show)."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    parsed = parsed.set(drivername=_SYNC_DRIVERS[backend])
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            return "sqlite:///:memory:"
        return f"sqlite:///{Path(parsed.database or '').resolve()}"
    return parsed.render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


POOL_RECYCLE_SECONDS = 1800
"""A pooled PostgreSQL connection older than this is closed at checkout and opened again."""


def create_engine(url: str) -> AsyncEngine:
    """An async engine for a plain URL; SQLite gets WAL and a busy timeout.

    PostgreSQL connections are not pinged at checkout (`pool_pre_ping`): the ping is a
    `SELECT 1` round trip before every statement of the service's most frequent request,
    the public tracking page, and cost it about as much as its own query. Dead connections
    are handled instead: `pool_recycle` replaces a connection before a server or proxy idle
    timeout (usually hours) closes it, and when a statement does meet a dead connection
    (the database restarted), SQLAlchemy sees the disconnect, raises with
    `connection_invalidated` set and invalidates the whole pool, so every other pooled
    connection is opened afresh at its next checkout. That one statement fails: the tracking
    page retries it once (`api.tracking_page`), jobs retry on their next tick, and another
    request answers one 500. The readiness route (`GET /readyz`) still runs a statement, so a
    database that is down shows there.

    Logs which database it opens, so every command names its database on start."""
    ensure_sqlite_dir(url)
    log.info("database: %s", describe_url(url))
    if is_sqlite(url):
        engine = create_async_engine(async_url(url))
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        async_url(url),
        pool_pre_ping=False,
        pool_recycle=POOL_RECYCLE_SECONDS,
        pool_size=10,
        max_overflow=10,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """One transaction for a job step or a command: commit on success, roll back on error.

    The one place outside the request dependency (`api/deps.py`) that commits: functions that
    read or write take the session and never commit, so a caller can make several of them land
    together."""
    async with session_factory(engine)() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database does not answer."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
