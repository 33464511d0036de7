"""The `backtest` command's edge: read history files, run the pure replay, show the figures.

The replay itself is `estimator.backtest.replay`; this module only reads files (through
`history.files`), splits them by order date when asked, drives a progress bar and renders a
table or one JSON object.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tracking_service.estimator.backtest import (
    BacktestConfig,
    BacktestResult,
    CorrectionConfig,
    replay,
    split_by_order_date,
)
from tracking_service.estimator.history import HistoryConfig, holiday_calendars
from tracking_service.estimator.records import Delivery
from tracking_service.history.files import HistoryFileError, RowError, read_deliveries


class BacktestInputError(Exception):
    """Input the command cannot work with; the message is for a person."""


@dataclass(frozen=True)
class BacktestRun:
    result: BacktestResult
    seconds: float
    history_rows: int
    evaluated_rows: int
    bad_rows: int


def read_valid(path: Path, fmt: str) -> tuple[list[Delivery], int]:
    """Valid records of a history file and the number of rows skipped as invalid."""
    records: list[Delivery] = []
    bad = 0
    try:
        for _, outcome in read_deliveries(path, fmt):
            if isinstance(outcome, RowError):
                bad += 1
            else:
                records.append(outcome)
    except HistoryFileError as exc:
        raise BacktestInputError(str(exc)) from None
    return records, bad


def run_backtest(
    history_path: Path,
    evaluate_path: Path | None,
    fmt: str,
    confidence: float,
    evaluate_from: date | None,
    evaluate_to: date | None,
    model: HistoryConfig,
    correction: CorrectionConfig,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestRun:
    """Read, split, replay. Raises `BacktestInputError` for anything a person must fix."""
    history, bad = read_valid(history_path, fmt)
    same_file = evaluate_path is None or evaluate_path.resolve() == history_path.resolve()
    if same_file:
        evaluated = history
    else:
        assert evaluate_path is not None
        evaluated, bad_e = read_valid(evaluate_path, fmt)
        bad += bad_e
    if evaluate_to is not None and evaluate_from is None:
        raise BacktestInputError("--evaluate-to needs --evaluate-from")
    if evaluate_from is not None:
        if evaluate_to is not None and evaluate_to < evaluate_from:
            raise BacktestInputError("--evaluate-to is before --evaluate-from")
        history, _ = split_by_order_date(history, evaluate_from)
        _, evaluated = split_by_order_date(evaluated, evaluate_from, evaluate_to)
    elif same_file:
        raise BacktestInputError(
            "history and evaluated orders are the same file: give --evaluate FILE or split it "
            "by time with --evaluate-from YYYY-MM-DD [--evaluate-to YYYY-MM-DD]"
        )
    if not evaluated:
        raise BacktestInputError("no order to evaluate (check the files and the dates)")
    config = BacktestConfig(confidence=confidence, correction=correction)
    started = time.perf_counter()
    result = replay(history, evaluated, holiday_calendars(), model, config, progress)
    return BacktestRun(
        result=result,
        seconds=time.perf_counter() - started,
        history_rows=len(history),
        evaluated_rows=len(evaluated),
        bad_rows=bad,
    )


def run_with_progress(console: Console, **kwargs: Any) -> BacktestRun:
    """`run_backtest` with a rich progress bar when the console is a terminal: "reading" while
    the files are read and the first models built, then "replaying" with orders done/total."""
    if not console.is_terminal:
        return run_backtest(**kwargs)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("reading", total=None)

        def advance(done: int, total: int) -> None:
            if done == 1 or done % 50 == 0 or done == total:
                bar.update(task, description="replaying", completed=done, total=total)

        return run_backtest(progress=advance, **kwargs)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _days(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def render(console: Console, run: BacktestRun) -> None:
    """The figures as tables on the terminal."""
    s = run.result.summary
    table = Table(title=f"Backtest: {s['orders']} orders evaluated")
    for column in ("promise", "on time", "mean promise days", "mean window days", "days early"):
        table.add_column(column, justify="right" if column != "promise" else "left")
    table.add_row(
        f"history at {s['confidence']:g}",
        _pct(s["on_time_rate"]),
        _days(s["mean_promise_days"]),
        _days(s["mean_window_days"]),
        _days(s["mean_days_early"]),
    )
    base = s["baseline"]
    if base:
        table.add_row(
            "baseline (file's promise)",
            _pct(base["on_time_rate"]),
            _days(base["mean_promise_days"]),
            "-",
            _days(base["mean_days_early"]),
        )
    hand = s["at_handoff"]
    table.add_row(
        "re-estimate at hand-off",
        _pct(hand["on_time_rate"]),
        _days(hand["mean_promise_days"]),
        _days(hand["mean_window_days"]),
        _days(hand["mean_days_early"]),
    )
    console.print(table)
    cal = Table(title="Calibration (each level asked in advance, its own replay)")
    cal.add_column("level", justify="right")
    cal.add_column("on time", justify="right")
    cal.add_column("gap", justify="right")
    cal.add_column("mean promise days", justify="right")
    for level, figures in s["calibration"].items():
        rate = figures["on_time_rate"]
        gap = "-" if rate is None else f"{100 * (rate - float(level)):+.1f} pt"
        cal.add_row(level, _pct(rate), gap, _days(figures["mean_promise_days"]))
    console.print(cal)
    frontier = s["frontier"]
    if frontier["lead_at_baseline_on_time"] is not None and base:
        console.print(
            f"frontier: on time as often as the baseline ({_pct(base['on_time_rate'])}) with a "
            f"mean promise of {frontier['lead_at_baseline_on_time']:.1f} days, "
            f"{frontier['ratio']:.3f} x the baseline's {base['mean_promise_days']:.1f} days"
        )
    elif "note" in frontier:
        console.print(f"frontier: {frontier['note']}")


def speed_line(run: BacktestRun) -> str:
    rate = run.result.estimates / run.seconds if run.seconds > 0 else float("inf")
    return (
        f"{run.result.estimates} estimates in {run.seconds:.1f} s ({rate:,.0f} estimates/s); "
        f"history {run.history_rows} rows, evaluated {run.evaluated_rows}, "
        f"{run.bad_rows} invalid rows skipped"
    )
