"""The customer's tracking page under load: pages a second for random tokens against the bare
`GET /healthz` of the same service, in the same run, on PostgreSQL.

- A throwaway PostgreSQL database is seeded with `--shipments` orders of one parcel each
  (10,000 by default; statuses across the pipeline: in transit, out for delivery, delivered,
  late, held up by an exception) and four scans per parcel, with bulk inserts (not timed).
  Nothing is due for polling, so the embedded jobs stay idle.
- The service is started as `tracking-service serve` starts it: one process, every
  `TRACKING_*` setting at its default (the caller's are not passed on), except the database
  and ONE other setting: the page's rate limit per client address
  (`TRACKING_TRACKING_RATE_LIMIT_PER_MINUTE`, 60 by default) is turned off (0), since all the
  load comes from one address and the bench measures rendering, not the limiter answering
  429. `--set TRACKING_NAME=VALUE` changes another setting for a run.
- wrk (1 thread, `--connections` connections) loads `GET /healthz`, then `GET /t/{token}`
  with a token picked at random per request from all the seeded ones (a Lua script), and
  again, alternating, `--rounds` times; any non-2xx answer or socket error fails the run.
  Before that, a sample of tokens is fetched once and must answer a 200 page in English.

It prints req/s, latency p50/p99 and the server's CPU time per request of each run, the
medians, and the goal's figure: pages / healthz (goal: at least 0.5). The machine's load
(`uptime`) is printed before and after: other work on the machine moves req/s, the CPU time
per request much less.

    .venv/bin/python bench/tracking_page_load.py [--shipments 10000] [--duration 10]
        [--rounds 2] [--connections 32] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from _support import (
    DEFAULT_ADMIN_URL,
    cpu_seconds,
    dsn,
    environ_without_settings,
    free_port,
    pg_exec,
    uptime,
)

HERE = Path(__file__).resolve()
SEED_CHUNK = 2_000
CITIES = [
    ("New York", "NY", "10001"),
    ("Chicago", "IL", "60638"),
    ("Austin", "TX", "78701"),
    ("Seattle", "WA", "98101"),
    ("Miami", "FL", "33101"),
]
HUBS = [("Newark", "NJ"), ("Edison", "NJ"), ("Columbus", "OH"), ("Memphis", "TN")]


# --- the database -------------------------------------------------------------------------------


def rows_for(pk: int, rng: random.Random, now: datetime) -> tuple[dict[str, Any], ...]:
    """One order, its parcel and the parcel's four scans (the last one sets its status)."""
    city, region, postal = rng.choice(CITIES)
    placed = now - timedelta(days=rng.uniform(2, 9))
    today = now.date()
    kind = rng.choices(["in_transit", "out", "delivered", "late", "exception"], [4, 1, 3, 1, 1])[0]
    promise_latest = today + timedelta(days=rng.randint(0, 3))
    if kind == "late":
        promise_latest = today - timedelta(days=rng.randint(1, 3))
    status = {"out": "out_for_delivery", "late": "in_transit"}.get(kind, kind)
    scans = [placed + timedelta(hours=6 + 14 * i) for i in range(4)]
    statuses = ["info_received", "in_transit", "in_transit", status]
    order = {
        "id": pk,
        "order_id": f"BENCH-{pk:06d}",
        "placed_at": placed,
        "origin": "nyc-queens",
        "option": "standard",
        "dest_country": "US",
        "dest_postal_code": postal,
        "dest_subdivision": region,
        "dest_city": city,
        "items": [],
        "promise_earliest": promise_latest - timedelta(days=1),
        "promise_latest": promise_latest,
        "promise_confidence": 0.9,
        "promise_basis": "given",
        "promise_detail": {},
        "status": status,
        "sequence": 0,
        "created_at": placed,
        "updated_at": scans[-1],
    }
    shipment = {
        "id": pk,
        "order_pk": pk,
        "carrier": "ups",
        "tracking_number": f"1ZBENCH{pk:011d}",
        "items": [],
        "tracking_token": secrets.token_urlsafe(24),
        "status": status,
        "status_changed_at": scans[-1],
        "estimate_earliest": None if kind == "delivered" else today + timedelta(days=1),
        "estimate_latest": None if kind == "delivered" else today + timedelta(days=2),
        "estimate_source": None if kind == "delivered" else "carrier",
        "delayed": kind in ("late", "exception"),
        "delay_reason": {"late": "late_estimate", "exception": "carrier_exception"}.get(kind),
        "handed_off_at": scans[1],
        "delivered_at": scans[-1] if kind == "delivered" else None,
        "last_event_at": scans[-1],
        "next_poll_at": now + timedelta(days=2),  # nothing due: the embedded poller idles
        "poll_failures": 0,
        "sequence": 0,
        "created_at": placed,
        "updated_at": scans[-1],
    }
    events = tuple(
        {
            "shipment_id": pk,
            "dedupe_key": f"b{i}",
            "occurred_at": when,
            "status": st,
            "raw_code": f"C{i}",
            "description": "",
            "city": (city if i == 3 else rng.choice(HUBS)[0]),
            "region": (region if i == 3 else "NJ"),
            "country": "US",
            "source": "carrier",
            "created_at": when,
        }
        for i, (when, st) in enumerate(zip(scans, statuses, strict=True))
    )
    return (order, shipment, *events)


