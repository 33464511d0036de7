"""Checkout: `POST /v1/estimates` (a delivery promise per shipping option) and
`GET /v1/shipping-options` (what the rules offer).

Both answer from the rules compiled in memory (`Services.estimator`) and, for estimates, the
delivery-history snapshot the service built off the request path (`Services.history`, see
`history.runtime`); neither touches the database. "Now" is the injected clock's. Inputs are
strict: an integer is not a timestamp, a number is not a postal code, unknown fields are
refused. An unknown origin or option code is a 422 naming the field (it is a value in the
request body, not a resource in the URL).
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from tracking_service.api.deps import EstimatorDep, services_of
from tracking_service.api.problems import invalid_field, problem_responses
from tracking_service.estimator.calendar import WEEKDAY_NAMES
from tracking_service.estimator.estimate import (
    Destination,
    EstimateInputError,
    EstimateResult,
    Estimator,
    Item,
    OptionEstimate,
    ResolvedDestination,
    Unavailable,
)

router = APIRouter(prefix="/v1", tags=["estimates"])


# --- strict input types -----------------------------------------------------------------------


def _iso_instant(value: Any) -> datetime:
    """An ISO 8601 string WITH a UTC offset; numbers (epoch seconds) and naive times refused."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an ISO 8601 date-time (2024-11-25T14:00:00-05:00)") from None
    else:
        raise ValueError("must be an ISO 8601 date-time string with a UTC offset")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("needs a UTC offset (Z or +hh:mm): the instant is ambiguous without one")
    return parsed


def _iso_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("must be an ISO 8601 date string (2024-12-15)")


Instant = Annotated[datetime, BeforeValidator(_iso_instant)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DestinationIn(_Strict):
    country: str = Field(
        min_length=2, max_length=2, description="ISO 3166-1 alpha-2", examples=["US"]
    )
    postal_code: str = Field(
        min_length=1,
        max_length=16,
        description="US ZIP (12345 or 12345-6789), Brazilian CEP (01310-100), or local form",
        examples=["10001"],
    )
    subdivision: str | None = Field(
        default=None,
        min_length=1,
        max_length=6,
        description="State (ISO 3166-2 without country prefix); derived from US/BR postal codes",
        examples=["NY"],
    )


class ItemIn(_Strict):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, le=100_000)
    available_on: IsoDate | None = Field(
        default=None, description="Back-order or pre-order: the date the item is ready to ship"
    )


class EstimateRequest(_Strict):
    destination: DestinationIn
    origin: str | None = Field(
        default=None, max_length=64, description="Origin id; default the first in the rules"
    )
    items: list[ItemIn] = Field(default_factory=list, max_length=200)
    order_time: Instant | None = Field(
        default=None,
        description="ISO 8601 instant with offset; default now",
        examples=["2020-11-25T15:30:00-05:00"],
    )
    options: list[str] | None = Field(
        default=None, max_length=50, description="Shipping option codes to include; default all"
    )
    confidence: float | None = Field(
        default=None,
        ge=0.5,
        le=0.99,
        description="Ask every option for this probability of delivery by `latest` instead of "
        "its configured one. Measured on delivery history where an option has it; an option on "
        "its rules keeps its configured days and level and says so in its explanation",
        examples=[0.95],
    )

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "destination": {"country": "US", "postal_code": "10001"},
                    "order_time": "2020-11-25T15:30:00-05:00",
                    "items": [{"sku": "MUG-01", "quantity": 2}],
                }
            ]
        },
    )


# --- output -----------------------------------------------------------------------------------


class Price(BaseModel):
    amount: str = Field(description="Decimal amount as a string", examples=["29.90"])
    currency: str = Field(description="ISO 4217", examples=["USD"])


class PercentilesOut(BaseModel):
    """Local delivery dates by which that share of similar past parcels had arrived."""

    p50: date
    p75: date
    p85: date
    p90: date
    p95: date
    p97: date
    p99: date


