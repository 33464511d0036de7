"""Every error answer is RFC 9457 problem+json, whatever raised it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from tracking_service import errors
from tracking_service.api.problems import ProblemError, install_problem_handlers, invalid_field

INVALID = "The request is not valid: "


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

    @app.post("/refuse")
    async def refuse(payload: Payload) -> Payload:
        raise invalid_field("body.name", f"{payload.name!r} is taken")

    @app.post("/domain")
    async def domain(payload: Payload) -> Payload:
        raise errors.InvalidInput("no such name", field="body.name")

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


async def _post_json(client: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    return await client.post(path, content=body, headers={"content-type": "application/json"})


async def test_malformed_json_names_line_and_column(client: httpx.AsyncClient) -> None:
    text = b'{\n  "name": "x",\n  "count": }\n'
    body = _is_problem(await _post_json(client, "/echo", text), 400)
    assert str(body["type"]).endswith("/malformed-json")
    [error] = body["errors"]  # type: ignore[misc]
    assert error["field"] == "body"
    assert error["type"] == "json_invalid"
    assert (error["line"], error["column"]) == (3, 12)
    assert error["message"].startswith("malformed JSON at line 3, column 12: Expecting value")
    assert body["detail"] == INVALID + "body: " + error["message"]


async def test_position_counts_characters_not_bytes(client: httpx.AsyncClient) -> None:
    text = '{"name": "ção", "count": 1,}'.encode()
    body = _is_problem(await _post_json(client, "/echo", text), 400)
    [error] = body["errors"]  # type: ignore[misc]
    assert (error["line"], error["column"]) == (1, 28)


async def test_invalid_utf8_is_malformed_json_with_its_position(client: httpx.AsyncClient) -> None:
    text = b'{"name":\n "ab\xffc", "count": 1}'
    body = _is_problem(await _post_json(client, "/echo", text), 400)
    assert str(body["type"]).endswith("/malformed-json")
    [error] = body["errors"]  # type: ignore[misc]
    assert error["type"] == "json_invalid"
    assert (error["line"], error["column"]) == (2, 5)
    assert "UTF-8" in error["message"]
    assert str(body["detail"]).startswith(INVALID + "body: malformed JSON at line 2, column 5")


async def test_every_invalid_request_has_the_same_shape(client: httpx.AsyncClient) -> None:
    """FastAPI's validation, a route's own refusal and the domain's InvalidInput read alike."""
    validation = _is_problem(await client.post("/echo", json={"name": "x"}), 422)
    refused = _is_problem(await client.post("/refuse", json={"name": "x", "count": 1}), 422)
    domain = _is_problem(await client.post("/domain", json={"name": "x", "count": 1}), 422)
    for body in (validation, refused, domain):
        assert str(body["type"]).endswith("/validation-error")
        assert body["title"] == "Invalid request"
        entries = body["errors"]
        assert isinstance(entries, list) and entries
        expected = "; ".join(f"{e['field']}: {e['message']}" for e in entries)
        assert body["detail"] == INVALID + expected
    assert refused["detail"] == INVALID + "body.name: 'x' is taken"
    assert domain["errors"] == [
        {"field": "body.name", "message": "no such name", "type": "value_error"}
    ]


async def test_many_invalid_fields_are_summarized(client: httpx.AsyncClient) -> None:
    body = _is_problem(
        await client.post("/echo", json={"name": 1, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5}), 422
    )
    assert len(body["errors"]) == 7  # type: ignore[arg-type]
    assert str(body["detail"]).endswith(" (and 2 more)")
