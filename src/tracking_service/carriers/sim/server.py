"""The simulated carrier's HTTP API: a bare ASGI app, so one core answers thousands of lookups.

    POST /v1/track   {"tracking_numbers": ["SIM...", ...]}  (1 to 100)
        200 {"results": [{"tracking_number", "scenario", "status": {"code", "description"},
                          "estimated_delivery": {"earliest", "latest"} | null,
                          "delivered_at" | null, "signed_by" | null,
                          "events": [newest first: {"code", "description", "occurred_at",
                                                    "location": {...}}]}
                         | {"tracking_number", "error": {"code", "message"}}, ...]}
        error codes per number: NOT_FOUND (no such label yet), INVALID_NUMBER
    POST /v1/labels  {"scenario": "normal" | ... | null (a realistic mix), "count": 1..1000}
        201 {"labels": [{"tracking_number", "scenario", "created_at"}]}
    GET  /v1/scenarios, GET /healthz
    POST /v1/faults  {"status": 503 | 429 | ..., "count": n, "retry_after": seconds | null}
        the next n requests to /v1/track answer that status (to exercise clients' retries)

Bad requests answer 4xx in application/problem+json. The timeline itself lives in
`timeline.py`; this module only translates JSON to it and back. With a `Pusher` (`push.py`,
`sim-carrier --push-url`), the numbers it mints or is asked about are watched and their new
scans pushed to a URL as time passes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tracking_service.carriers.sim.number import (
    MAX_SERIAL,
    Scenario,
    SimNumberError,
    decode,
    encode,
)
from tracking_service.carriers.sim.push import Pusher
from tracking_service.carriers.sim.timeline import Plan, SimEvent, Snapshot, plan, snapshot_of
from tracking_service.timezones import zone

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Clock = Callable[[], datetime]

MAX_TRACK_BATCH = 100
MAX_LABELS = 1000
MAX_BODY_BYTES = 64 * 1024
DEFAULT_SPEED = 1440.0
# A plausible mix for labels minted without a scenario: most parcels just arrive.
SCENARIO_MIX: tuple[tuple[Scenario, int], ...] = (
    (Scenario.NORMAL, 80),
    (Scenario.DELAYED, 6),
    (Scenario.FAILED_ATTEMPT, 6),
    (Scenario.CUSTOMS_HOLD, 3),
    (Scenario.LOST, 2),
    (Scenario.RETURN_TO_SENDER, 3),
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _event_json(event: SimEvent) -> dict[str, Any]:
    place = event.place
    return {
        "code": event.code,
        "description": event.description,
        "occurred_at": event.at.astimezone(zone(place.tz)).isoformat(),
        "location": {
            "city": place.city,
            "region": place.region,
            "postal_code": place.postal_code,
            "country": place.country,
        },
    }


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _summary_json(snap: Snapshot) -> dict[str, Any]:
    current = snap.current
    window = snap.estimated_delivery
    delivered = snap.delivered_at
    return {
        "tracking_number": snap.number,
        "scenario": snap.scenario.value,
        "status": {"code": current.code, "description": current.description},
        "estimated_delivery": (
            {"earliest": window.earliest.isoformat(), "latest": window.latest.isoformat()}
            if window
            else None
        ),
        "delivered_at": (
            delivered.astimezone(zone(current.place.tz)).isoformat() if delivered else None
        ),
        "signed_by": snap.signed_by,
    }


def snapshot_json(snap: Snapshot) -> dict[str, Any]:
    """The answer for one parcel; instants carry the offset of the place they happened in."""
    return {**_summary_json(snap), "events": [_event_json(e) for e in reversed(snap.events)]}


@lru_cache(maxsize=20_000)  # about 7 kB each: at most ~140 MB
def _rendered(number: str, speed: float) -> tuple[Plan, tuple[str, ...]]:
    """The parcel's plan and each scan already serialized: a lookup only slices and joins."""
    parcel = plan(decode(number), speed)
    return parcel, tuple(_dumps(_event_json(e)) for e in parcel.events)


