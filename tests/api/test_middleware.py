"""The request guards in front of every route: body size limit, JSON content type, access log."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from tracking_service.api.middleware import ACCESS_LOGGER, AccessLog, install_request_guards
from tracking_service.api.problems import install_problem_handlers
from tracking_service.settings import Settings

from .helpers import app_client

PROBLEM = "application/problem+json"
LIMIT = 1000


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str


def _app(calls: list[str], *, access_log: bool = False) -> FastAPI:
    """A small app with the guards; `calls` records which endpoints ran."""
    app = FastAPI()
    install_problem_handlers(app)
    install_request_guards(
        app, Settings(max_body_bytes=LIMIT, access_log=access_log, _env_file=None)
    )

    @app.post("/echo")
    async def echo(payload: Payload) -> Payload:
        calls.append("echo")
        return payload

    @app.post("/poke")
    async def poke() -> dict[str, bool]:
        calls.append("poke")
        return {"poked": True}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("internals")

    return app


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
async def client(calls: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(calls), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    """A request body without Content-Length (sent chunked)."""
    for part in parts:
        yield part


def _problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + kind)
    return body


def _json_of_size(size: int) -> bytes:
    head, tail = b'{"name": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


# --- body size --------------------------------------------------------------------------------


async def test_body_over_the_limit_by_content_length_is_a_413_unread(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    body = _json_of_size(LIMIT + 1)
    r = await client.post("/echo", content=body, headers={"content-type": "application/json"})
    problem = _problem(r, 413, "content-too-large")
    assert str(LIMIT) in problem["detail"]
    assert r.headers["connection"] == "close"
    assert calls == []


async def test_body_at_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    body = _json_of_size(LIMIT)
    r = await client.post("/echo", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


async def test_chunked_body_over_the_limit_is_a_413(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    r = await client.post(
        "/echo",
        content=_chunks(*[b"x" * 300] * 5),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    problem = _problem(r, 413, "content-too-large")
    assert str(LIMIT) in problem["detail"]
    assert calls == []


async def test_chunked_body_under_the_limit_is_parsed(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/echo",
        content=_chunks(b'{"name":', b' "chunked"}'),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "chunked"}


async def test_body_limit_applies_to_routes_without_a_body_too(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    r = await client.post("/poke", content=b"x" * (LIMIT + 1))
    _problem(r, 413, "content-too-large")
    assert calls == []


# --- content type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "named"),
    [("text/plain", "got text/plain"), (None, "no Content-Type"), ("application/xml", "xml")],
)
async def test_json_route_refuses_other_content_types_with_415(
    client: httpx.AsyncClient, calls: list[str], content_type: str | None, named: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post("/echo", content=b'{"name": "x"}', headers=headers)
    problem = _problem(r, 415, "unsupported-media-type")
    assert "application/json" in problem["detail"]
    assert named in problem["detail"]
    assert "valid dictionary" not in r.text
    assert calls == []


async def test_chunked_body_with_another_content_type_is_a_415(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    r = await client.post("/echo", content=_chunks(b'{"name": "x"}'), headers={})
    _problem(r, 415, "unsupported-media-type")
    assert calls == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/x+json",
    ],
)
async def test_json_content_types_are_accepted(
    client: httpx.AsyncClient, content_type: str
) -> None:
    r = await client.post("/echo", content=b'{"name": "x"}', headers={"content-type": content_type})
    assert r.status_code == 200, r.text


async def test_route_without_json_body_is_not_concerned(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    r = await client.post("/poke", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert calls == ["poke"]


async def test_no_body_is_not_a_content_type_question(client: httpx.AsyncClient) -> None:
    r = await client.post("/echo")
    body = _problem(r, 422, "validation-error")
    assert [e["field"] for e in body["errors"]] == ["body"]


# --- the service's routes ---------------------------------------------------------------------


async def test_estimate_route_has_the_guards(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'api.db'}", max_body_bytes=200)
    async with app_client(settings) as c:
        big = {"destination": {"country": "US", "postal_code": "10001"}, "options": ["x" * 300]}
        _problem(await c.post("/v1/estimates", json=big), 413, "content-too-large")
        r = await c.post(
            "/v1/estimates",
            content=b'{"destination": {"country": "US", "postal_code": "10001"}}',
            headers={"content-type": "text/plain"},
        )
        _problem(r, 415, "unsupported-media-type")
        spec = (await c.get("/openapi.json")).json()
        responses = spec["paths"]["/v1/estimates"]["post"]["responses"]
        for status in ("413", "415"):
            assert PROBLEM in responses[status]["content"]


def test_default_settings() -> None:
    settings = Settings(_env_file=None)
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.access_log is False


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKING_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("TRACKING_ACCESS_LOG", "true")
    settings = Settings(_env_file=None)
    assert settings.max_body_bytes == 4096
    assert settings.access_log is True


# --- access log -------------------------------------------------------------------------------


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


async def test_access_log_writes_one_structured_line_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    transport = httpx.ASGITransport(
        app=_app([], access_log=True), raise_app_exceptions=False, client=("10.1.2.3", 4567)
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        await c.post("/echo", json={"name": "x"})
        await c.post("/echo", content=b"{}", headers={"content-type": "text/plain"})
        await c.get("/boom")
    records = _access_records(caplog)
    assert [(r.method, r.path, r.status) for r in records] == [  # type: ignore[attr-defined]
        ("POST", "/echo", 200),
        ("POST", "/echo", 415),
        ("GET", "/boom", 500),
    ]
    line = records[0].getMessage()
    assert line.startswith("method=POST path=/echo status=200 duration_ms=")
    assert line.endswith(" client=10.1.2.3:4567")
    assert all(r.duration_ms >= 0 for r in records)  # type: ignore[attr-defined]


async def test_access_log_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    transport = httpx.ASGITransport(app=_app([], access_log=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        await c.post("/echo", json={"name": "x"})
    assert _access_records(caplog) == []


async def test_access_log_quotes_a_path_that_would_split_the_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    transport = httpx.ASGITransport(app=_app([], access_log=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        await c.get("/no where")
    assert 'path="/no where" status=404' in _access_records(caplog)[0].getMessage()


class _EmittingThreads(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.threads.add(threading.get_ident())


def test_access_log_thread_writes_what_was_queued(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    emitting = _EmittingThreads()
    logging.getLogger(ACCESS_LOGGER).addHandler(emitting)
    try:
        access = AccessLog(pause=0.01)
        access.start()
        assert access.running
        for i in range(50):
            access.write((1_700_000_000.0 + i, "GET", f"/n/{i}", 200, 0.5, "-"))
        access.stop()
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(emitting)
    assert not access.running
    records = _access_records(caplog)
    assert [r.path for r in records] == [f"/n/{i}" for i in range(50)]  # type: ignore[attr-defined]
    assert records[3].created == 1_700_000_003.0
    assert records[3].getMessage() == ("method=GET path=/n/3 status=200 duration_ms=0.50 client=-")
    # Formatted and written by the listener's thread, not the one that served the requests.
    assert emitting.threads and threading.get_ident() not in emitting.threads


async def test_lifespan_starts_and_stops_the_access_log_thread() -> None:
    """Through the whole ASGI app, as a server drives it: the listener thread runs between
    lifespan start-up and shutdown."""
    app = _app([], access_log=True)
    access = _access_log_of(app)
    to_app: list[dict[str, Any]] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []
    running_at_startup: list[bool] = []

    async def receive() -> dict[str, Any]:
        return to_app.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            running_at_startup.append(access.running)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert running_at_startup == [True]
    assert not access.running


def _access_log_of(app: FastAPI) -> AccessLog:
    for middleware in app.user_middleware:
        access = middleware.kwargs.get("access_log")
        if isinstance(access, AccessLog):
            return access
    raise AssertionError("no access log installed")
