"""Helpers of the notification store and job tests: orders, shipments and outbox events made
directly (in the shape the pipeline writes), a mail config, and a real SMTP server on
loopback (aiosmtpd) that records what it receives and can refuse recipients."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.clock import Clock, FixedClock
from tracking_service.db import unit_of_work
from tracking_service.models import OutboxEvent
from tracking_service.models.notifications import Notification
from tracking_service.models.tracking import Order, Shipment
from tracking_service.notifications.config import MailConfig
from tracking_service.notifications.jobs import Mailer
from tracking_service.notifications.smtp import SmtpSender

# 14:00 in São Paulo (UTC-3): daytime for a Brazilian customer
T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
N: sa.Table = Notification.__table__  # type: ignore[attr-defined]
ORDERS: sa.Table = Order.__table__  # type: ignore[attr-defined]
X: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]
SENDER = "Acme Shop <orders@acme.example>"
SHORT_RETRY = (timedelta(0), timedelta(seconds=60), timedelta(seconds=300))
PROMISE = {"earliest": "2026-12-03", "latest": "2026-12-04"}


def mail_config(port: int = 25, **changes: Any) -> MailConfig:
    base = MailConfig(
        host="127.0.0.1",
        port=port,
        security="none",
        timeout_seconds=5.0,
        mail_from=SENDER,
        retry=SHORT_RETRY,
        batch_size=50,
        lease_seconds=120.0,
        shop_name="Acme",
        default_locale="en",
    )
    return replace(base, **changes)


def mailer(
    engine: AsyncEngine, clock: Clock, port: int, worker: str = "worker-1", **changes: Any
) -> Mailer:
    config = mail_config(port, **changes)
    return Mailer(
        engine, clock, config, worker=worker, sender=SmtpSender(config), wall=FixedClock(T0)
    )


# --- rows -------------------------------------------------------------------------------------


@dataclass
class Parcel:
    """An order with one shipment, and the numbering of its outbox stream."""

    order_pk: int
    shipment_id: int
    order_id: str
    token: str
    sequence: int = 0


async def add_order(
    engine: AsyncEngine,
    order_id: str = "A-1001",
    *,
    email: str | None = "maria@example.com",
    locale: str | None = "pt-BR",
    country: str = "BR",
    subdivision: str | None = "SP",
    postal_code: str = "01310-100",
    dest_tz: str | None = None,
    contact_state: str | None = None,
) -> Parcel:
    async with unit_of_work(engine) as session:
        order = Order(
            order_id=order_id,
            placed_at=T0 - timedelta(days=2),
            origin="sp",
            option="standard",
            dest_country=country,
            dest_postal_code=postal_code,
            dest_subdivision=subdivision,
            dest_city="São Paulo",
            customer_name="Maria Silva",
            customer_email=email,
            customer_phone="+55 11 5555 0100",
            customer_street="Avenida Paulista 1000",
            locale=locale,
            promise_earliest=datetime.fromisoformat(PROMISE["earliest"]).date(),
            promise_latest=datetime.fromisoformat(PROMISE["latest"]).date(),
            promise_confidence=0.9,
            promise_basis="given",
            dest_tz=dest_tz,
            contact_state=contact_state,
            created_at=T0,
            updated_at=T0,
        )
        session.add(order)
        await session.flush()
        assert order.id is not None
        token = f"tok-{order_id.lower()}"
        shipment = Shipment(
            order_pk=order.id,
            carrier="ups",
            tracking_number=f"1Z{order.id:016d}",
            tracking_token=token,
            status="pending",
            created_at=T0,
            updated_at=T0,
        )
        session.add(shipment)
        await session.flush()
        assert shipment.id is not None
        return Parcel(order.id, shipment.id, order_id, token)


def shipment_body(
    parcel: Parcel,
    event_type: str,
    status: str,
    *,
    previous: str | None = None,
    estimate: dict[str, str] | None = None,
    delayed: bool = False,
    delay_reason: str | None = None,
) -> dict[str, Any]:
    """A webhook body as `tracking.messages` writes it (no personal data in it)."""
    return {
        "type": event_type,
        "timestamp": T0.isoformat(),
        "data": {
            "shipment": {
                "id": parcel.shipment_id,
                "carrier": "ups",
                "tracking_number": f"1Z{parcel.order_pk:016d}",
                "status": status,
                "previous_status": previous,
                "estimate": estimate or PROMISE,
                "promise": PROMISE,
                "delayed": delayed,
                "delay_reason": delay_reason,
                "delay_note": None,
                "tracking_url": f"https://track.example.com/t/{parcel.token}",
                "cancelled": False,
            },
            "order": {"order_id": parcel.order_id, "status": status},
        },
    }


async def add_event(
    engine: AsyncEngine, parcel: Parcel, body: dict[str, Any], *, at: datetime = T0
) -> int:
    """One outbox row of the parcel's stream; its id."""
    parcel.sequence += 1
    stream = f"shipment:{parcel.shipment_id}"
    async with unit_of_work(engine) as session:
        row = await session.execute(
            sa.insert(X)
            .values(
                event_id=f"msg_{parcel.shipment_id}_{parcel.sequence}",
                event_type=body["type"],
                stream=stream,
                sequence=parcel.sequence,
                shipment_id=parcel.shipment_id,
                order_pk=parcel.order_pk,
                occurred_at=at,
                payload=body,
                created_at=at,
            )
            .returning(X.c.id)
        )
        return int(row.scalar_one())


async def shipped(engine: AsyncEngine, parcel: Parcel, *, at: datetime = T0) -> int:
    body = shipment_body(parcel, "shipment.status_changed", "in_transit", previous="pending")
    return await add_event(engine, parcel, body, at=at)


async def late(engine: AsyncEngine, parcel: Parcel, latest: str, *, at: datetime = T0) -> int:
    body = shipment_body(
        parcel,
        "shipment.delayed",
        "in_transit",
        estimate={"earliest": latest, "latest": latest},
        delayed=True,
        delay_reason="late_estimate",
    )
    return await add_event(engine, parcel, body, at=at)


async def rows(engine: AsyncEngine, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.select(table).where(*where).order_by(table.c[table.primary_key.columns.keys()[0]])
        )
        return [dict(r) for r in found.mappings().all()]


async def notifications(engine: AsyncEngine) -> list[dict[str, Any]]:
    return await rows(engine, N)


async def order_row(engine: AsyncEngine, order_pk: int) -> dict[str, Any]:
    [row] = await rows(engine, ORDERS, ORDERS.c.id == order_pk)
    return row


# --- a real SMTP server on loopback -------------------------------------------------------------


@dataclass
class Got:
    """One message the server accepted."""

    rcpt: tuple[str, ...]
    message: EmailMessage
    raw: bytes

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class MailServer:
    """Accepts every message, unless `refuse` answers an error for a recipient at RCPT."""

    refuse: Callable[[str], str | None] = lambda address: None
    got: list[Got] = field(default_factory=list)
    port: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = self.refuse(address)
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.got.append(Got(tuple(envelope.rcpt_tos), parsed, raw))
        return "250 2.0.0 queued"


@contextlib.asynccontextmanager
async def mail_server(
    refuse: Callable[[str], str | None] | None = None, port: int = 0
) -> AsyncIterator[MailServer]:
    handler = MailServer(refuse or (lambda address: None))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="localhost"), host="127.0.0.1", port=port
    )
    handler.port = int(server.sockets[0].getsockname()[1])
    try:
        yield handler
    finally:
        server.close()
        await server.wait_closed()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
