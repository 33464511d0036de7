"""Idempotency-Key below the API, on SQLite and PostgreSQL: a retry answers the first answer,
another request under the key is a conflict, two attempts racing store one answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.db import unit_of_work
from tracking_service.errors import Conflict
from tracking_service.idempotency import Answer, request_hash, run_once

NOW = datetime(2024, 11, 25, 20, tzinfo=UTC)
SCOPE = "POST /v1/orders"


def test_the_hash_ignores_key_order_and_sees_values() -> None:
    assert request_hash({"a": 1, "b": [1, 2]}) == request_hash({"b": [1, 2], "a": 1})
    assert request_hash({"a": 1}) != request_hash({"a": 2})
    assert request_hash({"a": [1, 2]}) != request_hash({"a": [2, 1]})


class Counter:
    """An action that counts its runs and answers the run's number."""

    def __init__(self, status: int = 201) -> None:
        self.runs = 0
        self.status = status

    async def __call__(self) -> Answer:
        self.runs += 1
        return Answer(self.status, {"run": self.runs})


async def _once(
    engine: AsyncEngine, key: str | None, request: object, action: Counter, scope: str = SCOPE
) -> Answer:
    async with unit_of_work(engine) as session:
        return await run_once(
            session, scope=scope, key=key, request=request, action=action, now=NOW
        )


async def test_without_a_key_every_attempt_runs(engine: AsyncEngine) -> None:
    action = Counter()
    await _once(engine, None, {"a": 1}, action)
    await _once(engine, None, {"a": 1}, action)
    assert action.runs == 2


async def test_a_retry_answers_the_first_answer(engine: AsyncEngine) -> None:
    action = Counter()
    first = await _once(engine, "k", {"a": 1}, action)
    again = await _once(engine, "k", {"a": 1}, action)
    assert action.runs == 1
    assert again == first == Answer(201, {"run": 1})


async def test_another_request_under_a_key_is_a_conflict(engine: AsyncEngine) -> None:
    action = Counter()
    await _once(engine, "k", {"a": 1}, action)
    with pytest.raises(Conflict, match="another request"):
        await _once(engine, "k", {"a": 2}, action)
    assert action.runs == 1


async def test_keys_are_scoped_by_route(engine: AsyncEngine) -> None:
    action = Counter()
    await _once(engine, "k", {"a": 1}, action, scope="POST /v1/orders")
    other = await _once(engine, "k", {"a": 2}, action, scope="POST /v1/shipments")
    assert other == Answer(201, {"run": 2})


async def test_a_failed_attempt_is_not_remembered(engine: AsyncEngine) -> None:
    async def refuse() -> Answer:
        raise Conflict("no")

    async with unit_of_work(engine) as session:
        with pytest.raises(Conflict):
            await run_once(session, scope=SCOPE, key="k", request={}, action=refuse, now=NOW)
    action = Counter()
    assert await _once(engine, "k", {}, action) == Answer(201, {"run": 1})


@pytest.mark.parametrize(("request_b", "conflict"), [({"a": 1}, False), ({"a": 2}, True)])
async def test_two_attempts_racing_store_one_answer(
    engine: AsyncEngine, request_b: object, conflict: bool
) -> None:
    """The second attempt finds nothing (the first is not committed), runs, and its insert of
    the key waits for the first transaction: then it answers what the first stored, or a
    conflict when its request differs."""
    first_action, second_action = Counter(201), Counter(200)
    async with unit_of_work(engine) as first_tx:
        first = await run_once(
            first_tx, scope=SCOPE, key="k", request={"a": 1}, action=first_action, now=NOW
        )
        second = asyncio.create_task(_once(engine, "k", request_b, second_action))
        await asyncio.sleep(0.2)  # let the second reach its insert while the first is open
    if conflict:
        with pytest.raises(Conflict):
            await second
    else:
        assert await second == first == Answer(201, {"run": 1})


async def test_omitted_parts_are_not_stored_and_are_restored(engine: AsyncEngine) -> None:
    async def answer() -> Answer:
        return Answer(201, {"order_id": "A-1", "customer": {"email": "ada@example.com"}})

    async def restore(stored: Answer) -> Answer:
        assert "customer" not in stored.body
        return Answer(stored.status_code, {**stored.body, "customer": "restored"})

    async def once() -> Answer:
        async with unit_of_work(engine) as session:
            return await run_once(
                session,
                scope=SCOPE,
                key="k",
                request={},
                action=answer,
                now=NOW,
                omit=frozenset({"customer"}),
                restore=restore,
            )

    first = await once()
    assert first.body["customer"] == {"email": "ada@example.com"}  # the first answer is whole
    again = await once()
    assert again == Answer(201, {"order_id": "A-1", "customer": "restored"})
