"""`track`, `detect`, `sim-carrier` and `sim-label`: carriers from the command line."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from tracking_service.cli.common import console, fail, load_settings, with_database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tracking_service.carriers.base import TrackingOutcome
    from tracking_service.carriers.numbers import NumberMatch
    from tracking_service.clock import Clock
    from tracking_service.settings import Settings


def track(
    carrier: Annotated[
        str, typer.Argument(help="ups, fedex, usps, dhl, simulated, or auto (from the number)")
    ],
    number: Annotated[str, typer.Argument(help="The tracking number")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Look a number up at its carrier now (configured credentials and base URL) and print the
    normalized result or the typed failure. Exit code 0 on a result, 1 on a failure."""
    from tracking_service.carrier_quotas import SqlCallGate
    from tracking_service.carrier_tokens import SqlTokenStore
    from tracking_service.carrier_usage import SqlCallRecorder
    from tracking_service.carriers.base import FailureKind, TrackingFailure
    from tracking_service.carriers.present import outcome_to_json, outcome_view
    from tracking_service.carriers.registry import (
        CARRIER_CODES,
        build_registry,
        carrier_for,
        track_now,
    )

    settings = load_settings()
    code = carrier.strip().lower()
    if code != "auto" and code not in CARRIER_CODES:
        raise fail(f"unknown carrier {carrier!r}: choose auto or one of {', '.join(CARRIER_CODES)}")
    chosen = carrier_for(number) if code == "auto" else (code, number)
    outcome: TrackingOutcome
    if chosen is None:
        outcome = TrackingFailure(
            "auto",
            number.strip(),
            FailureKind.INVALID_NUMBER,
            "no carrier's format matches this number with a valid check digit "
            "(see `tracking-service detect`); name the carrier instead of auto",
        )
    else:
        code, number = chosen

        async def lookup(engine: AsyncEngine) -> TrackingOutcome:
            # OAuth tokens, the carriers' limits and the count of calls are shared through the
            # database with the service's processes.
            calls = SqlCallRecorder(engine)
            registry = build_registry(
                settings.carrier_configs(),
                SqlTokenStore(engine),
                observer=calls,
                gate=SqlCallGate(engine),
            )
            try:
                return await track_now(registry, code, number)
            finally:
                await registry.aclose()
                await calls.close()

        outcome = with_database(settings.database_url, lookup)
    if as_json:
        typer.echo(json.dumps(outcome_to_json(outcome), indent=2, ensure_ascii=False))
    else:  # a failure is one line, however long: its message names URLs and settings
        console.print(outcome_view(outcome), soft_wrap=isinstance(outcome, TrackingFailure))
    raise typer.Exit(1 if isinstance(outcome, TrackingFailure) else 0)


def detect(
    number: Annotated[str, typer.Argument(help="A tracking number (spaces allowed, quote it)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Which carriers and formats a tracking number matches, and whether its check digit is
    valid. Exit code 0 when some format matches validly, 1 otherwise."""
    from tracking_service.carriers import numbers as tracking_numbers

    text = tracking_numbers.compact(number)
    if not text:
        raise typer.BadParameter("is empty: give a tracking number", param_hint="NUMBER")
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
            for line in match_lines(m, text):
                typer.echo(line)
    raise typer.Exit(0 if valid else 1)


def match_lines(m: NumberMatch, text: str) -> list[str]:
    """One candidate format of `detect`: the verdict line, then its details indented."""
    verdict = "valid" if m.valid else f"INVALID: {m.problem}"
    lines = [f"  {m.carrier:<9} {m.format_id:<21} check digit {m.check_digit.value:<14} {verdict}"]
    extras = [f"{name}: {value}" for name, value in m.details]
    if m.tracking_number != text:
        extras.insert(0, f"tracking number {m.tracking_number}")
    if m.tracking_url and m.valid:
        extras.append(m.tracking_url)
    lines.extend(f"  {'':<9} {extra}" for extra in extras)
    return lines


def sim_carrier(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port")] = 8900,
    speed: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Simulated seconds per real second (1440: a day a minute) "
            "[default: TRACKING_CLOCK_SPEED, 1]",
        ),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request")] = False,
    push_url: Annotated[
        str | None,
        typer.Option(
            help="POST each new scan of the numbers it minted or was asked about to this URL "
            "(the service's /v1/carriers/simulated/events) as time passes"
        ),
    ] = None,
    push_secret: Annotated[
        str | None,
        typer.Option(
            help="Sent in X-Push-Secret with every push [default: TRACKING_SIMULATED_PUSH_SECRET]"
        ),
    ] = None,
) -> None:
    """Run the simulated carrier (POST /v1/track, POST /v1/labels) for demos and load tests.

    It runs on the service's clock: at TRACKING_CLOCK_SPEED (or --speed) from the deployment's
    anchor (TRACKING_CLOCK_ANCHOR, else the one stored in TRACKING_DATABASE_URL), so its labels
    and scans carry the same simulated instants the service lives on. Point the service at it
    with TRACKING_SIMULATED_BASE_URL (default http://127.0.0.1:8900).
    """
    from tracking_service.carriers.sim.server import serve as serve_sim

    settings = load_settings()
    if push_url is not None and not push_url.startswith(("http://", "https://")):
        raise fail(f"--push-url must be an http:// or https:// URL, not {push_url!r}")
    if push_secret is None and settings.simulated_push_secret is not None:
        push_secret = settings.simulated_push_secret.get_secret_value()
    clock = sim_clock(settings, settings.clock_speed if speed is None else speed)
    pace = getattr(clock, "speed", 1.0)
    console.print(
        f"simulated carrier on http://{host}:{port} (clock x{pace:g}, now "
        f"{clock.now().isoformat(timespec='seconds')})"
    )
    if push_url:
        console.print(f"pushing new scans to {push_url}")
    serve_sim(
        host,
        port,
        1.0,
        clock=clock.now,
        access_log=access_log,
        log_level=settings.log_level,
        push_url=push_url,
        push_secret=push_secret,
    )


def sim_clock(settings: Settings, speed: float) -> Clock:
    """The deployment's clock at `speed`: the machine's at 1 without an anchor; else from
    TRACKING_CLOCK_ANCHOR, or from the anchor stored in the database (written there first when
    this is the deployment's first fast process)."""
    from tracking_service.clock import ScaledClock, SystemClock, open_clock

    if speed == 1 and settings.clock_anchor is None:
        return SystemClock()
    if settings.clock_anchor is not None:
        return ScaledClock(speed, settings.clock_anchor)

    async def stored(engine: AsyncEngine) -> Clock:
        return await open_clock(engine, speed)

    return with_database(settings.database_url, stored)


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
