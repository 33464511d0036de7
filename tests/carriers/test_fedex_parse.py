"""FedEx Track answers -> one outcome per number (fixtures follow track-trackingnumbers.json)."""

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
from tracking_service.carriers.fedex.parse import parse_track_response
from tracking_service.carriers.status import Status

from .parse_helpers import load_fixture, official_spec


def load(name: str) -> Any:
    return load_fixture("fedex", name)


def result(name: str, number: str) -> TrackingResult:
    outcome = parse_track_response([number], 200, load(name))[number]
    assert isinstance(outcome, TrackingResult), outcome
    return outcome


def test_events_are_scans_with_their_own_codes() -> None:
    parsed = result("in_transit.json", "794622222222")
    assert [e.raw_code for e in parsed.events] == ["OC", "PU", "DP", "AR"]
    assert [e.status for e in parsed.events] == [
        Status.INFO_RECEIVED,
        Status.IN_TRANSIT,
        Status.IN_TRANSIT,
        Status.IN_TRANSIT,
    ]
    arrived = parsed.events[-1]
    assert arrived.occurred_at == datetime(2024, 3, 6, 5, 48, tzinfo=UTC)
    assert arrived.location is not None
    assert (arrived.location.city, arrived.location.region) == ("MEMPHIS", "TN")
    assert arrived.description == "Arrived at FedEx hub"


def test_delivery_exception_is_an_attempt_only_when_fedex_says_so() -> None:
    attempt = result("failed_attempt.json", "794666666666")
    assert attempt.events[-1].status is Status.FAILED_ATTEMPT  # exception code 08
    assert "Customer not available" in attempt.events[-1].description
    other = result("exception.json", "794677777777")
    assert other.events[-1].status is Status.EXCEPTION  # incorrect address
    # an attempt count alone also makes a DE a failed attempt
    body = load("exception.json")
    body["output"]["completeTrackResults"][0]["trackResults"][0]["deliveryDetails"][
        "deliveryAttempts"
    ] = "2"
    counted = parse_track_response(["794677777777"], 200, body)["794677777777"]
    assert isinstance(counted, TrackingResult) and counted.status is Status.FAILED_ATTEMPT


def test_estimate_order_window_then_estimated_then_commitment_then_standard() -> None:
    window = result("out_for_delivery.json", "794633333333").estimated_delivery
    assert window == DeliveryWindow(date(2024, 3, 7), date(2024, 3, 7))
    estimated = result("in_transit.json", "794622222222").estimated_delivery
    assert estimated == DeliveryWindow(date(2024, 3, 7), date(2024, 3, 7))  # not COMMITMENT 8th
    commitment = result("delivered_signature.json", "794655555555").estimated_delivery
    assert commitment == DeliveryWindow(date(2024, 3, 8), date(2024, 3, 8))
    standard = result("info_received.json", "794611111111").estimated_delivery
    assert standard == DeliveryWindow(date(2024, 3, 7), date(2024, 3, 8))
    assert result("returned_to_sender.json", "794688888888").estimated_delivery is None


def test_delivered_with_signature() -> None:
    parsed = result("delivered_signature.json", "794655555555")
    assert parsed.delivered_at == datetime(2024, 3, 7, 18, 24, tzinfo=UTC)
    assert parsed.signed_by == "M.RIVERA"


def test_naive_actual_delivery_uses_the_delivered_scan() -> None:
    body = load("delivered_signature.json")
    for entry in body["output"]["completeTrackResults"][0]["trackResults"][0]["dateAndTimes"]:
        if entry["type"] == "ACTUAL_DELIVERY":
            entry["dateTime"] = "2024-03-07T13:24:00"
    parsed = parse_track_response(["794655555555"], 200, body)["794655555555"]
    assert isinstance(parsed, TrackingResult)
    assert parsed.delivered_at == datetime(2024, 3, 7, 18, 24, tzinfo=UTC)


