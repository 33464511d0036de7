"""Back office: register orders, attach their shipments, read and cancel them.

`POST /v1/orders` answers 201 with the new order; the same order sent again (same
`order_id`, same values) answers 200 with the order as it is now, and the same `order_id` with
other values is a 409 naming the fields that differ. With an `Idempotency-Key`, a retry
answers the first answer again, status included (see `idempotency`). Every route needs an API
key (`require_api_key`); a route's writes land in the request's one commit (`SessionDep`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.api.deps import ServicesDep, SessionDep, require_api_key
from tracking_service.api.problems import invalid_field, problem_responses
from tracking_service.api.tracking_schemas import (
    ORDER_ID_PATTERN,
    CarrierCode,
    Cursor,
    Delayed,
    IdempotencyKey,
    Limit,
    OrderIn,
    OrderOut,
    OrderPage,
    OrderStatus,
    ShipmentIn,
    ShipmentOut,
    UpdatedSince,
    customer_out,
    fields_under,
    list_filter,
    order_out,
    shipment_out,
)
from tracking_service.errors import InvalidInput, NotFound
from tracking_service.idempotency import Answer, run_once
from tracking_service.services import Services
from tracking_service.tracking import public_text, queries, registration

router = APIRouter(prefix="/v1", tags=["orders"], dependencies=[Depends(require_api_key)])

OrderIdPath = Annotated[
    str,
    Path(pattern=ORDER_ID_PATTERN, description="The shop's own order id", examples=["A-1001"]),
]
_WRITE_ERRORS = problem_responses(400, 401, 404, 409, 413, 415, 422, 500)
_READ_ERRORS = problem_responses(401, 404, 422, 500)


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"^{_ATOM}(\.{_ATOM})*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def email_problem(address: str) -> str | None:
    """What makes `address` unusable as a customer's email (None: nothing). A plain
    `local@domain`: an ASCII local part of dot-separated atoms (no quoting, no comments, no
    display name), and a host name with a dot (an internationalized one is read through IDNA)."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "an email address is local-part@domain"
    if len(local) > 64 or not _LOCAL_PART.match(local):
        return (
            "the part before @ must be letters, digits or !#$%&'*+/=?^_`{|}~- in dot-separated "
            "runs (at most 64 characters)"
        )
    try:
        host = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "the domain is not a host name"
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return "the domain must be a host name with a dot, e.g. example.com"
    if labels[-1].isdigit():
        return "the domain must be a host name, not an address"
    return None


def checked_locale(locale: str | None) -> str | None:
    """A supported locale in its canonical spelling (`pt-br` is `pt-BR`); None stays None
    (the customer's email then uses `TRACKING_DEFAULT_LOCALE` when it is written).
    `InvalidInput` on `locale` for a language the service does not speak."""
    if locale is None:
        return None
    found = next((known for known in public_text.LOCALES if known.lower() == locale.lower()), None)
    if found is None:
        raise InvalidInput(
            f"unsupported locale {locale!r}; supported: {', '.join(public_text.LOCALES)}",
            field="locale",
        )
    return found


def checked_order(body: OrderIn) -> registration.OrderInput:
    """The order to register, its locale and customer email checked (`InvalidInput` naming
    the field)."""
    order = body.to_input()
    email = body.customer.email if body.customer is not None else None
    if email is not None:
        problem = email_problem(email)
        if problem is not None:
            raise InvalidInput(f"not a usable email address: {problem}", field="customer.email")
    return replace(order, locale=checked_locale(body.locale))


