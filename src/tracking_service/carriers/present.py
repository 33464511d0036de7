"""How a tracking outcome is shown: the `track --json` object and a readable terminal view.

Pure: outcome in, plain data (or a rich renderable) out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tracking_service.carriers.base import (
    DeliveryWindow,
    Location,
    TrackingFailure,
    TrackingOutcome,
    TrackingResult,
)
from tracking_service.carriers.status import Status


def _location_json(where: Location | None) -> dict[str, str | None] | None:
    if where is None:
        return None
    return {
        "city": where.city,
        "region": where.region,
        "postal_code": where.postal_code,
        "country": where.country,
    }


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def visible_estimate(result: TrackingResult) -> DeliveryWindow | None:
    """The estimate the terminal view shows: none once the parcel is delivered (the result and
    its JSON keep the carrier's promise for whoever measures it; a reader has no use for it)."""
    return None if result.status is Status.DELIVERED else result.estimated_delivery


def outcome_to_json(outcome: TrackingOutcome) -> dict[str, Any]:
    """The object `tracking-service track --json` prints: a stable shape scripts can read."""
    if isinstance(outcome, TrackingFailure):
        return {
            "carrier": outcome.carrier,
            "tracking_number": outcome.tracking_number,
            "error": {"kind": outcome.kind.value, "message": outcome.message},
        }
    window = outcome.estimated_delivery  # the data keeps it; the terminal view hides it
    return {
        "carrier": outcome.carrier,
        "tracking_number": outcome.tracking_number,
        "status": outcome.status.value if outcome.status is not None else None,
        "raw_status": {
            "code": outcome.raw_status_code,
            "description": outcome.raw_status_description,
        },
        "estimated_delivery": (
            {"earliest": window.earliest.isoformat(), "latest": window.latest.isoformat()}
            if window is not None
            else None
        ),
        "delivered_at": _instant(outcome.delivered_at),
        "signed_by": outcome.signed_by,
        "events": [
            {
                "occurred_at": event.occurred_at.isoformat(),
                "status": event.status.value if event.status is not None else None,
                "raw_code": event.raw_code,
                "description": event.description,
                "location": _location_json(event.location),
            }
            for event in outcome.events
        ],
    }


def _place(where: Location | None) -> str:
    if where is None:
        return ""
    return ", ".join(p for p in (where.city, where.region, where.postal_code, where.country) if p)


def outcome_view(outcome: TrackingOutcome) -> RenderableType:
    """A readable view for the terminal: status line, estimate, delivery, events newest first."""
    if isinstance(outcome, TrackingFailure):
        line = Text.assemble(
            (f"{outcome.carrier} {outcome.tracking_number}: ", "bold"),
            (outcome.kind.value, "bold red"),
            f" - {outcome.message}",
        )
        if outcome.retry_after is not None:
            line.append(f" (retry after {outcome.retry_after:.0f} s)")
        return line
    status = outcome.status.value if outcome.status is not None else "unknown code"
    lines: list[RenderableType] = [
        Text.assemble(
            (f"{outcome.carrier} {outcome.tracking_number}: ", "bold"),
            (status, "bold green"),
            f"  ({outcome.raw_status_code}: {outcome.raw_status_description})",
        )
    ]
    window = visible_estimate(outcome)
    if window is not None:
        when = (
            window.earliest.isoformat()
            if window.earliest == window.latest
            else f"{window.earliest.isoformat()} to {window.latest.isoformat()}"
        )
        lines.append(Text(f"estimated delivery: {when}"))
    if outcome.delivered_at is not None:
        signed = f", signed by {outcome.signed_by}" if outcome.signed_by else ""
        lines.append(Text(f"delivered at {outcome.delivered_at.isoformat()}{signed}"))
    if outcome.events:
        table = Table(title=f"{len(outcome.events)} events, newest first", title_justify="left")
        table.add_column("when (local)", no_wrap=True)
        for column in ("status", "code", "description", "where"):
            table.add_column(column)
        for event in reversed(outcome.events):
            table.add_row(
                event.occurred_at.isoformat(timespec="minutes").replace("T", " "),
                event.status.value if event.status is not None else "?",
                event.raw_code,
                event.description,
                _place(event.location),
            )
        lines.append(table)
    else:
        lines.append(Text("no events yet"))
    return Group(*lines)
