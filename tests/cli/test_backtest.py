"""`backtest`: its --help states the defaults the code uses, and progress shows on a terminal."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import typer
from estimator.test_backtest import olist_file
from rich.console import Console
from typer.testing import CliRunner

from tracking_service.cli import app
from tracking_service.cli import history as cli_history
from tracking_service.estimator.backtest import BacktestConfig, CorrectionConfig
from tracking_service.estimator.history import HistoryConfig
from tracking_service.history.backtest_run import run_with_progress
from tracking_service.history.files import FORMATS

runner = CliRunner()


def backtest_params() -> dict[str, Any]:
    command = typer.main.get_command(app).commands["backtest"]  # type: ignore[attr-defined]
    return {p.name: p for p in command.params if p.name}


def test_help_defaults_are_the_code_defaults() -> None:
    params = backtest_params()
    assert params["confidence"].default == BacktestConfig().confidence
    assert params["half_life_days"].default == HistoryConfig().half_life_days
    assert params["correction"].default is CorrectionConfig().enabled
    assert params["fmt"].default in FORMATS
    assert params["evaluate"].default is None and params["evaluate_to"].default is None


def test_help_shows_the_defaults_and_how_evaluation_is_chosen() -> None:
    result = runner.invoke(app, ["backtest", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    assert "[default: generic]" in text
    assert f"[default: {BacktestConfig().confidence}]" in text
    assert f"[default: {HistoryConfig().half_life_days}]" in text
    assert "[default: no-correction]" in text
    assert "without it, --evaluate-from splits the history file" in text
    assert "default: the history file" not in text  # it used to claim a split it never made


def test_progress_is_drawn_on_a_terminal(tmp_path: Path) -> None:
    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=100)
    run = run_with_progress(
        terminal,
        history_path=olist_file(tmp_path),
        evaluate_path=None,
        fmt="olist",
        confidence=0.9,
        evaluate_from=date(2017, 8, 1),
        evaluate_to=None,
        model=HistoryConfig(),
        correction=CorrectionConfig(),
    )
    assert run.evaluated_rows > 0
    drawn = out.getvalue()
    assert "replaying" in drawn and f"{run.evaluated_rows}/{run.evaluated_rows}" in drawn


def test_the_command_draws_progress_on_stderr_when_it_is_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cli_history, "err_console", Console(file=out, force_terminal=True))
    args = ["--format", "olist", "--evaluate-from", "2017-08-01", "--json"]
    result = runner.invoke(app, ["backtest", "--history", str(olist_file(tmp_path)), *args])
    assert result.exit_code == 0, result.output
    assert "replaying" in out.getvalue()
