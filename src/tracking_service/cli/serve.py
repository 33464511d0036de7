"""`serve`, `worker` and `migrate`: the processes of the service and its schema.

`serve` runs the HTTP API. With one process it also runs the shared background jobs (the
embedded default); with `--workers N` it does not, since N processes would run every job N
times: a separate `tracking-service worker` runs them then. Both build the same runtime with
`services.open_services` (which keeps each process's own delivery-history snapshot fresh
wherever it runs).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Annotated

import typer

from tracking_service.cli.common import (
    console,
    database_errors,
    fail,
    load_settings,
    nothing,
    with_database,
)
from tracking_service.estimator.rules import RulesError, load_rules
from tracking_service.migrate import upgrade_if_behind
from tracking_service.settings import Settings

log = logging.getLogger("tracking_service.cli")

RUN_JOBS_IN_API = "TRACKING_RUN_JOBS_IN_API"


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [TRACKING_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [TRACKING_PORT]")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes. With more than one, the shared background jobs do not run "
            "in them: run `tracking-service worker` beside them.",
        ),
    ] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
) -> None:
    """Serve the HTTP API (uvicorn), upgrading the database schema first when behind.

    One process (the default) also runs the shared background jobs; with --workers N (N > 1)
    they run in a separate `tracking-service worker` instead.
    """
    import uvicorn

    settings = load_settings()
    try:
        load_rules(settings.rules_file)
    except RulesError as exc:
        raise fail(str(exc)) from None
    with_database(settings.database_url, nothing)
    processes = 1 if reload else workers
    if processes > 1:
        os.environ[RUN_JOBS_IN_API] = "false"
        log.info(
            "%d API processes: shared background jobs do not run in them; "
            "run `tracking-service worker` beside them",
            processes,
        )
    uvicorn.run(
        "tracking_service.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=None if reload else workers,
        reload=reload,
        log_level=settings.log_level,
        access_log=False,
    )


def migrate() -> None:
    """Upgrade the database schema to the newest revision and exit."""
    settings = load_settings()
    before, after = with_database(settings.database_url, upgrade_if_behind, upgrade=False)
    if before == after:
        console.print(f"database schema is current (revision {after})")
    else:
        console.print(f"database schema upgraded: {before or 'empty'} -> {after}")


def worker() -> None:
    """Run the background jobs, once for the deployment, until SIGINT or SIGTERM.

    Use it beside `serve --workers N`; a single `serve` process runs the jobs itself. It logs
    each job it runs (today the delivery-history refresh).
    """
    settings = load_settings()
    try:
        with database_errors(settings.database_url):
            asyncio.run(run_worker(settings))
    except RulesError as exc:
        raise fail(str(exc)) from None


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Open the service runtime with its jobs and keep it until `stop` is set (or a signal)."""
    from tracking_service.services import open_services

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        async with open_services(settings, run_jobs=True) as services:
            jobs = services.scheduler.get_jobs() if services.scheduler is not None else []
            for job in jobs:
                log.info("job %r: %s", job.name, job.trigger)
            if not jobs:
                log.info("no background job is configured")
            log.info("worker running; stop with Ctrl-C or SIGTERM")
            await stop.wait()
            log.info("worker stopping")
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    log.info("worker stopped")
