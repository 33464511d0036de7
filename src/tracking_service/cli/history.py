"""`import-history` and `backtest`: delivery-history files from the command line.

Reading and parsing a file is CPU work: `import-history` does it in a worker thread, a batch at
a time, while the event loop writes the previous batch to the database.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from tracking_service.cli.common import (
    console,
    err_console,
    fail,
    load_settings,
    say,
    with_database,
)
from tracking_service.db import unit_of_work
from tracking_service.estimator.backtest import INPUTS, BacktestConfig, CorrectionConfig
from tracking_service.estimator.history import HistoryConfig
from tracking_service.history.files import (
    FORMATS,
    HistoryFileError,
    RowError,
    RowOutcome,
    count_lines,
    read_deliveries,
)
from tracking_service.history.store import BATCH_SIZE, InsertCounts

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tracking_service.estimator.records import Delivery


def import_history(
    file: Annotated[str, typer.Argument(help="History file: .csv or .csv.gz", show_default=False)],
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="File format: generic or olist", show_default=False),
    ],
    source: Annotated[
        str | None,
        typer.Option(help="Source name kept with each record (default: the format)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate every row and write nothing")
    ] = False,
    show_errors: Annotated[int, typer.Option(min=0, help="How many bad rows to list")] = 20,
) -> None:
    """Validate a delivery-history file and import its good rows; importing twice adds nothing."""
    settings = load_settings()
    if fmt not in FORMATS:
        raise fail(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    source = (source or fmt).strip()
    if not 1 <= len(source) <= 32:
        raise fail("--source must be 1 to 32 characters")
    try:
        outcomes = read_deliveries(file, fmt)
    except HistoryFileError as exc:
        raise fail(str(exc)) from None
    reader = BatchReader(outcomes, show_errors)
    if dry_run:
        report = asyncio.run(import_rows(file, reader, None, source))
    else:
        report = with_database(
            settings.database_url, lambda engine: import_rows(file, reader, engine, source)
        )
    print_import_report(report, f"{Path(file).name} ({fmt})", source, dry_run)
    if report.failure:
        raise fail(report.failure)
    if report.valid == 0 and report.rejected > 0:
        raise fail("no valid rows to import", code=1)


@dataclass
class ImportReport:
    rows: int = 0
    valid: int = 0
    rejected: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    counts: InsertCounts | None = None
    stored: int = 0
    seconds: float = 0.0
    failure: str | None = None


class BatchReader:
    """Pulls parsed rows off a file a batch at a time (called in a worker thread), counting
    rows and keeping the first `show_errors` rejections; a file that breaks part-way ends the
    reading with `failure` set and the rows before it still returned."""

    def __init__(self, outcomes: Iterator[RowOutcome], show_errors: int) -> None:
        self.outcomes = outcomes
        self.report = ImportReport()
        self.show_errors = show_errors
        self.done = False

    def next_batch(self, size: int = BATCH_SIZE) -> list[Delivery]:
        batch: list[Delivery] = []
        report = self.report
        try:
            while len(batch) < size:
                outcome = next(self.outcomes, None)
                if outcome is None:
                    self.done = True
                    break
                line, item = outcome
                report.rows += 1
                if isinstance(item, RowError):
                    report.rejected += 1
                    if len(report.errors) < self.show_errors:
                        report.errors.append((line, item.reason))
                else:
                    report.valid += 1
                    batch.append(item)
        except HistoryFileError as exc:
            self.done = True
            report.failure = (
                f"{exc} (rows before it were handled; importing again adds nothing twice)"
            )
        return batch


async def import_rows(
    file: str, reader: BatchReader, engine: AsyncEngine | None, source: str
) -> ImportReport:
    """Read batches in a thread and (unless `engine` is None) insert them, with a progress bar
    on a terminal."""
    from sqlalchemy.exc import SQLAlchemyError

    from tracking_service.history import store as history_store

    report = reader.report
    report.counts = None if engine is None else InsertCounts()
    started = time.perf_counter()
    try:
        with _progress() as bar:
            total = await asyncio.to_thread(count_lines, file) - 1 if _drawn() else None
            task = bar.add_task("importing" if engine else "validating", total=total)
            async with aclosing(read_ahead(reader)) as batches:
                async for batch in batches:
                    if engine is not None and report.counts is not None and batch:
                        async with unit_of_work(engine) as session:
                            counts = await history_store.insert_batch(session, source, batch)
                        report.counts += counts
                    bar.update(task, completed=report.rows)
        if engine is not None:
            async with unit_of_work(engine) as session:
                report.stored = await history_store.count(session, source)
    except (SQLAlchemyError, OSError) as exc:
        report.failure = f"database error while importing: {exc}"
    finally:
        report.seconds = time.perf_counter() - started
    return report


async def read_ahead(reader: BatchReader) -> AsyncGenerator[list[Delivery], None]:
    """The reader's batches, each read in a worker thread while the caller handles the one
    before (the file is parsed while the database writes)."""
    pending = asyncio.ensure_future(asyncio.to_thread(reader.next_batch))
    try:
        while True:
            batch = await pending
            last = reader.done
            if not last:
                pending = asyncio.ensure_future(asyncio.to_thread(reader.next_batch))
            yield batch
            if last:
                return
    finally:
        if not pending.done():  # the caller stopped early: let the thread finish its batch
            await asyncio.wait([pending])


def _drawn() -> bool:
    return err_console.is_terminal


def _progress() -> Progress:
    """A progress bar on stderr, drawn only when stderr is a terminal."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not _drawn(),
    )


