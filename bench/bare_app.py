"""The baseline of `bench/estimate_load.py`: the estimate route with the estimating taken out.

`POST /v1/estimates` takes the real `EstimateRequest` (parsed and validated exactly like the
service's route, problem+json handlers included) and answers the real `EstimateResponse`
(serialized through the same `response_model`), but computes nothing: it returns one response
prepared at start-up by calling the real estimator once, so the payload has the service's size.
What is left is FastAPI, pydantic and uvicorn: the ceiling the estimate endpoint is measured
against.

    .venv/bin/python -m uvicorn bare_app:create_app --factory --app-dir bench --port 8765
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, FastAPI, Request

from tracking_service.api import estimates as api
from tracking_service.api import health
from tracking_service.api.problems import install_problem_handlers
from tracking_service.estimator.estimate import Destination, Estimator
from tracking_service.estimator.rules import load_rules
from tracking_service.settings import get_settings

# A representative promise: a Pacific destination on the day before Thanksgiving, so three
# options answer with holidays in their explanations and same-day is listed as unavailable.
SAMPLE_DESTINATION = Destination("US", "94103")
SAMPLE_ORDER_TIME = datetime.fromisoformat("2025-11-26T13:30:00-05:00")


def prepared_response() -> api.EstimateResponse:
    """One real response from the real estimator with the rules of `TRACKING_RULES_FILE`."""
    estimator = Estimator(load_rules(get_settings().rules_file))
    result = estimator.estimate(destination=SAMPLE_DESTINATION, order_time=SAMPLE_ORDER_TIME)
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
