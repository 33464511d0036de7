"""Webhook subscriptions as the back office manages them, and what it may ask of their deliveries.

Functions take the session first and never commit (the route's unit of work does). A URL is
checked by the URL guard before anything is read or written: the resolution is a network call
and is bounded (`RESOLVE_SECONDS`), so a name whose DNS never answers is a 422, not a request
left hanging.

- A new endpoint gets a fresh secret (`whsec_` + base64 of 32 random bytes), shown once, and
  `start_after_outbox_id` = the newest outbox id now: it receives the events written from now
  on, not the backlog (a replay can send earlier ones on request).
- A rotation keeps the old secret signing beside the new one until now + the overlap (service
  clock), so receivers can switch without losing a delivery. Rotating again during an overlap
  drops the oldest secret.
- Re-enabling an endpoint clears `disabled_at`, `disabled_reason` and `failing_since`: the
  five-day count of a failing endpoint starts over. Disabling it through the API records why.
- Deliveries are named by their `webhook_id`, the id receivers see. A replay makes a second
  delivery with the same `webhook_id` (receivers deduplicate on it); a retry by that id acts
  on the newest delivery that carries it.
- A replay copies the outbox events of the types the endpoint wants from an instant on, up to
  the fan-out's cursor (events after it are still to be fanned out, to this endpoint too when
  it is enabled then). One INSERT ... SELECT, whatever the number of events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.errors import Conflict, InvalidInput, NotFound
from tracking_service.models import OutboxEvent
from tracking_service.models.webhooks import OutboxCursor, WebhookDelivery, WebhookEndpoint
from tracking_service.tracking import messages
from tracking_service.tracking.queries import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    decode_cursor,
    encode_cursor,
)
from tracking_service.webhooks import dispatcher, fanout, signing, url_guard
from tracking_service.webhooks.config import WebhookConfig

EVENT_TYPES: tuple[str, ...] = (*messages.EVENT_TYPES, dispatcher.ENDPOINT_DISABLED)
"""The event types an endpoint may subscribe to (`ping` is only sent by the test route)."""
DELIVERY_STATUSES = (dispatcher.PENDING, dispatcher.SUCCEEDED, dispatcher.FAILED)
RESOLVE_SECONDS = 3.0
"""How long a URL's host may take to resolve when it is registered."""
DISABLED_BY_API = "disabled through the API"

_X: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]
_D: sa.Table = WebhookDelivery.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class EndpointChanges:
    """A PATCH: only the fields in `given` change (`event_types` None there means all)."""

    given: frozenset[str]
    url: str | None = None
    event_types: Sequence[str] | None = None
    description: str | None = None
    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    status: str | None = None
    event_type: str | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


# --- checks -----------------------------------------------------------------------------------


async def bounded_resolve(host: str, port: int) -> list[str]:
    """The URL guard's resolution, given up after `RESOLVE_SECONDS` (as OSError: unresolved)."""
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            return await url_guard.resolve(host, port)
    except TimeoutError:
        raise OSError(f"no answer from DNS within {RESOLVE_SECONDS:g} s") from None


async def check_url(
    url: str, config: WebhookConfig, *, resolver: url_guard.Resolve = bounded_resolve
) -> str:
    """The URL as registered, once the URL guard accepts it; `InvalidInput` on `url`."""
    return (await url_guard.check_url(url, config, resolver=resolver)).url


def event_types_of(wanted: Sequence[str] | None) -> list[str] | None:
    """The subscription as stored: None for every type, else the known types asked for, each
    once, in the order given."""
    if wanted is None:
        return None
    if not wanted:
        raise InvalidInput(
            "name at least one event type, or leave event_types out for all", field="event_types"
        )
    for i, name in enumerate(wanted):
        if name not in EVENT_TYPES:
            raise InvalidInput(
                f"unknown event type {name!r}; known: {', '.join(EVENT_TYPES)}",
                field=f"event_types.{i}",
            )
    return list(dict.fromkeys(wanted))


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def _after_id(cursor: str | None) -> int | None:
    return None if cursor is None else decode_cursor(cursor)[1]


