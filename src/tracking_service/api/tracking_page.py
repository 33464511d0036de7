"""The customer's tracking page: `GET /t/{token}` (HTML) and `GET /v1/tracking/{token}` (JSON).

Both answer the same content, the public view model of `tracking.public_view`, read through
`tracking.public_lookup`: one indexed statement (the token, its order's shipments and their
events), on an autocommit connection, then a constant-time comparison of the token. No API
key: the unguessable token (192 random bits) is the access right, and the answers carry no
personal data, only city and region.

The page is server-rendered HTML (Jinja2) and contains no script at all, so it is the same
with JavaScript off. Its one small stylesheet is inline and allowed by its hash in a strict
Content-Security-Policy (`default-src 'none'`), so a page is one request.

Every answer, success or not, carries the security headers: the CSP with `frame-ancestors
'none'` and `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`, and `Referrer-Policy:
no-referrer` (the token is in the URL and must not leak to another site through a Referer).

Caching: a success has a strong `ETag` (a hash of the exact body) and `Cache-Control: public,
max-age=60, stale-while-revalidate=300`, varies on `Accept-Language`, and a request whose
`If-None-Match` names the current ETag is answered `304` without a body. The body includes
relative words ("today") and the late note, so the hash is of what was rendered now.

An unknown token and a malformed one get the same 404 (a friendly page, or problem+json), in
the language `Accept-Language` asks for. Requests are limited per client address
(`TRACKING_TRACKING_RATE_LIMIT_PER_MINUTE`, default 60, 0 for none), answered 429 with
`Retry-After`. The limit is held in each API process's memory (see `api.rate_limit`): with
several processes it is per process, and one limit for the whole deployment belongs in the
proxy in front.

The router needs a little state built once per app (the limiter, the pipeline's config, the
default locale): `install(app, settings)` puts it in `app.state.tracking_page` and includes
the router; routes reach it through `page_runtime(request)`.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError

from tracking_service.api.deps import services_of
from tracking_service.api.problems import problem_response, problem_responses
from tracking_service.api.rate_limit import RateLimiter
from tracking_service.api.tracking_schemas import OrderStatus, ShipmentStatus
from tracking_service.pages import PAGE_TEMPLATES, stylesheet
from tracking_service.services import Services
from tracking_service.settings import Settings
from tracking_service.tracking import public_text
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.public_lookup import PublicFacts, find_by_token
from tracking_service.tracking.public_view import PublicView, build_view
from tracking_service.tracking.store import destination_zone

router = APIRouter(tags=["tracking"])

MAX_AGE_SECONDS = 60
STALE_SECONDS = 300
CACHE_CONTROL = f"public, max-age={MAX_AGE_SECONDS}, stale-while-revalidate={STALE_SECONDS}"
NOT_FOUND_DETAIL = "No tracking page has this token: check that the link is complete"


# --- templates and the stylesheet -------------------------------------------------------------

CSS, CSS_HASH = stylesheet("tracking.css")
_PAGE = PAGE_TEMPLATES.get_template("tracking_page.html")
_CSS_MARKUP = Markup(CSS)
_MESSAGE = PAGE_TEMPLATES.get_template("tracking_message.html")

_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
HTML_HEADERS = {
    **_COMMON_HEADERS,
    "Content-Security-Policy": (
        f"default-src 'none'; style-src '{CSS_HASH}'; img-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
}
JSON_HEADERS = {
    **_COMMON_HEADERS,
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


# --- the runtime of the routes ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageRuntime:
    limiter: RateLimiter | None
    config: TrackingConfig
    default_locale: str


def install(app: FastAPI, settings: Settings) -> None:
    """Build the routes' state from `settings` and include the router."""
    per_minute = settings.tracking_rate_limit_per_minute
    app.state.tracking_page = PageRuntime(
        limiter=RateLimiter(per_minute) if per_minute > 0 else None,
        config=settings.tracking_config(),
        default_locale=settings.default_locale,
    )
    app.include_router(router)
    app.router.add_route("/t/{token:path}", tracking_page, methods=["GET"], include_in_schema=False)


def page_runtime(request: Request) -> PageRuntime:
    runtime: PageRuntime = request.app.state.tracking_page
    return runtime


# --- the JSON shape ---------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WindowOut(_Out):
    earliest: date = Field(description="First local delivery date")
    latest: date = Field(description="Last local delivery date")
    text: str = Field(description='The dates as the page shows them: "Thu 11 Dec" or a window')
    source: str | None = Field(
        description="`carrier`, `history`, `rules` or `promise` (null for the promise itself)"
    )