def _error_json(number: Any, code: str, message: str) -> str:
    return _dumps({"tracking_number": number, "error": {"code": code, "message": message}})


def track_one(number: Any, now: datetime, speed: float) -> str:
    """One result of `POST /v1/track` as JSON text (equal to `snapshot_json` when found)."""
    if not isinstance(number, str):
        return _error_json(number, "INVALID_NUMBER", "tracking numbers are strings")
    try:
        parcel, events = _rendered(number, speed)
    except SimNumberError as exc:
        return _error_json(number, "INVALID_NUMBER", str(exc))
    snap = snapshot_of(parcel, now)
    if snap is None:
        return _error_json(number, "NOT_FOUND", "no label with this number exists yet")
    seen = ",".join(reversed(events[: len(snap.events)]))
    return f'{_dumps(_summary_json(snap))[:-1]},"events":[{seen}]}}'


def mint(
    scenario: Scenario | None, count: int, now: datetime, rng: random.Random
) -> list[dict[str, str]]:
    """New labels created `now`; without a scenario, drawn from `SCENARIO_MIX`."""
    created = now.replace(microsecond=0)
    scenarios, weights = zip(*SCENARIO_MIX, strict=True)
    labels = []
    for _ in range(count):
        chosen = scenario or rng.choices(scenarios, weights)[0]
        number = encode(chosen, created, rng.randint(0, MAX_SERIAL))
        labels.append(
            {
                "tracking_number": number,
                "scenario": chosen.value,
                "created_at": created.isoformat(),
            }
        )
    return labels


