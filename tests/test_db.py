"""Plain database URLs map to the asyncio drivers."""

from __future__ import annotations

import pytest

from tracking_service.db import DatabaseURLError, async_url, is_sqlite


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
