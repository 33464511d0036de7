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

from .parse_helpers import load_fixture, official_spec


def load(name: str) -> Any:
    return load_fixture("ups", name)


def result(name: str, number: str) -> TrackingResult:
    outcome = parse_track_response(number, 200, load(name))
    assert isinstance(outcome, TrackingResult), outcome
    return outcome


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


def _activity(
    code: str, day: str, clock: str, *, state: str | None, offset: str | None
) -> dict[str, Any]:
    address: dict[str, Any] = {"countryCode": "US"}
    if state:
        address["stateProvince"] = state
    activity: dict[str, Any] = {
        "location": {"address": address},
        "status": {"type": "I", "description": "Scan", "code": "AR", "statusCode": code},
        "date": day,
        "time": clock,
    }
    if offset:
        activity["gmtOffset"] = offset
    return activity


def _answer(*activities: dict[str, Any]) -> dict[str, Any]:
    package = {"trackingNumber": "1Z12345E0205271688", "activity": list(activities)}
    return {"trackResponse": {"shipment": [{"package": [package]}]}}


def test_a_scan_without_offset_keeps_its_key_when_the_zone_it_borrows_shifts() -> None:
    """A scan with only "US" borrows the zone of its nearest scan; the next poll brings a newer
    scan in another zone that is now as near: the instant may move, the key must not."""
    unzoned = _activity("005", "20240305", "100000", state=None, offset=None)
    new_york = _activity("038", "20240304", "180000", state="NY", offset="-05:00")
    los_angeles = _activity("005", "20240305", "230000", state="CA", offset="-08:00")
    number = "1Z12345E0205271688"
    first = parse_track_response(number, 200, _answer(unzoned, new_york))
    second = parse_track_response(number, 200, _answer(los_angeles, unzoned, new_york))
    assert isinstance(first, TrackingResult) and isinstance(second, TrackingResult)
    before = next(e for e in first.events if e.location and not e.location.region)
    after = next(e for e in second.events if e.location and not e.location.region)
    assert before.occurred_at != after.occurred_at  # the borrowed zone did shift
    assert before.dedupe_key == after.dedupe_key
    keys = {e.dedupe_key for e in first.events} - {e.dedupe_key for e in second.events}
    assert keys == set()  # every scan of the first answer is recognised in the second


def test_a_proof_of_delivery_on_a_parcel_not_delivered_gives_no_delivery_instant() -> None:
    body = load("in_transit.json")
    package = body["trackResponse"]["shipment"][0]["package"][0]
    package["deliveryDate"].append({"type": "DEL", "date": "20240306"})
    package["deliveryTime"] = {"type": "DEL", "endTime": "120000"}
    package["deliveryInformation"] = {"receivedBy": "SMITH", "location": "Front Door"}
    parsed = result_of(body, "1Z12345E0205271688")
    assert parsed.status is Status.IN_TRANSIT
    assert parsed.delivered_at is None


def test_without_a_status_code_the_activity_code_decides() -> None:
    body = load("out_for_delivery.json")
    package = body["trackResponse"]["shipment"][0]["package"][0]
    for status in [package["currentStatus"], *(a["status"] for a in package["activity"])]:
        status.pop("statusCode", None)
    parsed = result_of(body, "1Z12345E0205271688")
    assert parsed.status is Status.OUT_FOR_DELIVERY
    assert parsed.raw_status_code == "OT"


def result_of(body: Any, number: str) -> TrackingResult:
    outcome = parse_track_response(number, 200, body)
    assert isinstance(outcome, TrackingResult), outcome
    return outcome
