"""`check-rules`: validate a rules file and show what it says."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tracking_service.cli.common import console, fail
from tracking_service.estimator.calendar import WEEKDAY_NAMES
from tracking_service.estimator.rules import Rules, RulesError, load_rules


def check_rules(
    file: Annotated[Path, typer.Argument(help="Rules file (TOML)", show_default=False)],
) -> None:
    """Validate a rules file and print its origins and shipping options; exit 2 when invalid."""
    try:
        rules = load_rules(file)
    except RulesError as exc:
        raise fail(str(exc)) from None
    console.print(origins_table(rules, title=f"{rules.name or file}: origins"))
    console.print(options_table(rules))
    console.print(transit_table(rules))
    console.print(f"[green]valid:[/] {file}", highlight=False)


def days(values: tuple[int, ...]) -> str:
    """Weekdays as a range when they are consecutive ("Mon-Fri"), else listed."""
    ordered = sorted(values)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{WEEKDAY_NAMES[ordered[0]]}-{WEEKDAY_NAMES[ordered[-1]]}"
    return " ".join(WEEKDAY_NAMES[d] for d in ordered)


def origins_table(rules: Rules, title: str) -> Table:
    table = Table(title=title)
    for column in ("id", "place", "postal code", "time zone", "cutoff", "handling", "works"):
        table.add_column(column)
    for o in rules.origins:
        table.add_row(
            o.id,
            f"{o.country}-{o.subdivision}" if o.subdivision else o.country,
            o.postal_code,
            o.time_zone,
            o.cutoff.isoformat("minutes"),
            f"{o.handling_days} d",
            days(o.working_weekdays),
        )
    return table


def options_table(rules: Rules) -> Table:
    table = Table(title="shipping options")
    for column in ("code", "name", "carrier / service", "price", "conf.", "delivers", "cutoff"):
        table.add_column(column)
    for s in rules.shipping_options:
        table.add_row(
            s.code,
            s.name,
            f"{s.carrier} / {s.service}",
            f"{s.price} {s.currency}",
            f"{s.confidence:.0%}",
            days(s.delivery_weekdays),
            s.cutoff.isoformat("minutes") if s.cutoff else "origin's",
        )
    return table


def transit_table(rules: Rules) -> Table:
    table = Table(title="transit business days by zone (min-max)")
    table.add_column("zone")
    table.add_column("covers")
    for s in rules.shipping_options:
        table.add_column(s.code, justify="center")
    for z in rules.zones:
        covers = ", ".join(z.postal_prefixes) or ", ".join(z.subdivisions) or "whole country"
        cells = []
        for s in rules.shipping_options:
            t = next((t for t in s.transit if t.zone == z.id), None)
            cells.append("-" if t is None else f"{t.min}" if t.min == t.max else f"{t.min}-{t.max}")
        table.add_row(z.id, f"{z.country}: {covers}", *cells)
    return table
