"""Plain database URLs map to the asyncio drivers; engines name their database; a unit of work
commits or rolls back as a whole."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from tracking_service.db import (
    DatabaseURLError,
    async_url,
    create_engine,
    describe_url,
    is_sqlite,
    unit_of_work,
)
from tracking_service.models import CarrierToken


@pytest.mark.parametrize(
    ("plain", "driver"),
    [
        ("sqlite:///var/tracking.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql://postgres@127.0.0.1:5432/test", "postgresql+asyncpg"),
        ("postgres://u:p@db/x", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@db/x", "postgresql+asyncpg"),
    ],
)
def test_plain_urls_map_to_async_drivers(plain: str, driver: str) -> None:
    assert async_url(plain).drivername == driver


def test_sqlite_detection() -> None:
    assert is_sqlite("sqlite:///a.db")
    assert not is_sqlite("postgresql://u@h/d")


@pytest.mark.parametrize("bad", ["mysql://u@h/d", "not a url", ""])
def test_unsupported_urls_are_refused_clearly(bad: str) -> None:
    with pytest.raises(DatabaseURLError):
        async_url(bad)


@pytest.mark.parametrize(
    ("plain", "shown"),
    [
        (
            "postgresql://app:s3cret@db.internal:5432/tracking",
            "postgresql://app:***@db.internal:5432/tracking",
        ),
        ("postgresql+asyncpg://app@db/tracking", "postgresql://app@db/tracking"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
    ],
)
def test_describe_url_hides_the_password(plain: str, shown: str) -> None:
    assert describe_url(plain) == shown


def test_describe_url_gives_sqlite_files_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    expected = f"sqlite:///{tmp_path.resolve() / 'var' / 'tracking.db'}"
    assert describe_url("sqlite:///var/tracking.db") == expected
    assert expected.startswith("sqlite:////")
    assert describe_url(f"sqlite+aiosqlite:///{tmp_path}/x.db") == f"sqlite:///{tmp_path}/x.db"


def test_create_engine_names_its_database(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'named.db'}"
    with caplog.at_level(logging.INFO, logger="tracking_service.db"):
        engine = create_engine(url)
    engine.sync_engine.dispose()  # never connected: nothing to close asynchronously
    lines = [r.getMessage() for r in caplog.records if r.name == "tracking_service.db"]
    assert lines == [f"database: sqlite:///{tmp_path.resolve() / 'named.db'}"]


async def test_unit_of_work_commits_on_success_and_rolls_back_on_error(
    engine: AsyncEngine,
) -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)

    def token(carrier: str) -> CarrierToken:
        return CarrierToken(carrier=carrier, client_id="c", access_token="t", expires_at=expires)

    with pytest.raises(RuntimeError, match="half-way"):
        async with unit_of_work(engine) as session:
            session.add(token("ups"))
            await session.flush()  # the row is written in the transaction...
            raise RuntimeError("half-way")  # ...and undone with it
    async with unit_of_work(engine) as session:
        session.add(token("fedex"))
    async with unit_of_work(engine) as session:
        carriers = (await session.exec(select(CarrierToken.carrier))).all()
    assert carriers == ["fedex"]
