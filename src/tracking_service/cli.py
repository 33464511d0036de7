"""The `tracking-service` command line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from tracking_service.db import DatabaseURLError, create_engine
from tracking_service.estimator.rules import RulesError, load_rules
from tracking_service.migrate import upgrade_if_behind
from tracking_service.settings import get_settings

if TYPE_CHECKING:
    from tracking_service.estimator.records import Delivery
    from tracking_service.history.files import RowOutcome
    from tracking_service.history.store import InsertCounts

app = typer.Typer(
    help="Delivery promises, order tracking and delay warnings. "
    "Configuration comes from TRACKING_* environment variables or a .env file.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def configure_logging(level: str) -> None:
    """Log to stderr; Alembic's step-by-step INFO lines only when debugging."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("alembic").setLevel(logging.WARNING)


async def _migrate(url: str) -> tuple[str | None, str | None]:
    engine = create_engine(url)
    try:
        return await upgrade_if_behind(engine)
    finally:
        await engine.dispose()


def ensure_schema(database_url: str) -> tuple[str | None, str | None]:
    """Upgrade the schema when behind; a clear message instead of a traceback otherwise."""
    try:
        return asyncio.run(_migrate(database_url))
    except DatabaseURLError as exc:
        raise fail(str(exc)) from None
    except (OSError, ConnectionError) as exc:
        raise fail(f"cannot reach the database at {database_url}: {exc}") from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [TRACKING_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [TRACKING_PORT]")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (default one)")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
) -> None:
    """Serve the HTTP API (uvicorn), upgrading the database schema first when behind."""
    import uvicorn

    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        load_rules(settings.rules_file)
    except RulesError as exc:
        raise fail(str(exc)) from None
    ensure_schema(settings.database_url)
    uvicorn.run(
        "tracking_service.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers if not reload else None,
        reload=reload,
        log_level=settings.log_level,
    )


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision and exit."""
    settings = get_settings()
    configure_logging(settings.log_level)
    before, after = ensure_schema(settings.database_url)
    if before == after:
        console.print(f"database schema is current (revision {after})")
    else:
        console.print(f"database schema upgraded: {before or 'empty'} -> {after}")


@app.command("import-history")
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
    from tracking_service.history.files import FORMATS, HistoryFileError, read_deliveries

    settings = get_settings()
    configure_logging(settings.log_level)
    if fmt not in FORMATS:
        raise fail(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    source = (source or fmt).strip()
    if not 1 <= len(source) <= 32:
        raise fail("--source must be 1 to 32 characters")
    try:
        outcomes = read_deliveries(file, fmt)
    except HistoryFileError as exc:
        raise fail(str(exc)) from None
    database_url = None if dry_run else settings.database_url
    if database_url is not None:
        ensure_schema(database_url)
    report = asyncio.run(_import_history(file, outcomes, database_url, source, show_errors))

    def say(text: str) -> None:
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    say(
        f"read {report.rows:,} rows of {Path(file).name} ({fmt}): {report.valid:,} valid, "
        f"{report.rejected:,} rejected"
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
    if report.failure:
        raise fail(report.failure)
    if report.valid == 0 and report.rejected > 0:
        raise fail("no valid rows to import", code=1)


@dataclass
class _ImportReport:
    rows: int = 0
    valid: int = 0
    rejected: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    counts: InsertCounts | None = None
    stored: int = 0
    seconds: float = 0.0
    failure: str | None = None


async def _import_history(
    file: str,
    outcomes: Iterator[RowOutcome],
    database_url: str | None,
    source: str,
    show_errors: int,
) -> _ImportReport:
    """Validate and (unless `database_url` is None) insert in batches, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    from sqlalchemy.exc import SQLAlchemyError

    from tracking_service.history import store as history_store
    from tracking_service.history.files import HistoryFileError, RowError, count_lines

    report = _ImportReport(counts=None if database_url is None else history_store.InsertCounts())
    engine = None if database_url is None else create_engine(database_url)
    batch: list[Delivery] = []
    started = time.perf_counter()

    async def flush() -> None:
        if engine is not None and report.counts is not None and batch:
            report.counts += await history_store.insert_batch(engine, source, batch)
        batch.clear()

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    try:
        with progress:
            total = count_lines(file) - 1 if console.is_terminal else None
            task = progress.add_task("importing" if engine else "validating", total=total)
            for line, item in outcomes:
                report.rows += 1
                if isinstance(item, RowError):
                    report.rejected += 1
                    if len(report.errors) < show_errors:
                        report.errors.append((line, item.reason))
                else:
                    report.valid += 1
                    batch.append(item)
                    if len(batch) >= history_store.BATCH_SIZE:
                        await flush()
                progress.advance(task)
            await flush()
        if engine is not None:
            report.stored = await history_store.count(engine, source)
    except HistoryFileError as exc:
        await flush()
        report.failure = f"{exc} (rows before it were handled; importing again adds nothing twice)"
    except (SQLAlchemyError, OSError) as exc:
        report.failure = f"database error while importing: {exc}"
    finally:
        report.seconds = time.perf_counter() - started
        if engine is not None:
            await engine.dispose()
    return report


