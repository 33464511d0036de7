"""The baseline of `bench/estimate_load.py`: the estimate route with the estimating taken out.

What it does: FastAPI with the service's problem+json handlers and router layout; `POST
/v1/estimates` takes the real `EstimateRequest` (parsed and validated by FastAPI as in the
service) and returns one canned `EstimateResponse` through `response_model` (validated and
serialized by FastAPI on every request). The answer is computed once at start-up by the real
estimator with the runtime the service opens (`services.open_services`), so the payload has
the service's size. What it does not do: estimate per request, resolve dependencies, run the
request guards (body limit, content type) or any middleware, log per request, or keep a
lifespan, scheduler or database open. What is left is FastAPI, pydantic and uvicorn: the
ceiling the estimate endpoint is measured against.

The canned response uses the rules of `TRACKING_RULES_FILE` and, by default, a Pacific ZIP on
the day before Thanksgiving 2025. `estimate_load.py` sets `BENCH_SAMPLE_BODY` (a request body,
JSON) for rules of another country, and `BENCH_HISTORY=1` when it imported delivery history
into `TRACKING_DATABASE_URL`: the response is then computed with the history snapshot the
service builds from that database (percentiles and all), so both answer the same size.

    .venv/bin/python -m uvicorn bare_app:create_app --factory --app-dir bench --port 8765
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from fastapi import APIRouter, FastAPI, Request

from tracking_service.api import estimates as api
from tracking_service.api import health
from tracking_service.api.problems import install_problem_handlers
from tracking_service.estimator.estimate import Destination, EstimateResult, Item
from tracking_service.services import Services, open_services
from tracking_service.settings import get_settings

# A representative promise: a Pacific destination on the day before Thanksgiving, so three
# options answer with holidays in their explanations and same-day is listed as unavailable.
SAMPLE_DESTINATION = Destination("US", "94103")
SAMPLE_ORDER_TIME = datetime.fromisoformat("2025-11-26T13:30:00-05:00")


def _estimate(services: Services) -> EstimateResult:
    """The sample estimate, computed as the service computes it (its estimator, its history
    snapshot when `BENCH_HISTORY=1`)."""
    history = services.history.snapshot if os.environ.get("BENCH_HISTORY") == "1" else None
    sample = os.environ.get("BENCH_SAMPLE_BODY")
    if sample is None:
        return services.estimator.estimate(
            destination=SAMPLE_DESTINATION, order_time=SAMPLE_ORDER_TIME, history=history
        )
    body = api.EstimateRequest.model_validate_json(sample)
    return services.estimator.estimate(
        destination=Destination(
            body.destination.country, body.destination.postal_code, body.destination.subdivision
        ),
        order_time=body.order_time or SAMPLE_ORDER_TIME,
        origin=body.origin,
        items=[Item(i.sku, i.quantity, i.available_on) for i in body.items],
        options=body.options,
        history=history,
        confidence=body.confidence,
    )


def prepared_response() -> api.EstimateResponse:
    """One real response, computed at start-up with the runtime the service opens
    (`services.open_services`: the rules of `TRACKING_RULES_FILE`, the delivery-history snapshot
    built from `TRACKING_DATABASE_URL`), then closed again. In a thread of its own: uvicorn
    calls the factory inside its running event loop."""

    async def compute() -> api.EstimateResponse:
        async with open_services(get_settings(), run_jobs=False) as services:
            return api._to_response(_estimate(services))

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, compute()).result()


def create_app() -> FastAPI:
    """The bare app: same models, same error handlers, same routing layout, a canned answer."""
    canned = prepared_response()
    app = FastAPI(title="Bare estimate endpoint (benchmark baseline)")
    install_problem_handlers(app)
    # The service's layout: the health router first, then a `/v1` router holding the route.
    # Matching through included routers costs FastAPI a few microseconds per request; the
    # bare app pays it too, so the comparison isolates the estimating.
    router = APIRouter(prefix="/v1", tags=["estimates"])

    @router.post(
        "/estimates",
        response_model=api.EstimateResponse,
        responses=api.problem_responses(400, 422, 500),
    )
    async def create_estimate(body: api.EstimateRequest, request: Request) -> api.EstimateResponse:
        # A plain endpoint: the validated body and the request, no dependencies; the response
        # model validates and serializes `canned` on every request.
        return canned

    app.include_router(health.router)
    app.include_router(router)
    return app
