"""UPS Track API answers -> results and typed failures (fixtures follow Tracking.yaml)."""

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
from tracking_service.carriers.status import Status
from tracking_service.carriers.ups.parse import parse_track_response

from .parse_helpers import assert_status_family, load_fixture, official_spec


def load(name: str) -> Any:
    return load_fixture("ups", name)


def result(name: str, number: str) -> TrackingResult:
    outcome = parse_track_response(number, 200, load(name))
    assert isinstance(outcome, TrackingResult), outcome
    return outcome


@pytest.mark.parametrize(
    ("name", "number", "status", "raw_code"),
    [
        ("info_received.json", "1Z12345E0205271688", Status.INFO_RECEIVED, "003"),
        ("in_transit.json", "1Z12345E0205271688", Status.IN_TRANSIT, "005"),
        ("out_for_delivery.json", "1Z12345E0205271688", Status.OUT_FOR_DELIVERY, "021"),
        ("available_for_pickup.json", "1Z12345E6605272234", Status.AVAILABLE_FOR_PICKUP, "040"),
        ("delivered_signature.json", "1Z12345E0305271640", Status.DELIVERED, "011"),
        ("failed_attempt.json", "1Z12345E1305277940", Status.FAILED_ATTEMPT, "022"),
        ("exception.json", "1Z12345E6205277936", Status.EXCEPTION, "030"),
        ("returned_to_sender.json", "1Z12345E1505270452", Status.RETURNED_TO_SENDER, "035"),
    ],
)
def test_every_status_family(name: str, number: str, status: Status, raw_code: str) -> None:
    assert_status_family(result(name, number), "ups", number, status, raw_code)


def test_gmt_time_with_dropped_leading_zero_is_padded() -> None:
    parsed = result("in_transit.json", "1Z12345E0205271688")
    departed = next(e for e in parsed.events if e.description == "Departed from Facility")
    # gmtDate 20240305, gmtTime "84000" -> 08:40:00 UTC (local 03:40 at -05:00)
    assert departed.occurred_at == datetime(2024, 3, 5, 8, 40, tzinfo=UTC)
    arrived = next(e for e in parsed.events if e.description == "Arrived at Facility")
    assert arrived.occurred_at == datetime(2024, 3, 6, 3, 10, tzinfo=UTC)


def test_local_time_and_offset_when_gmt_missing() -> None:
    body = load("in_transit.json")
    for activity in body["trackResponse"]["shipment"][0]["package"][0]["activity"]:
        del activity["gmtDate"], activity["gmtTime"]
    parsed = parse_track_response("1Z12345E0205271688", 200, body)
    assert isinstance(parsed, TrackingResult)
    departed = next(e for e in parsed.events if e.description == "Departed from Facility")
    assert departed.occurred_at.utcoffset() == timedelta(hours=-5)
    assert departed.occurred_at == datetime(2024, 3, 5, 8, 40, tzinfo=UTC)


def test_events_carry_location_status_and_raw_code() -> None:
    parsed = result("out_for_delivery.json", "1Z12345E0205271688")
    newest = parsed.events[-1]
    assert newest.status is Status.OUT_FOR_DELIVERY
    assert newest.raw_code == "021"
    assert newest.description == "Out For Delivery Today"
    assert newest.location is not None
    assert (newest.location.city, newest.location.region) == ("Dallas", "TX")
    assert (newest.location.postal_code, newest.location.country) == ("75201", "US")
    oldest = parsed.events[0]
    assert oldest.status is Status.INFO_RECEIVED and oldest.raw_code == "003"


def test_dedupe_keys_are_stable_across_polls_and_differ_between_numbers() -> None:
    first = result("in_transit.json", "1Z12345E0205271688")
    second = result("in_transit.json", "1Z12345E0205271688")
    assert [e.dedupe_key for e in first.events] == [e.dedupe_key for e in second.events]
    # a later poll with one more scan keeps the keys of the older scans
    later = result("out_for_delivery.json", "1Z12345E0205271688")
    assert {e.dedupe_key for e in first.events} <= {e.dedupe_key for e in later.events}
    other = parse_track_response("1Z12345E6605272234", 200, load("in_transit.json"))
    assert isinstance(other, TrackingResult)
    assert not {e.dedupe_key for e in first.events} & {e.dedupe_key for e in other.events}


def test_estimate_prefers_rescheduled_over_scheduled() -> None:
    assert result("in_transit.json", "1Z12345E0205271688").estimated_delivery == DeliveryWindow(
        date(2024, 3, 9), date(2024, 3, 9)
    )
    assert result("info_received.json", "1Z12345E0205271688").estimated_delivery == (
        DeliveryWindow(date(2024, 3, 8), date(2024, 3, 8))
    )


def test_delivered_with_signature() -> None:
    parsed = result("delivered_signature.json", "1Z12345E0305271640")
    assert parsed.signed_by == "JSMITH"
    assert parsed.delivered_at == datetime(2024, 3, 7, 20, 55, tzinfo=UTC)
    assert parsed.delivered_at is not None and parsed.delivered_at.tzinfo is not None


