"""FastAPI app factory and lifespan.

The lifespan opens the database (upgrading its schema when behind), and loads the rules and
calendars into memory: the estimate route then never touches the database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from tracking_service import __version__
from tracking_service.api import estimates, health
from tracking_service.api.problems import add_problem_schemas, install_problem_handlers
from tracking_service.db import create_engine
from tracking_service.estimator.estimate import Estimator
from tracking_service.estimator.rules import load_rules
from tracking_service.migrate import upgrade_if_behind
from tracking_service.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing is opened until the lifespan starts."""
    settings = settings or get_settings()
    # Load the rules eagerly: a broken rules file stops the service before it listens.
    rules = load_rules(settings.rules_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        app.state.engine = engine
        try:
            await upgrade_if_behind(engine)
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Tracking Service",
        version=__version__,
        description="Delivery promises with honest confidence, order tracking and delay warnings.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rules = rules
    app.state.estimator = Estimator(rules)  # calendars and caches, built once per rules load
    install_problem_handlers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problem_schemas(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(health.router)
    app.include_router(estimates.router)
    return app
