"""The simulated carrier: number format, pure timeline, HTTP app, adapter (also over real HTTP)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time as wall
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from tracking_service.carriers.base import (
    FailureKind,
    TrackingFailure,
    TrackingOutcome,
    TrackingResult,
)
from tracking_service.carriers.http import CarrierLimits
from tracking_service.carriers.sim import number as sim_number
from tracking_service.carriers.sim.number import Scenario, SimNumberError, decode, encode
from tracking_service.carriers.sim.server import SimCarrierApp, snapshot_json, track_one
from tracking_service.carriers.sim.timeline import CODES, plan, snapshot
from tracking_service.carriers.simulated import (
    STATUS_BY_CODE,
    SimulatedCarrier,
    create_sim_app,
    parse_track_response,
)
from tracking_service.carriers.status import Status

CREATED = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday
SPEED = 1440.0


def number(scenario: Scenario, serial: int = 4242, created: datetime = CREATED) -> str:
    return encode(scenario, created, serial)


def codes_until(text: str, now: datetime, speed: float = SPEED) -> list[str]:
    snap = snapshot(text, now, speed)
    assert snap is not None
    return [e.code for e in snap.events]


def sim_days(days: float, speed: float = SPEED) -> timedelta:
    """How much real time `days` simulated days take at `speed`."""
    return timedelta(days=days) / speed


class Clock:
    """A settable real clock for the app under test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def no_sleep(_: float) -> None:
    return None


# ---------------------------------------------------------------- numbers


def test_numbers_round_trip_and_carry_scenario_and_instant() -> None:
    text = number(Scenario.RETURN_TO_SENDER, 7)
    assert text == f"SIM5{int(CREATED.timestamp())}00007{text[-1]}"
    parsed = decode(f" {text.lower()} ")
    assert parsed.scenario is Scenario.RETURN_TO_SENDER
    assert parsed.created_at == CREATED
    assert parsed.serial == 7
    assert str(parsed) == text


def test_a_wrong_check_digit_or_unknown_scenario_is_rejected() -> None:
    text = number(Scenario.NORMAL)
    wrong = text[:-1] + str((int(text[-1]) + 1) % 10)
    with pytest.raises(SimNumberError, match="check digit"):
        decode(wrong)
    body = f"9{int(CREATED.timestamp())}00001"
    with pytest.raises(SimNumberError, match="scenario"):
        decode(f"SIM{body}{sim_number.check_digit(body)}")
    with pytest.raises(SimNumberError, match="not a simulated"):
        decode("1Z5R89390357567127")


def test_encode_refuses_naive_instants_and_big_serials() -> None:
    with pytest.raises(ValueError):
        encode(Scenario.NORMAL, datetime(2026, 1, 1), 1)
    with pytest.raises(ValueError):
        encode(Scenario.NORMAL, CREATED, 100_000)


# ---------------------------------------------------------------- the timeline (pure)

FINAL_SEQUENCES = {
    Scenario.NORMAL: ["LC", "PU", "AR", "DP", "AR", "DP", "AR", "OD", "DL"],
    Scenario.DELAYED: ["LC", "PU", "AR", "DP", "AR", "DP", "AR", "OD", "DL"],
    Scenario.FAILED_ATTEMPT: ["LC", "PU", "AR", "DP", "AR", "DP", "AR", "OD", "AT", "OD", "DL"],
    Scenario.CUSTOMS_HOLD: ["LC", "PU", "DP", "IG", "CH", "CR", "DP", "AR", "OD", "DL"],
    Scenario.LOST: ["LC", "PU", "AR", "DP", "AR"],
    Scenario.RETURN_TO_SENDER: [
        *["LC", "PU", "AR", "DP", "AR", "DP", "AR"],
        *["OD", "AT", "OD", "AT", "OD", "AT", "HP", "RS", "RT", "RD"],
    ],
}


@pytest.mark.parametrize("serial", [0, 4242, 99_999])
@pytest.mark.parametrize("scenario", list(Scenario))
def test_each_scenario_runs_its_scan_sequence(scenario: Scenario, serial: int) -> None:
    text = number(scenario, serial)
    assert snapshot(text, CREATED - timedelta(seconds=1), SPEED) is None  # no label yet
    assert codes_until(text, CREATED) == ["LC"]
    assert codes_until(text, CREATED + sim_days(60)) == FINAL_SEQUENCES[scenario]


