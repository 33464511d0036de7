"""`poll`: one pass of the tracking worker from the command line, then exit.

The same passes the scheduler runs in `serve` or `worker` (`tracking.jobs`): poll every shipment
due now, then the promise and stall check and the expiry. Useful from cron, to test a carrier
setup, or to see what a pass does; it shares claims with running workers, so it never polls a
shipment one of them holds.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from tracking_service.cli.common import database_errors, fail, load_settings, say
from tracking_service.estimator.rules import RulesError

if TYPE_CHECKING:
    import httpx

    from tracking_service.clock import Clock
    from tracking_service.settings import Settings


async def run_poll_once(
    settings: Settings,
    *,
    carrier_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> list[str]:
    """Open the runtime without its scheduler, run one poll, check and expiry pass; one
    summary line per pass."""
    from tracking_service.services import open_services
    from tracking_service.tracking.jobs import Tracker, check_pass, expiry_pass, poll_pass

    async with open_services(
        settings, run_jobs=False, clock=clock, carrier_transport=carrier_transport
    ) as services:
        tracker = Tracker(services)
        polled = await poll_pass(services, tracker=tracker)
        checked = await check_pass(services, tracker=tracker)
        expired = await expiry_pass(services, tracker=tracker)
    return [polled.line(), checked.line("delay check"), expired.line("expiry")]


def poll(
    once: Annotated[
        bool, typer.Option("--once", help="Run one pass and exit (required: see `worker`)")
    ] = False,
) -> None:
    """Poll every shipment due now once (then check promises and stalls, and expire shipments
    the carrier never saw), print what happened and exit. To keep polling, run `worker` (or
    `serve`, which runs the jobs itself)."""
    if not once:
        raise fail("poll runs one pass: use `poll --once`; `tracking-service worker` keeps polling")
    settings = load_settings()
    try:
        with database_errors(settings.database_url):
            lines = asyncio.run(run_poll_once(settings))
    except RulesError as exc:
        raise fail(str(exc)) from None
    for line in lines:
        say(line)