@app.command("sim-carrier")
def sim_carrier(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port")] = 8900,
    speed: Annotated[
        float,
        typer.Option(min=0.001, help="Simulated seconds per real second (1440: a day a minute)"),
    ] = 1440.0,
    access_log: Annotated[bool, typer.Option(help="Log every request")] = False,
) -> None:
    """Run the simulated carrier (POST /v1/track, POST /v1/labels) for demos and load tests.

    Point the service at it with TRACKING_SIMULATED_BASE_URL (default http://127.0.0.1:8900).
    """
    from tracking_service.carriers.sim.server import serve as serve_sim

    settings = get_settings()
    configure_logging(settings.log_level)
    console.print(f"simulated carrier on http://{host}:{port} (speed x{speed:g})")
    serve_sim(host, port, speed, access_log=access_log, log_level=settings.log_level)


@app.command("sim-label")
def sim_label(
    scenario: Annotated[
        str | None,
        typer.Option(
            help="normal, delayed, failed_attempt, customs_hold, lost or return_to_sender "
            "(default: a realistic mix)"
        ),
    ] = None,
    count: Annotated[int, typer.Option(min=1, max=1000, help="How many numbers")] = 1,
) -> None:
    """Mint simulated-carrier tracking numbers labelled now (no server needed: the number
    carries its scenario and label instant)."""
    import random

    from tracking_service.carriers.sim.number import Scenario
    from tracking_service.carriers.sim.server import mint, utc_now

    try:
        chosen = Scenario(scenario) if scenario else None
    except ValueError:
        raise fail(
            f"unknown scenario {scenario!r}: choose one of {', '.join(s.value for s in Scenario)}"
        ) from None
    for label in mint(chosen, count, utc_now(), random.Random()):
        typer.echo(f"{label['tracking_number']}  {label['scenario']}")