async def seed(database_url: str, count: int) -> list[str]:
    """Migrate, then bulk-insert `count` orders with a parcel and four scans each; the tokens."""
    from tracking_service.db import create_engine
    from tracking_service.migrate import upgrade_if_behind
    from tracking_service.models.tracking import Order, Shipment, TrackingEventRecord

    engine = create_engine(database_url)
    rng = random.Random(11)
    now = datetime.now(UTC)
    tokens: list[str] = []
    try:
        await upgrade_if_behind(engine)
        for start in range(1, count + 1, SEED_CHUNK):
            orders, shipments, events = [], [], []
            for pk in range(start, min(start + SEED_CHUNK, count + 1)):
                order, shipment, *scans = rows_for(pk, rng, now)
                orders.append(order)
                shipments.append(shipment)
                events.extend(scans)
                tokens.append(shipment["tracking_token"])
            async with engine.begin() as conn:
                await conn.execute(sa.insert(Order.__table__), orders)  # type: ignore[arg-type]
                await conn.execute(sa.insert(Shipment.__table__), shipments)  # type: ignore[arg-type]
                await conn.execute(sa.insert(TrackingEventRecord.__table__), events)  # type: ignore[arg-type]
        async with engine.begin() as conn:
            for table in ("orders", "shipments"):
                await conn.execute(
                    sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :n)"),
                    {"n": count},
                )
            await conn.execute(sa.text("ANALYZE"))
    finally:
        await engine.dispose()
    return tokens


# --- the service and the load ---------------------------------------------------------------


def service_env(database_url: str, extra: dict[str, str]) -> dict[str, str]:
    env = environ_without_settings()
    env["TRACKING_DATABASE_URL"] = database_url
    env["TRACKING_TRACKING_RATE_LIMIT_PER_MINUTE"] = "0"  # measure rendering, not the limiter
    env.update(extra)
    return env


