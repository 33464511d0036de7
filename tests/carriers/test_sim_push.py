"""The simulated carrier pushing new scans of the numbers it minted or was asked about."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tracking_service.carriers.sim.number import Scenario, decode, encode
from tracking_service.carriers.sim.push import Pusher
from tracking_service.carriers.sim.server import create_sim_app, track_one
from tracking_service.carriers.sim.timeline import plan

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SPEED = 1440.0
URL = "http://service.test/v1/carriers/simulated/events"


class Receiver:
    """Stands in for the service: keeps every push, answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[dict[str, object]] = []
        self.secrets: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        self.secrets.append(request.headers.get("X-Push-Secret"))
        return httpx.Response(self.status, json={})


def render(number: str, now: datetime) -> str:
    return track_one(number, now, SPEED)


def instants(number: str) -> tuple[datetime, ...]:
    return plan(decode(number), SPEED).instants


async def test_new_scans_are_pushed_once_as_the_carriers_own_answer() -> None:
    number = encode(Scenario.NORMAL, T0, 1)
    receiver = Receiver()
    pusher = Pusher(URL, secret="s3cret", transport=httpx.MockTransport(receiver))
    first_scan, second_scan = instants(number)[:2]
    pusher.watch([number], first_scan, SPEED)  # the asker already saw the label scan

    assert await pusher.tick(first_scan, render) == 0
    assert receiver.bodies == []
    assert await pusher.tick(second_scan, render) == 1
    assert receiver.bodies == [{"results": [json.loads(render(number, second_scan))]}]
    assert receiver.secrets == ["s3cret"]
    assert await pusher.tick(second_scan, render) == 0  # nothing new: nothing sent
    assert len(receiver.bodies) == 1
    await pusher.stop()


async def test_a_parcel_whose_last_scan_was_pushed_is_forgotten() -> None:
    number = encode(Scenario.NORMAL, T0, 2)
    pusher = Pusher(URL, transport=httpx.MockTransport(Receiver()))
    pusher.watch([number], T0, SPEED)
    end = instants(number)[-1]
    assert await pusher.tick(end, render) == len(instants(number)) - 1
    assert pusher.watched == 0
    pusher.watch([number], end, SPEED)  # nothing left to come: not watched again
    assert pusher.watched == 0
    await pusher.stop()


async def test_a_failed_push_is_tried_again_with_what_is_new_by_then() -> None:
    number = encode(Scenario.NORMAL, T0, 3)
    receiver = Receiver(status=503)
    pusher = Pusher(URL, transport=httpx.MockTransport(receiver))
    pusher.watch([number], T0, SPEED)
    later = instants(number)[2]
    with pytest.raises(httpx.HTTPStatusError):
        await pusher.tick(later, render)
    receiver.status = 200
    assert await pusher.tick(later, render) == 2
    await pusher.stop()


def test_watching_is_bounded_and_skips_what_is_no_simulated_number() -> None:
    pusher = Pusher(URL, max_watched=2)
    numbers = [encode(Scenario.NORMAL, T0, serial) for serial in (4, 5, 6)]
    pusher.watch([*numbers, "1Z999AA10123456784", 42], T0, SPEED)
    assert pusher.watched == 2
    assert pusher.due(T0 + timedelta(days=30)) == numbers[1:]  # the oldest went first


async def test_the_server_watches_numbers_it_mints_and_is_asked_about() -> None:
    pusher = Pusher(URL)
    app = create_sim_app(speed=SPEED, clock=lambda: T0, seed=7, pusher=pusher)
    asked = encode(Scenario.NORMAL, T0 - timedelta(minutes=1), 8)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim.test"
    ) as client:
        minted = await client.post("/v1/labels", json={"count": 2})
        tracked = await client.post("/v1/track", json={"tracking_numbers": [asked, "SIM"]})
    assert minted.status_code == 201 and tracked.status_code == 200
    assert pusher.watched == 3


def test_a_pusher_needs_a_positive_interval() -> None:
    with pytest.raises(ValueError):
        Pusher(URL, every=0)