@app.command()
def detect(
    number: Annotated[str, typer.Argument(help="A tracking number (spaces allowed, quote it)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Which carriers and formats a tracking number matches, and whether its check digit is
    valid. Exit code 0 when some format matches validly, 1 otherwise."""
    import json

    from tracking_service.carriers import numbers as tracking_numbers

    text = tracking_numbers.compact(number)
    matches = tracking_numbers.detect(number)
    valid = any(m.valid for m in matches)
    if as_json:
        payload = {"number": text, "valid": valid, "matches": [m.as_json() for m in matches]}
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    elif not matches:
        typer.echo(f"{text}: matches no known format")
    else:
        typer.echo(f"{text}: {len(matches)} candidate format(s), best first")
        for m in matches:
            verdict = "valid" if m.valid else f"INVALID: {m.problem}"
            typer.echo(
                f"  {m.carrier:<9} {m.format_id:<21} check digit {m.check_digit.value:<14} "
                f"{verdict}"
            )
            extras = [f"{name}: {value}" for name, value in m.details]
            if m.tracking_number != text:
                extras.insert(0, f"tracking number {m.tracking_number}")
            if m.tracking_url and m.valid:
                extras.append(m.tracking_url)
            for extra in extras:
                typer.echo(f"  {'':<9} {extra}")
    raise typer.Exit(0 if valid else 1)


@app.command()
def track(
    carrier: Annotated[
        str, typer.Argument(help="ups, fedex, usps, dhl, simulated, or auto (from the number)")
    ],
    number: Annotated[str, typer.Argument(help="The tracking number")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Look a number up at its carrier now (configured credentials and base URL) and print the
    normalized result or the typed failure. Exit code 0 on a result, 1 on a failure."""
    import json

    from tracking_service.carriers.base import FailureKind, TrackingFailure, TrackingOutcome
    from tracking_service.carriers.present import outcome_to_json, outcome_view
    from tracking_service.carriers.registry import CARRIER_CODES, carrier_for, track_now

    settings = get_settings()
    configure_logging(settings.log_level)
    code = carrier.strip().lower()
    if code != "auto" and code not in CARRIER_CODES:
        raise fail(f"unknown carrier {carrier!r}: choose auto or one of {', '.join(CARRIER_CODES)}")
    outcome: TrackingOutcome
    chosen = carrier_for(number) if code == "auto" else (code, number)
    if chosen is None:
        outcome = TrackingFailure(
            "auto",
            number.strip(),
            FailureKind.INVALID_NUMBER,
            "no carrier's format matches this number with a valid check digit "
            "(see `tracking-service detect`); name the carrier instead of auto",
        )
    else:
        ensure_schema(settings.database_url)  # the OAuth token cache lives in the database

        async def lookup(code: str, number: str) -> TrackingOutcome:
            engine = create_engine(settings.database_url)
            try:
                return await track_now(code, number, settings, engine)
            finally:
                await engine.dispose()

        outcome = asyncio.run(lookup(*chosen))
    if as_json:
        typer.echo(json.dumps(outcome_to_json(outcome), indent=2, ensure_ascii=False))
    else:
        console.print(outcome_view(outcome))
    raise typer.Exit(1 if isinstance(outcome, TrackingFailure) else 0)


@app.command("check-rules")
def check_rules(
    file: Annotated[Path, typer.Argument(help="Rules file (TOML)", show_default=False)],
) -> None:
    """Validate a rules file and print its origins and shipping options; exit 2 when invalid."""
    from rich.table import Table

    from tracking_service.estimator.calendar import WEEKDAY_NAMES

    try:
        rules = load_rules(file)
    except RulesError as exc:
        raise fail(str(exc)) from None

    def days(values: tuple[int, ...]) -> str:
        ordered = sorted(values)
        if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
            return f"{WEEKDAY_NAMES[ordered[0]]}-{WEEKDAY_NAMES[ordered[-1]]}"
        return " ".join(WEEKDAY_NAMES[d] for d in ordered)

    origins = Table(title=f"{rules.name or file}: origins")
    for column in ("id", "place", "postal code", "time zone", "cutoff", "handling", "works"):
        origins.add_column(column)
    for o in rules.origins:
        origins.add_row(
            o.id,
            f"{o.country}-{o.subdivision}" if o.subdivision else o.country,
            o.postal_code,
            o.time_zone,
            o.cutoff.isoformat("minutes"),
            f"{o.handling_days} d",
            days(o.working_weekdays),
        )
    options = Table(title="shipping options")
    for column in ("code", "name", "carrier / service", "price", "conf.", "delivers", "cutoff"):
        options.add_column(column)
    for s in rules.shipping_options:
        options.add_row(
            s.code,
            s.name,
            f"{s.carrier} / {s.service}",
            f"{s.price} {s.currency}",
            f"{s.confidence:.0%}",
            days(s.delivery_weekdays),
            s.cutoff.isoformat("minutes") if s.cutoff else "origin's",
        )
    transit = Table(title="transit business days by zone (min-max)")
    transit.add_column("zone")
    transit.add_column("covers")
    for s in rules.shipping_options:
        transit.add_column(s.code, justify="center")
    for z in rules.zones:
        covers = ", ".join(z.postal_prefixes) or ", ".join(z.subdivisions) or "whole country"
        cells = []
        for s in rules.shipping_options:
            t = next((t for t in s.transit if t.zone == z.id), None)
            cells.append("-" if t is None else f"{t.min}" if t.min == t.max else f"{t.min}-{t.max}")
        transit.add_row(z.id, f"{z.country}: {covers}", *cells)
    console.print(origins)
    console.print(options)
    console.print(transit)
    console.print(f"[green]valid:[/] {file}", highlight=False)


def _day_option(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{name}: {value!r} is not a YYYY-MM-DD date") from None


@app.command()
def backtest(
    history: Annotated[Path, typer.Option(help="History file (.csv or .csv.gz)")],
    evaluate: Annotated[
        Path | None, typer.Option(help="Orders to evaluate (default: the history file, split)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="generic | olist")] = "generic",
    confidence: Annotated[
        float, typer.Option(min=0.5, max=0.99, help="Confidence of the headline figures")
    ] = 0.9,
    evaluate_from: Annotated[
        str | None, typer.Option(help="Evaluate orders from this local date (YYYY-MM-DD)")
    ] = None,
    evaluate_to: Annotated[
        str | None, typer.Option(help="... up to this local date, inclusive")
    ] = None,
    half_life_days: Annotated[
        float | None, typer.Option(min=1, help="Recency half-life (default 120)")
    ] = None,
    correction: Annotated[
        bool, typer.Option(help="Online correction of the level (off: the drift signal)")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
) -> None:
    """Replay a delivery history in time order and measure the promises we would have made."""
    import json
    from dataclasses import replace

    from tracking_service.estimator.backtest import CorrectionConfig
    from tracking_service.estimator.history import HistoryConfig
    from tracking_service.history.backtest_run import (
        BacktestInputError,
        render,
        run_with_progress,
        speed_line,
    )

    model = HistoryConfig()
    if half_life_days is not None:
        model = replace(model, half_life_days=half_life_days)
    try:
        run = run_with_progress(
            err_console if json_output else console,
            history_path=history,
            evaluate_path=evaluate,
            fmt=fmt,
            confidence=confidence,
            evaluate_from=_day_option(evaluate_from, "--evaluate-from"),
            evaluate_to=_day_option(evaluate_to, "--evaluate-to"),
            model=model,
            correction=CorrectionConfig(enabled=correction),
        )
    except BacktestInputError as exc:
        raise fail(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(run.result.to_json()))
        err_console.print(speed_line(run), highlight=False)
    else:
        render(console, run)
        console.print(speed_line(run), highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
