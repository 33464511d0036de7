"""`create-api-key`, `list-api-keys` and `revoke-api-key`: the back office's keys.

The key is printed once, by `create-api-key`; the database keeps only its hash, so a lost key
cannot be shown again: revoke it and create another. Instants are the machine's clock (these
commands open no service runtime).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from tracking_service import api_keys
from tracking_service.cli.common import fail, load_settings, say, with_database
from tracking_service.db import unit_of_work
from tracking_service.errors import InvalidInput, NotFound
from tracking_service.models.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tracking_service.models.api_keys import ApiKey


def create_api_key(
    name: Annotated[
        str, typer.Option(help="Who or what uses the key (a shop, a script)", show_default=False)
    ],
) -> None:
    """Create a back-office API key and print it, once: only its hash is stored."""
    settings = load_settings()
    try:
        cleaned = api_keys.clean_name(name)
    except InvalidInput as exc:
        raise fail(f"--name: {exc.message}") from None

    async def create(engine: AsyncEngine) -> tuple[str, int]:
        async with unit_of_work(engine) as session:
            key, row = await api_keys.create(session, cleaned, utcnow())
            assert row.id is not None
            return key, row.id

    key, key_id = with_database(settings.database_url, create)
    say(f"API key {key_id} ({cleaned}):")
    say(key)
    say("Copy it now: it will not be shown again (only its hash is stored).")
    say(f"Send it as `Authorization: Bearer {key}` or in the X-API-Key header.")


def _when(instant: datetime | None, never: str) -> str:
    return instant.strftime("%Y-%m-%d %H:%M:%S UTC") if instant is not None else never


def _as_json(row: ApiKey) -> dict[str, object]:
    def iso(instant: datetime | None) -> str | None:
        return instant.isoformat().replace("+00:00", "Z") if instant is not None else None

    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
    }


def list_api_keys(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array")] = False,
) -> None:
    """List the back-office API keys (revoked ones too): id, name, the key's first
    characters, created, last used and revoked instants. Keys themselves are never shown."""
    settings = load_settings()

    async def read(engine: AsyncEngine) -> list[ApiKey]:
        async with unit_of_work(engine) as session:
            return await api_keys.list_keys(session)

    rows = with_database(settings.database_url, read)
    if as_json:
        say(json.dumps([_as_json(row) for row in rows], indent=2))
        return
    if not rows:
        say(f"no API keys in the database; create one with `{api_keys.CREATE_HINT}`")
        return
    table = [("ID", "NAME", "PREFIX", "CREATED", "LAST USED", "REVOKED")]
    table += [
        (
            str(row.id),
            row.name,
            row.prefix + "...",
            _when(row.created_at, "-"),
            _when(row.last_used_at, "never"),
            _when(row.revoked_at, "-"),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        say("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def revoke_api_key(
    key_id: Annotated[int, typer.Argument(help="The key's id (see list-api-keys)", min=1)],
) -> None:
    """Revoke a back-office API key: requests sending it are refused from now on."""
    settings = load_settings()

    async def revoke(engine: AsyncEngine) -> tuple[ApiKey, bool]:
        async with unit_of_work(engine) as session:
            return await api_keys.revoke(session, key_id, utcnow())

    try:
        row, revoked = with_database(settings.database_url, revoke)
    except NotFound as exc:
        raise fail(exc.message) from None
    if revoked:
        say(f"revoked API key {row.id} ({row.name}, {row.prefix}...)")
    else:
        say(
            f"API key {row.id} ({row.name}, {row.prefix}...) was already revoked "
            f"on {_when(row.revoked_at, '-')}"
        )
