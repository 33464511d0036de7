"""The `make run` demo's webhook receiver: subscribed like any receiver, prints each alert.

Under the demo only (`demo.py` calls it), a small aiohttp server listens on a free loopback
port inside the process; it is subscribed to every event type through `webhooks.endpoints`, so
the URL guard checks it like any other URL: the demo's Makefile target allows `http://` and
127.0.0.1 for itself (`TRACKING_WEBHOOK_ALLOW_HTTP`, `TRACKING_WEBHOOK_ALLOW_HOSTS`); without
them there is no receiver, and production defaults stay strict. Each request is verified as a
receiver must (`signing.verify`: signature and timestamp, with the endpoint's current secrets,
read again after a rotation) and printed as one line a person reads; a forged or stale one is
answered 401 and printed as refused.

A restart finds its endpoint again by its description, points it at the new port and keeps
its secret: one demo endpoint however often the demo starts, and what was pending for the old
port is sent to the new one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TextIO

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.db import unit_of_work
from tracking_service.errors import InvalidInput
from tracking_service.models.webhooks import WebhookEndpoint
from tracking_service.webhooks import endpoints, signing
from tracking_service.webhooks.config import WebhookConfig

log = logging.getLogger(__name__)

DESCRIPTION = "make run demo receiver (prints each alert)"
PATH = "/demo/webhooks"

Secrets = Callable[[], Awaitable[Sequence[str]]]


# --- one line per alert (pure) -----------------------------------------------------------------


def _day(text: str | None) -> str:
    if not text:
        return "?"
    return f"{date.fromisoformat(text[:10]):%a %d %b}"


def _window(estimate: dict[str, Any] | None) -> str:
    if not estimate:
        return "no estimate"
    earliest, latest = _day(estimate.get("earliest")), _day(estimate.get("latest"))
    return f"estimated {latest}" if earliest == latest else f"estimated {earliest} - {latest}"


def _days_after(estimate: dict[str, Any] | None, promise: dict[str, Any] | None) -> str:
    if not estimate or not promise or not estimate.get("latest") or not promise.get("latest"):
        return ""
    late = (date.fromisoformat(estimate["latest"]) - date.fromisoformat(promise["latest"])).days
    if late <= 0:
        return f", within the promised {_day(promise['latest'])}"
    return f", {late} day{'s' if late != 1 else ''} after the promised {_day(promise['latest'])}"


def describe(payload: dict[str, Any]) -> str:
    """One readable line for a webhook body, e.g. `webhook shipment.delayed: simulated
    SIM1... (order DEMO-1003) is running late (stalled): Estimated Thu 11 Dec, 2 days after
    the promised Tue 9 Dec: no scan since Fri 5 Dec at the Campinas hub` (the payload's
    `delay_note`; the estimate against the promise when a payload has none), or for a status
    change what it moved from."""
    kind = str(payload.get("type", "?"))
    data = payload.get("data") or {}
    head = f"webhook {kind}:"
    if kind == "ping":
        return f"{head} test ping for endpoint {data.get('endpoint_id')}"
    if "endpoint" in data:
        ep = data["endpoint"]
        return f"{head} endpoint {ep.get('id')} ({ep.get('url')}) disabled: {ep.get('reason')}"
    order = (data.get("order") or {}).get("order_id", "?")
    shipment = data.get("shipment")
    if shipment is None:
        return f"{head} order {order} is now {data.get('order', {}).get('status', '?')}"
    parcel = f"{shipment.get('carrier', '?')} {shipment.get('tracking_number', '?')}"
    status = str(shipment.get("status", "?")).replace("_", " ")
    estimate = shipment.get("estimate")
    window = _window(estimate) + _days_after(estimate, shipment.get("promise"))
    if kind == "shipment.delayed":
        reason = shipment.get("delay_reason") or "late"
        note = shipment.get("delay_note")
        return f"{head} {parcel} (order {order}) is running late ({reason}): " + (
            str(note) if note else window
        )
    if kind == "order.status_changed":
        status_now = str((data.get("order") or {}).get("status", "?")).replace("_", " ")
        return f"{head} order {order} is now {status_now} (after {parcel})"
    previous = shipment.get("previous_status")
    was = (
        f" (was {str(previous).replace('_', ' ')})"
        if previous and previous != shipment.get("status")
        else ""
    )
    said = _STATUS_WORDS.get(str(shipment.get("status")))
    if said:
        return f"{head} {parcel} (order {order}) {said}{was}"
    return f"{head} {parcel} (order {order}) is {status}{was}, {window}"


_STATUS_WORDS = {
    "delivered": "was delivered",
    "exception": "has a carrier exception",
    "failed_attempt": "had a failed delivery attempt",
    "returned_to_sender": "is going back to the sender",
}


# --- the server ------------------------------------------------------------------------------


@dataclass
class DemoReceiver:
    """The loopback server: verifies, prints, answers 204 (401 when not verified)."""

    secrets: Secrets
    out: TextIO
    port: int = 0
    seen: set[str] = field(default_factory=set)
    refused: int = 0
    _known: Sequence[str] = ()
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def _verified(self, request: web.Request, body: bytes) -> None:
        now = int(time.time())
        try:
            signing.verify(self._known, request.headers, body, now=now)
        except signing.SignatureError:
            self._known = await self.secrets()  # rotated since: read the secrets again
            signing.verify(self._known, request.headers, body, now=now)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            await self._verified(request, body)
        except signing.SignatureError as exc:
            self.refused += 1
            print(f"webhook REFUSED (signature not verified: {exc})", file=self.out, flush=True)
            return web.Response(status=401)
        msg_id = request.headers["webhook-id"]
        try:
            line = describe(json.loads(body))
        except (TypeError, ValueError, AttributeError) as exc:
            line = f"webhook (unreadable body: {exc})"
        again = " (again: already received)" if msg_id in self.seen else ""
        self.seen.add(msg_id)
        print(f"{line}  [signature ok, {msg_id}{again}]", file=self.out, flush=True)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(PATH, self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


# --- the subscription ------------------------------------------------------------------------


def allowed(config: WebhookConfig) -> bool:
    """Whether these settings let a webhook reach the demo's loopback receiver."""
    return config.allow_http and bool(config.allow_hosts)


