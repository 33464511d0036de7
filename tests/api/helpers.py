"""Run the app as the server does: its lifespan opens the runtime before the first request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from tracking_service.app import create_app
from tracking_service.settings import Settings


@asynccontextmanager
async def lifespan_client(
    app: FastAPI, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on `app` while its lifespan runs (started before, stopped after)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@asynccontextmanager
async def app_client(settings: Settings, **create: Any) -> AsyncIterator[httpx.AsyncClient]:
    """`create_app(settings, **create)` with its lifespan running, and a client on it."""
    async with lifespan_client(create_app(settings, **create)) as client:
        yield client
