"""Back office: webhook subscriptions, their delivery log, retries, replays and test pings.

Clients rely on these names: `POST /v1/webhook-endpoints` takes `url`, optional `event_types`
(absent or null: every type, those added later included) and `description`, and answers 201
with `id`, `url`, `event_types`, `enabled` and `secret`. The secret appears in that answer and
in a rotation's answer only, never in a read. A delivery's `id` is its `webhook-id` (what the
receiver sees); its `status` is `pending`, `succeeded` or `failed`. Every route needs an API
key; a route's writes land in the request's one commit (`SessionDep`), and the dispatcher sends
what they made due on its next pass.

A URL is checked by the URL guard before it is stored: `https` unless
`TRACKING_WEBHOOK_ALLOW_HTTP`, and no host that is or resolves to a loopback, private,
link-local, multicast or cloud-metadata address unless `TRACKING_WEBHOOK_ALLOW_HOSTS` names it;
a refusal is a 422 on `body.url` that says why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tracking_service.api.deps import ServicesDep, SessionDep, require_api_key
from tracking_service.api.estimates import Instant
from tracking_service.api.problems import invalid_field, problem_responses
from tracking_service.api.tracking_schemas import Cursor, Limit, fields_under
from tracking_service.models.webhooks import WebhookDelivery, WebhookEndpoint
from tracking_service.tracking import queries
from tracking_service.webhooks import endpoints as store

router = APIRouter(
    prefix="/v1/webhook-endpoints",
    tags=["webhooks"],
    dependencies=[Depends(require_api_key)],
)

EventType = Literal[
    "shipment.status_changed",
    "shipment.delayed",
    "shipment.exception",
    "shipment.delivered",
    "order.status_changed",
    "webhook_endpoint.disabled",
]
"""`store.EVENT_TYPES`, spelled out for the contract (a test keeps the two equal)."""
DeliveryEventType = Literal[
    "shipment.status_changed",
    "shipment.delayed",
    "shipment.exception",
    "shipment.delivered",
    "order.status_changed",
    "webhook_endpoint.disabled",
    "ping",
]
DeliveryStatus = Literal["pending", "succeeded", "failed"]

EndpointIdPath = Annotated[
    int, Path(ge=1, le=2**31 - 1, description="The endpoint's id", examples=[1])
]
WebhookIdPath = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The delivery's `id`: its `webhook-id`",
        examples=["msg_2hq6yb3m4rxk7d5ajc0tvw1e9f"],
    ),
]
_ERRORS = problem_responses(401, 404, 422, 500)
_WRITE_ERRORS = problem_responses(400, 401, 404, 413, 415, 422, 500)


def _encodable(text: str | None) -> str | None:
    """Refuse lone surrogates (a JSON `\\ud800` escape): no database can store them."""
    if text is not None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return text


Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        description="Where to POST events: `https` (`http` only with "
        "TRACKING_WEBHOOK_ALLOW_HTTP); a host that is or resolves to a loopback, private, "
        "link-local, multicast or cloud-metadata address is refused unless "
        "TRACKING_WEBHOOK_ALLOW_HOSTS names it",
        examples=["https://ops.example.com/hooks/tracking"],
    ),
    AfterValidator(_encodable),
]
EventTypes = Annotated[
    list[EventType] | None,
    Field(
        min_length=1,
        max_length=len(store.EVENT_TYPES),
        description="The event types wanted; absent or null: every type (those added later too)",
        examples=[["shipment.delayed", "shipment.exception"]],
    ),
]
Description = Annotated[
    str | None,
    Field(min_length=1, max_length=512, description="For people: what the endpoint is for"),
    AfterValidator(_encodable),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EndpointIn(_Strict):
    url: Url
    event_types: EventTypes = None
    description: Description = None

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "url": "https://ops.example.com/hooks/tracking",
                    "event_types": ["shipment.delayed", "shipment.exception"],
                    "description": "Ops alerts",
                }
            ]
        },
    )


class EndpointPatch(_Strict):
    """Only the fields sent change."""

    url: Url | None = None
    event_types: EventTypes = None
    description: Description = None
    enabled: bool | None = Field(
        default=None,
        description="false: stop sending (deliveries wait); true: send again, clearing "
        "`disabled_at`, `disabled_reason` and `failing_since`",
    )

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"enabled": True}]}
    )


class EndpointOut(BaseModel):
    """A subscription as it is now (never its secret)."""

    id: int
    url: str
    description: str | None
    event_types: list[str] | None = Field(description="null: every type")
    enabled: bool
    disabled_at: datetime | None = Field(description="When it was disabled; null if enabled")
    disabled_reason: str | None = Field(
        description="Why: the receiver answered 410, every delivery failed for days, or the API"
    )
    failing_since: datetime | None = Field(
        description="First failure of the current streak of failures; null while healthy"
    )
    previous_secret_until: datetime | None = Field(
        description="After a rotation: the old secret signs beside the new one until then"
    )
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(
        description="The signing secret (`whsec_` + base64 of 32 random bytes), shown only "
        "in this answer: store it now"
    )


class EndpointPage(BaseModel):
    items: list[EndpointOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class DeliveryOut(BaseModel):
    """One event for this endpoint."""

    id: str = Field(description="The `webhook-id`: the same across retries and replays")
    event_type: str
    status: DeliveryStatus
    attempts: int = Field(description="POSTs made so far")
    created_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None = Field(description="HTTP status of the last answer, if any")
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="null: nothing more will be sent")


class DeliveryPage(BaseModel):
    items: list[DeliveryOut] = Field(description="Newest first")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class ReplayOut(BaseModel):
    replayed: int = Field(description="Deliveries made, one per event since the instant")
    since: datetime


# --- rows to output ---------------------------------------------------------------------------


def _endpoint_fields(e: WebhookEndpoint) -> dict[str, object]:
    return {
        "id": e.id,
        "url": e.url,
        "description": e.description,
        "event_types": e.event_types,
        "enabled": e.enabled,
        "disabled_at": e.disabled_at,
        "disabled_reason": e.disabled_reason,
        "failing_since": e.failing_since,
        "previous_secret_until": e.previous_secret_until,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    }


def endpoint_out(e: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.model_validate(_endpoint_fields(e))


def endpoint_with_secret(e: WebhookEndpoint) -> EndpointWithSecret:
    return EndpointWithSecret.model_validate({**_endpoint_fields(e), "secret": e.secret})


def delivery_out(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(
        {
            "id": d.webhook_id,
            "event_type": d.event_type,
            "status": d.status,
            "attempts": d.attempts,
            "created_at": d.created_at,
            "last_attempt_at": d.last_attempt_at,
            "last_status_code": d.last_status_code,
            "last_error": d.last_error,
            "next_attempt_at": d.next_attempt_at,
        }
    )


# --- routes -----------------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=EndpointWithSecret,
    responses=_WRITE_ERRORS,
    summary="Subscribe a receiver to events (the secret is shown in this answer only)",
)
async def create_endpoint(
    body: EndpointIn, session: SessionDep, services: ServicesDep
) -> EndpointWithSecret:
    """A new endpoint, enabled, receiving the events written from now on (`POST .../replay`
    sends earlier ones). The answer carries the signing secret, once."""
    with fields_under("body"):
        endpoint = await store.create_endpoint(
            session,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            config=services.settings.webhook_config(),
            now=services.clock.now(),
        )
    return endpoint_with_secret(endpoint)


@router.get(
    "",
    response_model=EndpointPage,
    responses=_ERRORS,
    summary="Webhook endpoints, oldest first, disabled ones included",
)
async def list_endpoints(
    session: SessionDep, limit: Limit = queries.DEFAULT_LIMIT, cursor: Cursor = None
) -> EndpointPage:
    with fields_under("query"):
        page = await store.list_endpoints(session, limit=limit, cursor=cursor)
    return EndpointPage(items=[endpoint_out(e) for e in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{endpoint_id}",
    response_model=EndpointOut,
    responses=_ERRORS,
    summary="A webhook endpoint (a disabled one says when and why)",
)
async def get_endpoint(endpoint_id: EndpointIdPath, session: SessionDep) -> EndpointOut:
    return endpoint_out(await store.get_endpoint(session, endpoint_id))


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointOut,
    responses=_WRITE_ERRORS,
    summary="Change an endpoint's URL, event types, description, or enable or disable it",
)
async def update_endpoint(
    endpoint_id: EndpointIdPath, body: EndpointPatch, session: SessionDep, services: ServicesDep
) -> EndpointOut:
    """Only the fields sent change (`event_types: null`: every type). A new URL is checked
    like a new endpoint's. Enabling a disabled endpoint clears `disabled_at`,
    `disabled_reason` and `failing_since`; its pending deliveries go out again."""
    given = frozenset(body.model_fields_set)
    if "url" in given and body.url is None:
        raise invalid_field("body.url", "the URL cannot be removed")
    if "enabled" in given and body.enabled is None:
        raise invalid_field("body.enabled", "must be true or false")
    changes = store.EndpointChanges(
        given=given,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    with fields_under("body"):
        endpoint = await store.update_endpoint(
            session,
            endpoint_id,
            changes,
            config=services.settings.webhook_config(),
            now=services.clock.now(),
        )
    return endpoint_out(endpoint)


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    response_class=Response,
    responses=_ERRORS,
    summary="Remove an endpoint with its delivery log",
)
async def delete_endpoint(endpoint_id: EndpointIdPath, session: SessionDep) -> Response:
    await store.delete_endpoint(session, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=EndpointWithSecret,
    responses=_ERRORS,
    summary="A new signing secret; the old one keeps signing beside it for the overlap",
)
async def rotate_secret(
    endpoint_id: EndpointIdPath, session: SessionDep, services: ServicesDep
) -> EndpointWithSecret:
    """The new secret is in this answer only. Until `previous_secret_until` (now +
    TRACKING_WEBHOOK_SECRET_OVERLAP_HOURS) deliveries carry two signatures, one per secret,
    so a receiver verifies with either while it switches."""
    endpoint = await store.rotate_secret(
        session,
        endpoint_id,
        overlap=services.settings.webhook_config().rotation_overlap,
        now=services.clock.now(),
    )
    return endpoint_with_secret(endpoint)


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    responses=_ERRORS,
    summary="The delivery log of an endpoint, newest first",
)
async def list_deliveries(
    endpoint_id: EndpointIdPath,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    event_type: DeliveryEventType | None = None,
    limit: Limit = queries.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> DeliveryPage:
    with fields_under("query"):
        page = await store.list_deliveries(
            session, endpoint_id, store.DeliveryFilter(status, event_type, limit, cursor)
        )
    return DeliveryPage(items=[delivery_out(d) for d in page.items], next_cursor=page.next_cursor)


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryOut,
    responses=_ERRORS,
    summary="Send a delivery again now (a failed one becomes pending for one more attempt)",
)
async def retry_delivery(
    endpoint_id: EndpointIdPath,
    delivery_id: WebhookIdPath,
    session: SessionDep,
    services: ServicesDep,
) -> DeliveryOut:
    """`delivery_id` is the delivery's `id` (its `webhook-id`); after a replay, the newest
    delivery with that id. Its `webhook-id` stays the same, so the receiver can deduplicate."""
    delivery = await store.retry_delivery(
        session, endpoint_id, delivery_id, now=services.clock.now()
    )
    return delivery_out(delivery)


Since = Annotated[
    Instant,
    Query(
        description="Send again every event at or after this instant (ISO 8601 with offset)",
        examples=["2024-11-25T00:00:00Z"],
    ),
]


@router.post(
    "/{endpoint_id}/replay",
    status_code=202,
    response_model=ReplayOut,
    responses=_ERRORS,
    summary="Send again every event since an instant (e.g. after the receiver lost a day)",
)
async def replay(
    endpoint_id: EndpointIdPath, since: Since, session: SessionDep, services: ServicesDep
) -> ReplayOut:
    """One new pending delivery per event of the types the endpoint wants since `since`, with
    the event's own `webhook-id`, so a receiver that has it already can drop it; in each
    shipment's order."""
    try:
        since = since.astimezone(UTC)
    except OverflowError:
        raise invalid_field("query.since", "instant out of range") from None
    count = await store.replay(session, endpoint_id, since=since, now=services.clock.now())
    return ReplayOut(replayed=count, since=since)


@router.post(
    "/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    responses=problem_responses(401, 404, 409, 422, 500),
    summary="Send a `ping` to the endpoint now",
)
async def send_test(
    endpoint_id: EndpointIdPath, session: SessionDep, services: ServicesDep
) -> DeliveryOut:
    """A `ping` delivery (`{"type": "ping", "timestamp", "data": {"endpoint_id"}}`), signed
    like any other, due now: the dispatcher sends it on its next pass. Its result is in the
    delivery log under the `id` answered. 409 when the endpoint is disabled."""
    return delivery_out(await store.send_test(session, endpoint_id, now=services.clock.now()))