def print_import_report(report: ImportReport, what: str, source: str, dry_run: bool) -> None:
    say(
        f"read {report.rows:,} rows of {what}: {report.valid:,} valid, {report.rejected:,} rejected"
    )
    if report.errors:
        say("rejected rows:")
        for line, reason in report.errors:
            say(f"  line {line}: {reason}")
        if report.rejected > len(report.errors):
            say(f"  ... and {report.rejected - len(report.errors):,} more")
    rate = report.valid / report.seconds if report.seconds > 0 else 0.0
    if dry_run:
        say(
            f"dry run: {report.valid:,} rows would be imported into source {source!r}; "
            "nothing written"
        )
    elif report.counts is not None:
        say(
            f"imported into source {source!r}: {report.counts.inserted:,} new, "
            f"{report.counts.already_present:,} already present "
            f"({report.stored:,} records of this source stored) "
            f"in {report.seconds:.1f} s, {rate:,.0f} rows/s"
        )


def _day_option(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{name}: {value!r} is not a YYYY-MM-DD date") from None


_MODEL = HistoryConfig()
_REPLAY = BacktestConfig()

# The backtest's options; every default shown by --help is the code's own default.
_Evaluate = Annotated[
    Path | None,
    typer.Option(
        help="Orders to evaluate, from another file; without it, --evaluate-from splits "
        "the history file by order date",
        show_default=False,
    ),
]
_Format = Annotated[str, typer.Option("--format", "-f", help="File format: generic or olist")]
_Confidence = Annotated[
    float, typer.Option(min=0.5, max=0.99, help="Confidence of the headline figures")
]
_EvaluateFrom = Annotated[
    str | None,
    typer.Option(
        help="Evaluate orders from this date (YYYY-MM-DD, local at the origin); "
        "earlier orders are the history",
        show_default=False,
    ),
]
_EvaluateTo = Annotated[
    str | None,
    typer.Option(help="... up to this date, inclusive (default: no end)", show_default=False),
]
_HalfLife = Annotated[
    float | None, typer.Option(min=1, help="Recency half-life of a record's weight, in days")
]
_Correction = Annotated[
    bool, typer.Option(help="Online correction of the level (off: the drift signal only)")
]
_Recalibration = Annotated[
    bool,
    typer.Option(
        help="Recalibrate the level from the outcomes of recent promises, open and closed, as "
        "the service does (in-flight inputs only)"
    ),
]
_Inputs = Annotated[
    str,
    typer.Option(
        help="What the model is fed: in-flight (what the tracking pipeline feeds the service: "
        "delivered records, orders and hand-offs in flight) or delivered (delivered records only)"
    ),
]
_Orders = Annotated[
    Path | None,
    typer.Option(
        help="Write one CSV line per evaluated order to this file: dates, the promised latest "
        "date and the level used at each calibration level, the drift factors",
        show_default=False,
    ),
]


def backtest(
    history: Annotated[Path, typer.Option(help="History file (.csv or .csv.gz)")],
    evaluate: _Evaluate = None,
    fmt: _Format = "generic",
    confidence: _Confidence = _REPLAY.confidence,
    evaluate_from: _EvaluateFrom = None,
    evaluate_to: _EvaluateTo = None,
    half_life_days: _HalfLife = _MODEL.half_life_days,
    correction: _Correction = CorrectionConfig().enabled,
    recalibration: _Recalibration = _REPLAY.recalibration is not None,
    inputs: _Inputs = _REPLAY.inputs,
    orders: _Orders = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Replay a delivery history in time order and measure the promises we would have made.

    Every share and mean comes with a 90% interval (weekly block bootstrap). Orders placed
    within 45 days of the data's last delivery are flagged (right truncation) and the figures
    are also given without them. Progress is drawn on stderr when it is a terminal.
    """
    from tracking_service.history.backtest_run import (
        BacktestInputError,
        render,
        run_with_progress,
        speed_line,
        write_orders,
    )

    if inputs not in INPUTS:
        raise fail(f"--inputs: {inputs!r} is not one of {', '.join(INPUTS)}")
    try:
        run = run_with_progress(
            err_console,
            history_path=history,
            evaluate_path=evaluate,
            fmt=fmt,
            confidence=confidence,
            evaluate_from=_day_option(evaluate_from, "--evaluate-from"),
            evaluate_to=_day_option(evaluate_to, "--evaluate-to"),
            model=replace(_MODEL, half_life_days=half_life_days),
            correction=CorrectionConfig(enabled=correction),
            inputs=inputs,
            recalibration=recalibration,
        )
        if orders is not None:
            write_orders(orders, run)
    except BacktestInputError as exc:
        raise fail(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(run.result.to_json()))
        err_console.print(speed_line(run), highlight=False)
    else:
        render(console, run)
        console.print(speed_line(run), highlight=False)
