"""Every answer carries a request id, and every log line written while serving it too."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter

from tracking_service.api.middleware import ACCESS_LOGGER
from tracking_service.app import create_app
from tracking_service.logging_setup import REQUEST_ID, JsonFormatter
from tracking_service.settings import Settings

from .helpers import lifespan_client

HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """JSON lines of the `tracking_service.test` logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tracking_service.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


def app_for(tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'rid.db'}", **kw)  # type: ignore[arg-type]
    )
    router = APIRouter()

    @router.get("/test/log")
    async def log_something() -> dict[str, str | None]:
        logging.getLogger("tracking_service.test").info("working on it", extra={"step": 2})
        return {"seen": REQUEST_ID.get()}

    @router.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    app.include_router(router)
    return app


async def test_request_id_is_made_or_taken_and_echoed(tmp_path: Path, lines: io.StringIO) -> None:
    async with lifespan_client(app_for(tmp_path)) as client:
        made = await client.get("/test/log")
        again = await client.get("/test/log")
        taken = await client.get("/test/log", headers={"X-Request-ID": "edge-1234:abc_9.z"})
        for insane in ("has space", "x" * 129, 'quote"d', ""):
            replaced = await client.get("/healthz", headers={"X-Request-ID": insane})
            assert HEX32.fullmatch(replaced.headers["x-request-id"]), insane
        problem = await client.get("/v1/history")  # an error answer carries it too
        unmatched = await client.get("/nowhere")
    assert HEX32.fullmatch(made.headers["x-request-id"])
    assert made.headers["x-request-id"] != again.headers["x-request-id"]
    assert made.json() == {"seen": made.headers["x-request-id"]}
    assert taken.headers["x-request-id"] == "edge-1234:abc_9.z"
    assert HEX32.fullmatch(problem.headers["x-request-id"])
    assert HEX32.fullmatch(unmatched.headers["x-request-id"])
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [entry["request_id"] for entry in logged] == [
        made.headers["x-request-id"],
        again.headers["x-request-id"],
        "edge-1234:abc_9.z",
    ]
    assert logged[0]["message"] == "working on it"
    assert logged[0]["step"] == 2
    assert REQUEST_ID.get() is None  # nothing leaks out of the request


async def test_an_unhandled_error_is_logged_under_the_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with lifespan_client(app_for(tmp_path), raise_app_exceptions=False) as client:
        response = await client.get("/test/boom", headers={"X-Request-ID": "req-boom"})
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "unhandled error on GET /test/boom" in record.getMessage()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] == "req-boom"
    assert "RuntimeError: bug" in entry["exception"]


async def test_access_log_lines_carry_the_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    app = app_for(tmp_path, access_log=True)
    async with lifespan_client(app) as client:
        response = await client.get("/healthz", headers={"X-Request-ID": "abc-1"})
        other = await client.get("/healthz")
    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [r.request_id for r in records] == [  # type: ignore[attr-defined]
        "abc-1",
        other.headers["x-request-id"],
    ]
    assert response.headers["x-request-id"] == "abc-1"
    entry = json.loads(JsonFormatter().format(records[0]))
    assert entry["request_id"] == "abc-1"
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/healthz", 200)
    assert entry["message"].startswith("method=GET path=/healthz status=200")


async def test_requests_without_a_server_still_get_an_id(tmp_path: Path) -> None:
    """No lifespan, the app driven directly (the middleware needs nothing started)."""
    transport = httpx.ASGITransport(app=app_for(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/healthz")
    assert HEX32.fullmatch(response.headers["x-request-id"])
