"""How many shipments a second the polling worker polls and applies, on PostgreSQL.

In one run, against the simulated carrier in its own process (`tracking-service sim-carrier`,
speed 1: its scans are real instants) and a throwaway PostgreSQL database seeded with
`--shipments` active shipments (10,000 by default, labels printed 1 to 36 hours ago, all due):

- **bare loop**: one process sends the same tracking requests with no database: the carrier
  registry's simulated adapter (the same `CarrierHttp` client, limits and retries as the
  worker's), the numbers in claim-sized groups, as many groups in flight as the worker keeps;
- **one worker**: one process runs poll passes (claim, carrier call with no transaction open,
  one transaction per shipment applied) until nothing is due;
- **two workers**: two processes do the same on a fresh copy of the seeded database at once;
- **idle pass**: the cost of a poll pass when nothing is due (after the one-worker run).

Each measured process opens the service runtime first (`services.open_services`, as the
`worker` command does) and waits for a start line, so start-up is not timed; a run's rate is
the shipments it handled divided by the time from the first process's start to the last
one's end. Every database is a copy (`CREATE DATABASE ... TEMPLATE`) of the seeded one, so
every run does the same work, and all are dropped at the end.

    .venv/bin/python bench/poll_throughput.py [--shipments 10000] [--rounds 1]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Goals: one worker at least half the bare loop's rate; two workers at least 1.6 times one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from _support import (
    DEFAULT_ADMIN_URL,
    dsn,
    environ_without_settings,
    free_port,
    pg_exec,
    settings_from,
    uptime,
)

from tracking_service.carriers.sim.number import encode
from tracking_service.carriers.sim.server import SCENARIO_MIX

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
SEED_CHUNK = 2_000
EXTRA_SETTINGS: dict[str, str] = {}
"""`--set TRACKING_NAME=VALUE` settings for every process the bench starts."""


# --- the orchestrator ----------------------------------------------------------------------


def tracking_service_command() -> list[str]:
    local = Path(sys.executable).parent / "tracking-service"
    if local.exists():
        return [str(local)]
    return [sys.executable, "-m", "tracking_service.cli"]


def base_env(database_url: str, sim_url: str) -> dict[str, str]:
    """The caller's environment without its TRACKING_* settings, plus the bench's."""
    env = environ_without_settings()
    env.update(
        TRACKING_DATABASE_URL=database_url,
        TRACKING_SIMULATED_BASE_URL=sim_url,
        TRACKING_CLOCK_SPEED="1",
        TRACKING_HISTORY_REFRESH_SECONDS="0",
        TRACKING_LOG_LEVEL="warning",
    )
    env.update(EXTRA_SETTINGS)
    return env


def start_sim_carrier(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [*tracking_service_command(), "sim-carrier", "--port", str(port), "--speed", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"sim-carrier exited with code {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.terminate()
    raise SystemExit("sim-carrier did not answer in time")


def labels(count: int, now: datetime, seed: int = 17) -> Iterator[str]:
    """Simulated numbers labelled 1 to 36 hours ago, scenarios in the carrier's usual mix."""
    rng = random.Random(seed)
    scenarios, weights = zip(*SCENARIO_MIX, strict=True)
    seen: set[str] = set()
    while len(seen) < count:
        scenario = rng.choices(scenarios, weights)[0]
        labelled = now - timedelta(hours=rng.uniform(1, 36))
        number = encode(scenario, labelled, rng.randrange(100_000))
        if number not in seen:
            seen.add(number)
            yield number


async def seed(database_url: str, count: int) -> None:
    """Migrate, then insert `count` orders with one due shipment each (bulk, not timed)."""
    from tracking_service.db import create_engine
    from tracking_service.migrate import upgrade_if_behind
    from tracking_service.models.tracking import Order, Shipment

    engine = create_engine(database_url)
    try:
        await upgrade_if_behind(engine)
        now = datetime.now(UTC)
        due = now - timedelta(minutes=1)
        numbers = list(labels(count, now))
        today = now.date()
        for start in range(0, count, SEED_CHUNK):
            chunk = numbers[start : start + SEED_CHUNK]
            orders = [order_row(start + i + 1, now, today) for i in range(len(chunk))]
            shipments = [
                shipment_row(start + i + 1, number, now, due) for i, number in enumerate(chunk)
            ]
            async with engine.begin() as conn:
                await conn.execute(sa.insert(Order.__table__), orders)  # type: ignore[arg-type]
                await conn.execute(sa.insert(Shipment.__table__), shipments)  # type: ignore[arg-type]
        async with engine.begin() as conn:  # explicit ids: move the sequences past them
            for table in ("orders", "shipments"):
                await conn.execute(
                    sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :n)"),
                    {"n": count},
                )
            await conn.execute(sa.text("ANALYZE"))
    finally:
        await engine.dispose()