def _replayed(model: type[Any], what: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": what}}


def _json(answer: Answer) -> JSONResponse:
    return JSONResponse(dict(answer.body), status_code=answer.status_code)


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    responses={
        **_replayed(OrderOut, "The same order was registered before: the order as it is now"),
        **_WRITE_ERRORS,
    },
    summary="Register an order with the promise it was sold with",
)
async def create_order(
    body: OrderIn,
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Register the shop's order: destination, shipping option, items, the promise it was
    sold with and, optionally, the customer (personal data, stored on the order only).

    Without `promise`, the estimator computes it at `placed_at` for the option and
    destination, as checkout would have, and stores it with its basis (`rules` or `history`)
    and what it rests on (ship date, zone, lanes). An option that cannot serve the
    destination, an unknown origin, option or country, a postal code that does not fit, or a
    promise whose `earliest` is after `latest` (or that lies outside `placed_at`'s date -1 day
    .. +400 days) is a 422 naming the field; so is a `locale` the service does not speak
    (`en`, `pt-BR`) or a `customer.email` that is not a plain `local@domain.tld` address.
    Without `locale`, the customer's email is written in `TRACKING_DEFAULT_LOCALE`.

    Idempotent: 201 for a new order; 200 with the stored order when the same `order_id` comes
    again with the same values (a computed promise is kept as first stored); 409 when it comes
    with other values (the fields that differ are named). With an `Idempotency-Key`: the same
    key and body answer the first answer again, another body is a 409.
    """
    now = services.clock.now()
    with fields_under("body"):
        order = checked_order(body)

    async def register() -> Answer:
        with fields_under("body"):
            registered = await registration.create_order(
                session,
                order,
                estimator=services.estimator,
                history=services.history.snapshot,
                now=now,
            )
        view = (await queries.order_views(session, [registered.order]))[0]
        out = order_out(view, services.settings.public_base_url)
        return Answer(201 if registered.created else 200, out.model_dump(mode="json"))

    async def with_customer(stored: Answer) -> Answer:
        """A replayed answer with the order's customer as stored on the order (the only place
        personal data lives; the idempotency record keeps the rest of the first answer)."""
        order = await registration.order_by_id(session, str(stored.body["order_id"]))
        out = customer_out(order)
        customer = out.model_dump(mode="json") if out is not None else None
        return Answer(stored.status_code, {**stored.body, "customer": customer})

    answer = await run_once(
        session,
        scope="POST /v1/orders",
        key=idempotency_key,
        request={"path": request.url.path, "body": body.model_dump(mode="json")},
        action=register,
        now=now,
        omit=frozenset({"customer"}),
        restore=with_customer,
    )
    return _json(answer)


@router.get(
    "/orders/{order_id}",
    response_model=OrderOut,
    responses=_READ_ERRORS,
    summary="An order with its shipments, their events, status, promise and estimate",
)
async def get_order(order_id: OrderIdPath, session: SessionDep, services: ServicesDep) -> OrderOut:
    view = await queries.get_order(session, order_id)
    return order_out(view, services.settings.public_base_url)


@router.get(
    "/orders",
    response_model=OrderPage,
    responses=_READ_ERRORS,
    summary="Orders, oldest change first, a page at a time",
)
async def list_orders(
    session: SessionDep,
    services: ServicesDep,
    status: OrderStatus | None = None,
    delayed: Delayed = None,
    carrier: CarrierCode | None = None,
    updated_since: UpdatedSince = None,
    limit: Limit = queries.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> OrderPage:
    """Orders by `updated_at` (then id), oldest first, so that a client following
    `next_cursor` with `updated_since` sees every change: an order changed while listed comes
    again later, never skipped. `delayed` and `carrier` ask about the order's shipments that
    are not cancelled. A cursor that this list did not make is a 422."""
    filters = list_filter(status, delayed, carrier, updated_since, limit, cursor)
    with fields_under("query"):
        page = await queries.list_orders(session, filters)
    base = services.settings.public_base_url
    return OrderPage(items=[order_out(v, base) for v in page.items], next_cursor=page.next_cursor)


@router.post(
    "/orders/{order_id}/shipments",
    status_code=201,
    response_model=ShipmentOut,
    responses={
        **_replayed(ShipmentOut, "This number was already on this order: the shipment now"),
        **_WRITE_ERRORS,
    },
    summary="Attach a carrier's tracking number to an order",
)
async def create_order_shipment(
    order_id: OrderIdPath,
    body: ShipmentIn,
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A parcel of the order: its carrier (or `auto`, detected from the number's format and
    check digit) and tracking number. It gets a public tracking token (192 random bits) and
    URL and is polled at once. One tracking number per carrier is one shipment: a number
    already on another order is a 409 that names that order; the same number on this order
    again answers 200 with the shipment. A number the carrier's format refuses (or that no
    format matches for `auto`) is a 422; an unknown order a 404; a cancelled order a 409.
    """
    return await register_shipment(
        session, services, request, order_id, body, idempotency_key, order_field=None
    )


async def register_shipment(
    session: AsyncSession,
    services: Services,
    request: Request,
    order_id: str,
    body: ShipmentIn,
    idempotency_key: str | None,
    *,
    order_field: str | None,
) -> JSONResponse:
    """The shipment registration both routes share. `order_field`: where the order id came
    from in the body (an unknown one is then a 422 on that field, not a 404)."""
    now = services.clock.now()
    base = services.settings.public_base_url

    async def register() -> Answer:
        order = await registration.find_order(session, order_id)
        if order is None:
            message = f"no order {order_id!r}"
            if order_field is None:
                raise NotFound(message)
            raise invalid_field(f"body.{order_field}", message)
        with fields_under("body"):
            registered = await registration.create_shipment(
                session, order, body.to_input(), now=now, public_base_url=base
            )
        view = (
            await queries.shipment_views(
                session, [registered.shipment], {order.id or 0: order.order_id}
            )
        )[0]
        out = shipment_out(view, base)
        return Answer(201 if registered.created else 200, out.model_dump(mode="json"))

    answer = await run_once(
        session,
        scope=f"POST {request.scope['route'].path}",
        key=idempotency_key,
        request={"path": request.url.path, "body": body.model_dump(mode="json")},
        action=register,
        now=now,
    )
    return _json(answer)


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderOut,
    responses=problem_responses(401, 404, 409, 422, 500),
    summary="Cancel an order and stop tracking its shipments",
)
async def cancel_order(
    order_id: OrderIdPath, session: SessionDep, services: ServicesDep
) -> OrderOut:
    """Every shipment of the order not cancelled yet stops being polled and gets a
    cancellation event; the order's status becomes `cancelled`; webhooks
    `shipment.status_changed` and `order.status_changed` are written. Cancelling again
    answers the cancelled order. 409 for an order already delivered."""
    base = services.settings.public_base_url
    order = await registration.cancel_order(
        session,
        order_id,
        now=services.clock.now(),
        config=services.settings.tracking_config(),
        public_base_url=base,
    )
    return order_out((await queries.order_views(session, [order]))[0], base)
