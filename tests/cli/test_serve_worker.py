"""`serve`, `worker` and `migrate`: where the background jobs run, and a clean start and stop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tracking_service.cli import app
from tracking_service.cli.serve import RUN_JOBS_IN_API, run_worker
from tracking_service.settings import Settings, get_settings

runner = CliRunner()


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TRACKING_DATABASE_URL", database_url)
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "info")
    # serve --workers N writes this variable into os.environ: setenv first makes monkeypatch
    # remove it again after the test (a delenv of an absent variable records no undo)
    monkeypatch.setenv(RUN_JOBS_IN_API, "true")
    monkeypatch.delenv(RUN_JOBS_IN_API)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`uvicorn.run` recorded instead of run: its arguments and the environment it would see."""
    import uvicorn

    calls: list[dict[str, Any]] = []

    def run(target: str, **kwargs: Any) -> None:
        calls.append({"target": target, **kwargs, "env": os.environ.get(RUN_JOBS_IN_API)})

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


def test_serve_one_process_runs_the_jobs_and_no_uvicorn_access_log(
    db: str, uvicorn_calls: list[dict[str, Any]]
) -> None:
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    [call] = uvicorn_calls
    assert call["access_log"] is False
    assert call["env"] is None  # the API keeps its default: jobs run in it


def test_serve_many_workers_leaves_the_jobs_to_a_worker(
    db: str, uvicorn_calls: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    result = runner.invoke(app, ["serve", "--workers", "3"])
    assert result.exit_code == 0, result.output
    [call] = uvicorn_calls
    assert call["workers"] == 3 and call["access_log"] is False
    assert call["env"] == "false"
    assert Settings().run_jobs_in_api is False  # what each API process reads at start
    assert any("tracking-service worker" in r.getMessage() for r in caplog.records)


def test_serve_help_says_a_worker_runs_the_jobs_with_many_processes() -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--workers N (N > 1)" in text and "tracking-service worker" in text


@pytest.mark.parametrize("command", [["migrate"], ["serve"]])
def test_commands_name_their_database(
    db: str,
    command: list[str],
    uvicorn_calls: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    named = [r.getMessage() for r in caplog.records if r.getMessage().startswith("database: ")]
    assert named, caplog.text
    if db.startswith("sqlite"):
        assert named[0] == f"database: sqlite:///{Path(db.removeprefix('sqlite:///')).resolve()}"


def test_unreachable_database_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKING_DATABASE_URL", "postgresql://someone:secret@127.0.0.1:9/none")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach the database at postgresql://someone:***@")
    assert "secret" not in result.output


async def test_worker_runs_the_jobs_until_stopped(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = Settings(database_url=database_url, history_refresh_seconds=60)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    while not any(r.getMessage().startswith("worker running") for r in caplog.records):
        assert not worker.done(), caplog.text
        await asyncio.sleep(0.01)
    stop.set()
    await worker
    messages = [r.getMessage() for r in caplog.records]
    assert any("refresh delivery history" in m for m in messages)
    assert messages[-1] == "worker stopped"


def test_worker_process_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TRACKING_DATABASE_URL": f"sqlite:///{tmp_path / 'worker.db'}",
        "TRACKING_LOG_LEVEL": "info",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracking_service.cli", "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    running = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "worker running" in line:
                running.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert running.wait(60), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    log = "".join(lines)
    assert f"database: sqlite:///{tmp_path / 'worker.db'}" in log
    assert "refresh delivery history" in log
    assert "worker stopped" in log
    assert "Traceback" not in log
