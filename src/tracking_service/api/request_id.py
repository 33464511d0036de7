"""A request id for every request: in the log lines written while serving it, and in the answer.

The id is the client's `X-Request-ID` when it is sane (1 to 128 letters, digits, `.`, `_`, `:`
or `-`: what proxies and tracing systems send), so one id follows a request through the proxy,
this service and the client's own logs; otherwise a fresh one (32 hex characters, unique per
process and request). It is echoed in the answer's `X-Request-ID` header and held in
`logging_setup.REQUEST_ID` while the request runs, so every log line carries it (see
`logging_setup`).

A pure ASGI middleware, as `api/middleware.py` explains, because it sits in front of every
route, the estimate route included: it reads the request headers once, sets a context
variable and appends one header to the response start; nothing else (about 2 us a request,
measured in-process against an app that answers at once).

When the app raises, the variable is left set: the server-error handler, which runs outside
this middleware, logs the traceback under the same id (each request runs in a task of its
own under uvicorn, so the value dies with the request). That 500 answer is sent by Starlette's
outermost middleware and has no `X-Request-ID` header.
"""

from __future__ import annotations

import itertools
import os
import re

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracking_service.logging_setup import REQUEST_ID

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:\-]{1,128}").fullmatch


class _Ids:
    """Request ids made cheaply: a random prefix per process and a counter (32 hex
    characters in all). Unique, which is all an id must be (it is no secret); `os.urandom`
    per request would cost a system call on the hot path. A forked child draws a new prefix."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_ids = _Ids()


def new_request_id() -> str:
    return _ids.next()


def incoming_id(scope: Scope) -> str | None:
    """The client's `X-Request-ID`, when there is one and it is sane."""
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("ascii") if _SANE(value) else None
    return None


class RequestIdMiddleware:
    """The pure ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_id(scope) or new_request_id()
        header = (HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = REQUEST_ID.set(request_id)
        await self.app(scope, receive, send_with_id)
        REQUEST_ID.reset(token)


def install_request_id(app: FastAPI) -> None:
    """Put the request-id middleware in front of everything added before it."""
    app.add_middleware(RequestIdMiddleware)