def test_multi_piece_each_number_gets_its_own_piece() -> None:
    numbers = ["794699999990", "794699999991"]
    outcomes = parse_track_response(numbers, 200, load("multi_piece.json"))
    first, second = outcomes["794699999990"], outcomes["794699999991"]
    assert isinstance(first, TrackingResult) and isinstance(second, TrackingResult)
    assert first.status is Status.DELIVERED and first.signed_by == "DOCK 4"
    assert second.status is Status.OUT_FOR_DELIVERY and second.delivered_at is None


def test_duplicate_number_takes_the_current_shipment() -> None:
    parsed = result("duplicate_number.json", "794612121212")
    assert parsed.status is Status.IN_TRANSIT  # not the 2021 delivery of the reused number
    assert parsed.delivered_at is None


def test_batch_with_unknown_invalid_and_unmentioned_numbers() -> None:
    numbers = ["794622222222", "123456789012", "12345", "794600000000"]
    outcomes = parse_track_response(numbers, 200, load("batch_with_not_found.json"))
    assert set(outcomes) == set(numbers)
    assert isinstance(outcomes["794622222222"], TrackingResult)
    kinds = {n: getattr(o, "kind", None) for n, o in outcomes.items()}
    assert kinds["123456789012"] is FailureKind.NOT_FOUND
    assert kinds["12345"] is FailureKind.INVALID_NUMBER
    assert kinds["794600000000"] is FailureKind.BAD_RESPONSE
    assert "NOTFOUND" in outcomes["123456789012"].message  # type: ignore[union-attr]


def test_numbers_match_without_spaces() -> None:
    outcomes = parse_track_response(["7946 2222 2222"], 200, load("in_transit.json"))
    assert isinstance(outcomes["7946 2222 2222"], TrackingResult)


@pytest.mark.parametrize(
    ("name", "http_status", "kind"),
    [
        ("unauthorized_401.json", 401, FailureKind.AUTH_FAILED),
        ("limit_exceeded_400.json", 400, FailureKind.BAD_RESPONSE),
        ("rate_limited_429.json", 429, FailureKind.RATE_LIMITED),
        ("server_error_500.json", 500, FailureKind.UNAVAILABLE),
        ("unavailable_503.json", 503, FailureKind.UNAVAILABLE),
    ],
)
def test_whole_request_errors_fail_every_number(
    name: str, http_status: int, kind: FailureKind
) -> None:
    numbers = ["794622222222", "794633333333"]
    outcomes = parse_track_response(numbers, http_status, load(name))
    assert set(outcomes) == set(numbers)
    for outcome in outcomes.values():
        assert isinstance(outcome, TrackingFailure) and outcome.kind is kind
        assert str(http_status) in outcome.message


def test_unknown_code_keeps_raw_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    body = load("in_transit.json")
    latest = body["output"]["completeTrackResults"][0]["trackResults"][0]["latestStatusDetail"]
    latest.update(derivedCode="ZZ", code="Z9", description="Brand new status")
    with caplog.at_level("WARNING"):
        parsed = parse_track_response(["794622222222"], 200, body)["794622222222"]
    assert isinstance(parsed, TrackingResult)
    assert parsed.status is None
    assert (parsed.raw_status_code, parsed.raw_status_description) == ("ZZ", "Brand new status")
    assert "ZZ" in caplog.text


JUNK: list[object] = [
    None,
    "oops",
    [],
    {},
    {"output": None},
    {"output": {"completeTrackResults": "x"}},
    {"output": {"completeTrackResults": [None, 1, {"trackingNumber": 5}]}},
    {"output": {"completeTrackResults": [{"trackingNumber": "794622222222"}]}},
    {"output": {"completeTrackResults": [{"trackingNumber": "794622222222", "trackResults": 3}]}},
    {
        "output": {
            "completeTrackResults": [{"trackingNumber": "794622222222", "trackResults": [{}]}]
        }
    },
    {
        "output": {
            "completeTrackResults": [
                {
                    "trackingNumber": "794622222222",
                    "trackResults": [
                        {
                            "latestStatusDetail": "DL",
                            "scanEvents": [{"date": "yesterday"}, None, {"date": 7}],
                            "dateAndTimes": [{"type": "ACTUAL_DELIVERY", "dateTime": "2024-13-40"}],
                            "estimatedDeliveryTimeWindow": {"window": {"begins": []}},
                        }
                    ],
                }
            ]
        }
    },
    {"errors": None},
]


