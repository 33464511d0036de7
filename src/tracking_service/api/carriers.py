"""Carriers: how much of each carrier account is used, and scans the simulated carrier pushes.

`GET /v1/carriers/usage` (back office, API key) shows per carrier the calls of a UTC day
against its daily limit, their errors, the last call and the poll lag, from `carrier_calls`
(written in batches every few seconds: see `tracking_service.carrier_usage`), `carrier_quotas`
and the shipments due now.

`POST /v1/carriers/simulated/events` takes scans pushed by the simulated carrier
(`sim-carrier --push-url`), as real carriers' push subscriptions will push theirs: the body is
the simulated carrier's own `/v1/track` answer for one or more numbers, parsed by its adapter's
parser, and each result feeds the same pipeline as a poll (`tracking.jobs.Tracker.apply`: new
events deduplicated, status, estimate, delay, outbox), all in the request's one transaction.
Pushing the same scans twice writes nothing new. Numbers no shipment has are counted and
ignored. A push is authenticated by a shared secret, `TRACKING_SIMULATED_PUSH_SECRET`, sent in
the `X-Push-Secret` header, as carriers' webhooks carry a credential agreed at subscription
rather than one of the shop's back-office keys; without the setting pushes are refused.
"""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tracking_service.api.deps import ClockDep, ServicesDep, SessionDep, require_api_key
from tracking_service.api.problems import ProblemError, problem_responses
from tracking_service.carrier_usage import CarrierUsage, real_now, usage_summary
from tracking_service.carriers.base import (
    FailureKind,
    TrackingFailure,
    TrackingResult,
    normalize_number,
)
from tracking_service.carriers.registry import CARRIER_CODES
from tracking_service.carriers.sim.server import MAX_TRACK_BATCH
from tracking_service.carriers.simulated import parse_track_response
from tracking_service.models import Shipment
from tracking_service.tracking.jobs import Tracker

router = APIRouter(prefix="/v1/carriers", tags=["carriers"])

CarrierCode = Literal["ups", "fedex", "usps", "dhl", "simulated"]
assert set(CarrierCode.__args__) == set(CARRIER_CODES)  # type: ignore[attr-defined]


# ---- usage ----------------------------------------------------------------------------------


def _iso_day(value: object) -> object:
    """Only `YYYY-MM-DD` text is a day (pydantic would also read a number as a timestamp)."""
    if isinstance(value, date) or (
        isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
    ):
        return value
    raise ValueError("a day is written YYYY-MM-DD")


IsoDay = Annotated[date, BeforeValidator(_iso_day)]


class CarrierUsageOut(BaseModel):
    carrier: str
    calls_today: int = Field(description="HTTP requests to the carrier on `day` (UTC)")
    errors_today: int = Field(
        description="Those that failed: rate_limited, auth_failed, http_4xx, http_5xx, "
        "timeout, unavailable (ok and not_found are not errors)"
    )
    outcomes_today: dict[str, int] = Field(description="Calls on `day` by outcome")
    daily_limit: int | None = Field(description="Calls a UTC day for every process together")
    daily_used: int = Field(description="Calls taken from the day's quota (counted before each)")
    daily_remaining: int | None
    requests_per_second: float = Field(description="Shared by every process")
    last_call_at: datetime | None
    last_outcome: str | None
    due_shipments: int = Field(description="Shipments of this carrier due for a poll now")
    poll_lag_seconds: float = Field(description="Age of the oldest due shipment; 0: none due")


class UsageOut(BaseModel):
    day: date = Field(description="The UTC day the counts are of")
    carriers: list[CarrierUsageOut]


def _usage_out(usage: CarrierUsage) -> CarrierUsageOut:
    return CarrierUsageOut(
        carrier=usage.carrier,
        calls_today=usage.calls,
        errors_today=usage.errors,
        outcomes_today=usage.outcomes,
        daily_limit=usage.daily_limit,
        daily_used=usage.daily_used,
        daily_remaining=usage.daily_remaining,
        requests_per_second=usage.requests_per_second,
        last_call_at=usage.last_call_at,
        last_outcome=usage.last_outcome,
        due_shipments=usage.due_shipments,
        poll_lag_seconds=round(usage.poll_lag_seconds, 3),
    )


@router.get(
    "/usage",
    response_model=UsageOut,
    dependencies=[Depends(require_api_key)],
    responses=problem_responses(401, 422),
    summary="Calls per carrier today against its daily limit, errors, last call, poll lag",
)
async def carrier_usage(
    session: SessionDep,
    services: ServicesDep,
    clock: ClockDep,
    carrier: Annotated[CarrierCode | None, Query(description="Only this carrier")] = None,
    day: Annotated[
        IsoDay | None, Query(description="A UTC day (YYYY-MM-DD); default: today")
    ] = None,
) -> UsageOut:
    """Counts lag the calls by up to `TRACKING_CARRIER_USAGE_FLUSH_SECONDS` (each process
    writes its calls in batches); the daily quota is counted before each call, so
    `daily_used` is exact. Days are real UTC days, whatever the service clock's speed; the poll
    lag is measured on the service clock."""
    configs = services.settings.carrier_configs()
    if carrier is not None:
        configs = {carrier: configs[carrier]}
    the_day = day or real_now().date()
    usages = await usage_summary(session, configs, day=the_day, now=clock.now())
    return UsageOut(day=the_day, carriers=[_usage_out(u) for u in usages])


