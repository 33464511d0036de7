"""The `backtest` command's edge: read history files, run the pure replay, show the figures.

The replay itself is `estimator.backtest.replay` and its figures `estimator.backtest_figures`;
this module only reads files (through `history.files`), splits them by order date when asked,
drives a progress bar, renders a table or one JSON object and writes the `--orders` CSV.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tracking_service.estimator.backtest import (
    IN_FLIGHT,
    BacktestConfig,
    BacktestResult,
    CorrectionConfig,
    replay,
    split_by_order_date,
)
from tracking_service.estimator.backtest_figures import order_lines
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
    levels: tuple[float, ...] = ()  # the levels of the --orders lines


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
    inputs: str = IN_FLIGHT,
    recalibration: bool = True,
) -> BacktestRun:
    """Read, split, replay. Raises `BacktestInputError` for anything a person must fix.

    Right truncation is judged against the newest delivery of the files as read, before the
    split: that is where the data ends."""
    history, bad = read_valid(history_path, fmt)
    same_file = evaluate_path is None or evaluate_path.resolve() == history_path.resolve()
    if same_file:
        evaluated = history
    else:
        assert evaluate_path is not None
        evaluated, bad_e = read_valid(evaluate_path, fmt)
        bad += bad_e
    everything = history if same_file else history + evaluated
    data_end = max((d.delivered_at for d in everything), default=None)
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
    config = BacktestConfig(
        confidence=confidence, correction=correction, inputs=inputs, data_end=data_end
    )
    if not recalibration:
        config = replace(config, recalibration=None)
    started = time.perf_counter()
    result = replay(history, evaluated, holiday_calendars(), model, config, progress)
    return BacktestRun(
        result=result,
        seconds=time.perf_counter() - started,
        history_rows=len(history),
        evaluated_rows=len(evaluated),
        bad_rows=bad,
        levels=tuple(sorted({round(confidence, 4), *config.calibration_levels})),
    )


def write_orders(path: Path, run: BacktestRun) -> None:
    """The `--orders` CSV: one line per evaluated order (`backtest_figures.order_lines`), at
    the calibration levels and the headline confidence."""
    try:
        with path.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(order_lines(run.result.rows, run.levels))
    except OSError as exc:
        raise BacktestInputError(f"cannot write {path}: {exc.strerror or exc}") from None


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


def _with_interval(figures: Mapping[str, Any], name: str, pct: bool) -> str:
    """A figure and its 90% interval, e.g. "89.0% (86.9-90.6)"."""
    value = figures.get(name)
    low, high = figures.get("intervals", {}).get(name, (None, None))
    if pct:
        shown = _pct(value)
        if low is None or high is None:
            return shown
        return f"{shown} ({100 * low:.1f}-{100 * high:.1f})"
    shown = _days(value)
    if low is None or high is None:
        return shown
    return f"{shown} ({low:.1f}-{high:.1f})"


def _inputs_line(s: Mapping[str, Any]) -> str:
    return f"inputs ({s['inputs']}): {', '.join(s['inputs_fed'])}"


def _frontier_line(s: Mapping[str, Any]) -> str | None:
    frontier, base = s["frontier"], s["baseline"]
    if frontier["lead_at_baseline_on_time"] is not None and base:
        ratio = frontier["intervals"].get("ratio")
        spread = "" if not ratio else f" ({ratio[0]:.3f}-{ratio[1]:.3f})"
        return (
            f"frontier: as often on time as the baseline ({_pct(base['on_time_rate'])}) with a "
            f"mean promise of {frontier['lead_at_baseline_on_time']:.1f} days, "
            f"{frontier['ratio']:.3f}{spread} x its {base['mean_promise_days']:.1f} days"
        )
    if "note" in frontier:
        return f"frontier: {frontier['note']}"
    return None


def _truncation_line(s: Mapping[str, Any]) -> str:
    t = s["truncation"]
    head = (
        f"right truncation: {t['flagged_orders']} orders placed within {t['days']} days of the "
        f"data's last delivery ({t['last_delivery']})"
    )
    if not t["flagged_orders"]:
        return head + "; nothing to leave out"
    w = t["without_flagged"]
    cal = ", ".join(f"{k} {_pct(v['on_time_rate'])}" for k, v in w["calibration"].items())
    ratio = w["frontier"]["ratio"]
    return (
        f"{head}; without them: {w['orders']} orders, on time {cal}; frontier ratio "
        f"{'-' if ratio is None else f'{ratio:.3f}'}"
    )


def render(console: Console, run: BacktestRun) -> None:
    """The figures as tables on the terminal; shares and means with their 90% interval."""
    s = run.result.summary
    table = Table(title=f"Backtest: {s['orders']} orders evaluated (90% intervals)")
    for column in ("promise", "on time", "mean promise days", "mean window days", "days early"):
        table.add_column(column, justify="right" if column != "promise" else "left")

    def add(name: str, figures: Mapping[str, Any]) -> None:
        table.add_row(
            name,
            _with_interval(figures, "on_time_rate", pct=True),
            _with_interval(figures, "mean_promise_days", pct=False),
            _days(figures["mean_window_days"]),
            _days(figures["mean_days_early"]),
        )

    add(f"history at {s['confidence']:g}", s)
    if s["baseline"]:
        add("baseline (file's promise)", s["baseline"])
    add("re-estimate at hand-off", s["at_handoff"])
    console.print(table)
    cal = Table(title="Calibration (each level asked in advance, its own replay)")
    cal.add_column("level", justify="right")
    cal.add_column("on time", justify="right")
    cal.add_column("gap", justify="right")
    cal.add_column("mean promise days", justify="right")
    for level, figures in s["calibration"].items():
        rate = figures["on_time_rate"]
        gap = "-" if rate is None else f"{100 * (rate - float(level)):+.1f} pt"
        cal.add_row(
            level,
            _with_interval(figures, "on_time_rate", pct=True),
            gap,
            _with_interval(figures, "mean_promise_days", pct=False),
        )
    console.print(cal)
    months = s["calibration_by_month"]
    if months:
        by_month = Table(title="On time by month of order, at each level")
        by_month.add_column("month")
        by_month.add_column("orders", justify="right")
        levels = list(s["calibration"])
        for level in levels:
            by_month.add_column(level, justify="right")
        for month, at in months.items():
            first = next(iter(at.values()))
            by_month.add_row(
                month,
                str(first["orders"]),
                *(_with_interval(at[level], "on_time_rate", pct=True) for level in levels),
            )
        console.print(by_month)
    for line in (_frontier_line(s), _truncation_line(s), _inputs_line(s)):
        if line is not None:
            console.print(line, highlight=False)


def speed_line(run: BacktestRun) -> str:
    rate = run.result.estimates / run.seconds if run.seconds > 0 else float("inf")
    return (
        f"{run.result.estimates} estimates in {run.seconds:.1f} s ({rate:,.0f} estimates/s); "
        f"history {run.history_rows} rows, evaluated {run.evaluated_rows}, "
        f"{run.bad_rows} invalid rows skipped"
    )
