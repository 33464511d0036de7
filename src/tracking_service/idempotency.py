"""`Idempotency-Key`: a retried write answers what its first attempt answered.

A client that lost the answer to a write (a timeout, a dropped connection) sends it again
with the same key. The first successful answer under a key is stored with a hash of the
request (the path and the parsed body) in the same transaction as the write itself, so either
both land or neither does. Then:

- the same key with the same request answers the stored answer again (status and body), and
  nothing is written twice;
- the same key with another request is a `Conflict`: a key names one request, and reusing it
  for another is a client bug that must not pass silently.

Only successful answers are stored: a refused request writes nothing, so sending it again
(corrected or not) is simply a new attempt. Parts of an answer that must live in one place
only (an order's personal data lives on the order) can be left out of the stored copy
(`omit`) and put back from where they live when it is replayed (`restore`).

Keys are scoped by route (`scope`, e.g. `POST /v1/orders`). Two attempts racing with one key
are settled by the table's primary key: the second insert waits for the first transaction,
inserts nothing, and answers what the first stored (or `Conflict` when its request differs,
which rolls its own writes back).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.errors import Conflict
from tracking_service.models.tracking import IdempotencyRecord

MAX_KEY_LENGTH = 255
_TABLE: sa.Table = IdempotencyRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer to replay: HTTP status and JSON body."""

    status_code: int
    body: Mapping[str, Any]


def request_hash(payload: Any) -> str:
    """sha256 of the request's canonical JSON (sorted keys, no spaces): equal requests that
    differ only in key order or whitespace share a hash."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _conflict(key: str) -> Conflict:
    return Conflict(
        f"Idempotency-Key {key!r} was first used with another request; "
        "use a new key for a new request"
    )


async def _stored(session: AsyncSession, scope: str, key: str) -> IdempotencyRecord | None:
    return await session.get(IdempotencyRecord, (scope, key), populate_existing=True)


async def replay(session: AsyncSession, scope: str, key: str, digest: str) -> Answer | None:
    """The stored answer for this key and request, None when the key is new; `Conflict` when
    the key was used for another request."""
    record = await _stored(session, scope, key)
    if record is None:
        return None
    if record.request_hash != digest:
        raise _conflict(key)
    return Answer(record.status_code, record.response_body)


async def remember(
    session: AsyncSession,
    scope: str,
    key: str,
    digest: str,
    answer: Answer,
    now: datetime,
    omit: frozenset[str] = frozenset(),
) -> Answer:
    """Store `answer` (without the body's `omit` keys) as the key's first answer, in the
    caller's transaction, and answer it whole. When a concurrent attempt stored one first,
    answer that one as stored (same request) or raise `Conflict`."""
    conn = await session.connection()
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(_TABLE)
        .values(
            scope=scope,
            key=key,
            request_hash=digest,
            status_code=answer.status_code,
            response_body={k: v for k, v in answer.body.items() if k not in omit},
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(_TABLE.c.key)
    )
    if (await conn.execute(statement)).first() is not None:
        return answer
    first = await replay(session, scope, key, digest)
    assert first is not None, "the conflicting record is committed, hence readable"
    return first


async def run_once(
    session: AsyncSession,
    *,
    scope: str,
    key: str | None,
    request: Any,
    action: Callable[[], Awaitable[Answer]],
    now: datetime,
    omit: frozenset[str] = frozenset(),
    restore: Callable[[Answer], Awaitable[Answer]] | None = None,
) -> Answer:
    """`action()` unless `key` already answered this `request` (a JSON-able description of
    it: path and parsed body); without a key, simply `action()`. `omit`: top-level keys of the
    answer's body not to store; `restore` puts them back into a replayed answer."""
    if key is None:
        return await action()
    digest = request_hash(request)
    stored = await replay(session, scope, key, digest)
    if stored is None:
        answer = await action()
        stored = await remember(session, scope, key, digest, answer, now, omit)
        if stored is answer:
            return answer
    return await restore(stored) if restore is not None else stored
