"""Back office: an order's customer email, and erasing the customer's contact.

`GET /v1/orders/{order_id}/notifications` lists what the service sent the customer, when, and
how it went (or why it was not sent), a page at a time like the other lists; it never shows
the address (the rows hold none). `DELETE /v1/orders/{order_id}/contact` erases the
customer's email, name, phone and street from the order, marks its contact `erased` and stops
its pending email. Both need an API key; writes land in the request's one commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from tracking_service.api.deps import ServicesDep, SessionDep, require_api_key
from tracking_service.api.orders import OrderIdPath
from tracking_service.api.problems import problem_responses
from tracking_service.api.tracking_schemas import Cursor, Limit, fields_under
from tracking_service.notifications import store
from tracking_service.tracking import queries

router = APIRouter(prefix="/v1", tags=["notifications"], dependencies=[Depends(require_api_key)])

NotificationKind = Literal["shipped", "out_for_delivery", "delivered", "late", "action_needed"]
NotificationStatus = Literal["pending", "sent", "failed", "rejected", "skipped", "cancelled"]
"""`store.STATUSES`, spelled out for the contract (a test keeps the two equal)."""


class NotificationOut(BaseModel):
    """One email to the customer (never the address)."""

    kind: NotificationKind
    status: NotificationStatus = Field(
        description="`pending` (to be sent, maybe held until the customer's morning), `sent` "
        "(the mail server accepted it), `failed` (given up after the last retry), `rejected` "
        "(the server refused the address for good: the order's contact is marked), `skipped` "
        "(never sent: the kind is switched off or the order had no usable address; see "
        "`last_error`), `cancelled` (stopped while pending: contact erased, address refused, "
        "order cancelled)"
    )
    locale: str = Field(description="The language it is written in")
    subject: str | None = Field(description="As sent (null before the first attempt)")
    created_at: datetime
    not_before: datetime | None = Field(
        description="Held until then: the customer's local morning after a quiet night"
    )
    next_attempt_at: datetime | None = Field(description="null: nothing more will be tried")
    sent_at: datetime | None
    attempts: int = Field(description="Attempts made so far")
    last_error: str | None = Field(
        description="The mail server's last answer when not sent, or why it is not sent"
    )
    message_id: str = Field(description="The email's Message-ID: the same on every attempt")


class ContactOut(BaseModel):
    """Whether the customer's address can be written to."""

    state: Literal["bounced", "invalid", "erased"] | None = Field(
        description="null: usable (or none given); `bounced` or `invalid`: the mail server "
        "refused it for good, nothing more is sent; `erased`: erased at the shop's request"
    )
    reason: str | None = Field(description="The mail server's answer, or why it was erased")
    at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut] = Field(description="Oldest first")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )
    contact: ContactOut = Field(description="The state of the order's customer address")


def notification_out(row: Any) -> NotificationOut:
    return NotificationOut.model_validate(
        {name: row[name] for name in NotificationOut.model_fields}
    )


@router.get(
    "/orders/{order_id}/notifications",
    response_model=NotificationPage,
    responses=problem_responses(401, 404, 422, 500),
    summary="The email sent to an order's customer, and how each went",
)
async def list_notifications(
    order_id: OrderIdPath,
    session: SessionDep,
    limit: Limit = queries.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> NotificationPage:
    """Every notification of the order, oldest first: what kind, in which language, with
    which subject, when it was made, held until, sent, and how many attempts it took; for one
    not sent, why; and whether the customer's address is still usable (`contact`). A late
    notice appears once per new estimate. The customer's address is never shown here. 404
    for an unknown order."""
    with fields_under("query"):
        page = await store.list_notifications(session, order_id, limit=limit, cursor=cursor)
    c = page.contact
    return NotificationPage(
        items=[notification_out(r) for r in page.items],
        next_cursor=page.next_cursor,
        contact=ContactOut.model_validate({"state": c.state, "reason": c.reason, "at": c.at}),
    )


@router.delete(
    "/orders/{order_id}/contact",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 404, 422, 500),
    summary="Erase the customer's contact details and stop their email",
)
async def erase_contact(
    order_id: OrderIdPath, session: SessionDep, services: ServicesDep
) -> Response:
    """Erase the customer's email, name, phone and street from the order (the order, its
    shipments and its tracking page stay), mark its contact `erased`, and cancel its pending
    email; nothing more is sent to the customer. Erasing again answers 204 and changes
    nothing. 404 for an unknown order."""
    await store.erase_contact(session, order_id, now=services.clock.now())
    return Response(status_code=204)