class ConfidenceOut(_Out):
    probability: float = Field(description="Share of parcels like this one that arrive by then")
    text: str = Field(examples=["9 in 10 parcels like this arrive by then."])


class LateOut(_Out):
    days_late: int = Field(description="Days past the promise (0: may be delayed, not yet late)")
    reason: Literal[
        "exception",
        "failed_attempt",
        "returned_to_sender",
        "stalled",
        "carrier_later",
        "slower",
        "promise_missed",
    ] = Field(description="The cause the note gives")
    text: str = Field(
        examples=[
            "Your parcel is running 2 days late: it has not been scanned since Fri 5 Dec. "
            "We now expect it Thu 11 Dec."
        ]
    )
    delivered: bool = Field(description="The parcel arrived, late")


class StepOut(_Out):
    key: str = Field(
        description="`ordered`, `shipped`, `in_transit`, `out_for_delivery` (or "
        "`available_for_pickup`), `delivered`; where a problem stopped the parcel, the "
        "problem: `exception`, `failed_attempt`, `returned_to_sender`, `expired`, `cancelled`"
    )
    label: str
    state: Literal["done", "current", "todo", "problem"]


class TimelineEntryOut(_Out):
    occurred_at: datetime = Field(description="With the destination's UTC offset")
    day: str = Field(description="Local date as shown")
    time: str = Field(description="Local time as shown, 24-hour")
    status: ShipmentStatus | None = Field(description="Null for the service's own events")
    text: str = Field(description="What happened, in words")
    city: str | None
    region: str | None
    place: str | None = Field(description="City and region as shown")


class TrackedShipmentOut(_Out):
    number: int = Field(description="1-based among the order's parcels shown")
    title: str
    current: bool = Field(description="The parcel whose link was opened")
    carrier: str
    carrier_name: str
    tracking_number: str
    status: ShipmentStatus | Literal["cancelled"]
    status_text: str
    estimate: WindowOut | None = Field(description="Null once the parcel is no longer on its way")
    confidence: ConfidenceOut | None
    late: LateOut | None
    delivered_at: datetime | None = Field(description="With the destination's UTC offset")
    steps: list[StepOut]
    timeline: list[TimelineEntryOut] = Field(description="Newest first")


class TrackingOut(_Out):
    """The public tracking page as data: the same content as `/t/{token}`, in its language.
    Carries no personal data: the destination is city and region only."""

    locale: Literal["en", "pt-BR"]
    title: str
    order_id: str = Field(description="The shop's id of the order")
    destination: str | None = Field(description="City and region")
    destination_text: str | None
    status: OrderStatus
    status_text: str = Field(examples=["On its way", "Delivered Tue 25 Nov at 14:02"])
    estimate: WindowOut | None = Field(
        description="When the last parcel still on its way is expected; null when none is"
    )
    promise: WindowOut = Field(description="The promise the order was sold with")
    confidence: ConfidenceOut | None = Field(
        description="How sure the estimate is, when it comes from delivery history"
    )
    late: LateOut | None = Field(description="The note of the parcel most late, if any")
    shipments: list[TrackedShipmentOut] = Field(description="In registration order")


# --- answers ----------------------------------------------------------------------------------


def _etag(body: bytes) -> str:
    digest = hashlib.sha256(body).digest()[:16]
    return '"' + base64.urlsafe_b64encode(digest).decode().rstrip("=") + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 wants for it)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def _cached(
    body: bytes, media_type: str, headers: dict[str, str], if_none_match: str | None
) -> Response:
    etag = _etag(body)
    out = {**headers, "ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Language"}
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=out)
    return Response(body, media_type=media_type, headers=out)


def _message_page(kind: str, locale: str, status: int, extra: dict[str, str]) -> HTMLResponse:
    html = _MESSAGE.render(
        lang=locale,
        kind=kind,
        css=_CSS_MARKUP,
        title=public_text.text(locale, f"page.{kind}.title"),
        heading=public_text.text(locale, f"page.{kind}.title"),
        body=public_text.text(locale, f"page.{kind}.body"),
    )
    headers = {**HTML_HEADERS, "Cache-Control": "no-store", "Vary": "Accept-Language", **extra}
    return HTMLResponse(html, status_code=status, headers=headers)


def _limited(request: Request, runtime: PageRuntime) -> float | None:
    if runtime.limiter is None:
        return None
    client = request.client.host if request.client is not None else "-"
    return runtime.limiter.check(client)


