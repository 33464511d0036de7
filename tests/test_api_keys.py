"""API keys in the database: made random, stored hashed, listed, revoked, verified (both
databases)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service import api_keys
from tracking_service.db import unit_of_work
from tracking_service.errors import InvalidInput, NotFound
from tracking_service.models.api_keys import ApiKey

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def stored(engine: AsyncEngine, key_id: int) -> ApiKey:
    async with unit_of_work(engine) as session:
        row = await session.get(ApiKey, key_id)
        assert row is not None
        return row


def test_keys_are_random_prefixed_and_long() -> None:
    keys = {api_keys.new_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert key.startswith("tsk_")
        assert len(key) == 4 + 43  # token_urlsafe(32): 256 bits
        assert api_keys.looks_like_key(key)
    assert api_keys.hash_key("tsk_x") == hashlib.sha256(b"tsk_x").hexdigest()
    assert not api_keys.looks_like_key("back-office-key")
    assert not api_keys.looks_like_key("tsk_short")


async def test_create_stores_only_a_hash(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        key, row = await api_keys.create(session, "  shop A  ", NOW)
    assert row.id is not None
    saved = await stored(engine, row.id)
    assert saved.name == "shop A"
    assert saved.prefix == key[:12]
    assert saved.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {saved.name, saved.prefix, saved.key_hash}
    assert (saved.created_at, saved.last_used_at, saved.revoked_at) == (NOW, None, None)


@pytest.mark.parametrize("name", ["", "   ", "x" * 129, "tab\there"])
async def test_create_refuses_bad_names(engine: AsyncEngine, name: str) -> None:
    async with unit_of_work(engine) as session:
        with pytest.raises(InvalidInput) as raised:
            await api_keys.create(session, name, NOW)
    assert raised.value.field == "name"


async def test_verify_records_use_at_most_once_a_minute(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        key, row = await api_keys.create(session, "shop", NOW)
    assert row.id is not None
    for seconds, last_used in ((0, 0), (30, 0), (59, 0), (60, 60), (90, 60), (125, 125)):
        now = NOW + timedelta(seconds=seconds)
        async with unit_of_work(engine) as session:
            found = await api_keys.verify(session, key, now)
            assert found is not None and found.id == row.id
            assert not session.dirty  # nothing left for a flush to write again
        saved = await stored(engine, row.id)
        assert saved.last_used_at == NOW + timedelta(seconds=last_used), seconds


async def test_verify_refuses_unknown_malformed_and_revoked_keys(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        key, row = await api_keys.create(session, "shop", NOW)
        other, _ = await api_keys.create(session, "other", NOW)
    assert row.id is not None
    async with unit_of_work(engine) as session:
        assert await api_keys.verify(session, api_keys.new_key(), NOW) is None
        assert await api_keys.verify(session, key[:-1], NOW) is None
        assert await api_keys.verify(session, key + "x", NOW) is None
        assert await api_keys.verify(session, "not-a-key", NOW) is None
        assert await api_keys.any_active(session)
    async with unit_of_work(engine) as session:
        revoked, changed = await api_keys.revoke(session, row.id, NOW + timedelta(hours=1))
    assert changed and revoked.revoked_at == NOW + timedelta(hours=1)
    async with unit_of_work(engine) as session:
        assert await api_keys.verify(session, key, NOW + timedelta(hours=2)) is None
        assert await api_keys.verify(session, other, NOW + timedelta(hours=2)) is not None
    assert (await stored(engine, row.id)).last_used_at is None


async def test_revoke_twice_keeps_the_first_instant(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        _, row = await api_keys.create(session, "shop", NOW)
    assert row.id is not None
    async with unit_of_work(engine) as session:
        await api_keys.revoke(session, row.id, NOW + timedelta(hours=1))
    async with unit_of_work(engine) as session:
        again, changed = await api_keys.revoke(session, row.id, NOW + timedelta(hours=2))
        assert not changed
        assert again.revoked_at == NOW + timedelta(hours=1)
        assert not await api_keys.any_active(session)
        with pytest.raises(NotFound, match="no API key with id 999"):
            await api_keys.revoke(session, 999, NOW)


async def test_list_keys_oldest_first_with_revoked(engine: AsyncEngine) -> None:
    async with unit_of_work(engine) as session:
        assert await api_keys.list_keys(session) == []
        assert not await api_keys.any_active(session)
        for name in ("a", "b", "c"):
            await api_keys.create(session, name, NOW)
    async with unit_of_work(engine) as session:
        rows = await api_keys.list_keys(session)
        await api_keys.revoke(session, rows[1].id or 0, NOW)
    async with unit_of_work(engine) as session:
        rows = await api_keys.list_keys(session)
    assert [(r.name, r.revoked_at is not None) for r in rows] == [
        ("a", False),
        ("b", True),
        ("c", False),
    ]
