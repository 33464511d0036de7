"""What every command shares: messages, settings, logging and the database at start.

A command never shows a traceback for something a person must fix: a bad `TRACKING_*` value, an
unreachable database or a bad file is one `error:` line on stderr and exit code 2.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service import logging_setup
from tracking_service.db import DatabaseURLError, create_engine, describe_url
from tracking_service.logging_setup import LogFormat
from tracking_service.migrate import upgrade_if_behind
from tracking_service.settings import Settings, get_settings

T = TypeVar("T")

ENV_PREFIX = "TRACKING_"
LOG_FORMAT = logging_setup.TEXT_FORMAT

console = Console()
err_console = Console(stderr=True)

# Loggers whose INFO lines are step-by-step detail (every HTTP request, every migration step,
# every scheduler transition; our own lines say what ran): shown only when debugging.
CHATTY_LOGGERS = ("alembic", "httpx", "httpcore", "apscheduler")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one `error:` line on stderr; raise the returned exit to stop with `code`."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def say(text: str) -> None:
    """A plain line on stdout: no markup, no highlighting, no wrapping."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def configure_logging(level: str, fmt: LogFormat = "text") -> None:
    """Log to stderr at `level` as text or JSON lines (`logging_setup`); the chatty
    libraries' INFO lines only when debugging."""
    logging_setup.configure(level, fmt)
    logging.getLogger().setLevel(level.upper())
    debugging = logging.getLogger().level <= logging.DEBUG
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if debugging else logging.WARNING)


def _variable(field: object) -> str:
    return f"{ENV_PREFIX}{str(field).upper()}"


def _raw_value(variable: str) -> str | None:
    """The variable's text as the environment has it (names are case-insensitive)."""
    return next((v for k, v in os.environ.items() if k.upper() == variable), None)


def settings_problem(exc: ValidationError | SettingsError) -> str:
    """One line naming each bad `TRACKING_*` variable, its value and what is wrong."""
    if isinstance(exc, SettingsError):
        found = re.search(r'field "(\w+)"', str(exc))
        variable = _variable(found.group(1) if found else "?")
        raw = _raw_value(variable)
        shown = f"={raw!r}" if raw is not None else ""
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        return (
            f"{variable}{shown}: not valid JSON{cause}; "
            'write a JSON value, e.g. ["key-1", "key-2"] for a list'
        )
    problems = []
    for error in exc.errors():
        variable = _variable(error["loc"][0]) if error["loc"] else "settings"
        message = error["msg"][:1].lower() + error["msg"][1:]
        problems.append(f"{variable}={error['input']!r}: {message}")
    return "; ".join(problems)


def load_settings() -> Settings:
    """The settings, with logging configured from them; a bad value stops the command."""
    try:
        settings = get_settings()
    except (ValidationError, SettingsError) as exc:
        raise fail(f"bad configuration: {settings_problem(exc)}") from None
    try:
        settings.mail_config()  # settings that only make sense together (email: a sender)
    except ValueError as exc:
        raise fail(f"bad configuration: {exc}") from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def shown_url(url: str) -> str:
    """A database URL fit for a message: the password hidden, a SQLite file's full path."""
    try:
        return describe_url(url)
    except DatabaseURLError:  # an unparsable URL has no password to hide
        return url


def with_database(
    url: str, work: Callable[[AsyncEngine], Awaitable[T]], *, upgrade: bool = True
) -> T:
    """Open the database (upgrading its schema when behind), run `work` on it, close it."""

    async def go() -> T:
        engine = create_engine(url)
        try:
            if upgrade:
                await upgrade_if_behind(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    with database_errors(url):
        return asyncio.run(go())
    raise AssertionError("unreachable")  # pragma: no cover - database_errors re-raises


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """A bad URL or an unreachable server as a one-line error (exit 2), never a traceback."""
    try:
        yield
    except DatabaseURLError as exc:
        raise fail(str(exc)) from None
    except (OSError, ConnectionError) as exc:
        raise fail(f"cannot reach the database at {shown_url(url)}: {exc}") from None


async def nothing(_engine: AsyncEngine) -> None:
    """`with_database`'s work when opening (and upgrading) is all a command needs."""