@pytest.mark.parametrize("scenario", list(Scenario))
def test_scans_are_ordered_aware_and_never_in_the_future(scenario: Scenario) -> None:
    parcel = plan(decode(number(scenario)), SPEED)
    instants = [e.at for e in parcel.events]
    assert instants == sorted(instants)
    assert all(at.tzinfo is not None for at in instants)
    now = CREATED + sim_days(2.5)
    snap = snapshot(number(scenario), now, SPEED)
    assert snap is not None and all(e.at <= now for e in snap.events)
    assert len(snap.events) < len(parcel.events) or parcel.events[-1].at <= now


def test_speed_only_compresses_time() -> None:
    sim = decode(number(Scenario.FAILED_ATTEMPT))
    real_time = plan(sim, 1.0)
    fast = plan(sim, SPEED)
    assert [e.code for e in real_time.events] == [e.code for e in fast.events]
    for slow_event, fast_event in zip(real_time.events, fast.events, strict=True):
        slow_offset = (slow_event.at - CREATED).total_seconds()
        fast_offset = (fast_event.at - CREATED).total_seconds()
        assert fast_offset == pytest.approx(slow_offset / SPEED, abs=1e-3)


def test_at_real_speed_pickups_are_afternoons_and_deliveries_mornings_never_sundays() -> None:
    for serial in range(40):
        parcel = plan(decode(number(Scenario.FAILED_ATTEMPT, serial)), 1.0)
        for event in parcel.events:
            local = event.at.astimezone(ZoneInfo(event.place.tz))
            if event.code == "PU":
                assert time(16, 30) <= local.time() <= time(17, 30)
            if event.code == "OD":
                assert time(7, 45) <= local.time() <= time(8, 45)
            if event.code in ("PU", "OD"):
                assert local.weekday() != 6


def test_normal_delivery_reports_delivery_time_signature_and_drops_the_estimate() -> None:
    text = number(Scenario.NORMAL)
    parcel = plan(decode(text), SPEED)
    delivered = parcel.events[-1]
    before = snapshot(text, delivered.at - timedelta(microseconds=1), SPEED)
    after = snapshot(text, delivered.at, SPEED)
    assert before is not None and after is not None
    assert before.current.code == "OD" and before.delivered_at is None
    assert before.estimated_delivery is not None
    assert after.current.code == "DL"
    assert after.delivered_at == delivered.at
    assert after.signed_by == parcel.signed_by
    assert after.estimated_delivery is None


def test_delayed_parcel_sits_at_the_hub_without_scans_past_its_estimate() -> None:
    text = number(Scenario.DELAYED)  # at real speed, so estimates fall on distinct days
    parcel = plan(decode(text), 1.0)
    arrived_hub, left_hub = parcel.events[4], parcel.events[5]
    assert (arrived_hub.code, left_hub.code) == ("AR", "DP")
    assert left_hub.at - arrived_hub.at >= sim_days(3, 1.0)
    first = snapshot(text, arrived_hub.at, 1.0)
    assert first is not None and first.estimated_delivery is not None
    promised = first.estimated_delivery
    for days in (1, 2, 2.9):
        snap = snapshot(text, arrived_hub.at + sim_days(days, 1.0), 1.0)
        assert snap is not None
        assert snap.current == arrived_hub  # no scan while it sits
        assert snap.estimated_delivery == promised  # the stale estimate stays
    # after it moves on, the carrier publishes a later estimate
    moved = snapshot(text, left_hub.at, 1.0)
    assert moved is not None and moved.estimated_delivery is not None
    assert moved.estimated_delivery.earliest > promised.earliest


def test_failed_attempt_then_delivery_next_day_with_a_new_estimate() -> None:
    text = number(Scenario.FAILED_ATTEMPT)
    parcel = plan(decode(text), 1.0)
    attempt = next(e for e in parcel.events if e.code == "AT")
    snap = snapshot(text, attempt.at, 1.0)
    assert snap is not None and snap.current.code == "AT"
    retry_out = parcel.events[parcel.events.index(attempt) + 1]
    zone = ZoneInfo(parcel.destination.tz)
    assert snap.estimated_delivery is not None
    assert snap.estimated_delivery.earliest == retry_out.at.astimezone(zone).date()
    assert retry_out.at.astimezone(zone).date() > attempt.at.astimezone(zone).date()
    final = snapshot(text, CREATED + timedelta(days=30), 1.0)
    assert final is not None and final.current.code == "DL"


