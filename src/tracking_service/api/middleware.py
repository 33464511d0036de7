"""What every request passes before routing: body size and content-type guards, the access log.

One pure ASGI middleware (not Starlette's `BaseHTTPMiddleware`, which runs each request through
extra tasks and memory streams): on the hot path it reads the request headers once, wraps
`send` for the access log, and does nothing else. Its refusals are problem+json like every
other error answer (`api/problems.py`).

- Body size: a request whose `Content-Length` exceeds `settings.max_body_bytes` is answered
  413 at once, unread; a body without a length (chunked upload) is counted as it streams in and
  the request is answered 413 as soon as the count passes the limit, before anything parses it.
  Bodies with a length are not counted: the HTTP server never delivers more than the length.
- Content type: a route that reads a JSON body gets bodies sent as `application/json` (or a
  `+json` type) only; anything else, no `Content-Type` included, is answered 415 naming what it
  expected. Without this, FastAPI hands the raw bytes to the model, and the client reads
  "Input should be a valid dictionary". Routes without a JSON body are not concerned: the
  check runs when the app starts reading such a body, after routing has chosen the route
  (`scope["route"]`), so it needs no copy of the routing table.
- Access log (`settings.access_log`, off by default): one structured line per request on the
  `tracking_service.access` logger (method, path, status, duration in ms, client; the
  request id as a record attribute). The request only puts a tuple on a queue; a
  `QueueListener` thread makes the log record, formats and writes it through the logger's
  handlers (the root's, as `serve` configures them), so formatting and I/O stay off the event
  loop and out of the request's latency. They still take CPU in this process (the thread
  holds the interpreter lock while it formats): 30-45 us a line under uvicorn, a fifth of
  what the estimate route costs, which is why it is opt-in. The thread runs between the app's
  lifespan start and end; without a lifespan (tests driving the app directly) lines are
  written inline.
"""

from __future__ import annotations

import json
import logging
import queue
import time
from logging.handlers import QueueListener
from typing import Any

from fastapi import FastAPI, params
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracking_service.api.problems import problem_response
from tracking_service.logging_setup import REQUEST_ID
from tracking_service.settings import Settings

ACCESS_LOGGER = "tracking_service.access"

AccessEntry = (
    tuple[float, str, str, int, float, str] | tuple[float, str, str, int, float, str, str | None]
)
"""(wall-clock start, method, path, status, duration in ms, client[, request id]) of one
request."""


class _Refusal(Exception):
    """A request refused by the guards: raised into the app by `receive` to stop it reading
    the body, then answered as problem+json."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.title = title
        self.headers = headers


async def _refuse(scope: Scope, receive: Receive, send: Send, refusal: _Refusal) -> None:
    response = problem_response(
        Request(scope),
        refusal.status,
        refusal.detail,
        kind=refusal.kind,
        title=refusal.title,
        headers=refusal.headers,
    )
    await response(scope, receive, send)


def _unsupported_type(scope: Scope) -> _Refusal:
    sent = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    got = f"got {sent.decode('latin-1')}" if sent else "no Content-Type was sent"
    return _Refusal(
        415,
        f"{scope['method']} {scope['path']} takes a JSON body: send it with "
        f"Content-Type: application/json ({got})",
        kind="unsupported-media-type",
        title="Unsupported Media Type",
        headers={"Accept-Post": "application/json"} if scope["method"] == "POST" else None,
    )


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _reads_json(scope: Scope) -> bool:
    """Whether the route routing chose for this request parses its body as JSON: a FastAPI
    route with a body parameter that is not a form. Asked when the app first reads the body,
    routing has set `scope["route"]` by then."""
    route = scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return False
    return not isinstance(route.body_field.field_info, params.Form)


def _logfmt(value: str) -> str:
    """A value of a key=value line, quoted when it would otherwise split the line."""
    if value and not any(c in value for c in ' "=\\') and value.isprintable():
        return value
    return json.dumps(value)


class _AccessListener(QueueListener):
    """Turns queued `AccessEntry` tuples into log records, in the listener's thread.

    When the queue runs empty the thread sleeps `pause` seconds before it waits again, so that
    under load it wakes a few times a second for a batch of lines, rather than once per request
    (each wake-up takes the interpreter lock from the event loop).
    """

    def __init__(self, access: AccessLog, pause: float) -> None:
        super().__init__(access.entries, _ToLogger(access.logger))
        self.access = access
        self.pause = pause

    def dequeue(self, block: bool) -> Any:
        entries = self.access.entries
        try:
            return entries.get_nowait()
        except queue.Empty:
            if not block:
                raise
        time.sleep(self.pause)
        return entries.get()

    def prepare(self, record: Any) -> logging.LogRecord:
        return self.access.record(record)


class _ToLogger(logging.Handler):
    """Hands a record to a logger, so the logging configuration decides where it goes."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        self.logger.handle(record)


