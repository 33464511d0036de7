"""Back-office API keys stored in the database: created, listed, revoked, verified.

A key is `tsk_` followed by 43 URL-safe characters (`secrets.token_urlsafe(32)`: 256 random
bits). Only its sha256 is stored, with a name, the first characters (so a person can tell keys
apart in a list) and its created, last-used and revoked instants: the key itself is shown once,
when it is created, and cannot be read back. A hash without salt or stretching is enough here
because the key is random and long, not a password someone chose.

Verifying a key is one lookup by its hash (a unique index). The stored hash is compared to the
computed one with `secrets.compare_digest` all the same, so the answer's timing never depends
on how much of a hash matched. `last_used_at` is written at most once a minute per key: a
back-office route called many times a second must not turn every read into a write.

Functions take the caller's session first and never commit (see docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.errors import InvalidInput, NotFound
from tracking_service.models.api_keys import ApiKey

KEY_PREFIX = "tsk_"
SHOWN_CHARS = 12
"""Characters of a key kept in clear (`tsk_` and 8 more): enough to recognise it in a list,
far too few to guess the rest (the other 35 characters hold over 200 random bits)."""
LAST_USED_EVERY = timedelta(minutes=1)
NAME_MAX = 128
CREATE_HINT = "tracking-service create-api-key --name NAME"


def new_key() -> str:
    """A fresh random key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The sha256 of a key, as the 64 hex characters stored in `api_keys.key_hash`."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_key(key: str) -> bool:
    """Whether `key` could be one of ours (a cheap test before any database lookup)."""
    return key.startswith(KEY_PREFIX) and 20 <= len(key) <= 128


def clean_name(name: str) -> str:
    """`name` trimmed, or `InvalidInput` when it is empty, too long or holds control characters."""
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInput("the key needs a name (who or what uses it)", field="name")
    if len(cleaned) > NAME_MAX:
        raise InvalidInput(f"the name is longer than {NAME_MAX} characters", field="name")
    if not cleaned.isprintable():
        raise InvalidInput("the name holds control characters", field="name")
    return cleaned


async def create(session: AsyncSession, name: str, now: datetime) -> tuple[str, ApiKey]:
    """Store a new key named `name`; return the key (its only appearance) and its row."""
    key = new_key()
    row = ApiKey(
        name=clean_name(name), prefix=key[:SHOWN_CHARS], key_hash=hash_key(key), created_at=now
    )
    session.add(row)
    await session.flush()
    return key, row


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    result = await session.exec(select(ApiKey).order_by(col(ApiKey.id)))
    return list(result.all())


async def revoke(session: AsyncSession, key_id: int, now: datetime) -> tuple[ApiKey, bool]:
    """Revoke key `key_id` from `now` on; return its row and whether this call revoked it
    (False: it was revoked already, and keeps its first revocation instant)."""
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key with id {key_id}")
    if row.revoked_at is not None:
        return row, False
    row.revoked_at = now
    session.add(row)
    await session.flush()
    return row, True


async def any_active(session: AsyncSession) -> bool:
    """Whether the table holds at least one key that is not revoked."""
    found = await session.exec(select(ApiKey.id).where(col(ApiKey.revoked_at).is_(None)).limit(1))
    return found.first() is not None


async def verify(session: AsyncSession, key: str, now: datetime) -> ApiKey | None:
    """The active key row matching `key`, or None (unknown, malformed or revoked).

    Records the use in `last_used_at` when the last record is a minute old or more; the
    update is conditional, so requests racing on one key write it once."""
    if not looks_like_key(key):
        return None
    digest = hash_key(key)
    row = (await session.exec(select(ApiKey).where(col(ApiKey.key_hash) == digest))).first()
    if row is None or not secrets.compare_digest(row.key_hash, digest) or row.revoked_at:
        return None
    last = row.last_used_at
    if last is None or now - last >= LAST_USED_EVERY:
        stale = now - LAST_USED_EVERY
        await session.exec(
            sa.update(ApiKey)
            .where(
                col(ApiKey.id) == row.id,
                sa.or_(col(ApiKey.last_used_at).is_(None), col(ApiKey.last_used_at) <= stale),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        # What the update wrote, without marking the row dirty (no second UPDATE at flush).
        set_committed_value(row, "last_used_at", now)
    return row