def test_customs_hold_is_an_exception_with_no_estimate_until_released() -> None:
    text = number(Scenario.CUSTOMS_HOLD)
    parcel = plan(decode(text), SPEED)
    held = next(e for e in parcel.events if e.code == "CH")
    released = next(e for e in parcel.events if e.code == "CR")
    assert released.at - held.at >= sim_days(2)
    assert parcel.events[0].place.country != "US"  # an import
    during = snapshot(text, held.at + sim_days(1), SPEED)
    assert during is not None
    assert during.current.code == "CH" and during.estimated_delivery is None
    after = snapshot(text, released.at, SPEED)
    assert after is not None and after.estimated_delivery is not None


def test_lost_parcel_scans_stop_forever() -> None:
    text = number(Scenario.LOST)
    last = plan(decode(text), SPEED).events[-1]
    for later in (sim_days(10), sim_days(365), timedelta(days=3650)):
        snap = snapshot(text, last.at + later, SPEED)
        assert snap is not None
        assert snap.current == last and snap.delivered_at is None
        assert snap.estimated_delivery is not None  # the carrier still believes its estimate


def test_return_to_sender_ends_back_at_the_origin_unsigned() -> None:
    text = number(Scenario.RETURN_TO_SENDER)
    parcel = plan(decode(text), SPEED)
    final = snapshot(text, CREATED + sim_days(60), SPEED)
    assert final is not None
    assert final.current.code == "RD"
    assert final.current.place == parcel.events[0].place  # back where it started
    assert final.delivered_at is None and final.signed_by is None
    assert final.estimated_delivery is None


@pytest.mark.parametrize("scenario", list(Scenario))
def test_the_fast_json_path_equals_the_reference_rendering(scenario: Scenario) -> None:
    text = number(scenario, 77)
    for days in (0, 1, 2, 3.5, 6, 12, 40):
        now = CREATED + sim_days(days)
        snap = snapshot(text, now, SPEED)
        assert snap is not None
        assert json.loads(track_one(text, now, SPEED)) == snapshot_json(snap)
    assert json.loads(track_one(text, CREATED - timedelta(1), SPEED))["error"]["code"] == (
        "NOT_FOUND"
    )


def test_every_code_has_a_status_mapping() -> None:
    assert set(CODES) == set(STATUS_BY_CODE)