def order_row(pk: int, now: datetime, today: date) -> dict[str, Any]:
    return {
        "id": pk,
        "order_id": f"BENCH-{pk:06d}",
        "placed_at": now - timedelta(days=2),
        "origin": "nyc-queens",
        "option": "standard",
        "dest_country": "US",
        "dest_postal_code": "60638",
        "dest_subdivision": "IL",
        "dest_city": "Chicago",
        "items": [],
        "promise_earliest": today + timedelta(days=1),
        "promise_latest": today + timedelta(days=4),
        "promise_confidence": 0.9,
        "promise_basis": "given",
        "promise_detail": {},
        "status": "processing",
        "sequence": 0,
        "created_at": now,
        "updated_at": now,
    }


def shipment_row(pk: int, number: str, now: datetime, due: datetime) -> dict[str, Any]:
    return {
        "id": pk,
        "order_pk": pk,
        "carrier": "simulated",
        "tracking_number": number,
        "items": [],
        "tracking_token": secrets.token_urlsafe(24),
        "status": "pending",
        "delayed": False,
        "next_poll_at": due,
        "poll_failures": 0,
        "sequence": 0,
        "created_at": now,
        "updated_at": now,
    }


@dataclass
class Run:
    label: str
    handled: int
    seconds: float
    per_process: list[dict[str, Any]]

    @property
    def rate(self) -> float:
        return self.handled / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us(self) -> float:
        """CPU time of the measured processes per shipment (this side only, not PostgreSQL's
        nor the carrier's): a figure other work on the machine moves much less than the rate."""
        cpu = sum(p.get("cpu", 0.0) for p in self.per_process)
        return cpu / self.handled * 1e6 if self.handled else 0.0