@pytest.mark.parametrize("body", JUNK)
@pytest.mark.parametrize("http_status", [200, 400, 503])
def test_junk_never_raises(body: object, http_status: int) -> None:
    outcomes = parse_track_response(["794622222222", "794633333333"], http_status, body)
    assert set(outcomes) == {"794622222222", "794633333333"}
    for outcome in outcomes.values():
        assert isinstance(outcome, TrackingFailure)
        assert outcome.message


def test_every_documented_error_code_is_a_typed_failure() -> None:
    source = official_spec("fedex", "track-error-codes.json")
    codes = [entry["code"] for entry in json.loads(source.read_text())["error_codes"]]
    body = {
        "output": {
            "completeTrackResults": [
                {"trackingNumber": f"N{i}", "trackResults": [{"error": {"code": code}}]}
                for i, code in enumerate(codes)
            ]
        }
    }
    outcomes = parse_track_response([f"N{i}" for i in range(len(codes))], 200, body)
    for i, code in enumerate(codes):
        outcome = outcomes[f"N{i}"]
        assert isinstance(outcome, TrackingFailure) and code in outcome.message
        if code == "TRACKING.TRACKINGNUMBER.NOTFOUND":
            assert outcome.kind is FailureKind.NOT_FOUND
        elif code == "TRACKING.TRACKINGNUMBER.INVALID":
            assert outcome.kind is FailureKind.INVALID_NUMBER


def _example(schemas: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Any:
    """An instance built from the schema's `example` values, as FedEx documents its answer."""
    if depth > 40:
        return None
    if "$ref" in schema:
        return _example(schemas, schemas[schema["$ref"].split("/")[-1]], depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = _example(schemas, part, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    if schema.get("type") == "array":
        return schema.get("example") or [_example(schemas, schema["items"], depth + 1)]
    if schema.get("type") == "object" or "properties" in schema:
        return {k: _example(schemas, v, depth + 1) for k, v in schema["properties"].items()}
    return schema.get("example")


def test_official_schema_example_when_present() -> None:
    spec_file = official_spec("fedex", "track-trackingnumbers.json")
    spec = json.loads(spec_file.read_text())
    schemas = spec["components"]["schemas"]
    body = _example(schemas, schemas["TrkcResponseVO_TrackingNumber"])
    number = body["output"]["completeTrackResults"][0]["trackingNumber"]
    # The schema example fills every field, the per-entry `error` too: as it stands it is a
    # failure (an entry with an error never counts as data); without the error, a result.
    entry = body["output"]["completeTrackResults"][0]["trackResults"][0]
    with_error = parse_track_response([number], 200, body)[number]
    assert isinstance(with_error, TrackingFailure)
    del entry["error"]
    parsed = parse_track_response([number], 200, body)[number]
    assert isinstance(parsed, TrackingResult)
    assert parsed.status is Status.IN_TRANSIT and parsed.raw_status_code == "PU"
    assert parsed.events[0].occurred_at == datetime(2018, 2, 2, 19, 1, tzinfo=UTC)
    assert parsed.estimated_delivery == DeliveryWindow(date(2021, 10, 1), date(2021, 10, 15))
    assert parsed.signed_by == "Reciever"


def test_an_entry_that_carries_an_error_is_a_failure_even_with_data() -> None:
    body = load("in_transit.json")
    entry = body["output"]["completeTrackResults"][0]["trackResults"][0]
    entry["error"] = {"code": "TRACKING.TRACKINGNUMBER.NOTFOUND", "message": "not found"}
    outcome = parse_track_response(["794622222222"], 200, body)["794622222222"]
    assert isinstance(outcome, TrackingFailure)
    assert outcome.kind is FailureKind.NOT_FOUND
