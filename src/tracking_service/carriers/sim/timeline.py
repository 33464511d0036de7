"""The simulated parcel's life: a pure function of its tracking number, the instant and the speed.

Scans are planned on a *simulated clock* that starts at the label instant and runs `speed` times
faster than the real one (1440: one simulated day per real minute). Working hours, pickups in the
afternoon and deliveries in the morning are planned on the simulated clock in each place's local
zone; every instant we report is the *real* instant that simulated instant maps to, so scans are
never in the future. At speed 1 the simulation runs in real time. The timing jitter comes from a
hash of the number, so every process computes the same timeline for the same number.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from tracking_service.carriers.sim.number import Scenario, SimNumber, decode
from tracking_service.timezones import zone


@dataclass(frozen=True, slots=True)
class Place:
    city: str
    region: str
    postal_code: str
    country: str
    tz: str


@dataclass(frozen=True, slots=True)
class SimEvent:
    at: datetime  # real instant, aware UTC
    code: str
    description: str
    place: Place


@dataclass(frozen=True, slots=True)
class Window:
    earliest: date
    latest: date


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything that will ever happen to the parcel, in real instants, oldest first."""

    number: str
    scenario: Scenario
    created_at: datetime
    speed: float
    events: tuple[SimEvent, ...]
    instants: tuple[datetime, ...]  # events' instants, for bisecting
    estimates: tuple[tuple[datetime, Window | None], ...]  # (from this instant, estimate), sorted
    signed_by: str | None
    destination: Place


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the carrier knows about the parcel at one instant."""

    number: str
    scenario: Scenario
    events: tuple[SimEvent, ...]  # oldest first, none after `now`
    estimated_delivery: Window | None
    delivered_at: datetime | None
    signed_by: str | None

    @property
    def current(self) -> SimEvent:
        return self.events[-1]


# The carrier's own status codes and what they mean.
CODES: dict[str, str] = {
    "LC": "Shipping label created, carrier awaiting item",
    "PU": "Picked up",
    "AR": "Arrived at carrier facility",
    "DP": "Departed carrier facility",
    "IG": "Arrived at import gateway",
    "CH": "Held by customs: documentation required from the receiver",
    "CR": "Released by customs",
    "OD": "Out for delivery",
    "AT": "Delivery attempted: no one available to sign",
    "HP": "Held at carrier facility, available for pickup",
    "DL": "Delivered",
    "RS": "Unclaimed: returning to sender",
    "RT": "In transit back to sender",
    "RD": "Returned to sender",
}

US_FACILITIES = (
    Place("Los Angeles", "CA", "90021", "US", "America/Los_Angeles"),
    Place("Seattle", "WA", "98108", "US", "America/Los_Angeles"),
    Place("Phoenix", "AZ", "85043", "US", "America/Phoenix"),
    Place("Denver", "CO", "80216", "US", "America/Denver"),
    Place("Dallas", "TX", "75212", "US", "America/Chicago"),
    Place("Chicago", "IL", "60638", "US", "America/Chicago"),
    Place("Atlanta", "GA", "30336", "US", "America/New_York"),
    Place("Newark", "NJ", "07114", "US", "America/New_York"),
    Place("Miami", "FL", "33166", "US", "America/New_York"),
)
HUBS = (
    Place("Memphis", "TN", "38118", "US", "America/Chicago"),
    Place("Louisville", "KY", "40209", "US", "America/Kentucky/Louisville"),
    Place("Indianapolis", "IN", "46241", "US", "America/Indiana/Indianapolis"),
)
FOREIGN_ORIGINS = (
    Place("Shenzhen", "GD", "518000", "CN", "Asia/Shanghai"),
    Place("Hamburg", "HH", "20457", "DE", "Europe/Berlin"),
    Place("Toronto", "ON", "M5V 2T6", "CA", "America/Toronto"),
)
IMPORT_GATEWAYS = (
    Place("Los Angeles", "CA", "90045", "US", "America/Los_Angeles"),
    Place("Jamaica", "NY", "11430", "US", "America/New_York"),
)
SIGNERS = ("J. SMITH", "M. GARCIA", "A. NGUYEN", "R. JOHNSON", "L. CHEN", None, None)


def _hours(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(hours=rng.uniform(low, high))


def next_local(after: datetime, place: Place, at: time, rng: random.Random) -> datetime:
    """The first `at` (local, plus up to an hour of jitter) after `after`, skipping Sundays."""
    local_zone = zone(place.tz)
    local = after.astimezone(local_zone)
    day = local.date()
    while True:
        candidate = datetime.combine(day, at, tzinfo=local_zone) + _hours(rng, 0, 1)
        if candidate > local and candidate.weekday() != 6:
            return candidate.astimezone(after.tzinfo)
        day += timedelta(days=1)


class _Planner:
    """Collects scans on the simulated clock; `plan()` converts them to real instants."""

    def __init__(self, sim: SimNumber) -> None:
        seed = hashlib.blake2b(str(sim).encode(), digest_size=8).digest()
        self.rng = random.Random(int.from_bytes(seed, "big"))
        self.sim = sim
        self.events: list[tuple[datetime, str, Place]] = []
        self.estimates: list[tuple[datetime, datetime | None]] = []  # sim instant, delivery day

    def scan(self, at: datetime, code: str, place: Place) -> datetime:
        self.events.append((at, code, place))
        return at

    def estimate(self, at: datetime, delivery: datetime | None) -> None:
        self.estimates.append((at, delivery))


def _deliver_from(
    p: _Planner, arrived: datetime, destination: Place, attempts: int
) -> tuple[datetime, datetime]:
    """Out for delivery the next morning; `attempts` failed tries first. Returns (OD, end)."""
    rng = p.rng
    out = next_local(arrived + timedelta(hours=1), destination, time(7, 45), rng)
    for _ in range(attempts):
        p.scan(out, "OD", destination)
        tried = p.scan(out + _hours(rng, 2.5, 6), "AT", destination)
        out = next_local(tried + timedelta(hours=2), destination, time(7, 45), rng)
        p.estimate(tried, out)
    p.scan(out, "OD", destination)
    return out, out + _hours(rng, 2, 7)


def _domestic_to_hub(p: _Planner, origin: Place, hub: Place) -> datetime:
    """Label, afternoon pickup, origin facility, hub arrival. Returns the hub arrival."""
    rng, created = p.rng, p.sim.created_at
    p.scan(created, "LC", origin)
    picked = p.scan(
        next_local(created + _hours(rng, 1, 3), origin, time(16, 30), rng), "PU", origin
    )
    arrived = p.scan(picked + _hours(rng, 1, 2), "AR", origin)
    departed = p.scan(arrived + _hours(rng, 2, 4), "DP", origin)
    return p.scan(departed + _hours(rng, 4, 9), "AR", hub)


def _hub_to_destination(
    p: _Planner, left_hub: datetime, hub: Place, destination: Place
) -> datetime:
    p.scan(left_hub, "DP", hub)
    return p.scan(left_hub + _hours(p.rng, 5, 16), "AR", destination)


_SimPlan = tuple[
    tuple[tuple[datetime, str, Place], ...],  # scans
    tuple[tuple[datetime, datetime | None], ...],  # estimate changes
    str | None,  # signer
    Place,  # destination
]


@lru_cache(maxsize=4096)
def _sim_plan(sim: SimNumber) -> _SimPlan:
    """The scans on the simulated clock (independent of the speed, so cached per number)."""
    p = _Planner(sim)
    rng = p.rng
    origin = rng.choice(US_FACILITIES)
    destination = rng.choice([f for f in US_FACILITIES if f.city != origin.city])
    hub = rng.choice(HUBS)
    signer = rng.choice(SIGNERS)
    scenario = sim.scenario

    if scenario is Scenario.CUSTOMS_HOLD:
        origin = rng.choice(FOREIGN_ORIGINS)
        gateway = rng.choice(IMPORT_GATEWAYS)
        created = sim.created_at
        p.scan(created, "LC", origin)
        picked = p.scan(
            next_local(created + _hours(rng, 1, 3), origin, time(16, 30), rng), "PU", origin
        )
        departed = p.scan(picked + _hours(rng, 3, 6), "DP", origin)
        landed = p.scan(departed + _hours(rng, 12, 20), "IG", gateway)
        # The carrier's first estimate: cleared on landing, delivered after one more leg.
        p.estimate(created, next_local(landed + timedelta(hours=18), destination, time(8), rng))
        held = p.scan(landed + _hours(rng, 1, 3), "CH", gateway)
        p.estimate(held, None)
        released = p.scan(held + _hours(rng, 48, 96), "CR", gateway)
        arrived = _hub_to_destination(p, released + _hours(rng, 2, 4), gateway, destination)
        out, end = _deliver_from(p, arrived, destination, attempts=0)
        p.estimate(released, out)
        p.scan(end, "DL", destination)
        p.estimate(end, None)
        return tuple(p.events), tuple(p.estimates), signer, destination

    at_hub = _domestic_to_hub(p, origin, hub)
    usual_departure = at_hub + _hours(rng, 2, 5)
    usual_arrival = usual_departure + timedelta(hours=10)
    promised = next_local(usual_arrival + timedelta(hours=1), destination, time(7, 45), rng)
    p.estimate(sim.created_at, promised)

    if scenario is Scenario.LOST:
        return tuple(p.events), tuple(p.estimates), None, destination  # scans stop forever

    left_hub = usual_departure
    if scenario is Scenario.DELAYED:
        left_hub = at_hub + _hours(rng, 3 * 24, 5 * 24)  # sits at the hub without a scan
    arrived = _hub_to_destination(p, left_hub, hub, destination)
    attempts = {Scenario.FAILED_ATTEMPT: 1, Scenario.RETURN_TO_SENDER: 2}.get(scenario, 0)
    out, end = _deliver_from(p, arrived, destination, attempts)
    if scenario is Scenario.DELAYED:
        p.estimate(left_hub, out)

    if scenario is Scenario.RETURN_TO_SENDER:
        # The last attempt fails too: held for pickup, unclaimed, sent back.
        tried = p.scan(out + _hours(rng, 2.5, 6), "AT", destination)
        held = p.scan(tried + _hours(rng, 2, 4), "HP", destination)
        p.estimate(tried, None)
        returning = p.scan(held + _hours(rng, 5 * 24, 5 * 24 + 6), "RS", destination)
        back_at_hub = p.scan(returning + _hours(rng, 10, 20), "RT", hub)
        p.scan(next_local(back_at_hub + _hours(rng, 8, 14), origin, time(10), rng), "RD", origin)
        return tuple(p.events), tuple(p.estimates), None, destination

    p.scan(end, "DL", destination)
    p.estimate(end, None)
    return tuple(p.events), tuple(p.estimates), signer, destination


def _window(delivery: datetime | None, place: Place, spread: int) -> Window | None:
    if delivery is None:
        return None
    day = delivery.astimezone(zone(place.tz)).date()
    return Window(day, day + timedelta(days=spread))


@lru_cache(maxsize=4096)
def plan(sim: SimNumber, speed: float) -> Plan:
    """The whole life of the parcel in real instants at `speed` (simulated seconds per second)."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    events, estimates, signer, destination = _sim_plan(sim)
    created = sim.created_at

    def real(at: datetime) -> datetime:
        return created + (at - created) / speed

    spread = 1 if sim.serial % 3 == 0 else 0  # some parcels get a two-day window
    real_events = tuple(SimEvent(real(at), code, CODES[code], place) for at, code, place in events)
    return Plan(
        number=str(sim),
        scenario=sim.scenario,
        created_at=created,
        speed=speed,
        events=real_events,
        instants=tuple(e.at for e in real_events),
        estimates=tuple(
            sorted(
                (
                    (real(at), _window(real(d) if d else None, destination, spread))
                    for at, d in estimates
                ),
                key=lambda change: change[0],
            )
        ),
        signed_by=signer,
        destination=destination,
    )


def snapshot_of(parcel: Plan, now: datetime) -> Snapshot | None:
    """The parcel as the carrier knows it at `now`; None before its label exists."""
    if now < parcel.created_at:
        return None
    seen = parcel.events[: bisect.bisect_right(parcel.instants, now)]
    estimate: Window | None = None
    for since, window in parcel.estimates:
        if since <= now:
            estimate = window
    delivered = seen[-1] if seen[-1].code == "DL" else None
    return Snapshot(
        number=parcel.number,
        scenario=parcel.scenario,
        events=seen,
        estimated_delivery=estimate,
        delivered_at=delivered.at if delivered else None,
        signed_by=parcel.signed_by if delivered else None,
    )


def snapshot(number: str, now: datetime, speed: float) -> Snapshot | None:
    """Decode the number (raises `SimNumberError`) and look at the parcel at `now`."""
    return snapshot_of(plan(decode(number), speed), now)
