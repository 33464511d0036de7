"""Bring the schema to the newest Alembic revision, on SQLite or PostgreSQL.

Every command that needs the database calls `upgrade_if_behind`, so nobody ever meets
"no such table". On PostgreSQL an advisory lock keeps concurrent starters from racing.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

_LOCK_KEY = 0x7472_6B73  # "trks": one advisory lock id for schema changes


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("tracking_service") / "migrations"))
    return cfg


@cache
def head_revision() -> str | None:
    """The newest revision of the scripts shipped with this code, read once per process (they
    do not change while it runs; `/readyz` compares against it on every call)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: Connection, target: str) -> tuple[str | None, str | None]:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    before = _current(conn)
    if before != head_revision():
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)
    return before, _current(conn)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade_if_behind(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """Upgrade to head when behind; returns (revision before, revision after)."""
    async with engine.begin() as conn:
        before, after = await conn.run_sync(_upgrade, "head")
    if before != after:
        log.info("database schema upgraded from %s to %s", before or "empty", after)
    return before, after


def _downgrade(conn: Connection, target: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.downgrade(cfg, target)


async def downgrade(engine: AsyncEngine, target: str = "base") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade, target)