class LaneOut(BaseModel):
    """A lane of delivery history a window rests on (machine-readable; the explanation says
    it in words)."""

    part: Literal["handling", "transit"] = Field(
        description="`handling`: order to hand-off at the origin; `transit`: hand-off to delivery"
    )
    lane: str = Field(
        description="The lane's id: kind, then its keys (`*` for none); stable for one model",
        examples=["t:postal * BR SP BR RJ 200"],
    )
    records: int = Field(description="Delivered records on this lane", examples=[556])


class OptionEstimateOut(BaseModel):
    option: str
    name: str
    carrier: str
    service: str
    price: Price
    zone: str = Field(description="The rules zone whose transit days were used")
    ship_date: date = Field(
        description="Local date the parcel is handed to the carrier, by the rules' handling days"
    )
    earliest: date = Field(description="Earliest local delivery date at the destination")
    latest: date = Field(description="Latest local delivery date at the destination")
    confidence: float = Field(description="Stated probability of delivery within the window")
    order_by: datetime = Field(description="UTC instant until which this promise holds")
    explanation: list[str]
    basis: Literal["rules", "history"] = Field(
        description="`history`: window measured on past deliveries of this option (the "
        "explanation says how many and from where to where, `lanes` names the lanes); "
        "`rules`: the configured days"
    )
    percentiles: PercentilesOut | None = Field(
        description="Percentiles of the delivery date, with history; null on the rules"
    )
    lanes: list[LaneOut] = Field(
        description="With history: the most specific handling and transit lanes with records "
        "that the window rests on (a thin lane borrows from its parents); empty on the rules"
    )


class UnavailableOut(BaseModel):
    option: str
    reason: str


class ResolvedDestinationOut(BaseModel):
    country: str
    postal_code: str
    subdivision: str | None
    zones: list[str]


class EstimateResponse(BaseModel):
    origin: str
    order_time: datetime = Field(description="The order instant used, in UTC")
    destination: ResolvedDestinationOut
    estimates: list[OptionEstimateOut]
    unavailable: list[UnavailableOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "origin": "nyc-queens",
                    "order_time": "2020-11-25T20:30:00Z",
                    "destination": {
                        "country": "US",
                        "postal_code": "10001",
                        "subdivision": "NY",
                        "zones": ["nyc", "northeast"],
                    },
                    "estimates": [
                        {
                            "option": "next-day",
                            "name": "Next-day express",
                            "carrier": "ups",
                            "service": "Next Day Air",
                            "price": {"amount": "29.90", "currency": "USD"},
                            "zone": "nyc",
                            "ship_date": "2020-11-27",
                            "earliest": "2020-11-28",
                            "latest": "2020-11-28",
                            "confidence": 0.9,
                            "order_by": "2020-11-27T19:00:00Z",
                            "explanation": [
                                "ordered after the 14:00 cutoff in America/New_York: "
                                "processed Fri 27 Nov",
                                "Thanksgiving Day Thu 26 Nov skipped at nyc-queens",
                                "ships Fri 27 Nov",
                                "1 delivery day with ups to nyc: arrives on Sat 28 Nov",
                            ],
                            "basis": "rules",
                            "percentiles": None,
                            "lanes": [],
                        }
                    ],
                    "unavailable": [
                        {"option": "same-day", "reason": "does not deliver to US 99501 (AK)"}
                    ],
                }
            ]
        }
    )


class TransitOut(BaseModel):
    zone: str
    min: int
    max: int


class ShippingOptionOut(BaseModel):
    code: str
    name: str
    carrier: str
    service: str
    price: Price
    confidence: float
    cutoff: str | None = Field(description="Option cutoff overriding the origin's (HH:MM:SS)")
    handling_days: int | None
    origins: list[str] = Field(description="Origins offering the option")
    delivery_weekdays: list[str]
    transit: list[TransitOut]


class OriginOut(BaseModel):
    id: str
    name: str | None
    country: str
    subdivision: str | None
    postal_code: str
    time_zone: str
    cutoff: str = Field(examples=["14:00:00"])
    handling_days: int
    working_weekdays: list[str]


class ShippingOptionsResponse(BaseModel):
    origins: list[OriginOut]
    shipping_options: list[ShippingOptionOut]


