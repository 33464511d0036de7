"""How fast `tracking-service import-history` takes a large generic file, on SQLite and PostgreSQL.

Generates a synthetic generic CSV (100,000 rows by default) in a temporary folder, then runs the
real command twice per database (a fresh SQLite file, and a fresh, uniquely named PostgreSQL
database made on the server of `--pg-url` / `TEST_DATABASE_URL` and dropped afterwards): the
first run inserts everything, the second finds everything already present. Prints wall-clock
seconds (process start, schema upgrade, parsing and inserting included) and rows per second,
plus the time to parse the file alone.

    .venv/bin/python bench/import_history.py [--rows 100000] [--pg-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.engine import make_url

from tracking_service.history.files import GENERIC_COLUMNS, RowError, read_deliveries

STATES = ["SP", "RJ", "MG", "PR", "RS", "SC", "BA", "PE", "CE", "AM", "DF", "GO"]
CLI = Path(sys.executable).with_name("tracking-service")
_BRT = ZoneInfo("America/Sao_Paulo")


def write_generic(path: Path, rows: int, seed: int = 5) -> None:
    """A generic history file of `rows` plausible deliveries (fixed seed: same file every run)."""
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(GENERIC_COLUMNS)
        for i in range(rows):
            ordered = start + timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60))
            handoff = ordered + timedelta(hours=rng.uniform(2, 72))
            delivered = handoff + timedelta(hours=rng.uniform(20, 240))
            origin, dest = rng.choice(STATES[:4]), rng.choice(STATES)
            row = {
                "id": f"bench-{i}",
                "order_time": ordered.astimezone(_BRT).isoformat(),
                "handoff_time": handoff.astimezone(_BRT).isoformat(),
                "delivered_at": delivered.isoformat(),
                "origin_id": f"wh-{origin.lower()}",
                "origin_country": "BR",
                "origin_subdivision": origin,
                "origin_postal_code": f"{rng.randrange(1000, 99999):05d}",
                "origin_tz": "",
                "origin_lat": f"{rng.uniform(-30, -5):.6f}",
                "origin_lng": f"{rng.uniform(-60, -35):.6f}",
                "dest_country": "BR",
                "dest_subdivision": dest,
                "dest_postal_code": f"{rng.randrange(1000, 99999):05d}",
                "dest_tz": "",
                "dest_lat": f"{rng.uniform(-30, -5):.6f}",
                "dest_lng": f"{rng.uniform(-60, -35):.6f}",
                "carrier": rng.choice(["correios", "jadlog", "loggi"]),
                "service": rng.choice(["standard", "express"]),
                "promised_date": (delivered + timedelta(days=rng.randrange(-2, 8)))
                .date()
                .isoformat(),
            }
            writer.writerow([row.get(column, "") for column in GENERIC_COLUMNS])


def time_parse(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    valid = sum(1 for _, item in read_deliveries(path, "generic") if not isinstance(item, RowError))
    return time.perf_counter() - started, valid


def run_import(path: Path, database_url: str) -> tuple[float, str]:
    env = {**os.environ, "TRACKING_DATABASE_URL": database_url, "TRACKING_LOG_LEVEL": "warning"}
    started = time.perf_counter()
    done = subprocess.run(
        [str(CLI), "import-history", str(path), "--format", "generic"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    summary = " ".join(line for line in done.stdout.splitlines() if "imported into" in line)
    return seconds, " ".join(summary.split())


def report(backend: str, path: Path, url: str, rows: int) -> None:
    for attempt in ("first import", "same file again"):
        seconds, summary = run_import(path, url)
        print(f"{backend:<10} {attempt:<16} {seconds:6.1f} s  {rows / seconds:9,.0f} rows/s")
        print(f"{'':<10} -> {summary}")


async def _pg(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg-url", default=os.environ.get("TEST_DATABASE_URL"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.csv"
        started = time.perf_counter()
        write_generic(path, args.rows)
        print(
            f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        seconds, valid = time_parse(path)
        print(f"parse only: {valid:,} valid rows in {seconds:.1f} s, {valid / seconds:,.0f} rows/s")

        report("sqlite", path, f"sqlite:///{Path(tmp) / 'bench.db'}", args.rows)

        if not args.pg_url:
            print("postgresql skipped: give --pg-url or set TEST_DATABASE_URL")
            return
        admin = make_url(args.pg_url).set(drivername="postgresql")
        name = f"ts_bench_{uuid.uuid4().hex[:12]}"
        admin_dsn = admin.render_as_string(hide_password=False)
        asyncio.run(_pg(admin_dsn, f'CREATE DATABASE "{name}"'))
        try:
            url = admin.set(database=name).render_as_string(hide_password=False)
            report("postgresql", path, url, args.rows)
        finally:
            asyncio.run(_pg(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