class AccessLog:
    """The per-request log: a queue on the request path, a thread for records and I/O."""

    FORMAT = "method=%s path=%s status=%d duration_ms=%.2f client=%s"

    def __init__(self, logger: logging.Logger | None = None, *, pause: float = 0.05) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)
        self.entries: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.pause = pause
        self._listener: _AccessListener | None = None
        # Every record shares all but its times and values: copy them from one made here, in
        # the thread that serves requests (what `makeRecord` would compute costs ~10 us).
        model = self.logger.makeRecord(
            self.logger.name, logging.INFO, __file__, 0, self.FORMAT, (), None
        )
        self._model = dict(model.__dict__)
        self._relative_ms = model.created * 1000.0 - model.relativeCreated

    @property
    def running(self) -> bool:
        return self._listener is not None

    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def start(self) -> None:
        if self._listener is None:
            self._listener = _AccessListener(self, self.pause)
            self._listener.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()

    def write(self, entry: AccessEntry) -> None:
        if self._listener is not None:
            self.entries.put_nowait(entry)
        else:
            self.logger.handle(self.record(entry))

    def record(self, entry: AccessEntry) -> logging.LogRecord:
        """The log record of one request: a key=value message, and the same values as record
        attributes (`method`, `path`, `status`, `duration_ms`, `client`) for a structured
        formatter, and `request_id`, which `logging_setup`'s formatters show."""
        created, method, path, status, duration_ms, client, *rest = entry
        record = logging.LogRecord.__new__(logging.LogRecord)
        values = record.__dict__
        values.update(self._model)
        values.update(
            created=created,
            msecs=(created - int(created)) * 1000.0,
            relativeCreated=created * 1000.0 - self._relative_ms,
            args=(method, _logfmt(path), status, duration_ms, client),
            method=method,
            path=path,
            status=status,
            duration_ms=round(duration_ms, 3),
            client=client,
            request_id=rest[0] if rest else None,
        )
        return record


class AnsweredStatus:
    """A `send` that notes the status of the response passing through it, for middleware that
    reports on a request once the app has answered. Until a response starts it is 500: what the
    server error middleware answers when the app raises."""

    def __init__(self, send: Send) -> None:
        self.status = 500
        self._send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)


class RequestGuards:
    """The pure ASGI middleware described in the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        access_log: AccessLog | None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.access_log is not None:
                await self._lifespan(scope, receive, send, self.access_log)
            else:
                await self.app(scope, receive, send)
            return
        access = self.access_log
        if access is None or not access.enabled():
            await self._guarded(scope, receive, send)
            return
        created = time.time()
        started = time.perf_counter()
        answered = AnsweredStatus(send)
        try:
            await self._guarded(scope, receive, answered)
        finally:
            client = scope.get("client")
            access.write(
                (
                    created,
                    scope["method"],
                    scope["path"],
                    answered.status,
                    (time.perf_counter() - started) * 1000.0,
                    f"{client[0]}:{client[1]}" if client else "-",
                    REQUEST_ID.get(),
                )
            )

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        length: bytes | None = None
        content_type: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"transfer-encoding":
                chunked = True
        if length is None:
            has_body = chunked
        else:
            if not length.strip().isdigit():
                await _refuse(scope, receive, send, _Refusal(400, "Content-Length is not a number"))
                return
            size = int(length)
            if size > self.max_body_bytes:
                refusal = self._too_large(f"Content-Length: {size}")
                await _refuse(scope, receive, send, refusal)
                return
            has_body = size > 0
        check_type = has_body and not _is_json(content_type)
        if length is None or check_type:
            await self._watched(scope, receive, send, count=length is None, check_type=check_type)
        else:
            await self.app(scope, receive, send)

    async def _watched(
        self, scope: Scope, receive: Receive, send: Send, *, count: bool, check_type: bool
    ) -> None:
        """Run the app with a `receive` that refuses the body when the app starts reading it:
        415 when the route reads JSON and the body is not sent as JSON (`check_type`), 413
        when a body without a length passes the limit (`count`). The app's own answer to the
        interrupted read is dropped and the refusal sent instead."""
        limit = self.max_body_bytes
        received = 0
        refusal: _Refusal | None = None
        response_started = False

        async def receive_watched() -> Message:
            nonlocal received, refusal, check_type
            if check_type:
                check_type = False
                if _reads_json(scope):
                    refusal = _unsupported_type(scope)
                    raise refusal
            message = await receive()
            if count and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refusal = self._too_large(f"more than {received} bytes sent")
                    raise refusal
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal response_started
            if refusal is not None and not response_started:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive_watched, send_unless_refused)
        except Exception:
            if refusal is None or response_started:
                raise
        if refusal is not None and not response_started:
            await _refuse(scope, receive, send, refusal)

    def _too_large(self, seen: str) -> _Refusal:
        return _Refusal(
            413,
            f"The request body is larger than the limit of {self.max_body_bytes} bytes ({seen})",
            kind="content-too-large",
            title="Content Too Large",
            # The rest of the body is not read: end the connection rather than drain it.
            headers={"Connection": "close"},
        )

    async def _lifespan(
        self, scope: Scope, receive: Receive, send: Send, access: AccessLog
    ) -> None:
        """Start the access log's thread with the app, and stop it (flushed) with the app."""

        async def receive_starting() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                access.start()
            return message

        async def send_stopping(message: Message) -> None:
            if message["type"] in {
                "lifespan.startup.failed",
                "lifespan.shutdown.complete",
                "lifespan.shutdown.failed",
            }:
                access.stop()
            await send(message)

        try:
            await self.app(scope, receive_starting, send_stopping)
        finally:
            access.stop()


def install_request_guards(app: FastAPI, settings: Settings) -> None:
    """Put the body limit, the JSON content-type check and the access log in front of `app`."""
    app.add_middleware(
        RequestGuards,
        max_body_bytes=settings.max_body_bytes,
        access_log=AccessLog() if settings.access_log else None,
    )