# ---- pushed scans ---------------------------------------------------------------------------


class PushedResult(BaseModel):
    """One parcel as the simulated carrier's `POST /v1/track` answers it (extra fields kept)."""

    model_config = ConfigDict(extra="allow")

    tracking_number: str = Field(min_length=1, max_length=64)
    status: dict[str, Any] | None = Field(default=None, description="{code, description}")
    events: list[dict[str, Any]] | None = Field(
        default=None, description="Newest first: {code, description, occurred_at, location}"
    )
    error: dict[str, Any] | None = Field(
        default=None, description="{code, message} instead of a parcel (ignored in a push)"
    )


class PushIn(BaseModel):
    results: list[PushedResult] = Field(min_length=1, max_length=MAX_TRACK_BATCH)


class PushOut(BaseModel):
    received: int = Field(description="Results in the push")
    applied: int = Field(description="Results applied to a shipment")
    new_events: int = Field(description="Scans not stored before (0 when pushed again)")
    messages: int = Field(description="Outbox events written")
    unknown: int = Field(description="Numbers no simulated-carrier shipment has (ignored)")
    ignored: int = Field(description="Error results (e.g. NOT_FOUND): nothing to apply")


PushSecret = Annotated[
    str | None,
    Header(
        alias="X-Push-Secret",
        max_length=256,
        description="The shared secret TRACKING_SIMULATED_PUSH_SECRET",
    ),
]


async def require_push_secret(services: ServicesDep, secret: PushSecret = None) -> None:
    """401 unless `X-Push-Secret` is `TRACKING_SIMULATED_PUSH_SECRET`; 403 when it is unset."""
    expected = services.settings.simulated_push_secret
    if expected is None or not expected.get_secret_value():
        raise ProblemError(
            403,
            "pushes from the simulated carrier are off: set TRACKING_SIMULATED_PUSH_SECRET and "
            "run sim-carrier --push-url URL with the same secret",
            kind="forbidden",
        )
    if secret is None or not secrets.compare_digest(
        secret.encode(), expected.get_secret_value().encode()
    ):
        raise ProblemError(
            401,
            "missing or wrong push secret: send TRACKING_SIMULATED_PUSH_SECRET in X-Push-Secret",
            kind="unauthorized",
            headers={"WWW-Authenticate": "X-Push-Secret"},
        )


_SHIPMENTS = Shipment.__table__  # type: ignore[attr-defined]


@router.post(
    "/simulated/events",
    response_model=PushOut,
    dependencies=[Depends(require_push_secret)],
    responses=problem_responses(400, 401, 403, 413, 415, 422),
    summary="Scans pushed by the simulated carrier, applied like a poll's",
)
async def simulated_events(body: PushIn, session: SessionDep, services: ServicesDep) -> PushOut:
    """The body is the simulated carrier's `/v1/track` answer (up to 100 results). Each result
    of a known shipment is applied in this request's transaction; a result the parser cannot
    read makes the whole push a 422 naming it, so nothing is half applied."""
    raw = body.model_dump(exclude_none=True)
    first: dict[str, int] = {}  # number -> index of its first result, for messages
    for index, result in enumerate(raw["results"]):
        result["tracking_number"] = normalize_number(result["tracking_number"])
        first.setdefault(result["tracking_number"], index)
    outcomes = parse_track_response(list(first), raw)
    ignored = 0
    results: dict[str, TrackingResult] = {}
    for number, index in first.items():
        outcome = outcomes[number]
        if isinstance(outcome, TrackingResult):
            results[number] = outcome
        elif outcome.kind is FailureKind.BAD_RESPONSE:
            raise _unreadable(index, number, outcome)
        else:
            ignored += 1
    known = (
        await (await session.connection()).execute(
            _SHIPMENTS.select()
            .with_only_columns(_SHIPMENTS.c.id, _SHIPMENTS.c.order_pk, _SHIPMENTS.c.tracking_number)
            .where(
                _SHIPMENTS.c.carrier == "simulated",
                _SHIPMENTS.c.tracking_number.in_(list(results)),
            )
            .order_by(_SHIPMENTS.c.order_pk, _SHIPMENTS.c.id)  # one lock order for every writer
        )
    ).all()
    tracker = Tracker(services)
    applied = new_events = messages = 0
    for shipment_id, _order_pk, number in known:
        update = await tracker.apply(session, shipment_id, results[number], release_claim=False)
        if update is None:
            continue
        applied += 1
        new_events += len(update.new_events)
        messages += len(update.messages)
    return PushOut(
        received=len(body.results),
        applied=applied,
        new_events=new_events,
        messages=messages,
        unknown=len(results) - len({row.tracking_number for row in known}),
        ignored=ignored,
    )


def _unreadable(index: int, number: str, failure: TrackingFailure) -> ProblemError:
    return ProblemError(
        422,
        f"result for {number!r} (results[{index}]) is not a simulated-carrier parcel: "
        f"{failure.message}",
        kind="validation-error",
    )