async def _find(services: Services, token: str) -> PublicFacts | None:
    async with services.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return await find_by_token(auto, token)


async def _view(
    services: Services, token: str, accept_language: str | None, runtime: PageRuntime
) -> PublicView | str:
    """The view of `token`'s page, or the locale to say "not found" in.

    Read on a connection in autocommit mode, not the request's `SessionDep` unit of work: the
    page is one read-only statement (`public_lookup`), its own consistent snapshot, and a
    transaction would only add a BEGIN and a COMMIT round trip to every view."""
    try:
        facts = await _find(services, token)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        facts = await _find(services, token)  # the pool was invalidated: a fresh connection
    if facts is None:
        return public_text.choose_locale(accept_language, None, runtime.default_locale)
    order = facts.order
    locale = public_text.choose_locale(accept_language, order.locale, runtime.default_locale)
    return build_view(
        order,
        facts.shipments,
        focus_id=facts.focus_id,
        now=services.clock.now(),
        locale=locale,
        dest_tz=destination_zone(order.dest_country, order.dest_subdivision),
        config=runtime.config,
    )


AcceptLanguage = Annotated[
    str | None,
    Header(
        description="The page's language: `en` or `pt-BR` (any `pt` is `pt-BR`); otherwise "
        "the order's locale, then TRACKING_DEFAULT_LOCALE"
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(description="An ETag of an earlier answer: 304 without a body while it is current"),
]


async def tracking_page(request: Request) -> Response:
    """The customer's page (HTML, no script); see the module docstring.

    A plain Starlette route (`install` adds it), not a FastAPI one: it has no schema to
    document and no body or parameter to validate (the token is checked by its shape), so
    it reads the path and the two headers itself instead of paying FastAPI's dependency
    resolution on every page."""
    runtime = page_runtime(request)
    accept_language = request.headers.get("accept-language")
    wait = _limited(request, runtime)
    if wait is not None:
        locale = public_text.choose_locale(accept_language, None, runtime.default_locale)
        return _message_page("rate_limited", locale, 429, {"Retry-After": str(math.ceil(wait))})
    token: str = request.path_params["token"]
    view = await _view(services_of(request), token, accept_language, runtime)
    if isinstance(view, str):
        return _message_page("not_found", view, 404, {})
    html = _PAGE.render(
        lang=view.locale,
        kind="tracking",
        css=_CSS_MARKUP,
        title=view.title,
        view=view,
        labels=view.labels,
    )
    return _cached(
        html.encode(),
        "text/html; charset=utf-8",
        HTML_HEADERS,
        request.headers.get("if-none-match"),
    )


def _json_problem(status: int, detail: str, extra: dict[str, str]) -> Response:
    """problem+json without `instance`: the path would echo the token, and an unknown and a
    malformed token must get the same body."""
    headers = {**JSON_HEADERS, "Cache-Control": "no-store", **extra}
    return problem_response(None, status, detail, headers=headers)


@router.get(
    "/v1/tracking/{token}",
    response_model=TrackingOut,
    responses={
        304: {"description": "Not Modified: the `If-None-Match` ETag is still current"},
        **problem_responses(404, 422, 429, 500),
    },
    summary="The public tracking page of a shipment's order, as data",
)
async def tracking_json(
    token: str,
    request: Request,
    accept_language: AcceptLanguage = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """What `GET /t/{token}` shows, for shops that render their own page: the order's status
    in words, the estimate beside the original promise, how sure it is, the late note, and
    each parcel with its progress steps and its timeline (newest first, local times, city and
    region). Texts are in the language chosen from `Accept-Language`; dates also come as ISO
    dates and instants. No API key: the token is the access right; no personal data.

    `ETag` + `Cache-Control` (60 s, stale-while-revalidate 300 s); `If-None-Match` with the
    current ETag answers 304. An unknown or malformed token is a 404 (the same for both);
    more than `TRACKING_TRACKING_RATE_LIMIT_PER_MINUTE` requests a minute from one address
    (per process) a 429 with `Retry-After`."""
    runtime = page_runtime(request)
    wait = _limited(request, runtime)
    if wait is not None:
        detail = "Too many tracking requests from this address: wait a minute"
        return _json_problem(429, detail, {"Retry-After": str(math.ceil(wait))})
    view = await _view(services_of(request), token, accept_language, runtime)
    if isinstance(view, str):
        return _json_problem(404, NOT_FOUND_DETAIL, {})
    body = TrackingOut.model_validate(view).model_dump_json().encode()
    return _cached(body, "application/json", JSON_HEADERS, if_none_match)
