"""Customer email in the database: fan-out from the outbox, claims, outcomes, the list, erasure.

Every function takes the caller's session and never commits (a job wraps each step in
`db.unit_of_work`, a route in the request's one commit).

- **Fan-out.** The outbox is read after the cursor row `notifications` by the same rule as the
  webhook fan-out (`webhooks.fanout.read_outbox`: in id order, waiting at a gap a running
  transaction may still fill). A deployment that turns email on starts at the outbox's end
  (`start_cursor`, at start-up): customers never get a flood of old news. Each event gives its
  `plan.intents_for` intents, and each intent one row, made in the transaction that moves the
  cursor and unique by `dedupe_key` (`ON CONFLICT DO NOTHING`): no poll, retry, restart or
  second worker makes a second row. The `Message-ID` is drawn then and never changes.
- **What is not sent is still listed.** A kind switched off (`TRACKING_MAIL_KINDS`) or an
  order without a usable address (none given, bounced, invalid, erased) gives a row with
  status `skipped` and the reason in `last_error`, so `GET .../notifications` says why the
  customer heard nothing.
- **When.** `not_before` holds a row through the customer's night (`quiet_hours.not_before`
  in the order's `dest_tz`, else the zone the destination implies); `next_attempt_at` is when
  the mailer may take it.
- **Claims** take due rows with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, like the
  webhook dispatcher): `next_attempt_at` moves to the lease's end, so a dead worker's rows come
  due again by themselves, and are sent again with their own Message-ID. The address is read
  from the order at the claim, never copied into a notification.
- **Outcomes** (`record`): sent; a retry on the schedule (`TRACKING_MAIL_RETRY_SECONDS`,
  service clock) and `failed` after the last; a recipient refused for good marks the order's
  contact `bounced` or `invalid` with the server's words and stops the order's other pending
  email (`cancelled`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from tracking_service.errors import InvalidInput, NotFound
from tracking_service.models import OutboxEvent
from tracking_service.models.notifications import Notification
from tracking_service.models.tracking import Order
from tracking_service.notifications.config import MailConfig
from tracking_service.notifications.message import new_message_id
from tracking_service.notifications.plan import Intent, OutboxFacts, intents_for
from tracking_service.notifications.quiet_hours import not_before
from tracking_service.tracking import public_text
from tracking_service.tracking.queries import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from tracking_service.tracking.store import destination_zone
from tracking_service.webhooks import fanout

CURSOR = "notifications"

PENDING, SENT, FAILED, REJECTED = "pending", "sent", "failed", "rejected"
SKIPPED, CANCELLED = "skipped", "cancelled"
STATUSES: tuple[str, ...] = (PENDING, SENT, FAILED, REJECTED, SKIPPED, CANCELLED)
"""pending: to be sent (maybe held for the night); sent: the server accepted it; failed: given
up after the last retry; rejected: the server refused the address for good; skipped: never
to be sent (kind switched off, no usable address when it was made); cancelled: stopped while
pending (contact erased, address bounced, order cancelled)."""

BOUNCED, INVALID, ERASED = "bounced", "invalid", "erased"
"""`orders.contact_state`: None while the address is usable."""

_N: sa.Table = Notification.__table__  # type: ignore[attr-defined]
_O: sa.Table = Order.__table__  # type: ignore[attr-defined]
_X: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]

_OUTBOX_COLUMNS = (
    _X.c.event_id,
    _X.c.event_type,
    _X.c.order_pk,
    _X.c.shipment_id,
    _X.c.occurred_at,
    _X.c.payload,
)


def customer_zone(dest_tz: str | None, country: str, subdivision: str | None) -> str | None:
    """The customer's time zone: the order's `dest_tz`, else the one its destination implies
    (None: unknown, read as UTC by the quiet hours)."""
    return dest_tz or destination_zone(country, subdivision)


def mail_locale(order_locale: str | None, default: str) -> str:
    """The language of an order's email: its own locale when the templates speak it, else
    the default (`TRACKING_DEFAULT_LOCALE`)."""
    return public_text.supported(order_locale) or default


def unusable_contact(
    email: str | None, contact_state: str | None, reason: str | None = None
) -> str | None:
    """Why an order's address cannot be written to (None: it can)."""
    if contact_state == ERASED:
        return "not sent: the customer's contact was erased"
    if contact_state in (BOUNCED, INVALID):
        why = f" ({reason})" if reason else ""
        return f"not sent: the address was refused earlier as {contact_state}{why}"[:512]
    if not email:
        return "not sent: the order has no customer email"
    return None