# --- routes -----------------------------------------------------------------------------------


def _percentiles(pairs: tuple[tuple[int, date], ...]) -> PercentilesOut | None:
    if not pairs:
        return None
    return PercentilesOut(**{f"p{p}": day for p, day in pairs})


def _destination_out(d: ResolvedDestination) -> ResolvedDestinationOut:
    return ResolvedDestinationOut(
        country=d.country, postal_code=d.postal_code, subdivision=d.subdivision, zones=list(d.zones)
    )


def _option_out(e: OptionEstimate) -> OptionEstimateOut:
    return OptionEstimateOut(
        option=e.option,
        name=e.name,
        carrier=e.carrier,
        service=e.service,
        price=Price(amount=str(e.price), currency=e.currency),
        zone=e.zone,
        ship_date=e.ship_date,
        earliest=e.earliest,
        latest=e.latest,
        confidence=e.confidence,
        order_by=e.order_by,
        explanation=list(e.explanation),
        basis=e.basis,
        percentiles=_percentiles(e.percentiles),
        lanes=[LaneOut(part=x.part, lane=x.lane, records=x.records) for x in e.lanes],
    )


def _unavailable_out(u: Unavailable) -> UnavailableOut:
    return UnavailableOut(option=u.option, reason=u.reason)


def _to_response(result: EstimateResult) -> EstimateResponse:
    """The validated response model (the contract; `ResponseRenderer` writes its JSON)."""
    return EstimateResponse(
        origin=result.origin,
        order_time=result.order_time,
        destination=_destination_out(result.destination),
        estimates=[_option_out(e) for e in result.estimates],
        unavailable=[_unavailable_out(u) for u in result.unavailable],
    )


# --- pre-rendered JSON ------------------------------------------------------------------------

_INSTANT = TypeAdapter(datetime)
_STR = TypeAdapter(str)


class ResponseRenderer:
    """`EstimateResponse` JSON, byte for byte what the model serializes to, from cached parts.

    The estimator hands out the same frozen values for every request that shares a promise, so
    their JSON is rendered once, through the validated output models and pydantic's serializer
    (what FastAPI writes for `response_model=EstimateResponse`), and reused; only `order_time`
    is each request's own. Pydantic's JSON is compact, so the fragments concatenate into the
    bytes the whole model gives. One renderer per estimator (rules load): within one set of
    rules equal values render alike (across rules, `Decimal("9.9") == Decimal("9.90")` would
    not). Bounded: an option's JSON is ~0.5 kB, a whole answer's ~2-3 kB; a miss on an answer
    whose options are cached only joins their fragments.
    """

    def __init__(self, estimator: Estimator, options: int = 8192, answers: int = 4096) -> None:
        self.estimator = estimator
        self._option_json = lru_cache(maxsize=options)(self._render_option)
        self._answer_json = lru_cache(maxsize=answers)(self._render_answer)

    def render(self, result: EstimateResult) -> bytes:
        head, tail = self._answer_json(
            result.origin, result.destination, result.estimates, result.unavailable
        )
        return head + _INSTANT.dump_json(result.order_time) + tail

    @staticmethod
    def _render_option(e: OptionEstimate) -> bytes:
        return _option_out(e).model_dump_json().encode()

    def _render_answer(
        self,
        origin: str,
        destination: ResolvedDestination,
        estimates: tuple[OptionEstimate, ...],
        unavailable: tuple[Unavailable, ...],
    ) -> tuple[bytes, bytes]:
        """The response around `order_time`: (`{"origin":...,"order_time":`, `,...}`)."""
        head = b'{"origin":' + _STR.dump_json(origin) + b',"order_time":'
        tail = (
            b',"destination":'
            + _destination_out(destination).model_dump_json().encode()
            + b',"estimates":['
            + b",".join(self._option_json(e) for e in estimates)
            + b'],"unavailable":['
            + b",".join(_unavailable_out(u).model_dump_json().encode() for u in unavailable)
            + b"]}"
        )
        return head, tail


