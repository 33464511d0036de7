"""DHL unified tracking answers -> results and typed failures (fixtures follow the 1.4.1 spec)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tracking_service.carriers.base import (
    DeliveryWindow,
    FailureKind,
    TrackingFailure,
    TrackingResult,
)
from tracking_service.carriers.dhl.parse import parse_track_response
from tracking_service.carriers.status import Status

from .parse_helpers import load_fixture, official_spec

PARCEL = "00340434292135100186"


def load(name: str) -> Any:
    return load_fixture("dhl", name)


def result(name: str, number: str = PARCEL) -> TrackingResult:
    outcome = parse_track_response(number, 200, load(name))
    assert isinstance(outcome, TrackingResult), outcome
    return outcome


def test_time_without_offset_is_local_to_a_single_zone_country() -> None:
    parsed = result("in_transit.json")
    processed = next(e for e in parsed.events if "parcel center" in e.description)
    # "2024-03-05T21:17:00" in Leipzig, Germany (CET, +01:00)
    assert processed.occurred_at.utcoffset() == timedelta(hours=1)
    assert processed.occurred_at == datetime(2024, 3, 5, 20, 17, tzinfo=UTC)


def test_events_keep_place_and_text() -> None:
    newest = result("out_for_delivery.json").events[-1]
    assert newest.status is Status.OUT_FOR_DELIVERY
    assert newest.raw_code == "transit"
    assert newest.description == "The shipment has been loaded onto the delivery vehicle"
    assert newest.location is not None
    assert (newest.location.city, newest.location.postal_code, newest.location.country) == (
        "Bonn - Germany",
        "53113",
        "DE",
    )


def test_estimates() -> None:
    assert result("info_received.json").estimated_delivery == DeliveryWindow(
        date(2024, 3, 6), date(2024, 3, 7)
    )
    assert result("in_transit.json").estimated_delivery == DeliveryWindow(
        date(2024, 3, 6), date(2024, 3, 6)
    )
    assert result("failed_attempt.json").estimated_delivery is None


def test_delivered_with_signature() -> None:
    parsed = result("delivered_signature.json", "1234567891")
    assert parsed.delivered_at == datetime(2024, 3, 7, 16, 51, tzinfo=UTC)
    assert parsed.signed_by == "JESSICA HENDRIX"
    assert result("out_for_delivery.json").delivered_at is None


def test_return_flag_wins() -> None:
    parsed = result("returned_to_sender.json")
    assert parsed.status is Status.RETURNED_TO_SENDER
    body = load("in_transit.json")
    body["shipments"][0]["returnFlag"] = True
    flagged = parse_track_response(PARCEL, 200, body)
    assert isinstance(flagged, TrackingResult)
    assert flagged.status is Status.RETURNED_TO_SENDER


def test_multi_piece_shipment_and_piece_ids() -> None:
    whole = result("multi_piece.json", "1234567892")
    assert whole.status is Status.OUT_FOR_DELIVERY  # the shipment's own status
    assert len(whole.events) == 4
    piece = result("multi_piece.json", "JD014600006281230702")
    assert piece.tracking_number == "JD014600006281230702"
    assert piece.status is Status.EXCEPTION  # this piece's newest scan: on hold
    assert [e.description for e in piece.events] == [
        "Shipment picked up",
        "Arrived at DHL Sort Facility CINCINNATI HUB - USA",
        "Shipment on hold",
    ]


def test_shipment_matching_the_number_is_chosen_among_services() -> None:
    body = load("in_transit.json")
    other = json.loads(json.dumps(body["shipments"][0]))
    other.update(id="OTHER123", service="ecommerce")
    other["status"] = {"statusCode": "delivered", "status": "Delivered"}
    body["shipments"].insert(0, other)
    parsed = parse_track_response(PARCEL, 200, body)
    assert isinstance(parsed, TrackingResult) and parsed.status is Status.IN_TRANSIT


def test_dedupe_keys_are_stable() -> None:
    first = result("in_transit.json").events
    later = result("out_for_delivery.json").events
    assert {e.dedupe_key for e in first} <= {e.dedupe_key for e in later}


@pytest.mark.parametrize(
    ("name", "http_status", "kind"),
    [
        ("not_found_404.json", 404, FailureKind.NOT_FOUND),
        ("unauthorized_401.json", 401, FailureKind.AUTH_FAILED),
        ("rate_limited_429.json", 429, FailureKind.RATE_LIMITED),
        ("server_error_500.json", 500, FailureKind.UNAVAILABLE),
    ],
)
def test_failures(name: str, http_status: int, kind: FailureKind) -> None:
    outcome = parse_track_response("8264715546", http_status, load(name))
    assert isinstance(outcome, TrackingFailure) and outcome.kind is kind
    assert outcome.tracking_number == "8264715546"
    assert str(http_status) in outcome.message


def test_not_found_message_is_kept() -> None:
    outcome = parse_track_response("8264715546", 404, load("not_found_404.json"))
    assert isinstance(outcome, TrackingFailure)
    assert "No shipment with given tracking number found." in outcome.message


def test_unknown_code_keeps_raw_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    body = load("in_transit.json")
    body["shipments"][0]["status"] = {"statusCode": "unknown", "status": "CLOSE BAG"}
    with caplog.at_level("WARNING"):
        parsed = parse_track_response(PARCEL, 200, body)
    assert isinstance(parsed, TrackingResult)
    assert parsed.status is None
    assert (parsed.raw_status_code, parsed.raw_status_description) == ("unknown", "CLOSE BAG")
    assert "unknown" in caplog.text


JUNK: list[object] = [
    None,
    "<html/>",
    [],
    {},
    {"shipments": "x"},
    {"shipments": [None, 1]},
    {"shipments": [{"id": PARCEL}]},
    {"shipments": [{"id": PARCEL, "status": [], "events": [{"timestamp": "never"}, None]}]},
    {"shipments": [{"id": PARCEL, "details": {"pieceIds": 5}, "events": "x"}]},
]


@pytest.mark.parametrize("body", JUNK)
@pytest.mark.parametrize("http_status", [200, 400, 404, 503])
def test_junk_never_raises(body: object, http_status: int) -> None:
    outcome = parse_track_response(PARCEL, http_status, body)
    assert isinstance(outcome, TrackingFailure) and outcome.message
    if http_status == 200:
        assert outcome.kind is FailureKind.BAD_RESPONSE


def test_official_sample_when_present() -> None:
    sample = official_spec("dhl", "sample-shipments-response-1.5.8.json")
    number = "GMDBD8E9CCE94842E495B7"
    parsed = parse_track_response(number, 200, json.loads(sample.read_text()))
    assert isinstance(parsed, TrackingResult)
    assert parsed.status is Status.IN_TRANSIT
    assert parsed.raw_status_description == "ARRIVED AT CUSTOMS"
    assert len(parsed.events) == 8
    assert parsed.events[0].description == "LABEL CREATED"
    assert parsed.events[0].status is Status.INFO_RECEIVED
    # "2023-01-20T14:04:18" in "Whittier, CA, US": Pacific time
    processed = next(e for e in parsed.events if e.description == "PROCESSED")
    assert processed.occurred_at == datetime(2023, 1, 20, 22, 4, 18, tzinfo=UTC)
    assert processed.location is not None and processed.location.region == "CA"
    # "UK" (not ISO) at Heathrow: London, UTC in January
    assert parsed.events[-1].occurred_at == datetime(2023, 1, 29, 16, 2, tzinfo=UTC)