class SimCarrierApp:
    """ASGI app; `speed` simulated seconds pass per real second, `clock` tells the real time."""

    def __init__(
        self,
        speed: float = DEFAULT_SPEED,
        clock: Clock = utc_now,
        seed: int | None = None,
        pusher: Pusher | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self.clock = clock
        self.rng = random.Random(seed)
        self.pusher = pusher
        self._faults: list[tuple[int, float | None]] = []

    def render(self, number: str, now: datetime) -> str:
        """One number's `/v1/track` result at `now` (what a push carries)."""
        return track_one(number, now, self.speed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        try:
            if path == "/v1/track":
                self._allow(method, "POST")
                body = await self._json_body(receive)
                if self._faults:
                    status, retry_after = self._faults.pop(0)
                    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                    await _problem(send, status, "injected fault", headers)
                    return
                await _send_body(send, 200, self._track(body).encode(), b"application/json")
            elif path == "/v1/labels":
                self._allow(method, "POST")
                await _json(send, 201, self._labels(await self._json_body(receive)))
            elif path == "/v1/scenarios":
                self._allow(method, "GET")
                await _json(send, 200, {"scenarios": [s.value for s in Scenario]})
            elif path == "/v1/faults":
                self._allow(method, "POST")
                self._set_faults(await self._json_body(receive))
                await _json(send, 202, {"pending_faults": len(self._faults)})
            elif path in ("/healthz", "/"):
                self._allow(method, "GET")
                await _json(send, 200, {"status": "ok", "speed": self.speed})
            else:
                raise BadRequest(404, f"no route {path}")
        except BadRequest as exc:
            await _problem(send, exc.status, exc.detail)

    @staticmethod
    def _allow(method: str, expected: str) -> None:
        if method != expected:
            raise BadRequest(405, f"use {expected}")

    @staticmethod
    async def _json_body(receive: Receive) -> Any:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequest(400, "client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise BadRequest(413, f"body larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        try:
            return json.loads(b"".join(chunks))
        except ValueError as exc:
            raise BadRequest(400, f"body is not JSON: {exc}") from None

    def _track(self, body: Any) -> str:
        numbers = body.get("tracking_numbers") if isinstance(body, dict) else None
        if not isinstance(numbers, list) or not numbers:
            raise BadRequest(400, 'expected {"tracking_numbers": [...]} with 1 to 100 numbers')
        if len(numbers) > MAX_TRACK_BATCH:
            raise BadRequest(400, f"at most {MAX_TRACK_BATCH} tracking numbers per request")
        now = self.clock()
        if self.pusher is not None:
            self.pusher.watch(numbers, now, self.speed)
        return '{"results":[' + ",".join(track_one(n, now, self.speed) for n in numbers) + "]}"

    def _labels(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest(400, "expected a JSON object")
        raw_scenario = body.get("scenario")
        count = body.get("count", 1)
        try:
            scenario = Scenario(raw_scenario) if raw_scenario is not None else None
        except ValueError:
            names = ", ".join(s.value for s in Scenario)
            raise BadRequest(422, f"unknown scenario {raw_scenario!r}: one of {names}") from None
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_LABELS:
            raise BadRequest(422, f"count must be an integer from 1 to {MAX_LABELS}")
        now = self.clock()
        labels = mint(scenario, count, now, self.rng)
        if self.pusher is not None:
            self.pusher.watch((label["tracking_number"] for label in labels), now, self.speed)
        return {"labels": labels}

    def _set_faults(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise BadRequest(400, "expected a JSON object")
        status, count = body.get("status", 503), body.get("count", 1)
        retry_after = body.get("retry_after")
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise BadRequest(422, "status must be an HTTP error status (400-599)")
        if not isinstance(count, int) or not 0 <= count <= 1000:
            raise BadRequest(422, "count must be an integer from 0 to 1000")
        if retry_after is not None and (
            not isinstance(retry_after, int | float) or retry_after < 0
        ):
            raise BadRequest(422, "retry_after must be a number of seconds >= 0")
        self._faults = [(status, retry_after)] * count

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.pusher is not None:
                    self.pusher.start(self.clock, self.render)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pusher is not None:
                    await self.pusher.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _send_body(
    send: Send, status: int, body: bytes, content_type: bytes, extra: dict[str, str] | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, payload: Any) -> None:
    body = _dumps(payload).encode()
    await _send_body(send, status, body, b"application/json")


_TITLES = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Too Large"}


async def _problem(
    send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    payload = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Unprocessable Content" if status == 422 else "Error"),
        "status": status,
        "detail": detail,
    }
    body = json.dumps(payload).encode()
    await _send_body(send, status, body, b"application/problem+json", headers)


def create_sim_app(
    speed: float = DEFAULT_SPEED,
    clock: Clock = utc_now,
    seed: int | None = None,
    pusher: Pusher | None = None,
) -> SimCarrierApp:
    """The simulated carrier, ready to mount in-process or serve with uvicorn; with a
    `pusher`, new scans are pushed while its lifespan runs."""
    return SimCarrierApp(speed=speed, clock=clock, seed=seed, pusher=pusher)


def serve(
    host: str = "127.0.0.1",
    port: int = 8900,
    speed: float = DEFAULT_SPEED,
    *,
    clock: Clock = utc_now,
    access_log: bool = False,
    log_level: str = "info",
    push_url: str | None = None,
    push_secret: str | None = None,
) -> None:
    """Run the simulated carrier with uvicorn in this process (blocks). With a fast `clock`
    (the service's), `speed` 1 puts the scans on that clock's simulated time."""
    import uvicorn

    uvicorn.run(
        create_sim_app(
            speed=speed,
            clock=clock,
            pusher=Pusher(push_url, secret=push_secret) if push_url else None,
        ),
        host=host,
        port=port,
        access_log=access_log,
        log_level=log_level,
        lifespan="on",
    )


if __name__ == "__main__":  # python -m tracking_service.carriers.sim.server [port] [speed]
    import sys

    serve(
        port=int(sys.argv[1]) if len(sys.argv) > 1 else 8900,
        speed=float(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_SPEED,
    )
