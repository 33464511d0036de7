"""How many lookups per second the simulated carrier serves on one core.

Starts the simulated carrier (uvicorn, one process: `python -m
tracking_service.carriers.sim.server`) on a free 127.0.0.1 port, then drives it from this
process with `--concurrency` requests in flight, each `POST /v1/track` carrying `--batch`
numbers drawn from a pool of `--pool` numbers (all six scenarios, labels spread over the past
ten simulated days, so parcels are at every stage), for `--seconds` after a short warm-up.
Prints requests and lookups per second and the p50/p99/max request latency seen by the client.

    .venv/bin/python bench/sim_carrier_load.py [--seconds 10] [--batch 100] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
from _support import cpu_seconds, free_port

from tracking_service.carriers.sim.number import Scenario, encode


def number_pool(size: int, speed: float, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    span = timedelta(days=10) / speed  # ten simulated days of labels
    return [
        encode(
            rng.choice(list(Scenario)),
            now - span * rng.random(),
            rng.randrange(100_000),
        )
        for _ in range(size)
    ]


def wait_until_up(base_url: str, server: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the simulated carrier exited with code {server.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("the simulated carrier did not answer in time")


async def drive(
    base_url: str,
    pool: list[str],
    batch: int,
    concurrency: int,
    seconds: float,
    warmup: float,
    server_pid: int,
) -> tuple[int, int, list[float], int, float, float | None]:
    """Returns (requests, lookups, latencies in ms, errors, measured s, server CPU s)."""
    latencies: list[float] = []
    counts = {"requests": 0, "lookups": 0, "errors": 0}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        measure_from = start + warmup
        stop = measure_from + seconds

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            while True:
                numbers = rng.sample(pool, batch)
                began = loop.time()
                if began >= stop:
                    return
                response = await client.post("/v1/track", json={"tracking_numbers": numbers})
                ended = loop.time()
                # Counting results without decoding keeps the client from being the bottleneck.
                ok = (
                    response.status_code == 200
                    and response.content.count(b'{"tracking_number":') == batch
                )
                if began >= measure_from:
                    counts["requests"] += 1
                    if ok:
                        counts["lookups"] += batch
                        latencies.append((ended - began) * 1000)
                    else:
                        counts["errors"] += 1

        async def sample_cpu() -> float | None:
            await asyncio.sleep(max(0.0, measure_from - loop.time()))
            return cpu_seconds(server_pid)

        cpu_task = asyncio.create_task(sample_cpu())
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        measured = loop.time() - measure_from
        cpu_before, cpu_after = await cpu_task, cpu_seconds(server_pid)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return counts["requests"], counts["lookups"], latencies, counts["errors"], measured, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=100, help="numbers per request (1-100)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--pool", type=int, default=20_000, help="distinct numbers looked up")
    parser.add_argument("--speed", type=float, default=1440.0)
    args = parser.parse_args()

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "tracking_service.carriers.sim.server", str(port), str(args.speed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(base_url, server)
        pool = number_pool(args.pool, args.speed)
        requests, lookups, latencies, errors, measured, cpu = asyncio.run(
            drive(
                base_url,
                pool,
                args.batch,
                args.concurrency,
                args.seconds,
                args.warmup,
                server.pid,
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=10)

    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    print(
        f"simulated carrier, one uvicorn process; client: httpx, {args.concurrency} in flight, "
        f"{args.batch} numbers per request, pool {args.pool}, {measured:.1f} s measured"
    )
    print(f"  requests/s  {requests / measured:10.0f}   (errors: {errors})")
    print(f"  lookups/s   {lookups / measured:10.0f}")
    if cpu:
        print(
            f"  server CPU  {cpu / measured:10.0%} of one core; "
            f"{lookups / cpu:.0f} lookups per server CPU-second"
        )
    if latencies:
        print(
            f"  latency ms  p50 {statistics.median(latencies):.2f}   p99 {p99:.2f}   "
            f"max {latencies[-1]:.2f}"
        )


if __name__ == "__main__":
    main()
