"""Every error answer is RFC 9457 problem+json, whatever raised it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from tracking_service.api.problems import ProblemError, install_problem_handlers


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    count: int


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/echo")
    async def echo(payload: Payload) -> Payload:
        return payload

    @app.get("/teapot")
    async def teapot() -> None:
        raise ProblemError(418, "short and stout", kind="teapot")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _is_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body


async def test_malformed_json_is_a_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/echo", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    body = _is_problem(r, 400)
    assert "malformed JSON" in str(body["detail"])


async def test_validation_errors_name_each_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/echo", json={"name": 5, "extra": True})
    body = _is_problem(r, 422)
    fields = {e["field"] for e in body["errors"]}  # type: ignore[union-attr]
    assert fields == {"body.name", "body.count", "body.extra"}


async def test_problem_error_keeps_its_kind(client: httpx.AsyncClient) -> None:
    body = _is_problem(await client.get("/teapot"), 418)
    assert str(body["type"]).endswith("/teapot")
    assert body["detail"] == "short and stout"


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    body = _is_problem(await client.get("/nope"), 404)
    assert "/nope" in str(body["detail"])


async def test_wrong_method_is_a_problem(client: httpx.AsyncClient) -> None:
    _is_problem(await client.get("/echo"), 405)


async def test_unexpected_error_is_a_500_without_internals(client: httpx.AsyncClient) -> None:
    body = _is_problem(await client.get("/boom"), 500)
    assert "secret" not in str(body)
