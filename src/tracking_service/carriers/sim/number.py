"""The simulated carrier's tracking numbers: scenario and label instant live in the number.

Format (20 characters): ``SIM`` + scenario digit + label-creation instant as 10 digits of Unix
seconds (UTC) + 5-digit serial + a mod-10 check digit (weights 3,1 from the left) over the 16
digits before it. Because the number carries everything the timeline depends on, any process
can compute what the parcel's status is at any instant without shared state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from tracking_service.carriers.base import normalize_number

PREFIX = "SIM"
NUMBER_RE = re.compile(
    r"SIM(?P<Scenario>[0-9])(?P<Created>[0-9]{10})(?P<Serial>[0-9]{5})(?P<CheckDigit>[0-9])"
)
MAX_SERIAL = 99_999


class Scenario(StrEnum):
    """What happens to the parcel; the value's position is the digit in the number."""

    NORMAL = "normal"
    DELAYED = "delayed"
    FAILED_ATTEMPT = "failed_attempt"
    CUSTOMS_HOLD = "customs_hold"
    LOST = "lost"
    RETURN_TO_SENDER = "return_to_sender"

    @property
    def digit(self) -> int:
        return list(Scenario).index(self)

    @classmethod
    def from_digit(cls, digit: int) -> Scenario | None:
        members = list(cls)
        return members[digit] if 0 <= digit < len(members) else None


class SimNumberError(ValueError):
    """Not a simulated tracking number (wrong shape, check digit or scenario)."""


@dataclass(frozen=True, slots=True)
class SimNumber:
    scenario: Scenario
    created_at: datetime  # aware UTC, whole seconds
    serial: int

    def __str__(self) -> str:
        return encode(self.scenario, self.created_at, self.serial)


def check_digit(digits: str) -> int:
    """Mod 10 with weights 3 and 1 alternating from the left (as GS1 does)."""
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(digits))
    return (10 - total % 10) % 10


def encode(scenario: Scenario, created_at: datetime, serial: int) -> str:
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    if not 0 <= serial <= MAX_SERIAL:
        raise ValueError(f"serial must be within 0..{MAX_SERIAL}")
    seconds = int(created_at.timestamp())
    if not 0 <= seconds <= 9_999_999_999:
        raise ValueError("created_at is outside the range the number can hold")
    body = f"{scenario.digit}{seconds:010d}{serial:05d}"
    return f"{PREFIX}{body}{check_digit(body)}"


def check_digit_ok(number: str) -> bool | None:
    """True/False for a number of the right shape, None when the shape does not match."""
    match = NUMBER_RE.fullmatch(normalize_number(number))
    if match is None:
        return None
    body = match.group(0)[len(PREFIX) : -1]
    return check_digit(body) == int(match.group("CheckDigit"))


def decode(number: str) -> SimNumber:
    """Parse and validate; raises `SimNumberError` with the reason."""
    text = normalize_number(number)
    match = NUMBER_RE.fullmatch(text)
    if match is None:
        raise SimNumberError(f"{number!r} is not a simulated tracking number (SIM + 17 digits)")
    if not check_digit_ok(text):
        raise SimNumberError(f"{number!r} has a wrong check digit")
    scenario = Scenario.from_digit(int(match.group("Scenario")))
    if scenario is None:
        raise SimNumberError(f"{number!r} names no known scenario")
    created_at = datetime.fromtimestamp(int(match.group("Created")), tz=UTC)
    return SimNumber(scenario=scenario, created_at=created_at, serial=int(match.group("Serial")))
