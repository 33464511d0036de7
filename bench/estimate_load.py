"""Throughput of `POST /v1/estimates` against a bare FastAPI endpoint with the same models.

The goal: the estimate endpoint, with the service in its default configuration, reaches at
least 0.85 of the bare endpoint's throughput with 4 shipping options and holidays in play. In
one run this:

1. starts two servers on free 127.0.0.1 ports, one process each: the real service as
   `tracking-service serve` starts it (uvicorn without its access log, every setting at its
   default: log level info, the app's access log as `TRACKING_ACCESS_LOG` defaults, the body
   limit and content-type guard; only the database, a temporary SQLite file, and the rules,
   the bundled US sample by default with four shipping options, are set; `--set` changes
   others) and the bare app (`bench/bare_app.py` under `python -m uvicorn`, no access log,
   warnings only: the same `EstimateRequest` in and `EstimateResponse` out, validated and
   serialized by FastAPI, answering one response the real estimator computed at start-up
   with the same rules and, with `--history`, the same delivery history);
2. builds a fixed set of request bodies (seeded) for the country of the rules' first origin:
   for US rules ZIP codes across US states and territories, order times a few minutes around
   the rules' cutoffs (11:00 and 14:00 in the sample), around Thanksgiving, Christmas, New
   Year, July 4th, Memorial and Labor Day; for Brazilian rules CEPs across the states, around
   Carnival, Tiradentes, Corpus Christi, 9 July (São Paulo), 7 September, 12 October,
   2 and 15 and 20 November, Christmas and New Year; on ordinary days, and with no
   `order_time` at all (now); some with items, a few with a pre-order `available_on`;
3. sends every body once to both servers and requires a 200 with a valid `EstimateResponse`;
4. warms both up, then alternates timed runs (bare, service, bare, service, ...) driven by
   `wrk` in its own process (1 thread, the same Lua script cycling through the same bodies) or,
   when wrk is absent, by a multi-process httpx load generator;
5. prints requests per second, p50/p99 latency and the server's CPU time per request (Linux)
   per run, the medians, the throughput ratio service / bare (the goal's figure) and the CPU
   per request ratio bare / service (what the throughput ratio would be with a core per
   server, less moved by other work on the machine); fails loudly on any non-2xx answer or
   socket error; stops both servers at the end, on errors and on Ctrl-C.

    .venv/bin/python bench/estimate_load.py [--duration 10] [--connections 32] [--rounds 3]
    .venv/bin/python bench/estimate_load.py --set TRACKING_ACCESS_LOG=true
    .venv/bin/python bench/estimate_load.py --rules src/tracking_service/rules/br_shop.toml \
        --history ../shared/data/olist/deliveries_train.csv.gz --history-format olist

`--rules FILE` runs both servers on another rules file; `--history FILE --history-format F`
imports that delivery history into the temporary database (`tracking-service import-history`)
before the servers start, so the service estimates with history on (and checks that some
estimates are history-based) and the bare app's canned response is computed with it too.

wrk: `sudo apt-get install wrk` (Debian/Ubuntu) or `brew install wrk` (macOS). The httpx
fallback is much heavier per request than wrk, so on a small machine the client, not the
server, may set the pace: the ratio then reads closer to 1 than it is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

import httpx
from _support import cpu_seconds, environ_without_settings, free_port

from tracking_service.api.estimates import EstimateResponse
from tracking_service.estimator.rules import Rules, RulesError, load_rules
from tracking_service.settings import Settings, bundled_rules_path

BENCH_DIR = Path(__file__).resolve().parent
PATH = "/v1/estimates"
GOAL = 0.85
INSTALL_WRK = "sudo apt-get install wrk  (Debian/Ubuntu)  or  brew install wrk  (macOS)"

# Real ZIP codes (city centres) across the rules' zones; (zip, state, customer's time zone).
DESTINATIONS: list[tuple[str, str, str]] = [
    ("10001", "NY", "America/New_York"),  # Manhattan: nyc zone, same-day possible
    ("11201", "NY", "America/New_York"),  # Brooklyn
    ("10451", "NY", "America/New_York"),  # Bronx
    ("11101", "NY", "America/New_York"),  # Queens, next to the warehouse
    ("12207", "NY", "America/New_York"),  # Albany: NY state, not NYC
    ("07030", "NJ", "America/New_York"),
    ("02108", "MA", "America/New_York"),
    ("06103", "CT", "America/New_York"),
    ("19103", "PA", "America/New_York"),
    ("21201", "MD", "America/New_York"),
    ("20001", "DC", "America/New_York"),
    ("28202", "NC", "America/New_York"),
    ("30303", "GA", "America/New_York"),
    ("33131", "FL", "America/New_York"),
    ("37203", "TN", "America/Chicago"),
    ("48226", "MI", "America/Detroit"),
    ("60601", "IL", "America/Chicago"),
    ("55401", "MN", "America/Chicago"),
    ("63101", "MO", "America/Chicago"),
    ("75201", "TX", "America/Chicago"),
    ("77002", "TX", "America/Chicago"),
    ("70112", "LA", "America/Chicago"),
    ("80202", "CO", "America/Denver"),
    ("85004", "AZ", "America/Phoenix"),
    ("84101", "UT", "America/Denver"),
    ("94103", "CA", "America/Los_Angeles"),
    ("90012", "CA", "America/Los_Angeles"),
    ("98101", "WA", "America/Los_Angeles"),
    ("97204", "OR", "America/Los_Angeles"),
    ("99501", "AK", "America/Anchorage"),
    ("96813", "HI", "Pacific/Honolulu"),
]

# Local dates (at the warehouse, America/New_York) around which holidays are in play.
HOLIDAY_WINDOWS: list[tuple[date, int]] = [
    (date(2025, 5, 22), 5),  # Memorial Day Mon 26 May
    (date(2025, 7, 2), 4),  # Independence Day Fri 4 Jul
    (date(2025, 8, 28), 5),  # Labor Day Mon 1 Sep
    (date(2025, 11, 25), 6),  # Thanksgiving Thu 27 Nov, day after
    (date(2025, 12, 22), 6),  # Christmas Thu 25 Dec, FedEx closed 26 Dec
    (date(2025, 12, 30), 5),  # New Year, stock-taking Fri 2 Jan 2026
    (date(2026, 1, 15), 5),  # Martin Luther King Jr. Day Mon 19 Jan
    (date(2026, 11, 24), 5),  # Thanksgiving Thu 26 Nov
    (date(2026, 12, 22), 6),  # Christmas Fri 25 Dec
]
WAREHOUSE_TZ = ZoneInfo("America/New_York")
CUTOFFS = [(11, 0), (14, 0)]  # same-day courier's, warehouse's

# Brazil: real CEPs (city centres) across the states; (CEP, state, customer's time zone).
DESTINATIONS_BR: list[tuple[str, str, str]] = [
    ("01310-100", "SP", "America/Sao_Paulo"),  # Avenida Paulista: sp-capital, same-day
    ("04538-132", "SP", "America/Sao_Paulo"),  # Itaim Bibi
    ("03178-200", "SP", "America/Sao_Paulo"),  # Mooca, next to the warehouse
    ("13010-111", "SP", "America/Sao_Paulo"),  # Campinas: SP state, not the capital
    ("14010-100", "SP", "America/Sao_Paulo"),  # Ribeirão Preto
    ("20040-020", "RJ", "America/Sao_Paulo"),  # Rio de Janeiro
    ("24020-005", "RJ", "America/Sao_Paulo"),  # Niterói
    ("30130-010", "MG", "America/Sao_Paulo"),  # Belo Horizonte
    ("29010-120", "ES", "America/Sao_Paulo"),  # Vitória
    ("80010-000", "PR", "America/Sao_Paulo"),  # Curitiba
    ("88010-400", "SC", "America/Sao_Paulo"),  # Florianópolis
    ("90010-150", "RS", "America/Sao_Paulo"),  # Porto Alegre
    ("70040-010", "DF", "America/Sao_Paulo"),  # Brasília
    ("74003-010", "GO", "America/Sao_Paulo"),  # Goiânia
    ("78005-000", "MT", "America/Cuiaba"),  # Cuiabá
    ("79002-000", "MS", "America/Campo_Grande"),  # Campo Grande
    ("40020-000", "BA", "America/Bahia"),  # Salvador
    ("50030-230", "PE", "America/Recife"),  # Recife
    ("60060-170", "CE", "America/Fortaleza"),  # Fortaleza
    ("59012-300", "RN", "America/Fortaleza"),  # Natal
    ("65010-000", "MA", "America/Fortaleza"),  # São Luís
    ("49010-000", "SE", "America/Maceio"),  # Aracaju
    ("66010-000", "PA", "America/Belem"),  # Belém
    ("69005-070", "AM", "America/Manaus"),  # Manaus
    ("69900-062", "AC", "America/Rio_Branco"),  # Rio Branco
    ("76801-059", "RO", "America/Porto_Velho"),  # Porto Velho
]

# Local dates at the warehouse (America/Sao_Paulo) around which holidays are in play.
HOLIDAY_WINDOWS_BR: list[tuple[date, int]] = [
    (date(2026, 2, 12), 6),  # Carnival Mon 16 and Tue 17 Feb, Ash Wednesday
    (date(2026, 4, 16), 6),  # Tiradentes Tue 21 Apr
    (date(2026, 6, 2), 4),  # Corpus Christi Thu 4 Jun
    (date(2026, 7, 7), 4),  # Revolução Constitucionalista Thu 9 Jul (São Paulo state)
    (date(2026, 9, 3), 5),  # Independência Mon 7 Sep
    (date(2026, 10, 8), 5),  # Nossa Senhora Aparecida Mon 12 Oct
    (date(2026, 10, 29), 5),  # Finados Mon 2 Nov
    (date(2026, 11, 12), 9),  # Proclamação da República Sun 15 Nov, Consciência Negra Fri 20
    (date(2026, 12, 22), 6),  # Christmas Fri 25 Dec
    (date(2026, 12, 29), 6),  # New Year
    (date(2027, 2, 4), 6),  # Carnival Mon 8 and Tue 9 Feb 2027
]


@dataclass(frozen=True)
class BodySpec:
    """What the request bodies of one country are made of."""

    country: str
    destinations: list[tuple[str, str, str]]
    holiday_windows: list[tuple[date, int]]
    ordinary_start: date
    warehouse_tz: ZoneInfo
    cutoffs: list[tuple[int, int]] = field(default_factory=list)


US_BODIES = BodySpec("US", DESTINATIONS, HOLIDAY_WINDOWS, date(2025, 3, 1), WAREHOUSE_TZ, CUTOFFS)
BODY_DESTINATIONS = {
    "US": (DESTINATIONS, HOLIDAY_WINDOWS, date(2025, 3, 1)),
    "BR": (DESTINATIONS_BR, HOLIDAY_WINDOWS_BR, date(2026, 1, 5)),
}
# The bare app's canned answer per country: a destination that one option cannot serve, on
# a day with holidays in the window. US: the bare app's own default (Pacific, the day before
# Thanksgiving 2025); BR: Rio on the Friday before Carnival 2026.
SAMPLE_BODIES = {
    "BR": {
        "destination": {"country": "BR", "postal_code": "20040-020"},
        "order_time": "2026-02-13T13:30:00-03:00",
    },
}


def body_spec(rules: Rules) -> BodySpec:
    """Bodies for the country of the rules' first origin, around its cutoffs, in its zone."""
    origin = rules.origins[0]
    if origin.country not in BODY_DESTINATIONS:
        raise BenchError(
            f"no request bodies for origin country {origin.country}: "
            f"use rules with a US or BR origin first"
        )
    destinations, windows, ordinary = BODY_DESTINATIONS[origin.country]
    cutoffs = sorted(
        {origin.cutoff} | {o.cutoff for o in rules.shipping_options if o.cutoff is not None}
    )
    return BodySpec(
        origin.country,
        destinations,
        windows,
        ordinary,
        ZoneInfo(origin.time_zone),
        [(c.hour, c.minute) for c in cutoffs],
    )


