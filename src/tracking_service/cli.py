"""The `tracking-service` command line."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
from rich.console import Console

from tracking_service.db import DatabaseURLError, create_engine
from tracking_service.estimator.rules import RulesError, load_rules
from tracking_service.migrate import upgrade_if_behind
from tracking_service.settings import get_settings

app = typer.Typer(
    help="Delivery promises, order tracking and delay warnings. "
    "Configuration comes from TRACKING_* environment variables or a .env file.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


async def _migrate(url: str) -> tuple[str | None, str | None]:
    engine = create_engine(url)
    try:
        return await upgrade_if_behind(engine)
    finally:
        await engine.dispose()


def ensure_schema(database_url: str) -> tuple[str | None, str | None]:
    """Upgrade the schema when behind; a clear message instead of a traceback otherwise."""
    try:
        return asyncio.run(_migrate(database_url))
    except DatabaseURLError as exc:
        raise fail(str(exc)) from None
    except (OSError, ConnectionError) as exc:
        raise fail(f"cannot reach the database at {database_url}: {exc}") from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [TRACKING_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [TRACKING_PORT]")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (default one)")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
) -> None:
    """Serve the HTTP API (uvicorn), upgrading the database schema first when behind."""
    import uvicorn

    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        load_rules(settings.rules_file)
    except RulesError as exc:
        raise fail(str(exc)) from None
    ensure_schema(settings.database_url)
    uvicorn.run(
        "tracking_service.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers if not reload else None,
        reload=reload,
        log_level=settings.log_level,
    )


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision and exit."""
    settings = get_settings()
    configure_logging(settings.log_level)
    before, after = ensure_schema(settings.database_url)
    if before == after:
        console.print(f"database schema is current (revision {after})")
    else:
        console.print(f"database schema upgraded: {before or 'empty'} -> {after}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
