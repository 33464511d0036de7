"""How many webhook deliveries a second one dispatcher sends, signs and records, on PostgreSQL.

In one run, against a receiver in its own process (aiohttp on a free 127.0.0.1 port: it
verifies every signature with `signing.verify`, counts the webhook-ids it accepts, and answers
a given fraction of requests with a 500 instead) and a throwaway PostgreSQL database seeded
with one endpoint and `--events` outbox events (`--per-stream` events per shipment stream, a
realistic `shipment.*` body of about 450 bytes):

- **all accepted**: one worker process (`webhooks.jobs.dispatcher_for` on the runtime
  `services.open_services` opens, as the `worker` command runs it, with the settings' batch
  and concurrency) fans the outbox out, then runs dispatch passes until no delivery is pending;
- **30% failing**: the same on a fresh copy with a receiver that answers 500 to 30% of the
  requests (before accepting them); retries come after `--retry-seconds` (a short schedule of
  15 attempts, so a run ends in seconds) and every event must be accepted in the end, exactly
  once per webhook-id.

Each run prints deliveries per second (deliveries succeeded / time from the start line to the
last one recorded), attempts per second, the fan-out's time, the sender's and the receiver's
CPU use, and checks against the database: every attempt the receiver got is recorded in
`webhook_attempts`, every delivery is `succeeded`, no webhook-id accepted twice, none missing,
no signature refused.

    .venv/bin/python bench/webhook_throughput.py [--events 20000] [--per-stream 2]
        [--fail 0.3] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--set TRACKING_WEBHOOK_CONCURRENCY=128]

Goal: at least 1,000 deliveries a second from one worker, each signed and its attempt recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from _support import (
    DEFAULT_ADMIN_URL,
    dsn,
    environ_without_settings,
    free_port,
    pg_exec,
    settings_from,
    uptime,
)

HERE = Path(__file__).resolve()
SEED_CHUNK = 5_000
EXTRA_SETTINGS: dict[str, str] = {}
CPU_AT_GO: list[float] = []


# --- the orchestrator ----------------------------------------------------------------------


def payload(n: int, stream: int, sequence: int, at: datetime) -> dict[str, Any]:
    kinds = ("shipment.status_changed", "shipment.delayed", "shipment.delivered")
    return {
        "type": kinds[(sequence - 1) % 3],
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "data": {
            "shipment": {
                "id": stream,
                "carrier": "simulated",
                "tracking_number": f"SIM0{1796000000000000 + n}",
                "status": "in_transit",
                "estimate": {"earliest": "2026-12-09", "latest": "2026-12-11"},
                "delayed": sequence % 3 == 2,
                "delay_reason": "late_estimate" if sequence % 3 == 2 else None,
                "tracking_url": f"https://track.example.com/t/{uuid.uuid4().hex}",
                "cancelled": False,
            },
            "order": {"order_id": f"BENCH-{stream}", "status": "in_transit"},
        },
    }


async def seed(database_url: str, receiver_url: str, secret: str, events: int, per: int) -> None:
    """Schema (migrations), one endpoint, `events` outbox rows (`per` per stream)."""
    from tracking_service.db import create_engine
    from tracking_service.migrate import upgrade_if_behind

    engine = create_engine(database_url)
    try:
        await upgrade_if_behind(engine)
    finally:
        await engine.dispose()
    now = datetime.now(UTC) - timedelta(minutes=1)
    conn = await asyncpg.connect(dsn(database_url))
    try:
        await conn.execute(
            "INSERT INTO webhook_endpoints (url, description, enabled, secret, "
            "start_after_outbox_id, created_at, updated_at) VALUES ($1, 'bench', true, $2, 0, "
            "$3, $3)",
            receiver_url,
            secret,
            now,
        )
        rows = []
        for n in range(events):
            stream, sequence = n // per + 1, n % per + 1
            body = payload(n, stream, sequence, now)
            rows.append(
                (
                    f"msg_bench{n:08d}",
                    body["type"],
                    f"shipment:{stream}",
                    sequence,
                    now,
                    json.dumps(body),
                    now,
                )
            )
        for start in range(0, len(rows), SEED_CHUNK):
            await conn.executemany(
                "INSERT INTO outbox_events (event_id, event_type, stream, sequence, "
                "occurred_at, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6::json, $7)",
                rows[start : start + SEED_CHUNK],
            )
    finally:
        await conn.close()


async def check(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn(database_url))
    try:
        q = {
            "deliveries": "SELECT count(*) FROM webhook_deliveries",
            "succeeded": "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'",
            "attempts": "SELECT count(*) FROM webhook_attempts",
            "attempts_2xx": "SELECT count(*) FROM webhook_attempts WHERE status_code < 300",
        }
        return {k: int(await conn.fetchval(sql)) for k, sql in q.items()}
    finally:
        await conn.close()


def base_env(database_url: str) -> dict[str, str]:
    env = environ_without_settings()
    env.update(
        TRACKING_DATABASE_URL=database_url,
        TRACKING_CLOCK_SPEED="1",
        TRACKING_HISTORY_REFRESH_SECONDS="0",
        TRACKING_LOG_LEVEL="warning",
        TRACKING_WEBHOOK_ALLOW_HTTP="true",
        TRACKING_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
    )
    env.update(EXTRA_SETTINGS)
    return env


def start_receiver(port: int, secret: str, fail: float) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(HERE), "--role", "receiver", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--secret", secret, "--fail", str(fail)],
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the receiver did not start")


def run_worker(database_url: str, env: dict[str, str]) -> dict[str, Any]:
    child = subprocess.Popen(
        [sys.executable, str(HERE), "--role", "worker", "--database-url", database_url],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdin is not None and child.stdout is not None
        line = child.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit(f"the worker did not start (said {line!r})")
        child.stdin.write("go\n")
        child.stdin.flush()
        out = child.stdout.readline()
        if child.wait(timeout=1800) != 0 or not out:
            raise SystemExit(f"the worker failed (exit {child.returncode})")
        result: dict[str, Any] = json.loads(out)
        return result
    finally:
        if child.poll() is None:
            child.kill()


def one_run(args: argparse.Namespace, label: str, fail: float, env_extra: dict[str, str]) -> bool:
    from tracking_service.webhooks import signing

    name = f"bench_webhooks_{uuid.uuid4().hex[:8]}"
    admin = args.admin_url
    database_url = dsn(admin, name).replace("postgresql://", "postgresql+asyncpg://", 1)
    secret = signing.new_secret()
    port = free_port()
    receiver = start_receiver(port, secret, fail)
    asyncio.run(pg_exec(admin, f'CREATE DATABASE "{name}"'))
    try:
        url = f"http://127.0.0.1:{port}/hook"
        asyncio.run(seed(database_url, url, secret, args.events, args.per_stream))
        result = run_worker(database_url, {**base_env(database_url), **env_extra})
        stats = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()
        stored = asyncio.run(check(database_url))
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
        if not args.keep:
            asyncio.run(pg_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    seconds = result["end"] - result["start"]
    dispatch_seconds = result["end"] - result["dispatch_start"]
    expected = {f"msg_bench{n:08d}" for n in range(args.events)}
    missing = len(expected - set(stats["accepted_ids"]))
    print(f"{label} (receiver fails {fail:.0%} of requests):")
    print(
        f"  {stored['succeeded']:,} deliveries in {seconds:.2f} s: "
        f"{stored['succeeded'] / seconds:,.0f} deliveries/s "
        f"(dispatch alone {stored['succeeded'] / dispatch_seconds:,.0f}/s after a "
        f"{result['dispatch_start'] - result['start']:.2f} s fan-out); "
        f"{stored['attempts'] / seconds:,.0f} attempts/s"
    )
    print(
        f"  sender CPU {result['cpu']:.2f} s = {result['cpu'] / seconds:.0%} of one core, "
        f"{result['cpu'] / max(1, stored['attempts']) * 1e6:.0f} us an attempt; "
        f"receiver CPU {stats['cpu']:.2f} s"
    )
    p = result["phases"]
    print(
        f"  worker wall time summed by step over {p['batches']:.0f} batches: claim "
        f"{p['claim']:.2f} s, sign+POST {p['send']:.2f} s, record {p['record']:.2f} s"
    )
    print(
        f"  receiver: {stats['requests']:,} requests, {stats['failed']:,} answered 500, "
        f"{len(stats['accepted_ids']):,} ids accepted, {stats['duplicates']} duplicates, "
        f"{missing} missing, {stats['bad_signatures']} bad signatures"
    )
    print(
        f"  database: {stored['deliveries']:,} deliveries, {stored['succeeded']:,} succeeded, "
        f"{stored['attempts']:,} attempts recorded ({stored['attempts_2xx']:,} 2xx)"
    )
    ok = (
        stored["succeeded"] == args.events
        and missing == 0
        and stats["duplicates"] == 0
        and stats["bad_signatures"] == 0
        and stored["attempts"] == stats["requests"]
    )
    print(f"  every event accepted exactly once, every attempt recorded: {'yes' if ok else 'NO'}")
    return ok


def orchestrate(args: argparse.Namespace) -> int:
    print(f"nproc: {os.cpu_count()}; load before: {uptime()}")
    attempts = ",".join(["0"] + [str(args.retry_seconds)] * 14)
    ok = one_run(args, "all accepted", 0.0, {})
    ok &= one_run(
        args,
        f"{args.fail:.0%} failing",
        args.fail,
        {"TRACKING_WEBHOOK_RETRY_SECONDS": f"[{attempts}]"},
    )
    print(f"load after: {uptime()}")
    return 0 if ok else 1


# --- the receiver --------------------------------------------------------------------------


def receiver(args: argparse.Namespace) -> None:
    from aiohttp import web

    from tracking_service.webhooks import signing

    rng = random.Random(7)
    accepted: set[str] = set()
    counts = {"requests": 0, "failed": 0, "duplicates": 0, "bad_signatures": 0}
    secrets_ = (args.secret,)

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        counts["requests"] += 1
        try:
            signing.verify(secrets_, request.headers, body, now=int(time.time()))
        except signing.SignatureError:
            counts["bad_signatures"] += 1
            return web.Response(status=401)
        if rng.random() < args.fail:
            counts["failed"] += 1
            return web.Response(status=500, text="try again")
        msg_id = request.headers["webhook-id"]
        if msg_id in accepted:
            counts["duplicates"] += 1
        accepted.add(msg_id)
        return web.Response(status=204)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {**counts, "accepted_ids": sorted(accepted), "cpu": time.process_time()}
        )

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


# --- the worker ----------------------------------------------------------------------------


async def worker(args: argparse.Namespace) -> dict[str, Any]:
    import sqlalchemy as sa

    from tracking_service.services import open_services
    from tracking_service.settings import Settings
    from tracking_service.webhooks.jobs import dispatcher_for

    settings = Settings()
    async with open_services(settings, run_jobs=False) as services:
        dispatcher = dispatcher_for(services, worker="bench")
        phases = timed_phases(dispatcher)

        async def pending() -> int:
            async with services.engine.connect() as conn:
                found = await conn.execute(
                    sa.text("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
                )
                return int(found.scalar_one())

        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit("no start line")
        CPU_AT_GO.append(time.process_time())
        start = time.time()
        try:
            await dispatcher.fanout_pass()
            dispatch_start = time.time()
            while True:
                report = await dispatcher.dispatch_pass()
                if report.claimed == 0:
                    if await pending() == 0:
                        break
                    await asyncio.sleep(0.02)  # retries not due yet
        finally:
            await dispatcher.close()
        end = time.time()
    return {"start": start, "dispatch_start": dispatch_start, "end": end, "phases": phases}


def timed_phases(dispatcher: Any) -> dict[str, float]:
    """Wrap the dispatcher's three steps to sum the wall time each takes (they overlap: up
    to `batches_in_flight` batches run at once), and count the batches."""
    phases = {"claim": 0.0, "send": 0.0, "record": 0.0, "batches": 0.0}
    for name in ("claim", "send", "record"):
        inner = getattr(dispatcher, "_claim" if name == "claim" else name)

        def wrap(inner: Any = inner, name: str = name) -> Any:
            async def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await inner(*args, **kwargs)
                finally:
                    phases[name] += time.perf_counter() - started
                    if name == "send":
                        phases["batches"] += 1

            return timed

        setattr(dispatcher, "_claim" if name == "claim" else name, wrap())
    return phases


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-stream", type=int, default=2, help="events per shipment stream")
    parser.add_argument("--fail", type=float, default=0.3, help="failing receiver's fraction")
    parser.add_argument(
        "--retry-seconds", type=float, default=0.2, help="delay of each retry (failing run)"
    )
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_ADMIN_URL))
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument(
        "--set", action="append", default=[], metavar="TRACKING_NAME=VALUE", help="a setting"
    )
    parser.add_argument("--role", choices=("receiver", "worker"), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    if args.role == "receiver":
        receiver(args)
        return 0
    if args.role == "worker":
        profile_to = os.environ.get("BENCH_PROFILE")  # a file: cProfile stats of the worker
        if profile_to:
            import cProfile

            with cProfile.Profile() as profile:
                result = asyncio.run(worker(args))
            profile.dump_stats(profile_to)
        else:
            result = asyncio.run(worker(args))
        result["cpu"] = time.process_time() - CPU_AT_GO[0] if CPU_AT_GO else 0.0
        print(json.dumps(result), flush=True)
        return 0
    EXTRA_SETTINGS.update(settings_from(args.set))
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
