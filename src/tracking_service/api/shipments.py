"""Back office: shipments on their own (by id), and registration with an order reference.

`POST /v1/shipments` is `POST /v1/orders/{order_id}/shipments` with the order named in the
body (`order_id`): same rules, same answers, except that an unknown order is a 422 on
`body.order_id` (a value of the request, not a resource of the URL).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from tracking_service.api.deps import ServicesDep, SessionDep, require_api_key
from tracking_service.api.orders import register_shipment
from tracking_service.api.problems import problem_responses
from tracking_service.api.tracking_schemas import (
    CarrierCode,
    Cursor,
    Delayed,
    IdempotencyKey,
    Limit,
    OrderShipmentIn,
    ShipmentIn,
    ShipmentOut,
    ShipmentPage,
    ShipmentStatus,
    UpdatedSince,
    fields_under,
    list_filter,
    shipment_out,
)
from tracking_service.tracking import queries, registration

router = APIRouter(prefix="/v1", tags=["shipments"], dependencies=[Depends(require_api_key)])

ShipmentIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="The shipment's id")]


@router.post(
    "/shipments",
    status_code=201,
    response_model=ShipmentOut,
    responses={
        200: {"model": ShipmentOut, "description": "This number was already on this order"},
        **problem_responses(400, 401, 409, 413, 415, 422, 500),
    },
    summary="Attach a carrier's tracking number to the order named in the body",
)
async def create_shipment(
    body: OrderShipmentIn,
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """As `POST /v1/orders/{order_id}/shipments`, the order named by `order_id` in the body;
    an unknown order is a 422 on `body.order_id`."""
    shipment = ShipmentIn.model_validate(body.model_dump(exclude={"order_id"}))
    return await register_shipment(
        session, services, request, body.order_id, shipment, idempotency_key, order_field="order_id"
    )


@router.get(
    "/shipments/{shipment_id}",
    response_model=ShipmentOut,
    responses=problem_responses(401, 404, 422, 500),
    summary="A shipment with its events, status and current estimate",
)
async def get_shipment(
    shipment_id: ShipmentIdPath, session: SessionDep, services: ServicesDep
) -> ShipmentOut:
    view = await queries.get_shipment(session, shipment_id)
    return shipment_out(view, services.settings.public_base_url)


@router.get(
    "/shipments",
    response_model=ShipmentPage,
    responses=problem_responses(401, 422, 500),
    summary="Shipments, oldest change first, a page at a time",
)
async def list_shipments(
    session: SessionDep,
    services: ServicesDep,
    status: ShipmentStatus | None = None,
    delayed: Delayed = None,
    carrier: CarrierCode | None = None,
    updated_since: UpdatedSince = None,
    limit: Limit = queries.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ShipmentPage:
    """Shipments by `updated_at` (then id), oldest first: a client following `next_cursor`
    with `updated_since` sees every change. A cursor this list did not make is a 422."""
    filters = list_filter(status, delayed, carrier, updated_since, limit, cursor)
    with fields_under("query"):
        page = await queries.list_shipments(session, filters)
    base = services.settings.public_base_url
    return ShipmentPage(
        items=[shipment_out(v, base) for v in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/shipments/{shipment_id}/cancel",
    response_model=ShipmentOut,
    responses=problem_responses(401, 404, 409, 422, 500),
    summary="Cancel a shipment and stop tracking it",
)
async def cancel_shipment(
    shipment_id: ShipmentIdPath, session: SessionDep, services: ServicesDep
) -> ShipmentOut:
    """The shipment stops being polled (`next_poll_at` null) and gets a cancellation event;
    `shipment.status_changed` is written, and the order's status is derived from the
    shipments left (`order.status_changed` when it moves). Cancelling again answers the
    cancelled shipment. 409 for a shipment delivered, returned or expired."""
    base = services.settings.public_base_url
    await registration.cancel_shipment(
        session,
        shipment_id,
        now=services.clock.now(),
        config=services.settings.tracking_config(),
        public_base_url=base,
    )
    return shipment_out(await queries.get_shipment(session, shipment_id), base)