def _next_cursor(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].created_at, rows[-1].id)


# --- endpoints --------------------------------------------------------------------------------


async def newest_outbox_id(session: AsyncSession) -> int:
    found = await session.exec(select(sa.func.max(col(OutboxEvent.id))))
    return int(found.one_or_none() or 0)


async def create_endpoint(
    session: AsyncSession,
    *,
    url: str,
    event_types: Sequence[str] | None,
    description: str | None,
    config: WebhookConfig,
    now: datetime,
    resolver: url_guard.Resolve = bounded_resolve,
) -> WebhookEndpoint:
    """A new enabled endpoint with a fresh secret, receiving the events written from now on."""
    types = event_types_of(event_types)
    checked = await check_url(url, config, resolver=resolver)
    endpoint = WebhookEndpoint(
        url=checked,
        description=description,
        event_types=types,
        enabled=True,
        secret=signing.new_secret(),
        start_after_outbox_id=await newest_outbox_id(session),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(session: AsyncSession, endpoint_id: int) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


async def list_endpoints(
    session: AsyncSession, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[WebhookEndpoint]:
    """Endpoints oldest first (by id), disabled ones included."""
    limit = _limit(limit)
    query = select(WebhookEndpoint).order_by(col(WebhookEndpoint.id)).limit(limit + 1)
    after = _after_id(cursor)
    if after is not None:
        query = query.where(col(WebhookEndpoint.id) > after)
    rows, next_cursor = _next_cursor(list((await session.exec(query)).all()), limit)
    return Page(tuple(rows), next_cursor)


async def update_endpoint(
    session: AsyncSession,
    endpoint_id: int,
    changes: EndpointChanges,
    *,
    config: WebhookConfig,
    now: datetime,
    resolver: url_guard.Resolve = bounded_resolve,
) -> WebhookEndpoint:
    """Change the fields given. A new URL is checked first and starts a new failure count;
    enabling clears the disabled state, disabling records that the API did it."""
    given = changes.given
    types = event_types_of(changes.event_types) if "event_types" in given else None
    url = None
    if "url" in given:
        if changes.url is None:
            raise InvalidInput("the URL cannot be removed", field="url")
        url = await check_url(changes.url, config, resolver=resolver)
    if "enabled" in given and changes.enabled is None:
        raise InvalidInput("enabled is true or false", field="enabled")
    endpoint = await get_endpoint(session, endpoint_id)
    if url is not None and url != endpoint.url:
        endpoint.url = url
        endpoint.failing_since = None
    if "event_types" in given:
        endpoint.event_types = types
    if "description" in given:
        endpoint.description = changes.description
    if changes.enabled is True and not endpoint.enabled:
        endpoint.enabled = True
        endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
    elif changes.enabled is False and endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_at = now
        endpoint.disabled_reason = DISABLED_BY_API
    endpoint.updated_at = now
    session.add(endpoint)
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, endpoint_id: int) -> None:
    """Remove an endpoint with its deliveries and their attempts (the foreign keys cascade)."""
    await session.delete(await get_endpoint(session, endpoint_id))
    await session.flush()


async def rotate_secret(
    session: AsyncSession, endpoint_id: int, *, overlap: timedelta, now: datetime
) -> WebhookEndpoint:
    """A new secret; the current one keeps signing beside it until now + `overlap`."""
    endpoint = await get_endpoint(session, endpoint_id)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + overlap
    endpoint.secret = signing.new_secret()
    endpoint.updated_at = now
    session.add(endpoint)
    await session.flush()
    return endpoint


# --- deliveries -------------------------------------------------------------------------------


async def list_deliveries(
    session: AsyncSession, endpoint_id: int, f: DeliveryFilter
) -> Page[WebhookDelivery]:
    """An endpoint's deliveries, newest first (by id)."""
    limit = _limit(f.limit)
    await get_endpoint(session, endpoint_id)
    conditions: list[ColumnElement[bool]] = [col(WebhookDelivery.endpoint_id) == endpoint_id]
    if f.status is not None:
        if f.status not in DELIVERY_STATUSES:
            raise InvalidInput(f"status is one of {', '.join(DELIVERY_STATUSES)}", field="status")
        conditions.append(col(WebhookDelivery.status) == f.status)
    if f.event_type is not None:
        conditions.append(col(WebhookDelivery.event_type) == f.event_type)
    before = _after_id(f.cursor)
    if before is not None:
        conditions.append(col(WebhookDelivery.id) < before)
    found = await session.exec(
        select(WebhookDelivery)
        .where(*conditions)
        .order_by(col(WebhookDelivery.id).desc())
        .limit(limit + 1)
    )
    rows, next_cursor = _next_cursor(list(found.all()), limit)
    return Page(tuple(rows), next_cursor)


async def _delivery(session: AsyncSession, delivery_id: int) -> WebhookDelivery:
    delivery = await session.get(WebhookDelivery, delivery_id, populate_existing=True)
    assert delivery is not None
    return delivery


async def retry_delivery(
    session: AsyncSession, endpoint_id: int, webhook_id: str, *, now: datetime
) -> WebhookDelivery:
    """Make the endpoint's newest delivery with this `webhook_id` pending and due now (a failed
    one gets one more attempt; a succeeded one is sent again)."""
    await get_endpoint(session, endpoint_id)
    found = await session.exec(
        select(sa.func.max(col(WebhookDelivery.id))).where(
            col(WebhookDelivery.endpoint_id) == endpoint_id,
            col(WebhookDelivery.webhook_id) == webhook_id,
        )
    )
    delivery_id = found.one_or_none()
    if delivery_id is None:
        raise NotFound(f"no delivery {webhook_id!r} for webhook endpoint {endpoint_id}")
    await dispatcher.make_due(session, delivery_id, now=now)
    return await _delivery(session, delivery_id)


async def replay(session: AsyncSession, endpoint_id: int, *, since: datetime, now: datetime) -> int:
    """New pending deliveries, due now, for every outbox event the endpoint wants that
    happened at or after `since`, up to the fan-out's cursor; how many."""
    endpoint = await get_endpoint(session, endpoint_id)
    through = (
        await session.exec(select(OutboxCursor.last_id).where(OutboxCursor.name == fanout.CURSOR))
    ).one_or_none()
    if not through:
        return 0
    conditions = [_X.c.occurred_at >= since, _X.c.id <= through]
    if endpoint.event_types:
        conditions.append(_X.c.event_type.in_(list(endpoint.event_types)))
    columns = {
        "endpoint_id": sa.literal(endpoint_id, sa.Integer),
        "outbox_id": _X.c.id,
        "webhook_id": _X.c.event_id,
        "event_type": _X.c.event_type,
        "stream": _X.c.stream,
        "sequence": _X.c.sequence,
        "status": sa.literal(dispatcher.PENDING, sa.String),
        "attempts": sa.literal(0, sa.Integer),
        "next_attempt_at": sa.literal(now, _D.c.next_attempt_at.type),
        "created_at": sa.literal(now, _D.c.created_at.type),
        "updated_at": sa.literal(now, _D.c.updated_at.type),
    }
    copy = sa.select(*(c.label(name) for name, c in columns.items())).where(*conditions)
    done = await session.exec(sa.insert(_D).from_select(list(columns), copy.order_by(_X.c.id)))
    return int(done.rowcount or 0)


async def send_test(session: AsyncSession, endpoint_id: int, *, now: datetime) -> WebhookDelivery:
    """A `ping` delivery, due now (the dispatcher's next pass sends it); `Conflict` when the
    endpoint is disabled (nothing would be sent)."""
    endpoint = await get_endpoint(session, endpoint_id)
    if not endpoint.enabled:
        raise Conflict(
            f"webhook endpoint {endpoint_id} is disabled ({endpoint.disabled_reason}): "
            'enable it first (PATCH {"enabled": true})'
        )
    found = await session.exec(
        sa.insert(_D).values(fanout.ping_values(endpoint_id, now)).returning(_D.c.id)
    )
    return await _delivery(session, int(found.scalar_one()))
