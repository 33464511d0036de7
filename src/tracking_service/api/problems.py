"""RFC 9457 problem details: the one JSON shape of every 4xx and 5xx answer.

Every answer about a request that is not valid (FastAPI's validation, a JSON syntax error, a body
that is not UTF-8, a value the domain refuses) has one shape: `detail` reads "The request is not
valid: <field>: <message>; ..." and `errors` lists the same fields one by one. A JSON syntax
error or a bad byte is a 400 of type `malformed-json` whose entry gives the line and column
where parsing stopped; everything else is a 422 of type `validation-error`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tracking_service import errors

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://tracking-service.dev/problems/"


class FieldError(BaseModel):
    """One offending input field."""

    field: str = Field(description="Dotted path of the field, e.g. body.destination.country")
    message: str
    type: str = Field(description="Machine-readable kind of error")
    line: int | None = Field(
        default=None, description="Malformed JSON: line (from 1) where parsing stopped"
    )
    column: int | None = Field(
        default=None, description="Malformed JSON: column (from 1, in characters) on that line"
    )


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="URI identifying the kind of problem")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="For validation errors: each offending field"
    )


class ProblemError(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        errors: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _slug(HTTPStatus(status).phrase)
        self.title = title or HTTPStatus(status).phrase
        self.errors = errors
        self.headers = headers


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-").replace("'", "")


def problem_response(
    request: Request | None,
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    title: str | None = None,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = Problem(
        type=TYPE_BASE + (kind or _slug(phrase)),
        title=title or phrase,
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else None,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


INVALID_TITLE = "Invalid request"
MALFORMED_TITLE = "Malformed JSON"
_SHOWN_IN_DETAIL = 5


def validation_detail(errors: Sequence[FieldError]) -> str:
    """The `detail` of every invalid-request problem: its first fields, then how many more."""
    shown = "; ".join(f"{e.field}: {e.message}" for e in errors[:_SHOWN_IN_DETAIL])
    more = len(errors) - _SHOWN_IN_DETAIL
    return f"The request is not valid: {shown}" + (f" (and {more} more)" if more > 0 else "")


def validation_problem(errors: list[FieldError]) -> ProblemError:
    """422 `validation-error` naming each offending field (at least one)."""
    return ProblemError(
        422,
        validation_detail(errors),
        kind="validation-error",
        title=INVALID_TITLE,
        errors=errors,
    )


def invalid_field(field: str | None, message: str, *, type: str = "value_error") -> ProblemError:
    """422 `validation-error` for one value refused after parsing (by the estimator, by the
    domain's `InvalidInput`); `field` is a dotted path such as `body.origin`, or None when the
    value is not one field (the request as a whole)."""
    return validation_problem([FieldError(field=field or "request", message=message, type=type)])


def _position(text: str | bytes, offset: int) -> tuple[int, int]:
    """(line, column), both from 1, of `offset` in `text`; for bytes the offset counts bytes
    and the column counts the characters before it on its line."""
    if isinstance(text, bytes):
        start = text.rfind(b"\n", 0, offset) + 1
        before = text[start:offset].decode("utf-8", "replace")
        return text.count(b"\n", 0, offset) + 1, len(before) + 1
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def malformed_json(body: str | bytes, offset: int, reason: str) -> ProblemError:
    """400 `malformed-json`: the body cannot be read as JSON from `offset` on (a syntax error,
    or a byte sequence that is not UTF-8); the entry says where."""
    line, column = _position(body, offset)
    error = FieldError(
        field="body",
        message=f"malformed JSON at line {line}, column {column}: {reason}",
        type="json_invalid",
        line=line,
        column=column,
    )
    return ProblemError(
        400,
        validation_detail([error]),
        kind="malformed-json",
        title=MALFORMED_TITLE,
        errors=[error],
    )


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        out.append(FieldError(field=_field_path(err.get("loc", ())), message=msg, type=err["type"]))
    return out


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            # FastAPI's entry: loc ("body", offset), the decoder's message in ctx, the decoded
            # text as the exception's body.
            loc = err.get("loc", ())
            offset = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
            reason = str((err.get("ctx") or {}).get("error", "not valid JSON"))
            body = exc.body if isinstance(exc.body, str | bytes) else ""
            return await _on_problem(request, malformed_json(body, offset, reason))
    return await _on_problem(request, validation_problem(_validation_errors(exc)))


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request,
        exc.status,
        exc.detail,
        kind=exc.kind,
        title=exc.title,
        errors=exc.errors,
        headers=exc.headers,
    )


# The one mapping of domain errors to HTTP: the first class in the error's MRO found here.
_DOMAIN_STATUS: dict[type[errors.DomainError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.InvalidInput: 422,
    errors.Unavailable: 503,
}


async def _on_domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    if isinstance(exc, errors.InvalidInput):
        return await _on_problem(request, invalid_field(exc.field, exc.message))
    status = next((_DOMAIN_STATUS[c] for c in type(exc).__mro__ if c in _DOMAIN_STATUS), None)
    if status is None:  # a DomainError of no known kind is a bug, not an answer
        return await _on_unexpected(request, exc)
    return problem_response(request, status, exc.message)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
        # FastAPI's "error parsing the body" when the JSON text does not decode.
        encoding = "UTF-8" if cause.encoding.replace("-", "").lower() == "utf8" else cause.encoding
        reason = f"not valid {encoding} ({cause.reason})"
        return await _on_problem(request, malformed_json(cause.object, cause.start, reason))
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route {request.method} {request.url.path}"
    return problem_response(request, exc.status_code, detail, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        request, 500, "An unexpected error occurred; it has been logged.", kind="internal-error"
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(errors.DomainError, _on_domain)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)


_DESCRIPTIONS = {
    400: "Malformed JSON (the entry gives line and column) or a malformed request",
    413: "Request body larger than the service's limit (TRACKING_MAX_BODY_BYTES)",
    415: "Body not sent with Content-Type application/json",
    422: "Invalid request: `errors` names each offending field",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring problem+json bodies for the given statuses."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def add_problem_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """Put `Problem` and `FieldError` in the document's components (routes refer to them)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    generated = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(generated.pop("$defs", {}))
    schemas["Problem"] = generated
    return document