def test_the_timeline_is_the_same_in_another_process() -> None:
    text = number(Scenario.CUSTOMS_HOLD, 31337)
    now = CREATED + sim_days(4)
    here = snapshot(text, now, SPEED)
    assert here is not None
    code = (
        "import json, sys; from datetime import datetime;"
        "from tracking_service.carriers.sim.timeline import snapshot;"
        "from tracking_service.carriers.sim.server import snapshot_json;"
        "s = snapshot(sys.argv[1], datetime.fromisoformat(sys.argv[2]), float(sys.argv[3]));"
        "print(json.dumps(snapshot_json(s)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, text, now.isoformat(), str(SPEED)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert json.loads(out.stdout) == snapshot_json(here)


# ---------------------------------------------------------------- the HTTP app, in-process


@pytest.fixture
def clock() -> Clock:
    return Clock(CREATED)


@pytest.fixture
def sim_app(clock: Clock) -> SimCarrierApp:
    return create_sim_app(speed=SPEED, clock=clock, seed=7)


@pytest.fixture
async def sim_client(sim_app: SimCarrierApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


async def test_minted_labels_are_tracked_through_their_life(
    sim_client: httpx.AsyncClient, clock: Clock
) -> None:
    minted = await sim_client.post("/v1/labels", json={"scenario": "normal", "count": 3})
    assert minted.status_code == 201
    labels = minted.json()["labels"]
    assert len(labels) == 3
    numbers = [label["tracking_number"] for label in labels]
    assert all(decode(n).created_at == CREATED for n in numbers)
    assert {label["scenario"] for label in labels} == {"normal"}

    answer = await sim_client.post("/v1/track", json={"tracking_numbers": numbers})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["tracking_number"] for r in results] == numbers
    assert {r["status"]["code"] for r in results} == {"LC"}

    clock.now = CREATED + sim_days(30)
    later = (await sim_client.post("/v1/track", json={"tracking_numbers": numbers})).json()
    for result in later["results"]:
        assert result["status"] == {"code": "DL", "description": "Delivered"}
        assert result["events"][0]["code"] == "DL"  # newest first
        assert result["events"][-1]["code"] == "LC"
        assert datetime.fromisoformat(result["delivered_at"]).utcoffset() is not None


async def test_labels_without_scenario_come_from_the_mix(sim_client: httpx.AsyncClient) -> None:
    labels = (await sim_client.post("/v1/labels", json={"count": 200})).json()["labels"]
    scenarios = {label["scenario"] for label in labels}
    assert "normal" in scenarios and len(scenarios) > 1


async def test_unknown_future_and_malformed_numbers_get_per_number_errors(
    sim_client: httpx.AsyncClient,
) -> None:
    future = number(Scenario.NORMAL, created=CREATED + timedelta(hours=1))
    answer = await sim_client.post(
        "/v1/track", json={"tracking_numbers": [future, "SIM0000", 12, number(Scenario.LOST)]}
    )
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert results[0]["error"]["code"] == "NOT_FOUND"
    assert results[1]["error"]["code"] == "INVALID_NUMBER"
    assert results[2]["error"]["code"] == "INVALID_NUMBER"
    assert results[3]["status"]["code"] == "LC"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/track", {"tracking_numbers": []}, 400),
        ("POST", "/v1/track", {"tracking_numbers": ["SIM1"] * 101}, 400),
        ("POST", "/v1/track", {"numbers": ["x"]}, 400),
        ("POST", "/v1/track", "not json", 400),
        ("GET", "/v1/track", None, 405),
        ("POST", "/v1/labels", {"scenario": "teleported"}, 422),
        ("POST", "/v1/labels", {"count": 0}, 422),
        ("POST", "/v1/labels", {"count": "3"}, 422),
        ("POST", "/v1/faults", {"status": 200}, 422),
        ("GET", "/nowhere", None, 404),
    ],
)
async def test_bad_requests_get_problem_json(
    sim_client: httpx.AsyncClient, method: str, path: str, body: object, status: int
) -> None:
    if body == "not json":
        response = await sim_client.request(method, path, content=b"{nope")
    else:
        response = await sim_client.request(method, path, json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


async def test_oversized_body_is_refused(sim_client: httpx.AsyncClient) -> None:
    response = await sim_client.post("/v1/track", content=b"[" + b"1," * 40_000 + b"1]")
    assert response.status_code == 413


async def test_health_and_scenarios(sim_client: httpx.AsyncClient) -> None:
    assert (await sim_client.get("/healthz")).json() == {"status": "ok", "speed": SPEED}
    scenarios = (await sim_client.get("/v1/scenarios")).json()["scenarios"]
    assert scenarios == [s.value for s in Scenario]


# ---------------------------------------------------------------- the adapter, in-process


def adapter_for(app: object, **kwargs: object) -> SimulatedCarrier:
    return SimulatedCarrier(
        "http://sim",
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        sleep=no_sleep,
        **kwargs,  # type: ignore[arg-type]
    )


async def track_and_close(adapter: SimulatedCarrier, text: str) -> TrackingOutcome:
    """The adapter's outcome for one number; the adapter is closed whatever happens."""
    try:
        return (await adapter.track([text]))[text]
    finally:
        await adapter.aclose()


async def test_adapter_maps_every_scenario_to_our_statuses(clock: Clock) -> None:
    app = create_sim_app(speed=SPEED, clock=clock)
    clock.now = CREATED + sim_days(60)
    numbers = {scenario: number(scenario) for scenario in Scenario}
    adapter = adapter_for(app)
    try:
        outcomes = await adapter.track(list(numbers.values()))
    finally:
        await adapter.aclose()
    expected = {
        Scenario.NORMAL: Status.DELIVERED,
        Scenario.DELAYED: Status.DELIVERED,
        Scenario.FAILED_ATTEMPT: Status.DELIVERED,
        Scenario.CUSTOMS_HOLD: Status.DELIVERED,
        Scenario.LOST: Status.IN_TRANSIT,
        Scenario.RETURN_TO_SENDER: Status.RETURNED_TO_SENDER,
    }
    for scenario, text in numbers.items():
        outcome = outcomes[text]
        assert isinstance(outcome, TrackingResult), outcome
        assert outcome.carrier == "simulated"
        assert outcome.status is expected[scenario]
        assert outcome.raw_status_code == outcome.events[-1].raw_code
        stamps = [e.occurred_at for e in outcome.events]
        assert stamps == sorted(stamps) and all(s.tzinfo is not None for s in stamps)
        assert len({e.dedupe_key for e in outcome.events}) == len(outcome.events)
    delivered = outcomes[numbers[Scenario.NORMAL]]
    assert isinstance(delivered, TrackingResult)
    assert delivered.delivered_at == delivered.events[-1].occurred_at
    failed = outcomes[numbers[Scenario.FAILED_ATTEMPT]]
    assert isinstance(failed, TrackingResult)
    assert Status.FAILED_ATTEMPT in [e.status for e in failed.events]


async def test_adapter_reports_the_status_at_the_clock(clock: Clock) -> None:
    app = create_sim_app(speed=SPEED, clock=clock)
    text = number(Scenario.CUSTOMS_HOLD)
    held = next(e for e in plan(decode(text), SPEED).events if e.code == "CH")
    clock.now = held.at
    adapter = adapter_for(app)
    outcome = await track_and_close(adapter, text)
    assert isinstance(outcome, TrackingResult)
    assert outcome.status is Status.EXCEPTION
    assert outcome.estimated_delivery is None
    assert outcome.events[-1].location is not None


async def test_adapter_dedupe_keys_are_stable_across_polls(clock: Clock) -> None:
    app = create_sim_app(speed=SPEED, clock=clock)
    text = number(Scenario.NORMAL)
    adapter = adapter_for(app)
    try:
        clock.now = CREATED + sim_days(1)
        first = (await adapter.track([text]))[text]
        clock.now = CREATED + sim_days(5)
        second = (await adapter.track([text]))[text]
    finally:
        await adapter.aclose()
    assert isinstance(first, TrackingResult) and isinstance(second, TrackingResult)
    first_keys = [e.dedupe_key for e in first.events]
    assert [e.dedupe_key for e in second.events][: len(first_keys)] == first_keys


async def test_adapter_batches_by_100_and_answers_bad_numbers_locally(clock: Clock) -> None:
    app = create_sim_app(speed=SPEED, clock=clock, seed=3)
    seen_batches: list[int] = []

    async def counting_app(scope: dict, receive: object, send: object) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/track":
            seen_batches.append(1)
        await app(scope, receive, send)  # type: ignore[arg-type]

    numbers = [number(Scenario.NORMAL, serial) for serial in range(250)]
    future = number(Scenario.NORMAL, 1, created=CREATED + timedelta(days=1))
    adapter = adapter_for(counting_app)
    try:
        outcomes = await adapter.track([*numbers, "not-a-sim-number", future, numbers[0]])
    finally:
        await adapter.aclose()
    assert len(seen_batches) == 3  # 251 distinct valid numbers -> 100 + 100 + 51
    assert all(isinstance(outcomes[n], TrackingResult) for n in numbers)
    bad = outcomes["not-a-sim-number"]
    assert isinstance(bad, TrackingFailure) and bad.kind is FailureKind.INVALID_NUMBER
    unknown = outcomes[future]
    assert isinstance(unknown, TrackingFailure) and unknown.kind is FailureKind.NOT_FOUND


async def test_adapter_retries_injected_5xx_then_succeeds(
    sim_app: SimCarrierApp, sim_client: httpx.AsyncClient
) -> None:
    app = sim_app
    assert (
        await sim_client.post("/v1/faults", json={"status": 503, "count": 2})
    ).status_code == 202
    text = number(Scenario.NORMAL)
    adapter = adapter_for(app)
    outcome = await track_and_close(adapter, text)
    assert isinstance(outcome, TrackingResult)
    health = await sim_client.post("/v1/faults", json={"count": 0})
    assert health.json() == {"pending_faults": 0}


async def test_adapter_gives_a_typed_failure_when_rate_limited_too_long(
    sim_app: SimCarrierApp, sim_client: httpx.AsyncClient
) -> None:
    app = sim_app
    await sim_client.post("/v1/faults", json={"status": 429, "count": 10, "retry_after": 0})
    text = number(Scenario.NORMAL)
    adapter = adapter_for(app, limits=CarrierLimits(max_attempts=3, requests_per_second=100))
    outcome = await track_and_close(adapter, text)
    assert isinstance(outcome, TrackingFailure)
    assert outcome.kind is FailureKind.RATE_LIMITED


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, b"<html>oops</html>", FailureKind.BAD_RESPONSE),
        (200, b'{"results": "nope"}', FailureKind.BAD_RESPONSE),
        (200, b'{"results": [{"tracking_number": "X", "status": {}}]}', FailureKind.BAD_RESPONSE),
        (400, b'{"detail": "bad"}', FailureKind.BAD_RESPONSE),
        (503, b"down", FailureKind.UNAVAILABLE),
    ],
)
async def test_adapter_never_raises_on_strange_answers(
    status: int, body: bytes, kind: FailureKind
) -> None:
    text = number(Scenario.NORMAL)
    if b'"X"' in body:
        body = body.replace(b'"X"', json.dumps(text).encode())
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    adapter = SimulatedCarrier("http://sim", transport=transport, sleep=no_sleep)
    outcome = await track_and_close(adapter, text)
    assert isinstance(outcome, TrackingFailure)
    assert outcome.kind is kind