_INVALID_REPLY = re.compile(r"(^|\D)(501|553)(\D|$)|\b5\.1\.[37]\b")


def contact_state_for(detail: str) -> str:
    """`invalid` when the server said the address itself is malformed (501, 553, 5.1.3,
    5.1.7), else `bounced` (no such mailbox, mailbox disabled, refused)."""
    return INVALID if _INVALID_REPLY.search(detail) else BOUNCED


# --- the cursor and the fan-out ----------------------------------------------------------------


async def start_cursor(session: AsyncSession, *, now: datetime) -> int:
    """Make the `notifications` cursor at the outbox's newest id if it does not exist yet (a
    deployment that turns email on starts there: no backlog sent); its position."""
    return await fanout.lock_cursor(session, CURSOR, now=now, start_at_end=True)


@dataclass(frozen=True, slots=True)
class FanoutReport:
    events: int
    made: int
    """Rows made (pending or skipped); a dedupe key seen before makes none."""
    cursor: int
    blocked: bool


def _facts(row: Mapping[Any, Any]) -> OutboxFacts:
    return OutboxFacts(
        outbox_id=int(row["id"]),
        event_id=str(row["event_id"]),
        event_type=str(row["event_type"]),
        order_pk=row["order_pk"],
        shipment_id=row["shipment_id"],
        occurred_at=row["occurred_at"],
        payload=dict(row["payload"] or {}),
    )


def notification_row(
    intent: Intent,
    order: Mapping[Any, Any],
    *,
    config: MailConfig,
    now: datetime,
) -> dict[str, Any]:
    """The row an intent becomes for its order (pure): pending and due at once or after the
    customer's night, or skipped with the reason."""
    skip = None
    if intent.kind not in config.kinds:
        skip = f"not sent: {intent.kind} email is switched off (TRACKING_MAIL_KINDS)"
    else:
        skip = unusable_contact(
            order["customer_email"], order["contact_state"], order["contact_state_reason"]
        )
    held = None
    due: datetime | None = None
    zone = customer_zone(order["dest_tz"], order["dest_country"], order["dest_subdivision"])
    if skip is None:
        due = now + (config.retry[0] if config.retry else timedelta(0))
        held = not_before(due, zone, config.quiet_from_hour, config.morning_hour)
        if held is not None and held > due:
            due = held
    return {
        "order_pk": intent.order_pk,
        "shipment_id": intent.shipment_id,
        "outbox_id": intent.outbox_id,
        "kind": intent.kind,
        "dedupe_key": intent.dedupe_key[:160],
        "locale": mail_locale(order["locale"], config.default_locale),
        "message_id": new_message_id(config.mail_from),
        "payload": {**intent.payload, "dest_tz": zone},  # the zone of its local dates
        "status": PENDING if skip is None else SKIPPED,
        "not_before": held,
        "next_attempt_at": due,
        "attempts": 0,
        "claimed_by": None,
        "claimed_until": None,
        "subject": None,
        "last_error": skip,
        "sent_at": None,
        "created_at": now,
        "updated_at": now,
    }


_ORDER_FACTS = (
    _O.c.id,
    _O.c.locale,
    _O.c.customer_email,
    _O.c.contact_state,
    _O.c.contact_state_reason,
    _O.c.dest_tz,
    _O.c.dest_country,
    _O.c.dest_subdivision,
    _O.c.cancelled_at,
)


