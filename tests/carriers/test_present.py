"""The `track --json` object and the terminal view, from plain outcomes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

from rich.console import Console

from tracking_service.carriers.base import (
    DeliveryWindow,
    FailureKind,
    Location,
    TrackingEvent,
    TrackingFailure,
    TrackingResult,
)
from tracking_service.carriers.present import outcome_to_json, outcome_view
from tracking_service.carriers.status import Status

EASTERN = timezone(timedelta(hours=-5))

RESULT = TrackingResult(
    carrier="ups",
    tracking_number="1Z5R89390357567127",
    status=Status.DELIVERED,
    raw_status_code="D/011",
    raw_status_description="Delivered",
    events=(
        TrackingEvent(
            occurred_at=datetime(2026, 1, 5, 10, 15, tzinfo=EASTERN),
            status=Status.IN_TRANSIT,
            raw_code="I/005",
            description="Departed from Facility",
            location=Location("Atlanta", "GA", None, "US"),
            dedupe_key="k1",
        ),
        TrackingEvent(
            occurred_at=datetime(2026, 1, 6, 14, 2, tzinfo=EASTERN),
            status=None,
            raw_code="ZZ",
            description="Something new",
            location=None,
            dedupe_key="k2",
        ),
    ),
    estimated_delivery=DeliveryWindow(date(2026, 1, 6), date(2026, 1, 7)),
    delivered_at=datetime(2026, 1, 6, 14, 2, tzinfo=EASTERN),
    signed_by="JONES",
)


def test_result_json_has_exactly_the_documented_fields() -> None:
    assert outcome_to_json(RESULT) == {
        "carrier": "ups",
        "tracking_number": "1Z5R89390357567127",
        "status": "delivered",
        "raw_status": {"code": "D/011", "description": "Delivered"},
        "estimated_delivery": {"earliest": "2026-01-06", "latest": "2026-01-07"},
        "delivered_at": "2026-01-06T14:02:00-05:00",
        "signed_by": "JONES",
        "events": [
            {
                "occurred_at": "2026-01-05T10:15:00-05:00",
                "status": "in_transit",
                "raw_code": "I/005",
                "description": "Departed from Facility",
                "location": {
                    "city": "Atlanta",
                    "region": "GA",
                    "postal_code": None,
                    "country": "US",
                },
            },
            {
                "occurred_at": "2026-01-06T14:02:00-05:00",
                "status": None,
                "raw_code": "ZZ",
                "description": "Something new",
                "location": None,
            },
        ],
    }


def test_result_without_estimate_or_delivery_gives_nulls() -> None:
    bare = TrackingResult("dhl", "1234567890", Status.PENDING, "pre-transit", "Label created")
    rendered = outcome_to_json(bare)
    assert rendered["estimated_delivery"] is None
    assert rendered["delivered_at"] is None
    assert rendered["signed_by"] is None
    assert rendered["events"] == []
    json.dumps(rendered)  # plain JSON types only


def test_failure_json() -> None:
    failure = TrackingFailure("fedex", "123456789012", FailureKind.NOT_FOUND, "unknown", 5.0)
    assert outcome_to_json(failure) == {
        "carrier": "fedex",
        "tracking_number": "123456789012",
        "error": {"kind": "not_found", "message": "unknown"},
    }


def _render(outcome: object) -> str:
    console = Console(width=140, record=True, color_system=None)
    console.print(outcome_view(outcome))  # type: ignore[arg-type]
    return console.export_text()


def test_terminal_view_shows_status_estimate_delivery_and_events_newest_first() -> None:
    text = _render(RESULT)
    assert "ups 1Z5R89390357567127: delivered" in text
    assert "estimated delivery" not in text  # nothing left to estimate once delivered
    in_transit = _render(replace(RESULT, status=Status.IN_TRANSIT, delivered_at=None))
    assert "estimated delivery: 2026-01-06 to 2026-01-07" in in_transit
    assert "signed by JONES" in text
    assert text.index("Something new") < text.index("Departed from Facility")
    assert "2026-01-05 10:15-05:00" in text


def test_terminal_view_of_a_failure() -> None:
    failure = TrackingFailure("usps", "9400", FailureKind.RATE_LIMITED, "quota", 30.0)
    text = _render(failure)
    assert "usps 9400: rate_limited - quota (retry after 30 s)" in text
