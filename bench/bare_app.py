"""The baseline of `bench/estimate_load.py`: the estimate route with the estimating taken out.

`POST /v1/estimates` takes the real `EstimateRequest` (parsed and validated exactly like the
service's route, problem+json handlers included) and answers the real `EstimateResponse`
(serialized through the same `response_model`), but computes nothing: it returns one response
prepared at start-up by calling the real estimator once, so the payload has the service's size.
What is left is FastAPI, pydantic and uvicorn: the ceiling the estimate endpoint is measured
against.

The prepared response uses the rules of `TRACKING_RULES_FILE` and, by default, a Pacific ZIP on
the day before Thanksgiving 2025. `estimate_load.py` sets `BENCH_SAMPLE_BODY` (a request body,
JSON) for rules of another country, and `BENCH_HISTORY=1` when it imported delivery history
into `TRACKING_DATABASE_URL`: the response is then computed with the history snapshot the
service would build from that database (percentiles and all), so both answer the same size.

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
from tracking_service.db import create_engine
from tracking_service.estimator.estimate import Destination, Estimator, Item
from tracking_service.estimator.option_history import OptionHistories
from tracking_service.estimator.rules import Rules, load_rules
from tracking_service.history.runtime import HistoryRuntime
from tracking_service.settings import get_settings

# A representative promise: a Pacific destination on the day before Thanksgiving, so three
# options answer with holidays in their explanations and same-day is listed as unavailable.
SAMPLE_DESTINATION = Destination("US", "94103")
SAMPLE_ORDER_TIME = datetime.fromisoformat("2025-11-26T13:30:00-05:00")


def history_snapshot(rules: Rules) -> OptionHistories:
    """The snapshot the service builds at start from the same database (`HistoryRuntime`),
    built in a thread of its own: uvicorn calls the factory inside its running event loop."""

    async def build() -> OptionHistories:
        engine = create_engine(get_settings().database_url)
        try:
            runtime = HistoryRuntime(engine, rules, publish=lambda snapshot: None)
            return (await runtime.refresh()).snapshot
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, build()).result()


def prepared_response() -> api.EstimateResponse:
    """One real response from the real estimator with the rules of `TRACKING_RULES_FILE` (and
    the database's delivery history with `BENCH_HISTORY=1`)."""
    rules = load_rules(get_settings().rules_file)
    estimator = Estimator(rules)
    history = history_snapshot(rules) if os.environ.get("BENCH_HISTORY") == "1" else None
    sample = os.environ.get("BENCH_SAMPLE_BODY")
    if sample is None:
        result = estimator.estimate(
            destination=SAMPLE_DESTINATION, order_time=SAMPLE_ORDER_TIME, history=history
        )
    else:
        body = api.EstimateRequest.model_validate_json(sample)
        result = estimator.estimate(
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
    return api._to_response(result)


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
        # Same signature as the real route (body + request), so FastAPI does the same work.
        return canned

    app.include_router(health.router)
    app.include_router(router)
    return app
