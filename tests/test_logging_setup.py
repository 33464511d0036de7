"""Log lines as text or JSON, with the request id; what `configure` does to the root logger."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from tracking_service.logging_setup import REQUEST_ID, JsonFormatter, TextFormatter


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("tracking_service.x").makeRecord(
        "tracking_service.x", logging.WARNING, __file__, 1, message, args, None, extra=extra
    )
    made.created = 1_764_547_200.123  # 2025-12-01T00:00:00.123Z
    return made


def test_json_line_fields() -> None:
    line = JsonFormatter().format(record("polled %d shipments", 3, carrier="ups"))
    assert json.loads(line) == {
        "time": "2025-12-01T00:00:00.123Z",
        "level": "WARNING",
        "logger": "tracking_service.x",
        "message": "polled 3 shipments",
        "carrier": "ups",
    }
    token = REQUEST_ID.set("r-1")
    try:
        assert json.loads(JsonFormatter().format(record("x")))["request_id"] == "r-1"
        given = record("x", request_id="r-2")  # formatted in another thread: the record's wins
        assert json.loads(JsonFormatter().format(given))["request_id"] == "r-2"
    finally:
        REQUEST_ID.reset(token)


def test_json_line_with_an_exception_and_odd_values() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        failed = logging.getLogger("t").makeRecord(
            "t",
            logging.ERROR,
            __file__,
            1,
            "failed",
            (),
            sys.exc_info(),
            extra={"path": Path("/x")},
        )
    line = JsonFormatter().format(failed)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["path"] == "/x"
    assert entry["exception"].startswith("Traceback")
    assert "ValueError: bad\nvalue" in entry["exception"]


def test_text_line_ends_with_the_request_id_in_a_request() -> None:
    plain = TextFormatter().format(record("hello"))
    assert plain.endswith(" WARNING tracking_service.x: hello")
    token = REQUEST_ID.set("r-9")
    try:
        assert TextFormatter().format(record("hello")).endswith(": hello request_id=r-9")
    finally:
        REQUEST_ID.reset(token)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=True,
    )


def test_configure_json_on_a_fresh_process_and_leave_foreign_handlers() -> None:
    done = run_python(
        "import logging\n"
        "from tracking_service.logging_setup import configure, configure_server\n"
        "for name, on in (('uvicorn', True), ('uvicorn.access', False)):\n"  # as uvicorn leaves
        "    logger = logging.getLogger(name)\n"
        "    logger.propagate = False\n"
        "    if on:\n"
        "        logger.addHandler(logging.StreamHandler())\n"
        "assert configure('info', 'text')\n"
        "logging.getLogger('a').info('as text')\n"
        "configure_server('info', 'json')\n"  # the same handler, now JSON; uvicorn routed
        "logging.getLogger('a').info('as json', extra={'n': 1})\n"
        "logging.getLogger('uvicorn.error').info('Started server process', "
        "extra={'color_message': 'Started server process'})\n"
        "logging.getLogger('uvicorn.access').info('off: never shown')\n"
        "logging.getLogger('a').debug('hidden')\n"
        "assert len(logging.getLogger().handlers) == 1\n"
        "root = logging.getLogger()\n"
        "root.handlers[:] = [logging.NullHandler()]\n"
        "assert not configure('debug', 'json')\n"
        "assert root.handlers[0].__class__ is logging.NullHandler\n"
    )
    text, *json_lines = done.stderr.splitlines()
    assert text.endswith(" INFO a: as text")
    entries = [json.loads(line) for line in json_lines]
    assert [(e["logger"], e["message"]) for e in entries] == [
        ("a", "as json"),
        ("uvicorn.error", "Started server process"),
    ]
    assert entries[0]["n"] == 1
    assert "color_message" not in entries[1]


def test_commands_log_json_lines(tmp_path: Path) -> None:
    """`TRACKING_LOG_FORMAT=json`: every line a command logs on stderr is one JSON object."""
    done = subprocess.run(
        [sys.executable, "-m", "tracking_service.cli", "list-api-keys"],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "TRACKING_DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}",
            "TRACKING_LOG_FORMAT": "json",
            "TRACKING_LOG_LEVEL": "debug",
        },
    )
    assert done.returncode == 0, done.stderr
    logged = done.stderr.splitlines()
    assert logged
    for line in logged:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(entry)
    assert "no API keys in the database" in done.stdout
