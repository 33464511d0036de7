"""The probes: `/healthz` always, `/readyz` when the database answers at the code's schema."""

from __future__ import annotations

import pytest

from tracking_service import migrate
from tracking_service.migrate import head_revision
from tracking_service.settings import Settings

from .helpers import app_client


async def test_probes(database_url: str) -> None:
    async with app_client(Settings(database_url=database_url)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ok",
            "database": "ok",
            "schema_revision": head_revision(),
        }


async def test_readiness_does_not_reread_the_migration_scripts(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app_client(Settings(database_url=database_url)) as client:
        assert (await client.get("/readyz")).status_code == 200

        def no_reading(*_: object, **__: object) -> None:
            raise AssertionError("the migration scripts were read again")

        monkeypatch.setattr(migrate.ScriptDirectory, "from_config", no_reading)
        response = await client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json()["schema_revision"] == head_revision()
