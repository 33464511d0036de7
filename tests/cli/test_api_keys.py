"""`create-api-key`, `list-api-keys`, `revoke-api-key` (both databases)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tracking_service.cli import app
from tracking_service.db import create_engine, unit_of_work
from tracking_service.models.api_keys import ApiKey
from tracking_service.settings import get_settings

runner = CliRunner()


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TRACKING_DATABASE_URL", database_url)
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def rows(url: str) -> list[ApiKey]:
    async def go() -> list[ApiKey]:
        engine = create_engine(url)
        try:
            async with unit_of_work(engine) as session:
                return list((await session.exec(ApiKey.__table__.select())).all())  # type: ignore[attr-defined]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_create_prints_the_key_once_and_stores_its_hash(db: str) -> None:
    code, out = run("create-api-key", "--name", "shop A")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "API key 1 (shop A):"
    key = lines[1]
    assert key.startswith("tsk_") and len(key) == 47
    assert "will not be shown again" in out
    assert f"Authorization: Bearer {key}" in out
    [row] = rows(db)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.prefix == key[:12]
    assert row.name == "shop A"

    code, listed = run("list-api-keys")
    assert code == 0, listed
    assert key not in listed
    header, line = listed.splitlines()
    assert header.split() == ["ID", "NAME", "PREFIX", "CREATED", "LAST", "USED", "REVOKED"]
    assert line.startswith("1   shop A  " + key[:12] + "...")
    assert line.split()[-2:] == ["never", "-"]


def test_list_revoke_and_json(db: str) -> None:
    code, out = run("list-api-keys")
    assert code == 0
    assert out.strip() == (
        "no API keys in the database; create one with `tracking-service create-api-key --name NAME`"
    )
    run("create-api-key", "--name", "a")
    run("create-api-key", "--name", "b")
    code, out = run("revoke-api-key", "1")
    assert code == 0, out
    assert out.startswith("revoked API key 1 (a, tsk_")
    code, again = run("revoke-api-key", "1")
    assert code == 0
    assert "was already revoked on " in again
    code, listed = run("list-api-keys", "--json")
    assert code == 0
    keys = json.loads(listed)
    assert [(k["id"], k["name"]) for k in keys] == [(1, "a"), (2, "b")]
    assert keys[0]["revoked_at"] is not None and keys[0]["revoked_at"].endswith("Z")
    assert keys[1]["revoked_at"] is None and keys[1]["last_used_at"] is None
    assert set(keys[0]) == {"id", "name", "prefix", "created_at", "last_used_at", "revoked_at"}


def test_bad_input_is_one_error_line(db: str) -> None:
    code, out = run("revoke-api-key", "7")
    assert code == 2
    assert "error: no API key with id 7" in out
    code, out = run("create-api-key", "--name", "   ")
    assert code == 2
    assert "error: --name: the key needs a name" in out
    code, out = run("create-api-key")
    assert code == 2  # typer: the option is required
    assert rows(db) == []
