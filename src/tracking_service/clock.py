"""Where "now" comes from: one injected clock, so time-dependent answers can be tested and a
simulation can run faster than real time.

Code that only needs the current instant may take a `Callable[[], datetime]` and be given
`clock.now`; tests pass a `FixedClock` instead of patching `datetime`.

A fast clock (`TRACKING_CLOCK_SPEED`, e.g. 1440 for the live demo: a simulated day a real
minute) is a `ScaledClock`: from an anchor (a real instant and the simulated instant the clock
read then) it runs `speed` times faster. Every stored instant, promise, polling time and stall
threshold then lives on that simulated time, so every process of one deployment, and the
simulated carrier, must read the same simulated time. The anchor is chosen so they do:

- `TRACKING_CLOCK_ANCHOR` (an ISO instant with offset), when set, is the anchor of every process
  that has it (real and simulated time agree at that instant); no database is needed, which
  suits a separate `sim-carrier` process;
- otherwise `open_clock` reads the anchor from the `clock_anchor` table; the first process that
  runs a fast clock on a database writes it (its start-up instant) and every other process,
  and every restart, reads it: a restarted demo continues its simulated time instead of
  jumping back to the wall clock under rows already written in the simulated future. A
  process started with another speed re-anchors the row where the old clock stands now, so
  simulated time never jumps (processes still running at the old speed must be restarted).
- a speed of 1 with no row (production) is the machine's clock; no row is ever written.

A simulated carrier agrees with the service when it runs on the service's clock at its own
speed 1 (`SimCarrierApp(speed=1, clock=services.clock.now)`): labels, scans and promises are
then all simulated instants. `real_seconds` converts a simulated duration into the real time
it takes (leases, sleeps), since real carriers' limits and timeouts stay in real time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


class Clock(Protocol):
    """A source of the current instant (timezone-aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def _aware(instant: datetime, what: str) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} needs a timezone-aware instant")
    return instant.astimezone(UTC)


class FixedClock:
    """A clock that stands still until told to move (tests)."""

    def __init__(self, instant: datetime) -> None:
        self._instant = _aware(instant, "FixedClock")

    def now(self) -> datetime:
        return self._instant

    def advance(self, delta: timedelta) -> None:
        self._instant += delta


class ScaledClock:
    """Simulated time: `speed` simulated seconds pass per real second of `real` since the real
    instant `real_at`, at which the clock read `simulated_at` (default: `real_at`)."""

    def __init__(
        self,
        speed: float,
        real_at: datetime,
        simulated_at: datetime | None = None,
        *,
        real: Clock | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError("the clock speed must be positive")
        self.speed = float(speed)
        self.real_at = _aware(real_at, "the clock anchor")
        self.simulated_at = _aware(simulated_at or real_at, "the simulated anchor")
        self.real = real or SystemClock()

    def now(self) -> datetime:
        return self.simulated_at + (self.real.now() - self.real_at) * self.speed

    def __repr__(self) -> str:
        return (
            f"ScaledClock(x{self.speed:g}, {self.real_at.isoformat()} -> "
            f"{self.simulated_at.isoformat()})"
        )


def speed_of(clock: Clock) -> float:
    """Simulated seconds per real second of a clock (1 for every clock but `ScaledClock`)."""
    return clock.speed if isinstance(clock, ScaledClock) else 1.0


def real_seconds(clock: Clock, simulated: timedelta) -> float:
    """How many real seconds `simulated` lasts on `clock`."""
    return simulated.total_seconds() / speed_of(clock)


def simulated(clock: Clock, real_seconds: float) -> timedelta:
    """How much of `clock`'s time passes in `real_seconds` real seconds."""
    return timedelta(seconds=real_seconds * speed_of(clock))


async def open_clock(
    engine: AsyncEngine,
    speed: float = 1.0,
    anchor: datetime | None = None,
    *,
    real: Clock | None = None,
) -> Clock:
    """The deployment's clock (see the module docstring): the system clock at speed 1 with no
    stored anchor, else a `ScaledClock` on `anchor` or on the anchor stored in the database."""
    from tracking_service.models.clock import ClockAnchor

    real = real or SystemClock()
    if anchor is not None:
        return ScaledClock(speed, anchor, real=real) if speed != 1 else real
    table = ClockAnchor.__table__  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        row = (await conn.execute(sa.select(table).where(table.c.id == 1))).one_or_none()
        if row is None and speed == 1:
            return real
        now = real.now()
        if row is None:
            await conn.execute(
                _insert_ignore(conn.dialect.name, table).values(
                    id=1, real_at=now, simulated_at=now, speed=speed, updated_at=now
                )
            )
            row = (await conn.execute(sa.select(table).where(table.c.id == 1))).one()
        clock = ScaledClock(row.speed, row.real_at, row.simulated_at, real=real)
        if row.speed != speed:
            log.warning(
                "clock speed changed from x%g to x%g: re-anchored where the clock stands now; "
                "restart every other process of this deployment",
                row.speed,
                speed,
            )
            clock = ScaledClock(speed, now, clock.now(), real=real)
            await conn.execute(
                sa.update(table)
                .where(table.c.id == 1)
                .values(
                    real_at=clock.real_at,
                    simulated_at=clock.simulated_at,
                    speed=speed,
                    updated_at=now,
                )
            )
    if clock.speed != 1 or clock.real_at != clock.simulated_at:
        log.info("service clock %r: now %s", clock, clock.now().isoformat(timespec="seconds"))
    return clock


def _insert_ignore(dialect: str, table: sa.Table) -> sa.Insert:
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing(index_elements=["id"])
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing(index_elements=["id"])
