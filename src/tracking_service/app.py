"""FastAPI app factory and lifespan.

`create_app` loads the rules (a broken rules file stops the service before it listens) and
builds what depends only on them once: the estimator and the estimate response renderer. The
lifespan opens the process's runtime with `services.open_services` (database upgraded when
behind, delivery-history snapshot built before the first request, carrier adapters, the
scheduler) and closes it on shutdown; routes reach it through the typed dependencies of
`api/deps.py`. Background jobs shared by the deployment run here only when
`TRACKING_RUN_JOBS_IN_API` is true (the default; `serve --workers N` turns it off and a
separate `tracking-service worker` runs them).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from tracking_service import __version__
from tracking_service.api import carriers as carriers_api
from tracking_service.api import estimates, health, orders, shipments
from tracking_service.api import history as history_api
from tracking_service.api import metrics as metrics_api
from tracking_service.api import notifications as notifications_api
from tracking_service.api import reports as reports_api
from tracking_service.api import tracking_page as tracking_page_api
from tracking_service.api import webhook_endpoints as webhook_endpoints_api
from tracking_service.api.metrics import install_request_metrics
from tracking_service.api.middleware import install_request_guards
from tracking_service.api.problems import add_problem_schemas, install_problem_handlers
from tracking_service.api.request_id import install_request_id
from tracking_service.clock import Clock
from tracking_service.demo import demo
from tracking_service.estimator.estimate import Estimator
from tracking_service.estimator.rules import load_rules
from tracking_service.logging_setup import configure_server
from tracking_service.services import open_services
from tracking_service.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    carrier_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the app; nothing is opened until the lifespan starts.

    `clock` and `carrier_transport` replace the system clock and the carriers' network (tests,
    in-process simulations)."""
    settings = settings or get_settings()
    configure_server(settings.log_level, settings.log_format)  # each `serve --workers` process
    estimator = Estimator(load_rules(settings.rules_file))  # calendars and caches, built once

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(
            settings,
            run_jobs=settings.run_jobs_in_api,
            clock=clock,
            carrier_transport=carrier_transport,
            estimator=estimator,
        ) as services:
            app.state.services = services
            try:
                async with demo(services):  # nothing unless TRACKING_DEMO (make run)
                    yield
            finally:
                del app.state.services

    app = FastAPI(
        title="Tracking Service",
        version=__version__,
        description="Delivery promises with honest confidence, order tracking and delay warnings.",
        lifespan=lifespan,
    )
    # Built once with the app: the estimator (also handed to the runtime) and its renderer.
    app.state.estimator = estimator
    app.state.estimate_renderer = estimates.ResponseRenderer(estimator)
    install_problem_handlers(app)
    install_request_guards(app, settings)
    install_request_metrics(app)  # latency by route, for GET /metrics
    install_request_id(app)  # outermost: every answer and log line of a request has its id

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problem_schemas(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(health.router)
    app.include_router(metrics_api.router)
    app.include_router(estimates.router)
    app.include_router(history_api.router)
    app.include_router(orders.router)
    app.include_router(shipments.router)
    app.include_router(carriers_api.router)
    app.include_router(webhook_endpoints_api.router)
    app.include_router(notifications_api.router)
    app.include_router(reports_api.router)  # the promise report: JSON and page
    tracking_page_api.install(app, settings)  # /t/{token} and /v1/tracking/{token}
    return app
