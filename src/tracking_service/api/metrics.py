"""`GET /metrics` for Prometheus, and the middleware that times every request for it.

The route is public, like `/healthz` and `/readyz`: a scraper needs no key, and the figures
hold no personal data (counts by status, carrier and route). A deployment that exposes the
service's port beyond its own network should keep `/metrics` (and the probes) on the inside,
at its proxy.

Each scrape reads the database figures in a session of its own (`metrics.read_figures`); when
the database does not answer, the scrape still answers 200 with this process's metrics and
`tracking_database_up 0`, so the scraper sees what failed instead of a gap.

`RequestTimer` is a pure ASGI middleware (see `api/middleware.py` for why): it notes the time
and the status the app answers and observes the duration under the route's template
(`/v1/orders/{order_id}`, never the raw path) once the app has answered.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tracking_service import metrics
from tracking_service.api.deps import ServicesDep
from tracking_service.api.middleware import AnsweredStatus
from tracking_service.metrics import RequestMetrics

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


class RequestTimer:
    """Observes every HTTP request's duration in `RequestMetrics`."""

    def __init__(self, app: ASGIApp, *, request_metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = request_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = AnsweredStatus(send)
        try:
            await self.app(scope, receive, answered)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or metrics.UNMATCHED_ROUTE
            self.metrics.observe(
                template, scope["method"], answered.status, time.perf_counter() - started
            )


def request_metrics_of(app: FastAPI) -> RequestMetrics:
    found: RequestMetrics = app.state.request_metrics
    return found


def install_request_metrics(app: FastAPI) -> RequestMetrics:
    """Time every request of `app` (middleware in front of those added before it) and keep
    the histogram in `app.state.request_metrics`, built once with the app."""
    request_metrics = RequestMetrics()
    app.state.request_metrics = request_metrics
    app.add_middleware(RequestTimer, request_metrics=request_metrics)
    return request_metrics


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Metrics in the Prometheus text format (version 0.0.4)",
            "content": {metrics.CONTENT_TYPE: {"schema": {"type": "string"}}},
        }
    },
    summary="Metrics for Prometheus",
)
async def get_metrics(request: Request, services: ServicesDep) -> Response:
    """Shipments by status, delayed shipments, due shipments and the poll lag, carrier polls
    and errors today by carrier, the outbox backlog (read from the database now), and this
    process's request latency by route, method and status. No key needed."""
    carriers = list(services.settings.carrier_configs())
    figures: metrics.Figures | None
    try:
        async with services.sessions() as session:
            figures = await metrics.read_figures(
                session, services.clock.now(), datetime.now(UTC), carriers
            )
    except Exception as exc:
        log.warning("metrics: the database did not answer: %s: %s", type(exc).__name__, exc)
        figures = None
    body = metrics.render(request_metrics_of(request.app), metrics.families(figures, carriers))
    return Response(body, media_type=metrics.CONTENT_TYPE)
