"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from tracking_service.api.deps import ServicesDep
from tracking_service.api.problems import ProblemError, problem_responses
from tracking_service.db import ping
from tracking_service.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok"] = "ok"
    database: Literal["ok"] = "ok"
    schema_revision: str | None


@router.get("/healthz", response_model=Health, responses=problem_responses(500))
async def healthz() -> Health:
    """The process is up (no dependency checked)."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses=problem_responses(500, 503))
async def readyz(services: ServicesDep) -> Readiness:
    """The database answers and its schema is current (the scripts' head is read once per
    process, see `migrate.head_revision`)."""
    engine = services.engine
    try:
        await ping(engine)
        revision = await current_revision(engine)
    except Exception as exc:
        raise ProblemError(503, f"database unavailable: {exc.__class__.__name__}") from exc
    if revision != head_revision():
        raise ProblemError(503, f"database schema at {revision}, expected {head_revision()}")
    return Readiness(schema_revision=revision)
