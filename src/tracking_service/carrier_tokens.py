"""The carriers' `TokenStore` in the database: one `carrier_tokens` row per carrier account.

Every operation is one short transaction of its own and none is open while a carrier is called,
so a slow token endpoint never holds a database lock (on SQLite every other writer would give
up after the busy timeout). "One refresh at a time across processes" is a lease on the row
(`lease_holder`, `lease_until`) taken and given back in their own transactions; a lease whose
holder died simply expires.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tracking_service.carriers.oauth import AccessToken, TokenKey
from tracking_service.models import CarrierToken

_TOKENS: sa.Table = CarrierToken.__table__  # type: ignore[attr-defined]


def _of(key: TokenKey) -> sa.ColumnElement[bool]:
    return sa.and_(_TOKENS.c.carrier == key.carrier, _TOKENS.c.client_id == key.client_id)


async def _insert_if_missing(conn: AsyncConnection, key: TokenKey, **values: Any) -> bool:
    """Insert the account's row unless it exists; True when this call inserted it."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(_TOKENS)
        .values(carrier=key.carrier, client_id=key.client_id, **values)
        .on_conflict_do_nothing(index_elements=["carrier", "client_id"])
    )
    return (await conn.execute(statement)).rowcount == 1


class SqlTokenStore:
    """`carriers.oauth.TokenStore` over the `carrier_tokens` table (SQLite and PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, key: TokenKey) -> AccessToken | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        _TOKENS.c.access_token, _TOKENS.c.expires_at, _TOKENS.c.updated_at
                    ).where(_of(key))
                )
            ).first()
        if row is None or row.access_token is None or row.expires_at is None:
            return None
        return AccessToken(row.access_token, row.expires_at, row.updated_at)

    async def compare_and_swap(
        self, key: TokenKey, expected: str | None, token: AccessToken
    ) -> bool:
        values = {
            "access_token": token.value,
            "expires_at": token.expires_at,
            "updated_at": token.fetched_at,
        }
        current = (
            _TOKENS.c.access_token.is_(None)
            if expected is None
            else _TOKENS.c.access_token == expected
        )
        async with self._engine.begin() as conn:
            if expected is None and await _insert_if_missing(conn, key, **values):
                return True
            result = await conn.execute(
                sa.update(_TOKENS).where(_of(key), current).values(**values)
            )
            return result.rowcount == 1

    async def invalidate(self, key: TokenKey, value: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(_TOKENS)
                .where(_of(key), _TOKENS.c.access_token == value)
                .values(access_token=None, expires_at=None)
            )

    async def try_lease(self, key: TokenKey, holder: str, now: datetime, until: datetime) -> bool:
        free = sa.or_(
            _TOKENS.c.lease_until.is_(None),
            _TOKENS.c.lease_until <= now,
            _TOKENS.c.lease_holder == holder,
        )
        async with self._engine.begin() as conn:
            # The row must exist for the lease to live on it; the insert also takes the write
            # lock on SQLite first, so two processes never both read "free" and both update.
            await _insert_if_missing(conn, key, updated_at=now)
            result = await conn.execute(
                sa.update(_TOKENS)
                .where(_of(key), free)
                .values(lease_holder=holder, lease_until=until)
            )
            return result.rowcount == 1

    async def release_lease(self, key: TokenKey, holder: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(_TOKENS)
                .where(_of(key), _TOKENS.c.lease_holder == holder)
                .values(lease_holder=None, lease_until=None)
            )
