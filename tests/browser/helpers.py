"""What the browser tests share: the browser (Debian's Chromium at `/usr/bin/chromium` or
`$CHROMIUM`, never Playwright's own download), when they skip, where screenshots go, and the
app served by a real uvicorn server on a free loopback port."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    # What Chromium needs on a machine with a closed network; Playwright adds `--headless`
    # and a fresh temporary `--user-data-dir` for every launch itself.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_or_skip() -> None:
    """Skip (or fail under CI) when there is no browser or no Playwright to drive it."""
    reason = None
    if not os.access(CHROMIUM, os.X_OK):
        reason = (
            f"no Chromium at {CHROMIUM}: install Debian's `chromium` package (`make test` does "
            "so as root), or set CHROMIUM to a Chromium binary"
        )
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            reason = "Playwright is not installed: pip install -e '.[dev]'"
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the browser tests must run: {reason}")
    pytest.skip(reason)


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """`app` under uvicorn on a free 127.0.0.1 port, in a thread; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
