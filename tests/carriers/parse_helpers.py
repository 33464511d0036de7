"""Helpers for the carrier parser tests: fixtures, the official spec files, common checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracking_service.carriers.base import TrackingResult
from tracking_service.carriers.status import Status

FIXTURES = Path(__file__).parent / "fixtures"
CARRIER_SPECS = Path(__file__).resolve().parents[3] / "shared" / "carrier-specs"


def load_fixture(carrier: str, name: str) -> Any:
    """A carrier answer from `tests/carriers/fixtures/<carrier>/<name>`."""
    return json.loads((FIXTURES / carrier / name).read_text())


def official_spec(carrier: str, name: str) -> Path:
    """A file of `shared/carrier-specs/<carrier>`; skips the test when the specs are absent."""
    path = CARRIER_SPECS / carrier / name
    if not path.exists():
        pytest.skip("shared/carrier-specs is not next to the repository")
    return path


def assert_status_family(
    parsed: TrackingResult, carrier: str, number: str, status: Status, raw_code: str
) -> None:
    """What every status-family fixture must give: the status and raw code, the carrier's text,
    and scans that are oldest first, timezone-aware and with distinct dedupe keys."""
    assert (parsed.carrier, parsed.tracking_number) == (carrier, number)
    assert parsed.status is status
    assert parsed.raw_status_code == raw_code
    assert parsed.raw_status_description  # the carrier's text is kept
    assert parsed.events, "every fixture has scans"
    instants = [event.occurred_at for event in parsed.events]
    assert instants == sorted(instants), "events are oldest first"
    assert all(instant.tzinfo is not None for instant in instants)
    assert len({event.dedupe_key for event in parsed.events}) == len(parsed.events)
