"""The fan-out: outbox -> one delivery per matching enabled endpoint, cursor moved with it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tracking_service.db import create_engine, unit_of_work
from tracking_service.webhooks import fanout

from .core_helpers import EP, T0, D, X, add_endpoint, add_events, rows


async def fan(engine: AsyncEngine, horizon: fanout.Horizon | None = None) -> fanout.FanoutReport:
    async with unit_of_work(engine) as session:
        return await fanout.fan_out(session, now=T0, horizon=horizon)


async def test_one_delivery_per_matching_enabled_endpoint_and_never_twice(
    engine: AsyncEngine,
) -> None:
    every, _ = await add_endpoint(engine, "https://a.example.com/")
    delays, _ = await add_endpoint(
        engine, "https://b.example.com/", event_types=["shipment.delayed"]
    )
    await add_endpoint(engine, "https://c.example.com/", enabled=False)
    first = await add_events(engine, "shipment:1", ["shipment.status_changed", "shipment.delayed"])
    later, _ = await add_endpoint(engine, "https://d.example.com/", start_after=first[-1])

    report = await fan(engine)
    assert (report.events, report.deliveries, report.cursor) == (2, 3, first[-1])
    made = await rows(engine, D)
    assert sorted((d["endpoint_id"], d["event_type"]) for d in made) == sorted(
        [
            (every, "shipment.status_changed"),
            (every, "shipment.delayed"),
            (delays, "shipment.delayed"),
        ]
    )
    for d in made:
        assert d["status"] == "pending" and d["next_attempt_at"] == T0
        assert d["stream"] == "shipment:1" and d["webhook_id"].startswith("msg_shipment_1_")

    again = await fan(engine)
    assert (again.events, again.deliveries) == (0, 0)

    await add_events(engine, "shipment:1", ["shipment.delivered"])
    third = await fan(engine)
    assert third.deliveries == 2  # every and later (start_after passed), not delays
    newest = await rows(engine, D, D.c.event_type == "shipment.delivered")
    assert sorted(d["endpoint_id"] for d in newest) == [every, later]
    assert len(await rows(engine, D)) == 5


async def test_concurrent_fan_outs_never_double(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    await add_endpoint(engine, "https://a.example.com/")
    for n in range(20):
        await add_events(engine, f"shipment:{n}", ["shipment.status_changed"] * 5)
    reports = await asyncio.gather(*(fan(engine) for _ in range(6)))
    assert sum(r.deliveries for r in reports) == 100
    made = await rows(engine, D)
    assert len({d["outbox_id"] for d in made}) == len(made) == 100


async def test_an_event_committed_late_below_the_cursor_is_not_lost(engine: AsyncEngine) -> None:
    """An outbox id taken by a transaction still open when a later id is visible: the fan-out
    waits at the gap instead of moving past it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite ids have no gaps of running transactions")
    await add_endpoint(engine, "https://a.example.com/")
    horizon = fanout.Horizon()
    async with engine.connect() as slow:
        await slow.begin()
        await _write_event(slow, "msg_slow")
        await add_events(engine, "shipment:1", ["shipment.status_changed"])
        blocked = await fan(engine, horizon)
        assert blocked.blocked and blocked.events == 0
        assert (await fan(engine, horizon)).events == 0  # still open: still waiting
        await slow.commit()
    done = await fan(engine, horizon)
    assert done.events == 2 and not done.blocked
    assert sorted(d["webhook_id"] for d in await rows(engine, D)) == [
        "msg_shipment_1_1",
        "msg_slow",
    ]


async def _write_event(connection: AsyncConnection, event_id: str) -> None:
    """An outbox event written in `connection`'s transaction, which the caller keeps open."""
    await connection.execute(
        sa.insert(X).values(
            event_id=event_id,
            event_type="shipment.delayed",
            stream="shipment:9",
            sequence=1,
            occurred_at=T0,
            payload={},
            created_at=T0,
        )
    )


async def _hold_a_gap(engine: AsyncEngine, horizon: fanout.Horizon) -> AsyncConnection:
    """An outbox id taken by an open transaction below a committed one, seen by a pass."""
    doomed = await engine.connect()
    await doomed.begin()
    await _write_event(doomed, "msg_doomed")
    await add_events(engine, "shipment:1", ["shipment.status_changed"])
    assert (await fan(engine, horizon)).blocked
    return doomed


async def test_a_rolled_back_id_is_skipped_once_no_older_transaction_runs(
    engine: AsyncEngine,
) -> None:
    """The very next pass after the rollback moves on: nothing but the writers of this
    database's outbox is waited for."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite ids have no gaps of running transactions")
    await add_endpoint(engine, "https://a.example.com/")
    horizon = fanout.Horizon()
    doomed = await _hold_a_gap(engine, horizon)
    assert (await fan(engine, horizon)).blocked  # still open: still waiting
    await doomed.rollback()
    await doomed.close()
    passed = await fan(engine, horizon)
    assert passed.events == 1 and not passed.blocked
    assert [d["webhook_id"] for d in await rows(engine, D)] == ["msg_shipment_1_1"]


@pytest.fixture
def other_database_url(make_database: Callable[[], str]) -> str:
    """Another database on the same server (made outside the test's event loop)."""
    return make_database()


async def test_transactions_elsewhere_on_the_server_do_not_hold_a_gap(
    engine: AsyncEngine, other_database_url: str
) -> None:
    """Long write transactions in another database of the server (another test run's, another
    service's) and on other tables of this one, all older than the gap, do not keep the
    fan-out waiting once the outbox's own writer has ended."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite ids have no gaps of running transactions")
    other = create_engine(other_database_url)
    try:
        async with other.connect() as elsewhere, engine.connect() as here:
            await elsewhere.begin()
            await elsewhere.execute(sa.text("SELECT pg_current_xact_id()"))  # holds an xid
            await here.begin()
            await here.execute(sa.update(EP).values(description="busy").where(EP.c.id == -1))
            await here.execute(sa.text("SELECT pg_current_xact_id()"))
            await add_endpoint(engine, "https://a.example.com/")
            horizon = fanout.Horizon()
            doomed = await _hold_a_gap(engine, horizon)
            await doomed.rollback()
            await doomed.close()
            passed = await fan(engine, horizon)
            assert passed.events == 1 and not passed.blocked
            await here.rollback()
            await elsewhere.rollback()
    finally:
        await other.dispose()


async def test_a_gap_seen_while_its_writer_commits_is_not_lost(engine: AsyncEngine) -> None:
    """The writer commits between two passes: the later pass reads its row, never skips it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite ids have no gaps of running transactions")
    await add_endpoint(engine, "https://a.example.com/")
    horizon = fanout.Horizon()
    slow = await _hold_a_gap(engine, horizon)
    await slow.commit()
    await slow.close()
    done = await fan(engine, horizon)
    assert done.events == 2 and not done.blocked
    assert sorted(d["webhook_id"] for d in await rows(engine, D)) == [
        "msg_doomed",
        "msg_shipment_1_1",
    ]


def test_wants() -> None:
    assert fanout.wants(None, "shipment.delayed")
    assert fanout.wants([], "shipment.delayed")
    assert fanout.wants(["shipment.delayed"], "shipment.delayed")
    assert not fanout.wants(["shipment.delivered"], "shipment.delayed")