def start_service(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("tracking-service")), "serve"]
    if not Path(command[0]).exists():
        command = [sys.executable, "-m", "tracking_service.cli"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"the service did not answer in time:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def write_lua(tokens: list[str], path: Path) -> None:
    """A wrk script asking for a random token's page on every request."""
    listed = ",\n".join(f'"{t}"' for t in tokens)
    path.write_text(
        f"local tokens = {{\n{listed}\n}}\n"
        "math.randomseed(7)\n"
        "request = function()\n"
        '  return wrk.format("GET", "/t/" .. tokens[math.random(#tokens)])\n'
        "end\n"
    )


def verify(base: str, tokens: list[str]) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        for token in random.Random(3).sample(tokens, 50):
            answer = client.get(f"/t/{token}", headers={"Accept-Language": "en"})
            if answer.status_code != 200 or "Order BENCH-" not in answer.text:
                raise SystemExit(f"/t/{token} answered {answer.status_code}:\n{answer.text[:500]}")


@dataclass
class Run:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_us: float | None


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(wrk: str, label: str, url: str, script: Path | None, args: Any, pid: int) -> Run:
    command = [wrk, "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    before = cpu_seconds(pid)
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=args.duration + 60
    )
    after = cpu_seconds(pid)
    out = done.stdout
    if done.returncode != 0 or "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"{label}: wrk saw errors (exit {done.returncode}):\n{out}{done.stderr}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    cpu = (after - before) / requests * 1e6 if before is not None and after is not None else None
    return Run(label, rps, p50, p99, requests, cpu)


def fmt(run: Run) -> str:
    cpu = f"{run.cpu_us:7.0f} us CPU/req" if run.cpu_us is not None else "CPU n/a"
    return (
        f"  {run.label:<8} {run.rps:9.0f} req/s   p50 {run.p50_ms:6.1f} ms   "
        f"p99 {run.p99_ms:6.1f} ms   {cpu}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shipments", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="healthz/page pairs")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TRACKING_NAME=VALUE",
        help="another setting for the service",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed: sudo apt-get install wrk", file=sys.stderr)
        return 2
    extra = dict(item.split("=", 1) for item in args.set)
    name = f"page_bench_{uuid.uuid4().hex[:8]}"
    print(f"load before: {uptime()}")
    print(f"nproc: {os.cpu_count()}")
    asyncio.run(pg_exec(args.admin_url, f'CREATE DATABASE "{name}"'))
    service = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = dsn(args.admin_url, name)
            started = time.monotonic()
            tokens = asyncio.run(seed(url, args.shipments))
            print(
                f"seeded {args.shipments} orders, one parcel and four scans each, in "
                f"{time.monotonic() - started:.1f} s (PostgreSQL database {name})"
            )
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            service = start_service(port, service_env(url, extra), Path(tmp) / "service.log")
            print(
                f"service: tracking-service serve on {base}, default settings but the database "
                "and TRACKING_TRACKING_RATE_LIMIT_PER_MINUTE=0 (the per-address limit, 60 by "
                "default, would answer 429 to a load from one address)"
                + (f"; also {extra}" if extra else "")
            )
            verify(base, tokens)
            script = Path(tmp) / "pages.lua"
            write_lua(tokens, script)
            print(f"wrk: 1 thread, {args.connections} connections, {args.duration} s per run")
            run_wrk(wrk, "warm-up", f"{base}/healthz", None, args, service.pid)
            run_wrk(wrk, "warm-up", base, script, args, service.pid)
            health: list[Run] = []
            pages: list[Run] = []
            for _ in range(args.rounds):
                health.append(run_wrk(wrk, "healthz", f"{base}/healthz", None, args, service.pid))
                print(fmt(health[-1]))
                pages.append(run_wrk(wrk, "page", base, script, args, service.pid))
                print(fmt(pages[-1]))
            h = statistics.median(r.rps for r in health)
            p = statistics.median(r.rps for r in pages)
            print(f"median healthz: {h:.0f} req/s; median page: {p:.0f} pages/s")
            cpu_h = [r.cpu_us for r in health if r.cpu_us]
            cpu_p = [r.cpu_us for r in pages if r.cpu_us]
            if cpu_h and cpu_p:
                ratio = statistics.median(cpu_h) / statistics.median(cpu_p)
                print(
                    f"server CPU per request: healthz {statistics.median(cpu_h):.0f} us, page "
                    f"{statistics.median(cpu_p):.0f} us (ratio healthz/page {ratio:.2f})"
                )
            verdict = "meets" if p / h >= 0.5 else "MISSES"
            print(f"pages / healthz: {p / h:.2f} ({verdict} the goal of 0.5)")
    finally:
        if service is not None:
            stop(service)
        asyncio.run(pg_exec(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        print(f"load after: {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
