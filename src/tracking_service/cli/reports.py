"""`report promises`: the promise report from the command line, as a table, JSON or a page.

The same figures as `GET /v1/reports/promises` and the same page as `GET /reports/promises`
(without its form), read straight from the database. "Now" is the deployment's clock: the
stored anchor of a fast (demo) clock when there is one, read and never written, else the
machine's.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
import typer
from rich import box
from rich.table import Table

from tracking_service.cli.common import console, fail, load_settings, say, with_database
from tracking_service.clock import Clock, ScaledClock, SystemClock
from tracking_service.db import unit_of_work
from tracking_service.errors import InvalidInput
from tracking_service.estimator.rules import Rules, RulesError, load_rules
from tracking_service.models.clock import ClockAnchor
from tracking_service.reports.figures import GROUP_BY, GroupFigures, PromiseReport, build_report
from tracking_service.reports.ledger import load_ledger
from tracking_service.reports.page import GROUP_LABELS, interval, render_page, verdict
from tracking_service.reports.period import DEFAULT_DAYS, home_today, report_range
from tracking_service.reports.svg import pct

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tracking_service.settings import Settings

app = typer.Typer(
    help="Reports on the shop's own orders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise fail(f"{option}: {value!r} is not a date; write it YYYY-MM-DD")


async def _clock(engine: AsyncEngine, settings: Settings) -> Clock:
    """The deployment's clock, read only (see the module docstring)."""
    if settings.clock_anchor is not None and settings.clock_speed != 1:
        return ScaledClock(settings.clock_speed, settings.clock_anchor)
    table = ClockAnchor.__table__  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(table).where(table.c.id == 1))).one_or_none()
    if row is None:
        return SystemClock()
    return ScaledClock(row.speed, row.real_at, row.simulated_at)


def _orders(n: int) -> str:
    return f"{n} order" if n == 1 else f"{n} orders"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _table(report: PromiseReport) -> None:
    total = report.total
    label = GROUP_LABELS[report.group_by]
    widths = [len(g.key) for g in report.groups] or [0]
    say(
        f"Promises of orders placed {report.start} to {report.end} "
        f"(as of {report.as_of.isoformat(timespec='minutes').replace('+00:00', 'Z')})"
    )
    share = total.on_time_share
    span = interval(share)
    say(
        f"Kept on time: {pct(share.value)} of {total.resolved} resolved"
        + (f" (90% interval {span})" if span else "")
        + f", stated {pct(total.stated_confidence)}; {_orders(total.orders)}, "
        f"{total.late} late, {total.open} open"
    )
    say(verdict(total).text)
    table = Table(
        title=f"By {label.lower()} (lead, early, late: mean days)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column(label, overflow="fold", min_width=min(24, max(len(label), *widths)))
    for name in ("Orders", "Resolved", "Kept (90%)", "Stated", "Lead", "Early", "Late"):
        table.add_column(name, justify="right", no_wrap=True)

    def cells(g: GroupFigures) -> list[str]:
        s = g.on_time_share
        span = interval(s).removesuffix("%")
        return [
            g.key,
            str(g.orders),
            str(g.resolved),
            pct(s.value) + (f" ({span})" if span else ""),
            pct(g.stated_confidence),
            _num(g.mean_promised_lead),
            _num(g.mean_days_early),
            _num(g.mean_days_late),
        ]

    for g in report.groups:
        table.add_row(*cells(g))
    if report.groups:
        table.add_section()
    table.add_row(*cells(total), style="bold")
    console.print(table)
    if report.worst_lanes:
        worst = [f"{g.key} ({g.late} of {g.resolved} late)" for g in report.worst_lanes[:3]]
        say("Lanes that miss most: " + ", ".join(worst))


def promises(
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="YYYY-MM-DD",
            help=f"First order date (the origin's calendar); default: {DEFAULT_DAYS} days "
            "ending on --to",
            show_default=False,
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="YYYY-MM-DD",
            help="Last order date, included; default: today on the service clock",
            show_default=False,
        ),
    ] = None,
    group_by: Annotated[
        str,
        typer.Option(
            "--group-by",
            metavar="GROUP",
            help="lane (origin -> destination region), carrier (the first parcel's), option, "
            "origin, destination_region (e.g. US-CA) or week (the order week's Monday)",
        ),
    ] = "lane",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (the API's answer)")
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Write the report page (charts, no script) to FILE instead of the table",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Are promises kept? Per group: orders, the share kept on time (of those whose latest
    date has passed) with a 90% interval, the stated confidence, the promised lead and the
    days early and late. Cancelled orders are left out.

    Example: report promises --from 2025-09-01 --to 2025-11-30 --html report.html
    """
    first_in, last_in = _day(start, "--from"), _day(end, "--to")
    if group_by not in GROUP_BY:
        raise fail(f"--group-by: unknown {group_by!r}; choose one of {', '.join(GROUP_BY)}")
    if as_json and html is not None:
        raise fail("--json and --html: choose one")
    settings = load_settings()
    try:
        rules: Rules = load_rules(settings.rules_file)
    except RulesError as exc:
        raise fail(str(exc)) from None
    zones = {o.id: o.time_zone for o in rules.origins}

    async def read(engine: AsyncEngine) -> PromiseReport:
        now = (await _clock(engine, settings)).now()
        try:
            first, last = report_range(first_in, last_in, home_today(rules, now))
        except InvalidInput as exc:
            raise fail(f"--{exc.field}: {exc.message}") from None
        async with unit_of_work(engine) as session:
            rows = await load_ledger(session, first, last, now=now, origin_zones=zones)
        return build_report(rows, start=first, end=last, group_by=group_by, as_of=now)

    report = with_database(settings.database_url, read)
    if as_json:
        say(json.dumps(report.as_json(), indent=2))
    elif html is not None:
        try:
            html.write_text(render_page(report, form=False), encoding="utf-8")
        except OSError as exc:
            raise fail(f"--html: cannot write {html}: {exc.strerror or exc}") from None
        say(f"wrote {html}: {_orders(report.total.orders)} placed {report.start} to {report.end}")
    else:
        _table(report)


app.command(
    "promises", short_help="Promises kept against the stated confidence: table, JSON or page"
)(promises)

__all__ = ["app", "promises"]
