"""USPS Tracking 3.2 answers -> one outcome per number (fixtures follow tracking-v3r2.yaml)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from tracking_service.carriers.base import (
    DeliveryWindow,
    FailureKind,
    TrackingFailure,
    TrackingResult,
)
from tracking_service.carriers.status import Status
from tracking_service.carriers.usps.parse import parse_track_response

from .parse_helpers import load_fixture, official_spec

BATCH = [
    "9400111899223344556679",  # 404 element, 150002
    "9400111899223344556617",  # 200 element
    "9400111899223344556686",  # 404 element, 150001
    "9400111899223344556693",  # 404 element, 150004
    "LZ123456789US",  # 404 element, 150011
    "9400111899223344556709",  # 404 element without a message code
    "9400111899223344556716",  # not in the answer
]


def load(name: str) -> Any:
    return load_fixture("usps", name)


def result(name: str, number: str) -> TrackingResult:
    outcome = parse_track_response([number], 200, load(name))[number]
    assert isinstance(outcome, TrackingResult), outcome
    return outcome


def test_gmt_timestamp_is_the_instant_and_events_keep_place_and_text() -> None:
    parsed = result("out_for_delivery.json", "9400111899223344556624")
    newest = parsed.events[-1]
    assert newest.occurred_at == datetime(2024, 3, 7, 14, 45, tzinfo=UTC)
    assert (newest.raw_code, newest.status, newest.description) == (
        "OF",
        Status.OUT_FOR_DELIVERY,
        "Out for Delivery",
    )
    assert newest.location is not None
    assert (newest.location.city, newest.location.region, newest.location.postal_code) == (
        "CEDAR RAPIDS",
        "IA",
        "52404",
    )


def test_local_timestamp_and_offset_when_gmt_missing() -> None:
    body = load("out_for_delivery.json")
    for event in body[0]["trackingEvents"]:
        del event["GMTTimestamp"]
        event["eventTimestamp"] = event["eventTimestamp"][:19]  # drop the offset too
    parsed = parse_track_response(["9400111899223344556624"], 200, body)["9400111899223344556624"]
    assert isinstance(parsed, TrackingResult)
    assert parsed.events[-1].occurred_at == datetime(2024, 3, 7, 14, 45, tzinfo=UTC)


def test_event_code_beats_status_category() -> None:
    body = load("delivered_signature.json")
    body[0]["statusCategory"] = "Accepted"  # as in USPS's own sample
    parsed = parse_track_response(["9270190164917312751089"], 200, body)["9270190164917312751089"]
    assert isinstance(parsed, TrackingResult) and parsed.status is Status.DELIVERED


def test_status_category_is_the_fallback_for_an_unknown_code() -> None:
    body = load("failed_attempt.json")
    body[0]["trackingEvents"][0]["eventCode"] = "Q9"
    parsed = parse_track_response(["9400111899223344556648"], 200, body)["9400111899223344556648"]
    assert isinstance(parsed, TrackingResult)
    assert parsed.status is Status.FAILED_ATTEMPT and parsed.raw_status_code == "Q9"
    assert parsed.events[-1].status is None  # the event itself stays unknown


def test_estimate_predicted_then_expected_then_guaranteed() -> None:
    predicted = result("in_transit.json", "9400111899223344556617").estimated_delivery
    assert predicted == DeliveryWindow(date(2024, 3, 7), date(2024, 3, 7))
    expected = result("info_received.json", "9400111899223344556600").estimated_delivery
    assert expected == DeliveryWindow(date(2024, 3, 8), date(2024, 3, 8))
    body = load("in_transit.json")
    expectation = body[0]["deliveryDateExpectation"]
    del expectation["predictedDeliveryDate"], expectation["expectedDeliveryDate"]
    parsed = parse_track_response(["9400111899223344556617"], 200, body)["9400111899223344556617"]
    assert isinstance(parsed, TrackingResult)
    assert parsed.estimated_delivery == DeliveryWindow(date(2024, 3, 9), date(2024, 3, 9))
    # "3 Business Days" is not a date
    assert result("exception.json", "9400111899223344556655").estimated_delivery is None


def test_delivered_with_signature() -> None:
    parsed = result("delivered_signature.json", "9270190164917312751089")
    assert parsed.delivered_at == datetime(2024, 3, 7, 18, 55, tzinfo=UTC)
    assert parsed.signed_by == "J DOE"
    assert result("failed_attempt.json", "9400111899223344556648").delivered_at is None


def test_207_mixed_batch_matches_by_tracking_number() -> None:
    outcomes = parse_track_response(BATCH, 207, load("multi_status_207.json"))
    assert set(outcomes) == set(BATCH)
    ok = outcomes["9400111899223344556617"]
    assert isinstance(ok, TrackingResult) and ok.status is Status.IN_TRANSIT
    for number in ("9400111899223344556679", "9400111899223344556686"):
        pending = outcomes[number]
        assert isinstance(pending, TrackingResult) and pending.status is Status.PENDING
        assert pending.events == ()
    assert outcomes["9400111899223344556679"].raw_status_code == "150002"  # type: ignore[union-attr]
    kinds = {n: getattr(o, "kind", None) for n, o in outcomes.items()}
    assert kinds["9400111899223344556693"] is FailureKind.NOT_FOUND
    assert kinds["LZ123456789US"] is FailureKind.INVALID_NUMBER
    assert kinds["9400111899223344556709"] is FailureKind.NOT_FOUND
    assert kinds["9400111899223344556716"] is FailureKind.BAD_RESPONSE


def test_no_status_yet_is_not_found_for_stale_numbers() -> None:
    stale = ["9400111899223344556679"]
    outcomes = parse_track_response(BATCH, 207, load("multi_status_207.json"), stale=stale)
    gone = outcomes["9400111899223344556679"]
    assert isinstance(gone, TrackingFailure) and gone.kind is FailureKind.NOT_FOUND
    assert "150002" in gone.message
    assert isinstance(outcomes["9400111899223344556686"], TrackingResult)  # still fresh


def test_single_number_400_with_message_code() -> None:
    number = "9400111899223344556600"
    outcome = parse_track_response([number], 400, load("no_status_yet_400.json"))[number]
    assert isinstance(outcome, TrackingResult) and outcome.status is Status.PENDING
    assert outcome.raw_status_code == "150009"
    batch = parse_track_response(
        [number, "9400111899223344556617"], 400, load("no_status_yet_400.json")
    )
    assert all(isinstance(o, TrackingFailure) for o in batch.values())


@pytest.mark.parametrize(
    ("name", "http_status", "kind"),
    [
        ("unauthorized_401.json", 401, FailureKind.AUTH_FAILED),
        ("rate_limited_429.json", 429, FailureKind.RATE_LIMITED),
        ("unavailable_503.json", 503, FailureKind.UNAVAILABLE),
    ],
)
def test_whole_request_errors(name: str, http_status: int, kind: FailureKind) -> None:
    numbers = ["9400111899223344556600", "9400111899223344556617"]
    outcomes = parse_track_response(numbers, http_status, load(name))
    for outcome in outcomes.values():
        assert isinstance(outcome, TrackingFailure) and outcome.kind is kind
    assert "Exceeded quota" in outcomes[numbers[0]].message or http_status != 429  # type: ignore[union-attr]


def test_error_codes_from_the_official_csv_are_typed() -> None:
    csv_file = official_spec("usps", "tracking-error-codes.csv")
    import csv

    rows = [r for r in csv.DictReader(csv_file.open()) if r["message_error_code"]]
    expected = {
        "150001": Status.PENDING,
        "150002": Status.PENDING,
        "150003": Status.PENDING,
        "150009": Status.PENDING,
        "150004": FailureKind.NOT_FOUND,
        "150008": FailureKind.NOT_FOUND,
        "150010": FailureKind.INVALID_NUMBER,
        "150011": FailureKind.INVALID_NUMBER,
        "150012": Status.EXCEPTION,
    }
    seen = set()
    for row in rows:
        code = row["message_error_code"]
        body = [
            {
                "statusCode": "404",
                "trackingNumber": "9400111899223344556600",
                "error": {
                    "code": "404",
                    "errors": [{"code": code, "detail": row["error_message"]}],
                },
            }
        ]
        outcome = parse_track_response(["9400111899223344556600"], 207, body)[
            "9400111899223344556600"
        ]
        if code in expected:
            seen.add(code)
            got = outcome.status if isinstance(outcome, TrackingResult) else outcome.kind
            assert got is expected[code], code
    assert seen == set(expected)


JUNK: list[object] = [
    None,
    "nope",
    {},
    {"trackingNumber": 5},
    [None, 1, "x"],
    [{"trackingNumber": "9400111899223344556600"}],
    [{"trackingNumber": "9400111899223344556600", "trackingEvents": [{"eventTimestamp": "x"}]}],
    [{"trackingNumber": "9400111899223344556600", "statusCode": 404, "error": "bad"}],
    [{"trackingNumber": "9400111899223344556600", "error": {"errors": [None, {"code": 7}]}}],
    {"error": None},
]


@pytest.mark.parametrize("body", JUNK)
@pytest.mark.parametrize("http_status", [200, 207, 400, 500])
def test_junk_never_raises(body: object, http_status: int) -> None:
    numbers = ["9400111899223344556600", "9400111899223344556617"]
    outcomes = parse_track_response(numbers, http_status, body)
    assert set(outcomes) == set(numbers)
    for outcome in outcomes.values():
        assert isinstance(outcome, TrackingFailure) and outcome.message


def test_official_legacy_sample_when_present() -> None:
    sample = official_spec("usps", "sample-tracking-v3-detail-response.json")
    number = "XXXXXXXXXXXXXXXXXXXX"
    parsed = parse_track_response([number], 200, json.loads(sample.read_text()))[number]
    assert isinstance(parsed, TrackingResult)
    assert parsed.status is Status.IN_TRANSIT and parsed.raw_status_code == "03"
    assert parsed.events[0].occurred_at == datetime(2023, 8, 2, 7, 31, tzinfo=UTC)
    assert parsed.events[0].location is not None
    assert parsed.events[0].location.postal_code == "23227"  # legacy eventZIP
