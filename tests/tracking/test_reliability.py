"""Several workers, and a worker killed between claiming and applying."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.clock import FixedClock
from tracking_service.tracking.jobs import Tracker, poll_pass

from .worker_helpers import T0, CountingTransport, E, S, X, rows, runtime, seed, sim_numbers

# A worker that claims everything due and then hangs before polling, until it is killed.
CLAIM_AND_HANG = """
import asyncio, sys
from datetime import datetime
from tracking_service.db import create_engine, unit_of_work
from tracking_service.tracking.store import claim_due

async def main(url, due, until):
    engine = create_engine(url)
    async with unit_of_work(engine) as session:
        claims = await claim_due(
            session, worker="doomed", due_by=datetime.fromisoformat(due),
            lease_until=datetime.fromisoformat(until), limit=1000,
        )
    print(len(claims), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(*sys.argv[1:]))
"""


def outbox_is_clean(outbox: list[tuple[str, int, str]]) -> None:
    """No outbox row twice: every stream's sequences are 1..n, every event id unique."""
    streams: dict[str, list[int]] = {}
    for stream, seq, _ in outbox:
        streams.setdefault(stream, []).append(seq)
    for seqs in streams.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
    assert len({event_id for _, _, event_id in outbox}) == len(outbox)


@pytest.mark.parametrize("database_factory", ["postgresql"], indirect=True)
async def test_two_workers_poll_every_due_shipment_exactly_once(
    database_url: str, engine: AsyncEngine
) -> None:
    clock = FixedClock(T0)
    transport = CountingTransport(clock)
    numbers = sim_numbers(500)
    ids = await seed(engine, numbers)
    async with (
        runtime(database_url, clock, transport) as one,
        runtime(database_url, clock, transport) as two,
    ):
        first, second = await asyncio.gather(
            poll_pass(one, worker="w1", batch=40, concurrency=3),
            poll_pass(two, worker="w2", batch=40, concurrency=3),
        )
    assert first.claimed + second.claimed == 500
    assert first.errors == second.errors == 0
    assert first.claimed > 0 and second.claimed > 0
    assert transport.asked == Counter({n: 1 for n in numbers})  # each asked exactly once
    polled = await rows(
        engine, sa.select(S.c.last_polled_at, S.c.claimed_by).where(S.c.id.in_(ids))
    )
    assert polled == [(T0, None)] * 500
    outbox_is_clean(await rows(engine, sa.select(X.c.stream, X.c.sequence, X.c.event_id)))


async def test_a_killed_workers_shipments_are_polled_after_its_lease_and_nothing_doubles(
    database_url: str, engine: AsyncEngine
) -> None:
    clock = FixedClock(T0)
    transport = CountingTransport(clock)
    numbers = sim_numbers(20)
    ids = await seed(engine, numbers)
    lease_end = T0 + timedelta(seconds=120)
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLAIM_AND_HANG,
        database_url,
        T0.isoformat(),
        lease_end.isoformat(),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert doomed.stdout is not None
        line = await asyncio.wait_for(doomed.stdout.readline(), timeout=60)
        assert line.strip() == b"20"
    finally:
        doomed.send_signal(signal.SIGKILL)
        await asyncio.wait_for(doomed.wait(), timeout=30)
    assert doomed.returncode == -signal.SIGKILL
    held = await rows(engine, sa.select(S.c.claimed_by).where(S.c.id.in_(ids)))
    assert held == [("doomed",)] * 20

    async with runtime(database_url, clock, transport) as services:
        assert (await poll_pass(services)).claimed == 0  # still leased to the dead worker
        assert transport.asked == {}
        clock.advance(timedelta(seconds=121))
        report = await poll_pass(services)
        assert report.claimed == 20 and report.results == 20 and report.errors == 0
        assert transport.asked == Counter({n: 1 for n in numbers})
        events = await rows(engine, sa.select(E.c.shipment_id, E.c.dedupe_key))
        outbox = await rows(engine, sa.select(X.c.stream, X.c.sequence, X.c.event_id))
        # the dead worker comes back to life and applies what it would have polled: nothing new
        answers = await services.carriers.adapter("simulated").track(numbers)
        tracker = Tracker(services)
        for sid, number in zip(ids, numbers, strict=True):
            await tracker.apply_now(sid, answers[number], release_claim=True)
    assert sorted(await rows(engine, sa.select(E.c.shipment_id, E.c.dedupe_key))) == sorted(events)
    assert {sid for sid, _ in events} == set(ids)
    assert len(events) == len(set(events))
    again = await rows(engine, sa.select(X.c.stream, X.c.sequence, X.c.event_id))
    assert sorted(again) == sorted(outbox)
    outbox_is_clean(again)