async def subscribe(
    session: AsyncSession, url: str, *, config: WebhookConfig, now: datetime
) -> WebhookEndpoint:
    """The demo's endpoint at `url`, every event type: made once, then found again by its
    description on a restart and pointed at the new URL (enabled, same secret)."""
    found = (
        await session.exec(
            select(WebhookEndpoint)
            .where(col(WebhookEndpoint.description) == DESCRIPTION)
            .order_by(col(WebhookEndpoint.id))
            .limit(1)
        )
    ).first()
    if found is None:
        return await endpoints.create_endpoint(
            session, url=url, event_types=None, description=DESCRIPTION, config=config, now=now
        )
    assert found.id is not None
    changes = endpoints.EndpointChanges(
        given=frozenset({"url", "enabled", "event_types"}), url=url, event_types=None, enabled=True
    )
    return await endpoints.update_endpoint(session, found.id, changes, config=config, now=now)


def _secrets_of(engine: AsyncEngine, endpoint_id: int) -> Secrets:
    async def load() -> Sequence[str]:
        async with unit_of_work(engine) as session:
            row = await session.get(WebhookEndpoint, endpoint_id)
            if row is None:
                return ()
            return tuple(s for s in (row.secret, row.previous_secret) if s)

    return load


@contextlib.asynccontextmanager
async def demo_receiver(
    engine: AsyncEngine, config: WebhookConfig, now: datetime, out: TextIO
) -> AsyncIterator[DemoReceiver | None]:
    """Start the receiver and subscribe it (None, with a warning, when the settings do not
    allow a loopback http receiver); stop it on exit."""
    if not allowed(config) or config.dispatch_every_seconds <= 0:
        log.warning(
            "no demo webhook receiver: it needs TRACKING_WEBHOOK_ALLOW_HTTP=true, "
            "TRACKING_WEBHOOK_ALLOW_HOSTS=127.0.0.1 and the webhook jobs on (make run sets them)"
        )
        yield None
        return
    receiver = DemoReceiver(secrets=lambda: _no_secrets(), out=out)
    await receiver.start()
    try:
        try:
            async with unit_of_work(engine) as session:
                endpoint = await subscribe(session, receiver.url, config=config, now=now)
                endpoint_id = endpoint.id
        except InvalidInput as exc:
            log.warning("no demo webhook receiver: %s", exc.message)
            yield None
            return
        assert endpoint_id is not None
        receiver.secrets = _secrets_of(engine, endpoint_id)
        receiver._known = await receiver.secrets()
        yield receiver
    finally:
        await receiver.stop()


async def _no_secrets() -> Sequence[str]:
    return ()