def test_not_delivered_has_no_delivery_time_or_signature() -> None:
    parsed = result("out_for_delivery.json", "1Z12345E0205271688")
    assert parsed.delivered_at is None and parsed.signed_by is None


def test_multi_piece_uses_the_inquired_package() -> None:
    first = result("multi_piece.json", "1Z12345E0205271688")
    assert first.status is Status.DELIVERED and first.signed_by == "ACME RECEIVING"
    second = result("multi_piece.json", "1Z12345E0205271697")
    assert second.status is Status.OUT_FOR_DELIVERY and second.delivered_at is None
    # an inquiry number that matches no package (e.g. a reference) takes the first package
    by_reference = result("multi_piece.json", "SHIPREF123")
    assert by_reference.status is Status.DELIVERED


def test_missing_current_status_falls_back_to_newest_activity() -> None:
    body = load("failed_attempt.json")
    del body["trackResponse"]["shipment"][0]["package"][0]["currentStatus"]
    parsed = parse_track_response("1Z12345E1305277940", 200, body)
    assert isinstance(parsed, TrackingResult)
    assert parsed.status is Status.FAILED_ATTEMPT and parsed.raw_status_code == "022"


def test_unknown_code_keeps_raw_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    body = load("in_transit.json")
    package = body["trackResponse"]["shipment"][0]["package"][0]
    package["currentStatus"] = {"type": "Q", "statusCode": "999", "description": "Something new"}
    with caplog.at_level("WARNING"):
        parsed = parse_track_response("1Z12345E0205271688", 200, body)
    assert isinstance(parsed, TrackingResult)
    assert parsed.status is None
    assert (parsed.raw_status_code, parsed.raw_status_description) == ("999", "Something new")
    assert "999" in caplog.text


@pytest.mark.parametrize(
    ("name", "http_status", "kind"),
    [
        ("not_found_tw0001.json", 200, FailureKind.NOT_FOUND),
        ("not_found_404.json", 404, FailureKind.NOT_FOUND),
        ("invalid_number_400.json", 400, FailureKind.INVALID_NUMBER),
        ("unauthorized_401.json", 401, FailureKind.AUTH_FAILED),
        ("rate_limited_429.json", 429, FailureKind.RATE_LIMITED),
        ("server_error_500.json", 500, FailureKind.UNAVAILABLE),
    ],
)
def test_failures(name: str, http_status: int, kind: FailureKind) -> None:
    outcome = parse_track_response("1Z12345E0291980793", http_status, load(name))
    assert isinstance(outcome, TrackingFailure)
    assert outcome.kind is kind
    assert outcome.carrier == "ups" and outcome.tracking_number == "1Z12345E0291980793"
    assert outcome.message


def test_tw0001_message_is_kept() -> None:
    outcome = parse_track_response("1Z12345E0291980793", 200, load("not_found_tw0001.json"))
    assert isinstance(outcome, TrackingFailure)
    assert "TW0001" in outcome.message and "Not Found" in outcome.message


JUNK: list[object] = [
    None,
    "",
    "<html>502 Bad Gateway</html>",
    42,
    [],
    [1, 2, 3],
    {},
    {"trackResponse": None},
    {"trackResponse": {"shipment": "nope"}},
    {"trackResponse": {"shipment": [None, 3]}},
    {"trackResponse": {"shipment": [{"package": [None]}]}},
    {"trackResponse": {"shipment": [{"package": [{"activity": "x"}]}]}},
    {"trackResponse": {"shipment": [{"package": [{"activity": [{"date": "2024x", "time": 5}]}]}]}},
    {"trackResponse": {"shipment": [{"package": [{"currentStatus": [], "deliveryDate": 7}]}]}},
    {"trackResponse": {"shipment": [{"package": [{"activity": [{"gmtDate": "20241399"}]}]}]}},
    {"response": {"errors": "bad"}},
]


@pytest.mark.parametrize("body", JUNK)
@pytest.mark.parametrize("http_status", [200, 207, 400, 404, 500])
def test_junk_never_raises(body: object, http_status: int) -> None:
    outcome = parse_track_response("1Z12345E0205271688", http_status, body)
    assert isinstance(outcome, TrackingFailure)
    assert outcome.message
    if http_status in (200, 207):
        assert outcome.kind is FailureKind.BAD_RESPONSE


def test_official_sample_when_present() -> None:
    sample = official_spec("ups", "sample-track-response.json")
    parsed = parse_track_response("<Tracking Number>", 200, json.loads(sample.read_text()))
    assert isinstance(parsed, TrackingResult)
    assert parsed.status is Status.DELIVERED
    assert [e.status for e in parsed.events] == [Status.INFO_RECEIVED, Status.DELIVERED]
    # no GMT fields: local 16:30 in Paramus, NJ (EST); the label scan has only "US" and
    # borrows the package's known zone.
    assert parsed.delivered_at == datetime(2022, 1, 26, 21, 30, tzinfo=UTC)
    assert parsed.events[0].occurred_at == datetime(2022, 1, 26, 20, 16, 41, tzinfo=UTC)