async def test_adapter_reports_an_unreachable_server_as_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    adapter = SimulatedCarrier(
        f"http://127.0.0.1:{port}", sleep=no_sleep, limits=CarrierLimits(max_attempts=2)
    )
    outcome = await track_and_close(adapter, number(Scenario.NORMAL))
    assert isinstance(outcome, TrackingFailure) and outcome.kind is FailureKind.UNAVAILABLE


def test_parse_keeps_unknown_codes_without_a_status() -> None:
    text = number(Scenario.NORMAL)
    body = {
        "results": [
            {
                "tracking_number": text,
                "status": {"code": "ZZ", "description": "Teleported"},
                "events": [
                    {
                        "code": "ZZ",
                        "description": "Teleported",
                        "occurred_at": "2026-03-02T10:00:00-05:00",
                        "location": None,
                    }
                ],
                "estimated_delivery": None,
                "delivered_at": None,
                "signed_by": None,
            }
        ]
    }
    outcome = parse_track_response([text], body)[text]
    assert isinstance(outcome, TrackingResult)
    assert outcome.status is None and outcome.raw_status_code == "ZZ"
    assert outcome.events[0].status is None


# ---------------------------------------------------------------- the adapter over real HTTP


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def real_server() -> Iterator[tuple[str, Clock]]:
    """The simulated carrier served by uvicorn on a free port in a background thread."""
    clock = Clock(CREATED)
    port = _free_port()
    config = uvicorn.Config(
        create_sim_app(speed=SPEED, clock=clock),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = wall.monotonic() + 10
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if wall.monotonic() > deadline:
            server.should_exit = True
            pytest.fail("the simulated carrier did not start")
        wall.sleep(0.02)
    try:
        yield base_url, clock
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def test_adapter_over_real_http(real_server: tuple[str, Clock]) -> None:
    base_url, clock = real_server
    async with httpx.AsyncClient(base_url=base_url) as client:
        minted = await client.post("/v1/labels", json={"scenario": "failed_attempt", "count": 2})
        assert minted.status_code == 201
        numbers = [label["tracking_number"] for label in minted.json()["labels"]]
        labels = [number(s, 1) for s in Scenario]
    adapter = SimulatedCarrier(base_url)
    try:
        now_outcomes = await adapter.track(numbers)
        clock.now = CREATED + sim_days(40)
        later = await adapter.track(numbers + labels)
    finally:
        await adapter.aclose()
    for text in numbers:
        first, last = now_outcomes[text], later[text]
        assert isinstance(first, TrackingResult) and first.status is Status.INFO_RECEIVED
        assert isinstance(last, TrackingResult) and last.status is Status.DELIVERED
        assert [e.raw_code for e in last.events].count("AT") == 1
    assert isinstance(later[labels[0]], TrackingResult)
    lost = later[number(Scenario.LOST, 1)]
    assert isinstance(lost, TrackingResult) and lost.status is Status.IN_TRANSIT