def run_processes(
    label: str, role: str, database_url: str, env: dict[str, str], count: int, args: Any
) -> Run:
    """Start `count` processes of `role`, wait until all are ready, start them together."""
    command = [
        sys.executable,
        str(HERE),
        "--role",
        role,
        "--database-url",
        database_url,
        "--claim",
        str(args.claim),
        "--idle-passes",
        str(args.idle_passes),
    ]
    children = [
        subprocess.Popen(
            [*command, "--worker-id", f"bench-{role}-{i}"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            if line.strip() != "ready":
                raise SystemExit(f"{label}: a process did not start (said {line!r})")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            assert child.stdout is not None
            out = child.stdout.readline()
            if child.wait(timeout=1800) != 0 or not out:
                raise SystemExit(f"{label}: a process failed (exit {child.returncode})")
            results.append(json.loads(out))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    return Run(label, sum(r["handled"] for r in results), seconds, results)


async def polled_count(database_url: str) -> tuple[int, int, int]:
    """(shipments polled at least once, events stored, outbox rows) in a run's database."""
    conn = await asyncpg.connect(dsn(database_url))
    try:
        polled = await conn.fetchval(
            "SELECT count(*) FROM shipments WHERE last_polled_at IS NOT NULL"
        )
        events = await conn.fetchval("SELECT count(*) FROM tracking_events")
        outbox = await conn.fetchval("SELECT count(*) FROM outbox_events")
        return int(polled), int(events), int(outbox)
    finally:
        await conn.close()


def orchestrate(args: argparse.Namespace) -> int:
    admin = args.admin_url
    tag = uuid.uuid4().hex[:8]
    seed_name = f"poll_bench_{tag}_seed"
    created: list[str] = []
    port = free_port()
    sim_url = f"http://127.0.0.1:{port}"
    print(f"load before: {uptime()}")
    print(f"nproc: {os.cpu_count()}")
    sim = None
    try:
        asyncio.run(pg_exec(admin, f'CREATE DATABASE "{seed_name}"'))
        created.append(seed_name)
        seed_url = dsn(admin, seed_name)
        sim = start_sim_carrier(port, base_env(seed_url, sim_url))
        started = time.monotonic()
        asyncio.run(seed(seed_url, args.shipments))
        print(
            f"seeded {args.shipments} due shipments in {time.monotonic() - started:.1f} s; "
            f"simulated carrier at {sim_url} (separate process, speed 1)"
        )

        def copy(name: str) -> str:
            full = f"poll_bench_{tag}_{name}"
            asyncio.run(pg_exec(admin, f'CREATE DATABASE "{full}" TEMPLATE "{seed_name}"'))
            created.append(full)
            return dsn(admin, full)

        bare_runs: list[Run] = []
        one_runs: list[Run] = []
        two_runs: list[Run] = []
        idle: Run | None = None
        for round_no in range(1, args.rounds + 1):
            one_url, two_url = copy(f"one{round_no}"), copy(f"two{round_no}")
            bare = run_processes(
                "bare loop", "bare", seed_url, base_env(seed_url, sim_url), 1, args
            )
            one = run_processes(
                "one worker", "worker", one_url, base_env(one_url, sim_url), 1, args
            )
            two = run_processes(
                "two workers", "worker", two_url, base_env(two_url, sim_url), 2, args
            )
            for run, url in ((one, one_url), (two, two_url)):
                polled, events, outbox = asyncio.run(polled_count(url))
                run.per_process.append({"polled": polled, "events": events, "outbox": outbox})
            bare_runs.append(bare)
            one_runs.append(one)
            two_runs.append(two)
            print(f"round {round_no}:")
            for run in (bare, one, two):
                print(f"  {fmt_run(run)}")
            if idle is None:
                idle = run_processes(
                    "idle pass", "idle", one_url, base_env(one_url, sim_url), 1, args
                )

        bare_rate = statistics.median(r.rate for r in bare_runs)
        one_rate = statistics.median(r.rate for r in one_runs)
        two_rate = statistics.median(r.rate for r in two_runs)
        print()
        settings = " ".join(args.set) or "defaults"
        print(f"shipments: {args.shipments}, rounds {args.rounds} (medians); settings: {settings}")
        for label, runs in (
            ("bare loop (HTTP only)", bare_runs),
            ("one worker", one_runs),
            ("two workers", two_runs),
        ):
            rate = statistics.median(r.rate for r in runs)
            cpu = statistics.median(r.cpu_us for r in runs)
            print(f"  {label:<22} {rate:8.0f} shipments/s  {cpu:7.0f} us CPU a shipment")
        one_ratio = one_rate / bare_rate if bare_rate else 0.0
        two_ratio = two_rate / one_rate if one_rate else 0.0
        print(f"  one worker / bare loop  {one_ratio:.2f}  (goal >= 0.50: {met(one_ratio, 0.5)})")
        print(f"  two workers / one       {two_ratio:.2f}  (goal >= 1.60: {met(two_ratio, 1.6)})")
        if idle is not None:
            r = idle.per_process[0]
            print(
                f"  idle poll pass (nothing due): {r['per_pass_ms']:.2f} ms a pass "
                f"(median of {r['passes']}; p99 {r['p99_ms']:.2f} ms)"
            )
        print(f"load after: {uptime()}")
        return 0
    finally:
        if sim is not None:
            sim.terminate()
            try:
                sim.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sim.kill()
        if not args.keep:
            for name in reversed(created):
                try:
                    asyncio.run(pg_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                except Exception as exc:  # report it and go on dropping the rest
                    print(f"could not drop {name}: {exc}", file=sys.stderr)


def met(ratio: float, goal: float) -> str:
    return "met" if ratio >= goal else "NOT met"


def fmt_run(run: Run) -> str:
    extra = ""
    checks = [p for p in run.per_process if "polled" in p]
    if checks:
        c = checks[0]
        extra = f"  (db: {c['polled']} polled, {c['events']} events, {c['outbox']} outbox rows)"
    failed = sum(p.get("failures", 0) for p in run.per_process)
    errors = sum(p.get("errors", 0) for p in run.per_process)
    if failed or errors:
        extra += f"  [{failed} carrier failures, {errors} not applied]"
    return (
        f"{run.label:<12} {run.handled:6d} shipments in {run.seconds:6.2f} s = "
        f"{run.rate:7.0f}/s, {run.cpu_us:6.0f} us CPU each{extra}"
    )


# --- the measured processes ----------------------------------------------------------------


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


CPU_AT_GO: list[float] = []


def wait_for_go() -> None:
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("no start line")
    CPU_AT_GO.append(time.process_time())


async def child(args: argparse.Namespace) -> dict[str, Any]:
    from tracking_service.services import open_services
    from tracking_service.settings import Settings
    from tracking_service.tracking import jobs

    settings = Settings()
    batch = args.claim or settings.poll_batch_size
    concurrency = settings.poll_concurrency
    async with open_services(settings, run_jobs=False) as services:
        if args.role == "bare":
            conn = await asyncpg.connect(dsn(settings.database_url))
            try:
                rows = await conn.fetch("SELECT tracking_number FROM shipments ORDER BY id")
            finally:
                await conn.close()
            numbers = [r["tracking_number"] for r in rows]
            adapter = services.carriers.adapter("simulated")
            slots = asyncio.Semaphore(concurrency)

            async def one_claim(claimed: Sequence[str]) -> int:
                # as the worker: a claimed batch in chunks of the adapter's batch, at once
                async with slots:
                    answers = await asyncio.gather(
                        *(adapter.track(list(c)) for c in chunks(claimed, adapter.max_batch))
                    )
                    return sum(len(a) for a in answers)

            wait_for_go()
            start = time.time()
            done = await asyncio.gather(*(one_claim(g) for g in chunks(numbers, batch)))
            end = time.time()
            return {"handled": sum(done), "start": start, "end": end}

        tracker = jobs.Tracker(services)
        if args.role == "worker":
            wait_for_go()
            start = time.time()
            handled = failures = errors = 0
            while True:
                report = await jobs.poll_pass(
                    services, worker=args.worker_id, batch=batch, tracker=tracker
                )
                if report.claimed == 0:
                    break
                handled += report.claimed - report.errors
                failures += report.failures
                errors += report.errors
            end = time.time()
            return {
                "handled": handled,
                "failures": failures,
                "errors": errors,
                "start": start,
                "end": end,
            }

        # idle: every pass finds nothing due
        wait_for_go()
        timings = []
        start = time.time()
        for _ in range(args.idle_passes):
            began = time.perf_counter()
            report = await jobs.poll_pass(
                services, worker=args.worker_id, batch=batch, tracker=tracker
            )
            timings.append((time.perf_counter() - began) * 1000)
            if report.claimed:
                raise SystemExit(f"idle pass found {report.claimed} due shipments")
        end = time.time()
        timings.sort()
        return {
            "handled": 0,
            "start": start,
            "end": end,
            "passes": len(timings),
            "per_pass_ms": statistics.median(timings),
            "p99_ms": timings[min(len(timings) - 1, int(len(timings) * 0.99))],
        }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shipments", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1, help="bare, one, two: this many times")
    parser.add_argument(
        "--claim", type=int, default=0, help="rows a claim takes (0: TRACKING_POLL_BATCH_SIZE)"
    )
    parser.add_argument("--idle-passes", type=int, default=200)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_ADMIN_URL))
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TRACKING_NAME=VALUE",
        help="a setting for every process started (e.g. TRACKING_POLL_CONCURRENCY=8)",
    )
    parser.add_argument("--role", choices=("bare", "worker", "idle"), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--worker-id", default="bench", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.role:
        profile_to = os.environ.get("BENCH_PROFILE")  # a file: cProfile stats of this process
        if profile_to:
            import cProfile

            with cProfile.Profile() as profile:
                result = asyncio.run(child(args))
            profile.dump_stats(f"{profile_to}.{args.role}.{os.getpid()}")
        else:
            result = asyncio.run(child(args))
        result["cpu"] = time.process_time() - CPU_AT_GO[0] if CPU_AT_GO else 0.0
        print(json.dumps(result), flush=True)
        return 0
    EXTRA_SETTINGS.update(settings_from(args.set))
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