async def _orders(session: AsyncSession, pks: Iterable[int]) -> dict[int, sa.RowMapping]:
    wanted = sorted(set(pks))
    if not wanted:
        return {}
    found = await session.execute(sa.select(*_ORDER_FACTS).where(_O.c.id.in_(wanted)))
    return {int(r["id"]): r for r in found.mappings().all()}


def _insert_new(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert(_N) if dialect == "postgresql" else sqlite.insert(_N)


async def fan_out(
    session: AsyncSession,
    *,
    now: datetime,
    config: MailConfig,
    limit: int = 500,
    horizon: fanout.Horizon | None = None,
) -> FanoutReport:
    """Turn up to `limit` outbox events after the cursor into notification rows and move the
    cursor, in the caller's transaction (see the module docstring)."""
    horizon = horizon if horizon is not None else fanout.Horizon()
    last = await fanout.lock_cursor(session, CURSOR, now=now, start_at_end=True)
    read = await fanout.read_outbox(
        session, after=last, limit=limit, horizon=horizon, columns=_OUTBOX_COLUMNS
    )
    if not read.rows:
        return FanoutReport(0, 0, last, read.blocked)
    intents: dict[str, Intent] = {}
    for row in read.rows:
        for intent in intents_for(_facts(row)):
            intents.setdefault(intent.dedupe_key, intent)
    orders = await _orders(session, (i.order_pk for i in intents.values()))
    values = [
        notification_row(i, orders[i.order_pk], config=config, now=now)
        for i in intents.values()
        if i.order_pk in orders
    ]
    made = 0
    if values:
        done = await session.execute(
            _insert_new(session)
            .values(values)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(_N.c.id)
        )
        made = len(done.all())
    cursor = int(read.rows[-1]["id"])
    await fanout.move_cursor(session, CURSOR, cursor, now=now)
    return FanoutReport(len(read.rows), made, cursor, read.blocked)


# --- claims ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed notification, ready to render and send."""

    notification_id: int
    order_pk: int
    kind: str
    locale: str
    payload: dict[str, Any]
    message_id: str
    to: str
    attempt: int
    """This attempt's number (1 for the first)."""
    zone: str | None
    """The customer's time zone, for the quiet hours of a retry."""


def _release(status: str, error: str | None, now: datetime) -> dict[str, Any]:
    return {
        "status": status,
        "last_error": error,
        "next_attempt_at": None,
        "claimed_by": None,
        "claimed_until": None,
        "updated_at": now,
    }


async def claim(
    session: AsyncSession,
    *,
    worker: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
) -> list[Job]:
    """Claim up to `limit` due notifications for `worker` until `lease_until`, oldest due
    first. Those whose order can no longer be written to (contact erased, bounced or invalid,
    no address, order cancelled) are cancelled here with the reason instead of returned."""
    due = (
        sa.select(_N.c.id)
        .where(_N.c.status == PENDING, _N.c.next_attempt_at <= now)
        .order_by(_N.c.next_attempt_at, _N.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = (
        (
            await session.execute(
                sa.update(_N)
                .where(_N.c.id.in_(due.scalar_subquery()))
                .values(next_attempt_at=lease_until, claimed_by=worker, claimed_until=lease_until)
                .returning(
                    _N.c.id,
                    _N.c.order_pk,
                    _N.c.kind,
                    _N.c.locale,
                    _N.c.payload,
                    _N.c.message_id,
                    _N.c.attempts,
                )
            )
        )
        .mappings()
        .all()
    )
    if not claimed:
        return []
    orders = await _orders(session, (int(r["order_pk"]) for r in claimed))
    jobs: list[Job] = []
    stopped: dict[int, str] = {}
    for r in sorted(claimed, key=lambda r: int(r["id"])):
        order = orders.get(int(r["order_pk"]))
        why = (
            "not sent: the order is gone"
            if order is None
            else "not sent: the order was cancelled"
            if order["cancelled_at"] is not None
            else unusable_contact(
                order["customer_email"], order["contact_state"], order["contact_state_reason"]
            )
        )
        if why is not None or order is None:
            stopped[int(r["id"])] = why or "not sent"
            continue
        jobs.append(
            Job(
                notification_id=int(r["id"]),
                order_pk=int(r["order_pk"]),
                kind=str(r["kind"]),
                locale=str(r["locale"]),
                payload=dict(r["payload"] or {}),
                message_id=str(r["message_id"]),
                to=str(order["customer_email"]),
                attempt=int(r["attempts"]) + 1,
                zone=customer_zone(
                    order["dest_tz"], order["dest_country"], order["dest_subdivision"]
                ),
            )
        )
    for notification_id, why in stopped.items():
        await session.execute(
            sa.update(_N)
            .where(_N.c.id == notification_id)
            .values(**_release(CANCELLED, why[:512], now))
        )
    return jobs


# --- outcomes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt decided (see `jobs.decide`)."""

    job: Job
    status: str
    """sent, pending (to retry), failed or rejected."""
    detail: str
    subject: str | None
    next_attempt_at: datetime | None


async def cancel_pending(
    session: AsyncSession, order_pk: int, reason: str, *, now: datetime
) -> int:
    """Cancel the order's pending notifications (claimed ones too: their result, if the send
    was already under way, is still recorded as sent); how many."""
    done = await session.execute(
        sa.update(_N)
        .where(_N.c.order_pk == order_pk, _N.c.status == PENDING)
        .values(**_release(CANCELLED, reason[:512], now))
        .returning(_N.c.id)
    )
    return len(done.all())


async def release(session: AsyncSession, ids: Sequence[int], *, worker: str, now: datetime) -> None:
    """Make claimed notifications that `worker` did not send due again at once (those it
    still holds), in the caller's transaction."""
    if ids:
        await session.execute(
            sa.update(_N)
            .where(_N.c.id.in_(list(ids)), _N.c.status == PENDING, _N.c.claimed_by == worker)
            .values(next_attempt_at=now, claimed_by=None, claimed_until=None, updated_at=now)
        )


async def record(
    session: AsyncSession, outcomes: Sequence[Outcome], *, worker: str, now: datetime
) -> list[int]:
    """Record a batch of attempts in the caller's transaction; the orders whose address was
    refused for good (their contact is now bounced or invalid, their other email stopped).

    A send is recorded whoever holds the row now (it went out: the list must say so, even if
    the contact was erased meanwhile); a retry or a give-up only while this worker still holds
    it (if its lease ran out and another worker took the row, that one decides)."""
    refused: list[int] = []
    for o in outcomes:
        common: dict[str, Any] = {
            "attempts": _N.c.attempts + 1,
            "claimed_by": None,
            "claimed_until": None,
            "updated_at": now,
        }
        if o.subject is not None:
            common["subject"] = o.subject[:256]
        row = _N.c.id == o.job.notification_id
        if o.status == SENT:
            await session.execute(
                sa.update(_N)
                .where(row, _N.c.status != SENT)
                .values(status=SENT, sent_at=now, next_attempt_at=None, last_error=None, **common)
            )
            continue
        mine = (row, _N.c.status == PENDING, _N.c.claimed_by == worker)
        await session.execute(
            sa.update(_N)
            .where(*mine)
            .values(
                status=o.status,
                next_attempt_at=o.next_attempt_at,
                last_error=o.detail[:512] or None,
                **common,
            )
        )
        if o.status == REJECTED:
            state = contact_state_for(o.detail)
            await session.execute(
                sa.update(_O)
                .where(
                    _O.c.id == o.job.order_pk,
                    sa.or_(_O.c.contact_state.is_(None), _O.c.contact_state != ERASED),
                )
                .values(
                    contact_state=state,
                    contact_state_reason=o.detail[:512],
                    contact_state_at=now,
                    updated_at=now,
                )
            )
            await cancel_pending(
                session,
                o.job.order_pk,
                f"not sent: the address was refused as {state} ({o.detail})",
                now=now,
            )
            refused.append(o.job.order_pk)
    return refused


# --- the back office: the list and erasure ---------------------------------------------------


async def order_pk_of(session: AsyncSession, order_id: str) -> int:
    """The primary key of the shop's order `order_id`; `NotFound` when there is none."""
    found = (
        await session.execute(sa.select(_O.c.id).where(_O.c.order_id == order_id))
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no order {order_id!r}")
    return int(found)


@dataclass(frozen=True, slots=True)
class Contact:
    """The state of the order's address as a contact (state None: usable)."""

    state: str | None
    reason: str | None
    at: datetime | None


@dataclass(frozen=True, slots=True)
class Page:
    items: tuple[sa.RowMapping, ...]
    next_cursor: str | None
    contact: Contact


_LISTED = (
    _N.c.id,
    _N.c.kind,
    _N.c.status,
    _N.c.locale,
    _N.c.subject,
    _N.c.created_at,
    _N.c.not_before,
    _N.c.next_attempt_at,
    _N.c.sent_at,
    _N.c.attempts,
    _N.c.last_error,
    _N.c.message_id,
)


async def list_notifications(
    session: AsyncSession,
    order_id: str,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """An order's notifications, oldest first (by id), a page at a time, with the state of
    its contact. No address: the rows hold none. `InvalidInput` on `limit` or `cursor`;
    `NotFound` for an unknown order."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    after = None if cursor is None else decode_cursor(cursor)[1]
    order = (
        await session.execute(
            sa.select(
                _O.c.id, _O.c.contact_state, _O.c.contact_state_reason, _O.c.contact_state_at
            ).where(_O.c.order_id == order_id)
        )
    ).one_or_none()
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    order_pk = int(order.id)
    contact = Contact(order.contact_state, order.contact_state_reason, order.contact_state_at)
    query = sa.select(*_LISTED).where(_N.c.order_pk == order_pk)
    if after is not None:
        query = query.where(_N.c.id > after)
    rows = list((await session.execute(query.order_by(_N.c.id).limit(limit + 1))).mappings().all())
    if len(rows) <= limit:
        return Page(tuple(rows), None, contact)
    rows = rows[:limit]
    cursor_out = encode_cursor(rows[-1]["created_at"], int(rows[-1]["id"]))
    return Page(tuple(rows), cursor_out, contact)


ERASED_REASON = "erased at the shop's request"


async def erase_contact(session: AsyncSession, order_id: str, *, now: datetime) -> bool:
    """Erase the customer's personal data on the order (email, name, phone, street), mark its
    contact `erased` and cancel its pending email, in the caller's transaction. Idempotent:
    False when it was erased already. `NotFound` for an unknown order."""
    order_pk = await order_pk_of(session, order_id)
    done = await session.execute(
        sa.update(_O)
        .where(
            _O.c.id == order_pk,
            sa.or_(
                _O.c.contact_state.is_(None),
                _O.c.contact_state != ERASED,
                _O.c.customer_email.is_not(None),
                _O.c.customer_name.is_not(None),
                _O.c.customer_phone.is_not(None),
                _O.c.customer_street.is_not(None),
            ),
        )
        .values(
            customer_email=None,
            customer_name=None,
            customer_phone=None,
            customer_street=None,
            contact_state=ERASED,
            contact_state_reason=ERASED_REASON,
            contact_state_at=now,
            updated_at=now,
        )
        .returning(_O.c.id)
    )
    erased = done.first() is not None
    await cancel_pending(session, order_pk, "not sent: the customer's contact was erased", now=now)
    return erased