def renderer_of(request: Request) -> ResponseRenderer:
    """The response renderer of this app's estimator (built once with the app)."""
    renderer: ResponseRenderer = request.app.state.estimate_renderer
    return renderer


@router.post(
    "/estimates",
    response_model=EstimateResponse,
    responses=problem_responses(400, 413, 415, 422, 500),
    summary="Delivery promise for every shipping option",
)
async def create_estimate(body: EstimateRequest, request: Request) -> Response:
    """For each shipping option: ship date, delivery window (local dates at the destination),
    order-by instant, confidence and a short explanation; options that cannot serve the
    destination are listed under `unavailable` with the reason.

    Basis: an option with delivery history in the served zone (records of its own carrier and
    service, or unlabelled ones where the rules allow) gets a window measured on it:
    `latest` is the first local date by which the share `confidence` of similar past parcels
    had arrived (recent parcels, those still in flight included, weigh in so that the share
    stays true when delivery speed drifts), `earliest` a low quantile, and `percentiles`
    p50..p99 of the delivery date; the explanation names the lane
    and its number of records. Otherwise the option's configured days apply (`basis: rules`,
    `percentiles: null`).

    `confidence` (0.5 to 0.99) asks for another level than the option's configured one: with
    history the window is measured for it (a higher level never gives an earlier `latest`); on
    the rules the configured days and level are kept and reported, and the explanation says
    that another level needs delivery history (rules state one range, not a distribution).

    422 (problem+json, `errors[].field` names it) for an unknown country, an origin or option
    code the rules do not have, an `order_time` without offset, a postal code that does not fit
    the country, a subdivision that contradicts the postal code, or a `confidence` out of range.
    """
    # The runtime through plain typed accessors rather than declared dependencies: this is the
    # hot route, and resolving two dependencies costs it about a fifth of its time.
    services = services_of(request)
    try:
        result = services.estimator.estimate(
            destination=Destination(
                body.destination.country,
                body.destination.postal_code,
                body.destination.subdivision,
            ),
            order_time=body.order_time or services.clock.now(),
            origin=body.origin,
            items=[Item(i.sku, i.quantity, i.available_on) for i in body.items],
            options=body.options,
            history=services.history.snapshot,
            confidence=body.confidence,
        )
    except EstimateInputError as exc:
        raise invalid_field(f"body.{exc.field}", exc.message) from None
    # Pre-rendered `EstimateResponse` JSON (see `ResponseRenderer`): FastAPI sends a Response
    # as it is, while `response_model` keeps declaring the schema.
    content = renderer_of(request).render(result)
    return Response(content, media_type="application/json")


@router.get(
    "/shipping-options",
    response_model=ShippingOptionsResponse,
    responses=problem_responses(500),
    summary="The origins and shipping options of the loaded rules",
)
async def list_shipping_options(estimator: EstimatorDep) -> ShippingOptionsResponse:
    rules = estimator.rules
    all_origins = [o.id for o in rules.origins]
    return ShippingOptionsResponse(
        origins=[
            OriginOut(
                id=o.id,
                name=o.name,
                country=o.country,
                subdivision=o.subdivision,
                postal_code=o.postal_code,
                time_zone=o.time_zone,
                cutoff=o.cutoff.isoformat(),
                handling_days=o.handling_days,
                working_weekdays=[WEEKDAY_NAMES[d] for d in o.working_weekdays],
            )
            for o in rules.origins
        ],
        shipping_options=[
            ShippingOptionOut(
                code=s.code,
                name=s.name,
                carrier=s.carrier,
                service=s.service,
                price=Price(amount=str(s.price), currency=s.currency),
                confidence=s.confidence,
                cutoff=s.cutoff.isoformat() if s.cutoff else None,
                handling_days=s.handling_days,
                origins=list(s.origins) if s.origins is not None else all_origins,
                delivery_weekdays=[WEEKDAY_NAMES[d] for d in s.delivery_weekdays],
                transit=[TransitOut(zone=t.zone, min=t.min, max=t.max) for t in s.transit],
            )
            for s in rules.shipping_options
        ],
    )
