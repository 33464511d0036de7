"""The promise report: `GET /v1/reports/promises` (JSON) and `GET /reports/promises` (a page).

"Are we keeping our word, and is the confidence we show true?" on the shop's own orders: the
ledger of orders placed in [from, to] (`reports.ledger`), their figures per group
(`reports.figures`) and, for the page, the charts (`reports.svg`, server-rendered SVG, no
script). Dates are the origin's calendar days; both ends are included; the default is the last
90 days of the service clock.

The JSON needs a back-office API key. The page takes the same key, or HTTP Basic with the
password of `TRACKING_REPORTS_PASSWORD` (any user name; compared in constant time), so a
person can open it in a browser; without either it answers 401 with a `WWW-Authenticate`
challenge (Basic when a password is set). The page is one request: its stylesheet is inline
and allowed by its hash in a strict Content-Security-Policy, and it is never cached.

The figures (a bootstrap per group) are computed in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import binascii
import secrets
from base64 import b64decode
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
)
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection

from tracking_service.api.carriers import IsoDay
from tracking_service.api.deps import (
    ClockDep,
    EstimatorDep,
    ServicesDep,
    SessionDep,
    _api_key_header,
    _bearer,
    require_api_key,
)
from tracking_service.api.problems import ProblemError, invalid_field, problem_responses
from tracking_service.clock import Clock
from tracking_service.errors import InvalidInput
from tracking_service.estimator.estimate import Estimator
from tracking_service.reports.figures import GroupBy, PromiseReport, build_report
from tracking_service.reports.ledger import load_ledger
from tracking_service.reports.page import CSS_HASH, render_page
from tracking_service.reports.period import home_today, report_range

router = APIRouter(tags=["reports"])

REALM = "Promise report"

HTML_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src '{CSS_HASH}'; img-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# --- who may read it ---------------------------------------------------------------------------


class _ReportPassword(HTTPBasic):
    """HTTP Basic that reads UTF-8 credentials (RFC 7617) and answers None, not an error, for
    anything it cannot read: the caller then says what to send."""

    async def __call__(self, request: HTTPConnection) -> HTTPBasicCredentials | None:  # type: ignore[override]
        scheme, param = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "basic":
            return None
        try:
            text = b64decode(param, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return None
        username, colon, password = text.partition(":")
        return HTTPBasicCredentials(username=username, password=password) if colon else None


_basic = _ReportPassword(
    auto_error=False,
    scheme_name="ReportPassword",
    realm=REALM,
    description="For the report page only: HTTP Basic with any user name and the password "
    "of TRACKING_REPORTS_PASSWORD",
)


def _challenge(detail: str, *, password_set: bool) -> ProblemError:
    """A 401 whose challenge a browser answers by asking for the password, when there is one
    (browsers do not read a second challenge in the same header, so Bearer is left out)."""
    scheme = f'Basic realm="{REALM}", charset="UTF-8"' if password_set else "Bearer"
    return ProblemError(401, detail, kind="unauthorized", headers={"WWW-Authenticate": scheme})


async def require_report_viewer(
    services: ServicesDep,
    session: SessionDep,
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> None:
    """A back-office API key, or the report password over HTTP Basic; else a 401."""
    configured = services.settings.reports_password
    password_set = configured is not None
    if basic is not None:
        if configured is not None and secrets.compare_digest(
            basic.password.encode(), configured.get_secret_value().encode()
        ):
            return
        raise _challenge(
            "wrong report password"
            if password_set
            else "the report page has no password (TRACKING_REPORTS_PASSWORD is unset): "
            "send a back-office API key",
            password_set=password_set,
        )
    if bearer is None and not header_key and password_set:
        raise _challenge(
            "sign in with the report password (any user name), or send a back-office API key "
            "as `Authorization: Bearer KEY`",
            password_set=True,
        )
    try:
        await require_api_key(services, session, bearer, header_key)
    except ProblemError as exc:
        if password_set:
            raise _challenge(exc.detail, password_set=True) from None
        raise


# --- the query ---------------------------------------------------------------------------------

FromQuery = Annotated[
    IsoDay | None,
    Query(
        alias="from",
        description="First order date (YYYY-MM-DD, the origin's calendar); default: 89 days "
        "before `to`",
    ),
]
ToQuery = Annotated[
    IsoDay | None,
    Query(
        alias="to",
        description="Last order date, included (YYYY-MM-DD); default: today on the service clock",
    ),
]
GroupByQuery = Annotated[
    GroupBy,
    Query(
        description="How orders are grouped: `lane` (origin -> destination region), `carrier` "
        "(the first parcel's), `option`, `origin`, `destination_region` (e.g. US-CA) or "
        "`week` (the Monday of the order week)"
    ),
]


async def _report(
    session: AsyncSession,
    estimator: Estimator,
    clock: Clock,
    start: date | None,
    end: date | None,
    group_by: str,
) -> PromiseReport:
    now = clock.now()
    try:
        first, last = report_range(start, end, home_today(estimator.rules, now))
    except InvalidInput as exc:
        raise invalid_field(f"query.{exc.field}", exc.message) from None
    zones = {o.id: o.time_zone for o in estimator.rules.origins}
    rows = await load_ledger(session, first, last, now=now, origin_zones=zones)
    return await asyncio.to_thread(
        build_report, rows, start=first, end=last, group_by=group_by, as_of=now
    )


# --- the JSON shape ------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class IntervalOut(_Out):
    value: float | None = Field(description="The figure; null when there is nothing to count")
    low: float | None = Field(description="90% interval, low end; null with fewer than 2 weeks")
    high: float | None = Field(description="90% interval, high end")
    weeks: int = Field(description="Order weeks the interval resamples (its blocks)")


class GroupOut(_Out):
    key: str = Field(examples=["nyc-queens -> US-CA", "ups", "2025-11-03"])
    orders: int = Field(description="Orders placed in the range (cancelled ones left out)")
    on_time: int = Field(description="Delivered by the latest promised date")
    late: int = Field(description="Delivered after it, or not delivered once it has passed")
    open: int = Field(description="Not delivered, latest date not passed yet")
    resolved: int = Field(
        description="Orders whose latest date has passed at the destination: the share and "
        "the means below are of these"
    )
    on_time_share: IntervalOut = Field(
        description="Share of resolved orders kept on time, with its 90% interval (weekly "
        "block bootstrap)"
    )
    stated_confidence: float | None = Field(description="Mean confidence stated at checkout")
    mean_promised_lead_days: float | None = Field(
        description="Days from the order date to the latest promised date (every order)"
    )
    mean_delivered_lead_days: float | None = Field(
        description="Days from the order date to the delivery (resolved, delivered)"
    )
    mean_days_early: float | None = Field(description="Of resolved on-time orders")
    mean_days_late: float | None = Field(
        description="Of resolved late orders (one still on its way: the days so far)"
    )


class ReliabilityOut(_Out):
    low: float = Field(description="Stated confidence bin, from (included)")
    high: float = Field(description="to (excluded; 1.0 included in the last bin)")
    resolved: int
    stated: float = Field(description="Mean stated confidence in the bin")
    observed: IntervalOut = Field(description="On-time share in the bin")


class LeadsOut(_Out):
    days: list[int] = Field(description="Lead in days, the index of the two lists")
    promised: list[int] = Field(description="Resolved orders by promised lead")
    delivered: list[int] = Field(description="Resolved, delivered orders by delivered lead")
    undelivered: int = Field(description="Resolved orders not delivered")
    last_is_or_more: bool = Field(description="The last count is that many days or more")


class PromiseReportOut(_Out):
    """Are promises kept, and is the stated confidence true? Orders placed in [from, to]."""

    from_: date = Field(alias="from")
    to: date
    group_by: GroupBy
    as_of: datetime = Field(description="The instant outcomes were read at (the service clock)")
    total: GroupOut = Field(description="Every order of the range")
    groups: list[GroupOut] = Field(
        description="Per group: weeks in calendar order, other groups largest first"
    )
    reliability: list[ReliabilityOut] = Field(
        description="Stated confidence against the on-time share, per confidence bin"
    )
    weeks: list[GroupOut] = Field(description="Per order week (Monday), in order")
    leads: LeadsOut
    worst_lanes: list[GroupOut] = Field(
        description="The lanes that miss most: highest late share among lanes with at least "
        "5 resolved orders and a miss"
    )


# --- routes --------------------------------------------------------------------------------------


@router.get(
    "/v1/reports/promises",
    response_model=PromiseReportOut,
    response_model_by_alias=True,
    responses=problem_responses(401, 422),
    dependencies=[Depends(require_api_key)],
    summary="Promises kept against the stated confidence, per group",
)
async def promise_report(
    session: SessionDep,
    estimator: EstimatorDep,
    clock: ClockDep,
    start: FromQuery = None,
    end: ToQuery = None,
    group_by: GroupByQuery = "lane",
) -> PromiseReportOut:
    """The promise ledger's figures for orders placed from `from` to `to` (the origin's
    dates, both included; at most 731 days): per group, orders, how many are resolved (their
    latest date has passed at the destination), the on-time share of those with a 90%
    interval from a bootstrap over order weeks, the mean stated confidence, the mean promised
    and delivered leads, and the mean days early and late; plus the reliability bins, the
    weekly shares, the lead histograms and the lanes that miss most (what the page draws)."""
    report = await _report(session, estimator, clock, start, end, group_by)
    return PromiseReportOut.model_validate(report.as_json())


@router.get(
    "/reports/promises",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "The report page"},
        **problem_responses(401, 422),
    },
    dependencies=[Depends(require_report_viewer)],
    summary="The promise report as a page (charts, no script)",
)
async def promise_report_page(
    session: SessionDep,
    estimator: EstimatorDep,
    clock: ClockDep,
    start: FromQuery = None,
    end: ToQuery = None,
    group_by: GroupByQuery = "lane",
) -> HTMLResponse:
    """The same report for people: a verdict, a reliability diagram (stated confidence
    against the share kept on time, with the diagonal and the intervals), the on-time share
    by week, promised against delivered lead, the lanes that miss most, and the table per
    group. Server-rendered SVG, no JavaScript. An API key, or HTTP Basic with
    TRACKING_REPORTS_PASSWORD (any user name)."""
    report = await _report(session, estimator, clock, start, end, group_by)
    html = await asyncio.to_thread(render_page, report)
    return HTMLResponse(html, headers=HTML_HEADERS)
