"""`backtest`: its --help states the defaults the code uses, and progress shows on a terminal."""

from __future__ import annotations

import csv
import io
import json
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
    assert params["orders"].default is None


def test_help_shows_the_defaults_and_how_evaluation_is_chosen() -> None:
    result = runner.invoke(app, ["backtest", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    assert "[default: generic]" in text
    assert f"[default: {BacktestConfig().confidence}]" in text
    assert f"[default: {HistoryConfig().half_life_days}]" in text
    assert "[default: no-correction]" in text
    assert "[default: in-flight]" in text and "within 45 days" in text
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


def test_inputs_default_and_choices() -> None:
    assert backtest_params()["inputs"].default == BacktestConfig().inputs == "in-flight"
    result = runner.invoke(app, ["backtest", "--history", "x.csv", "--inputs", "everything"])
    assert result.exit_code == 2 and "in-flight, delivered" in result.output


def test_the_output_states_its_inputs(tmp_path: Path) -> None:
    args = ["--format", "olist", "--evaluate-from", "2017-08-01"]
    path = str(olist_file(tmp_path))
    fed = runner.invoke(app, ["backtest", "--history", path, *args])
    assert fed.exit_code == 0, fed.output
    text = " ".join(fed.output.split())
    assert "inputs (in-flight): delivered records, orders in flight, hand-offs in flight" in text
    assert "right truncation:" in text and "On time by month" in text
    delivered = runner.invoke(
        app, ["backtest", "--history", path, *args, "--inputs", "delivered", "--json"]
    )
    assert delivered.exit_code == 0, delivered.output
    out = json.loads(next(x for x in delivered.stdout.splitlines() if x.startswith("{")))
    assert out["inputs"] == "delivered" and out["inputs_fed"] == ["delivered records"]


def test_orders_file_has_one_line_per_evaluated_order(tmp_path: Path) -> None:
    target = tmp_path / "orders.csv"
    args = ["--format", "olist", "--evaluate-from", "2017-08-01", "--json"]
    path = str(olist_file(tmp_path))
    result = runner.invoke(app, ["backtest", "--history", path, *args, "--orders", str(target)])
    assert result.exit_code == 0, result.output
    out = json.loads(next(x for x in result.stdout.splitlines() if x.startswith("{")))
    with target.open() as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == out["orders"]
    levels = [f"latest_{x:g}" for x in BacktestConfig().calibration_levels]
    assert all(line[name] for line in lines for name in levels)
    on_time = sum(line["delivered_date"] <= line["latest_0.9"] for line in lines) / len(lines)
    assert round(on_time, 4) == out["on_time_rate"]
    unwritable = runner.invoke(
        app, ["backtest", "--history", path, *args, "--orders", str(tmp_path / "no" / "x.csv")]
    )
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.output