# --- request bodies ---------------------------------------------------------------------------


def _instant(rng: random.Random, day: date, customer_tz: str, spec: BodySpec) -> str:
    """An ISO 8601 instant on a warehouse-local day: near a cutoff mostly, written in the
    warehouse's zone, the customer's zone or UTC."""
    if rng.random() < 0.7:
        hour, minute = rng.choice(spec.cutoffs)
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=spec.warehouse_tz)
        local += timedelta(seconds=rng.randint(-600, 600))
    else:
        local = datetime(day.year, day.month, day.day, tzinfo=spec.warehouse_tz) + timedelta(
            seconds=rng.randrange(86_400)
        )
    style = rng.random()
    if style < 0.4:
        return local.isoformat()
    if style < 0.8:
        return local.astimezone(ZoneInfo(customer_tz)).isoformat()
    return local.astimezone(ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")


def make_bodies(count: int, seed: int, spec: BodySpec = US_BODIES) -> list[str]:
    """`count` JSON request bodies, the same for a given seed and spec."""
    rng = random.Random(seed)
    ordinary_start, ordinary_days = spec.ordinary_start, 600
    bodies: list[str] = []
    for _ in range(count):
        zip_code, state, customer_tz = rng.choice(spec.destinations)
        destination: dict[str, str] = {"country": spec.country, "postal_code": zip_code}
        roll = rng.random()
        if roll < 0.1:
            if spec.country == "US":  # ZIP+4
                destination["postal_code"] = f"{zip_code}-{rng.randrange(10_000):04d}"
            else:  # the CEP without its hyphen
                destination["postal_code"] = zip_code.replace("-", "")
        elif roll < 0.25:
            destination["subdivision"] = state
        body: dict[str, object] = {"destination": destination}
        kind = rng.random()
        order_day: date | None = None
        if kind < 0.4:
            start, span = rng.choice(spec.holiday_windows)
            order_day = start + timedelta(days=rng.randrange(span))
        elif kind < 0.75:
            order_day = ordinary_start + timedelta(days=rng.randrange(ordinary_days))
        if order_day is not None:  # else: no order_time, the service uses now
            body["order_time"] = _instant(rng, order_day, customer_tz, spec)
        if rng.random() < 0.5:
            items: list[dict[str, object]] = [
                {"sku": f"SKU-{rng.randrange(1, 500):04d}", "quantity": rng.randint(1, 3)}
                for _ in range(rng.randint(1, 3))
            ]
            if rng.random() < 0.1:
                ready = (order_day or date.today()) + timedelta(days=rng.randint(3, 40))
                items[0]["available_on"] = ready.isoformat()
            body["items"] = items
        bodies.append(json.dumps(body, separators=(",", ":")))
    return bodies


def write_lua(bodies: list[str], path: Path) -> None:
    """A wrk script that pre-formats every request once and cycles through them in order, and
    reports its summary as one JSON line (latencies in microseconds)."""
    lines = ["local bodies = {"]
    for body in bodies:
        assert "]==]" not in body
        lines.append(f"  [==[{body}]==],")
    lines.append("}")
    lines.append(
        f"""
local requests = {{}}
local next_index = 0

init = function(args)
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "{PATH}", {{["Content-Type"] = "application/json"}}, body)
  end
end

request = function()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests": %d, "duration_us": %d, "p50_us": %.1f, "p99_us": %.1f, ' ..
    '"max_us": %.1f, "non2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
"""
    )
    path.write_text("\n".join(lines))


# --- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class BenchError(RuntimeError):
    """A failed benchmark step, reported without a traceback."""


def service_env(workdir: Path, rules_file: Path) -> dict[str, str]:
    """The environment both servers (and the history import) run with: the caller's, without
    its `TRACKING_*` variables (the service runs in its default configuration), plus the
    benchmark's database and rules."""
    return {
        **environ_without_settings(),
        "TRACKING_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "TRACKING_RULES_FILE": str(rules_file),
    }


def tracking_service_command() -> list[str]:
    script = Path(sys.executable).with_name("tracking-service")
    found = str(script) if script.exists() else shutil.which("tracking-service")
    if not found:
        raise BenchError("the tracking-service command is not installed (pip install -e .)")
    return [found]


def service_command(port: int) -> list[str]:
    """The service as `serve` starts it: uvicorn, one process, the settings' defaults (log
    level info, the app's own access log as `TRACKING_ACCESS_LOG` says, uvicorn's off)."""
    return [*tracking_service_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]


def bare_command(port: int) -> list[str]:
    """`python -m uvicorn bare_app:create_app`: one process, no access log, warnings only."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bare_app:create_app",
        "--factory",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@contextmanager
def server_process(
    name: str,
    command_for: Callable[[int], list[str]],
    workdir: Path,
    probe_body: str,
    env: dict[str, str],
) -> Iterator[Server]:
    """Start `command_for(port)` on a free port in `workdir` (no stray .env from the caller's
    directory), its output to `<name>.log`; wait until it answers the probe. Stopped on exit,
    whatever happens."""
    port = free_port()
    command = command_for(port)
    log = workdir / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=workdir,  # no stray .env from the caller's directory
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
        )
    server = Server(name, port, process, log)
    try:
        wait_ready(server, probe_body)
        yield server
    finally:
        stop(process)


def wait_ready(server: Server, probe_body: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise BenchError(
                    f"{server.name} exited with code {server.process.returncode} at start-up:\n"
                    f"{server.log_tail()}"
                )
            try:
                response = client.post(
                    server.url + PATH,
                    content=probe_body,
                    headers={"Content-Type": "application/json"},
                )
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            if response.status_code == 200:
                return
            raise BenchError(
                f"{server.name} answered {response.status_code} to {probe_body}:\n"
                f"{response.text[:2000]}"
            )
    raise BenchError(f"{server.name} did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT (uvicorn's graceful shutdown), then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def import_history(history: Path, fmt: str, workdir: Path, env: dict[str, str]) -> str:
    """`tracking-service import-history` into the benchmark's database; its summary line."""
    command = tracking_service_command()
    done = subprocess.run(
        [*command, "import-history", str(history), "--format", fmt, "--show-errors", "0"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise BenchError(f"import-history failed (exit {done.returncode}):\n{done.stderr}")
    lines = [x.strip() for x in done.stdout.splitlines() if x.strip().startswith("imported")]
    return lines[-1] if lines else done.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class Checked:
    """What the verification pass saw: mean response size, estimates by basis."""

    mean_bytes: float
    estimates: int
    on_history: int


def verify(server: Server, bodies: list[str]) -> Checked:
    """Every body once: a 200 and a valid EstimateResponse, else fail."""
    sizes: list[int] = []
    estimates = on_history = 0
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        for body in bodies:
            response = client.post(PATH, content=body, headers={"Content-Type": "application/json"})
            if response.status_code != 200:
                raise BenchError(
                    f"{server.name} answered {response.status_code} to {body}:\n"
                    f"{response.text[:2000]}"
                )
            parsed = EstimateResponse.model_validate_json(response.content)
            sizes.append(len(response.content))
            estimates += len(parsed.estimates)
            on_history += sum(e.basis == "history" for e in parsed.estimates)
    return Checked(statistics.fmean(sizes), estimates, on_history)


# --- load generators --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def run_wrk(wrk: str, url: str, script: Path, duration: int, connections: int) -> Run:
    command = [
        wrk,
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{duration}s",
        "--timeout",
        "10s",
        "--script",
        str(script),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(
            f"wrk failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}".rstrip()
        )
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return Run(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        non2xx=data["non2xx"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
    )


def _httpx_worker(
    url: str, bodies: list[str], connections: int, duration: float, first: int, out: mp.Queue
) -> None:
    """One load process: `connections` concurrent request loops for `duration` seconds."""

    async def main() -> tuple[int, int, int, list[float], float]:
        latencies: list[float] = []
        counts = {"non2xx": 0, "errors": 0}
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        headers = {"Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0) as client:
            start = time.perf_counter()
            deadline = start + duration

            async def loop(index: int) -> None:
                while time.perf_counter() < deadline:
                    body = bodies[index % len(bodies)]
                    index += connections
                    sent = time.perf_counter()
                    try:
                        response = await client.post(PATH, content=body, headers=headers)
                    except httpx.HTTPError:
                        counts["errors"] += 1
                        continue
                    latencies.append(time.perf_counter() - sent)
                    if not 200 <= response.status_code < 300:
                        counts["non2xx"] += 1

            await asyncio.gather(*(loop(first + i) for i in range(connections)))
            elapsed = time.perf_counter() - start
        return len(latencies), counts["non2xx"], counts["errors"], latencies, elapsed

    out.put(asyncio.run(main()))


def run_httpx(url: str, bodies: list[str], duration: int, connections: int, processes: int) -> Run:
    context = mp.get_context("spawn")
    queue: mp.Queue = context.Queue()
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    workers = [
        context.Process(
            target=_httpx_worker,
            args=(url, bodies, share, float(duration), sum(shares[:i]), queue),
            daemon=True,
        )
        for i, share in enumerate(shares)
        if share
    ]
    try:
        for worker in workers:
            worker.start()
        results = [queue.get(timeout=duration + 60) for _ in workers]
        for worker in workers:
            worker.join(timeout=10)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=5)
    latencies = sorted(x for r in results for x in r[3])
    if not latencies:
        raise BenchError("the httpx load generator completed no request")
    return Run(
        requests=sum(r[0] for r in results),
        seconds=max(r[4] for r in results),
        p50_ms=statistics.quantiles(latencies, n=100)[49] * 1e3,
        p99_ms=statistics.quantiles(latencies, n=100)[98] * 1e3,
        non2xx=sum(r[1] for r in results),
        socket_errors=sum(r[2] for r in results),
    )


# --- the benchmark ----------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Throughput and latency of POST /v1/estimates (the real service as `tracking-service "
            "serve` starts it, default settings, US sample rules, 4 shipping options, holidays "
            "in play) against a bare FastAPI endpoint with the same request/response models "
            "that computes nothing (uvicorn, no access log). Both run one process on 127.0.0.1 "
            "and get the same load from wrk (1 thread) or, without wrk, from an httpx load "
            "generator; runs alternate bare, service, ... "
            f"Goal: service/bare throughput >= {GOAL}."
        ),
        epilog=f"Install wrk: {INSTALL_WRK}.",
    )
    parser.add_argument(
        "--rules",
        type=Path,
        default=bundled_rules_path("us_shop.toml"),
        help="rules file for both servers (default: the bundled US sample); request bodies "
        "are made for the country of its first origin (US or BR)",
    )
    parser.add_argument(
        "--history",
        type=Path,
        help="delivery-history file imported into the service's database before the start "
        "(history on); the bare app's canned answer is computed with it too",
    )
    parser.add_argument(
        "--history-format",
        choices=["generic", "olist"],
        help="format of --history (required with it)",
    )
    parser.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="TRACKING_NAME=VALUE",
        help="run the service with this setting instead of its default (repeatable), e.g. "
        "--set TRACKING_ACCESS_LOG=false; the goal is stated for the defaults",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="open connections (32)")
    parser.add_argument("--rounds", type=int, default=3, help="bare+service pairs (default 3)")
    parser.add_argument(
        "--warmup", type=int, default=3, help="unreported warm-up seconds per server (default 3)"
    )
    parser.add_argument("--bodies", type=int, default=400, help="distinct request bodies (400)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the request bodies (7)")
    parser.add_argument(
        "--load",
        choices=["auto", "wrk", "httpx"],
        default="auto",
        help="load generator: wrk when installed (auto), or force one",
    )
    parser.add_argument(
        "--httpx-processes",
        type=int,
        default=2,
        help="processes of the httpx fallback generator (default 2)",
    )
    args = parser.parse_args()
    for name in ("duration", "connections", "rounds", "bodies", "httpx_processes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    if args.history is not None and args.history_format is None:
        parser.error("--history needs --history-format (generic or olist)")
    if args.history is None and args.history_format is not None:
        parser.error("--history-format needs --history FILE")
    if args.history is not None and not args.history.is_file():
        parser.error(f"--history: no such file: {args.history}")
    if not args.rules.is_file():
        parser.error(f"--rules: no such file: {args.rules}")
    return args


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("TRACKING_"):
        raise argparse.ArgumentTypeError(f"expected TRACKING_NAME=VALUE, got {text!r}")
    return name, value


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def fmt_run(label: str, run: Run, cpu_us: float | None) -> str:
    cpu = f"{cpu_us:>11.0f}" if cpu_us is not None else f"{'-':>11}"
    return (
        f"{label:<16} {run.rps:>9.0f} {run.p50_ms:>9.2f} {run.p99_ms:>9.2f} {run.requests:>9} {cpu}"
    )


def main() -> int:
    args = parse_args()
    # Stop the servers on Ctrl-C (even when started with SIGINT ignored) and on `kill`.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    wrk = shutil.which("wrk")
    if args.load == "wrk" and wrk is None:
        print(f"wrk is not installed: {INSTALL_WRK}", file=sys.stderr)
        return 2
    use_wrk = wrk is not None and args.load != "httpx"
    if not use_wrk and args.load == "auto":
        print(
            f"wrk not found ({INSTALL_WRK}); falling back to the httpx load generator, "
            "which may saturate before the servers do (the ratio then reads closer to 1).",
            file=sys.stderr,
        )

    try:
        rules = load_rules(args.rules)
    except RulesError as exc:
        raise BenchError(str(exc)) from None
    spec = body_spec(rules)
    bodies = make_bodies(args.bodies, args.seed, spec)
    rules_file = args.rules.resolve()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="estimate-bench-")))
        script = workdir / "estimates.lua"
        write_lua(bodies, script)
        env = service_env(workdir, rules_file)
        if spec.country in SAMPLE_BODIES:
            env["BENCH_SAMPLE_BODY"] = json.dumps(SAMPLE_BODIES[spec.country])
        history_note = "no delivery history"
        if args.history is not None:
            print(f"importing {args.history} ({args.history_format}) ...", flush=True)
            summary = import_history(args.history.resolve(), args.history_format, workdir, env)
            history_note = f"history {args.history.name}: {summary}"
            env["BENCH_HISTORY"] = "1"  # the bare app builds its canned answer with it

        def load(server: Server, seconds: int) -> Run:
            if use_wrk:
                assert wrk is not None
                return run_wrk(wrk, server.url, script, seconds, args.connections)
            return run_httpx(server.url, bodies, seconds, args.connections, args.httpx_processes)

        print("starting the servers ...", flush=True)
        bare = stack.enter_context(server_process("bare", bare_command, workdir, bodies[0], env))
        service_env_set = {**env, **dict(args.set)}
        service = stack.enter_context(
            server_process("service", service_command, workdir, bodies[0], service_env_set)
        )
        checked = {s.name: verify(s, bodies) for s in (bare, service)}
        on_history = checked["service"].on_history
        if args.history is not None and not on_history:
            raise BenchError("history imported, but no estimate of the service is history-based")
        generator = (
            f"wrk (1 thread, {args.connections} connections)"
            if use_wrk
            else f"httpx ({args.httpx_processes} processes, {args.connections} connections)"
        )
        print(
            f"load: {generator}, {args.duration} s per run, {args.rounds} rounds, "
            f"{len(bodies)} bodies (seed {args.seed}), {os.cpu_count()} CPUs, "
            f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}"
        )
        defaults = Settings(_env_file=None)
        changed = ", ".join(f"{k}={v}" for k, v in args.set) or "none"
        print(
            f"service: tracking-service serve, default settings (access log "
            f"{'on' if defaults.access_log else 'off'}, log level {defaults.log_level}, body "
            f"limit {defaults.max_body_bytes} B) except the database and rules; changed: {changed}"
        )
        print(
            f"rules {args.rules.name} ({len(rules.shipping_options)} shipping options, "
            f"bodies for {spec.country}); {history_note}"
        )
        print(
            f"all bodies answered 200 by both; mean response {checked['bare'].mean_bytes:.0f} B "
            f"(bare), {checked['service'].mean_bytes:.0f} B (service); service estimates on "
            f"history: {on_history} of {checked['service'].estimates}"
        )
        if args.warmup:
            for server in (bare, service):
                load(server, args.warmup)

        print(
            f"\n{'run':<16} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'requests':>9} "
            f"{'CPU us/req':>11}"
        )
        runs: dict[str, list[Run]] = {"bare": [], "service": []}
        cpu: dict[str, list[float]] = {"bare": [], "service": []}
        for round_no in range(1, args.rounds + 1):
            for server in (bare, service):
                cpu_before = cpu_seconds(server.process.pid)
                run = load(server, args.duration)
                cpu_after = cpu_seconds(server.process.pid)
                cpu_us = None
                if cpu_before is not None and cpu_after is not None and run.requests:
                    cpu_us = (cpu_after - cpu_before) / run.requests * 1e6
                    cpu[server.name].append(cpu_us)
                print(fmt_run(f"{round_no} {server.name}", run, cpu_us), flush=True)
                if run.non2xx or run.socket_errors:
                    raise BenchError(
                        f"{server.name}: {run.non2xx} non-2xx responses and "
                        f"{run.socket_errors} socket errors/timeouts in this run\n"
                        f"{server.log_tail()}"
                    )
                runs[server.name].append(run)

    # Both servers are stopped here.
    print()
    rps: dict[str, float] = {}
    p50: dict[str, float] = {}
    p99: dict[str, float] = {}
    for name, rs in runs.items():
        rps[name] = statistics.median(r.rps for r in rs)
        p50[name] = statistics.median(r.p50_ms for r in rs)
        p99[name] = statistics.median(r.p99_ms for r in rs)
        cpu_median = f"{statistics.median(cpu[name]):>11.0f}" if cpu[name] else ""
        print(
            f"{'median ' + name:<16} {rps[name]:>9.0f} {p50[name]:>9.2f} {p99[name]:>9.2f} "
            f"{'':>9} {cpu_median}"
        )
    ratio = rps["service"] / rps["bare"]
    per_round = " ".join(
        f"{s.rps / b.rps:.2f}" for b, s in zip(runs["bare"], runs["service"], strict=True)
    )
    print(f"\nthroughput service/bare: {ratio:.2f} (median req/s; per round: {per_round})")
    print(
        f"latency service/bare: p50 x{p50['service'] / p50['bare']:.2f}, "
        f"p99 x{p99['service'] / p99['bare']:.2f}"
    )
    if cpu["bare"] and cpu["service"]:
        print(
            f"CPU per request bare/service: "
            f"{statistics.median(cpu['bare']) / statistics.median(cpu['service']):.2f} "
            "(server process CPU time per answered request, medians; what the throughput "
            "ratio would be if the server had a core to itself, and less moved by other load)"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other work skews the figures)")
    print(f"goal >= {GOAL}: {'met' if ratio >= GOAL else 'NOT met'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
