"""FastAPI app factory and lifespan.

The lifespan opens the database (upgrading its schema when behind), and loads the rules and
calendars into memory: the estimate route then never touches the database. It also builds the
delivery-history snapshot (`history_runtime`, awaited: the first requests already use it) and
starts the scheduler (`scheduler`) that refreshes it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from tracking_service import __version__
from tracking_service.api import estimates, health
from tracking_service.api import history as history_api
from tracking_service.api.middleware import install_request_guards
from tracking_service.api.problems import add_problem_schemas, install_problem_handlers
from tracking_service.db import create_engine
from tracking_service.estimator.estimate import Estimator
from tracking_service.estimator.rules import load_rules
from tracking_service.history.runtime import HistoryRuntime
from tracking_service.migrate import upgrade_if_behind
from tracking_service.scheduler import add_history_refresh, create_scheduler
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
        scheduler = create_scheduler()
        runtime = HistoryRuntime(
            engine, rules, publish=lambda snapshot: setattr(app.state, "history", snapshot)
        )
        try:
            await upgrade_if_behind(engine)
            app.state.history_runtime = runtime
            await runtime.refresh_logged()
            add_history_refresh(scheduler, runtime, settings.history_refresh_seconds)
            scheduler.start()
            yield
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            await runtime.close()
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
    install_request_guards(app, settings)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problem_schemas(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(health.router)
    app.include_router(estimates.router)
    app.include_router(history_api.router)
    return app
