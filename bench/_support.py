"""What the benches share: a free port, a process's CPU time, the throwaway database's URLs and SQL.

The PostgreSQL benches create their own throwaway databases on the server behind `--admin-url`
and run the service against them; every bench starts servers on a free port and reads their
CPU time from `/proc`. These helpers are the pieces that are the same in every script, so a fix
to one (say, how a URL is rendered for asyncpg) reaches them all.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def pg_exec(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "uptime unavailable"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all its threads (Linux `/proc`; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def environ_without_settings() -> dict[str, str]:
    """The caller's environment without its TRACKING_* settings: a process the bench starts gets
    the settings the bench chose, not whatever the shell running it had exported."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRACKING_")}


def settings_from(items: list[str]) -> dict[str, str]:
    """`--set TRACKING_NAME=VALUE` options as a mapping; a malformed one stops the bench."""
    settings: dict[str, str] = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name.startswith("TRACKING_") or not _:
            raise SystemExit(f"--set takes TRACKING_NAME=VALUE, not {item!r}")
        settings[name] = value
    return settings
