"""The status contract every carrier adapter keeps, run over every carrier.

For each carrier: every documented code maps to the status its documentation gives, an unknown
code gives None (the last status is kept) and is logged, and every status-family answer in the
carrier's official shape parses into its normalized status with ordered, aware, distinct scans.
Below the shared contract, each carrier's own refinements (UPS's full status-code table, FedEx's
delivery exceptions, USPS's categories, DHL's texts).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tracking_service.carriers import simulated
from tracking_service.carriers.base import TrackingFailure, TrackingOutcome, TrackingResult
from tracking_service.carriers.dhl import mapping as dhl_mapping
from tracking_service.carriers.dhl.parse import parse_track_response as dhl_parse
from tracking_service.carriers.fedex import mapping as fedex_mapping
from tracking_service.carriers.fedex.parse import parse_track_response as fedex_parse
from tracking_service.carriers.status import Status
from tracking_service.carriers.ups import mapping as ups_mapping
from tracking_service.carriers.ups.parse import parse_track_response as ups_parse
from tracking_service.carriers.usps import mapping as usps_mapping
from tracking_service.carriers.usps.parse import parse_track_response as usps_parse

from .parse_helpers import CARRIER_SPECS, FIXTURES, assert_status_family, load_fixture

S = Status
Family = tuple[str, str, Status, str]  # fixture, tracking number, status, raw status code


@dataclass(frozen=True)
class Contract:
    """What the shared tests need to know about one carrier."""

    code: str
    map_code: Callable[[str], Status | None]  # one code of the carrier -> our status
    documented: Mapping[str, Status | None]  # codes as the carrier-specs README lists them
    unknown: tuple[str, ...]  # codes no carrier table knows
    parse: Callable[[str, int, Any], TrackingOutcome] | None = None  # (number, HTTP, body)
    families: tuple[Family, ...] = field(default=())


def _ups_parse(number: str, http_status: int, body: Any) -> TrackingOutcome:
    return ups_parse(number, http_status, body)


def _fedex_parse(number: str, http_status: int, body: Any) -> TrackingOutcome:
    return fedex_parse([number], http_status, body)[number]


def _usps_parse(number: str, http_status: int, body: Any) -> TrackingOutcome:
    return usps_parse([number], http_status, body)[number]


def _dhl_parse(number: str, http_status: int, body: Any) -> TrackingOutcome:
    return dhl_parse(number, http_status, body)


DHL_PARCEL = "00340434292135100186"

CONTRACTS: dict[str, Contract] = {
    "ups": Contract(
        code="ups",
        map_code=lambda code: ups_mapping.map_status(None, code),
        # carrier-specs/README.md, "3-digit statusCode"
        documented={
            "003": S.INFO_RECEIVED,
            **dict.fromkeys(
                "005 025 047 012 014 018 027 028 038 042 044 045 054 055 057 070 071".split(),
                S.IN_TRANSIT,
            ),
            **dict.fromkeys("006 021 072".split(), S.OUT_FOR_DELIVERY),
            **dict.fromkeys("011 026".split(), S.DELIVERED),
            **dict.fromkeys("017 040 077".split(), S.AVAILABLE_FOR_PICKUP),
            **dict.fromkeys("022 023 024".split(), S.FAILED_ATTEMPT),
            **dict.fromkeys(
                "007 013 016 019 029 050 030 032 046 048 049 051 052 053 058".split(), S.EXCEPTION
            ),
            **dict.fromkeys("033 035".split(), S.RETURNED_TO_SENDER),
            "065": S.INFO_RECEIVED,
        },
        unknown=("999", "ZZ"),
        parse=_ups_parse,
        families=(
            ("info_received.json", "1Z12345E0205271688", S.INFO_RECEIVED, "003"),
            ("in_transit.json", "1Z12345E0205271688", S.IN_TRANSIT, "005"),
            ("out_for_delivery.json", "1Z12345E0205271688", S.OUT_FOR_DELIVERY, "021"),
            ("available_for_pickup.json", "1Z12345E6605272234", S.AVAILABLE_FOR_PICKUP, "040"),
            ("delivered_signature.json", "1Z12345E0305271640", S.DELIVERED, "011"),
            ("failed_attempt.json", "1Z12345E1305277940", S.FAILED_ATTEMPT, "022"),
            ("exception.json", "1Z12345E6205277936", S.EXCEPTION, "030"),
            ("returned_to_sender.json", "1Z12345E1505270452", S.RETURNED_TO_SENDER, "035"),
        ),
    ),
    "fedex": Contract(
        code="fedex",
        map_code=lambda code: fedex_mapping.map_code(code),
        # carrier-specs/README.md, FedEx "Codes", and the codes of newer answers
        documented={
            **dict.fromkeys("OC IN AP EP RP LP RG RD".split(), S.INFO_RECEIVED),
            **dict.fromkeys(
                (
                    "PU PX AA AC AF AR AX CH DP DR DS EA EO FD IT IX LO OF OX PF PL PM SF SP TR "
                    "CC CP RR RM RC AO AE Ow MD RL"
                ).split(),
                S.IN_TRANSIT,
            ),
            **dict.fromkeys("OD AD ED".split(), S.OUT_FOR_DELIVERY),
            **dict.fromkeys("HL HP HA".split(), S.AVAILABLE_FOR_PICKUP),
            "DL": S.DELIVERED,
            "DE": S.EXCEPTION,  # without an attempt
            **dict.fromkeys("SE DY DD PD CD CA".split(), S.EXCEPTION),
            "RS": S.RETURNED_TO_SENDER,
        },
        unknown=("ZZ", "Q7"),
        parse=_fedex_parse,
        families=(
            ("info_received.json", "794611111111", S.INFO_RECEIVED, "IN"),
            ("in_transit.json", "794622222222", S.IN_TRANSIT, "IT"),
            ("out_for_delivery.json", "794633333333", S.OUT_FOR_DELIVERY, "OD"),
            ("available_for_pickup.json", "794644444444", S.AVAILABLE_FOR_PICKUP, "HP"),
            ("delivered_signature.json", "794655555555", S.DELIVERED, "DL"),
            ("failed_attempt.json", "794666666666", S.FAILED_ATTEMPT, "DE"),
            ("exception.json", "794677777777", S.EXCEPTION, "DE"),
            ("delay_weather.json", "794677777788", S.EXCEPTION, "DY"),
            ("returned_to_sender.json", "794688888888", S.RETURNED_TO_SENDER, "RS"),
        ),
    ),
    "usps": Contract(
        code="usps",
        map_code=lambda code: usps_mapping.map_event(code),
        # carrier-specs/README.md, USPS "eventCode", and the codes of Tracking 3 answers
        documented={
            **dict.fromkeys("MA GX 89".split(), S.INFO_RECEIVED),
            **dict.fromkeys(
                "03 OA TM PA 83 10 07 PC SF EF 41 19 06 08 15 42 80 81 82 T1 TL A1".split(),
                S.IN_TRANSIT,
            ),
            "OF": S.OUT_FOR_DELIVERY,
            **dict.fromkeys("14 16".split(), S.AVAILABLE_FOR_PICKUP),
            **dict.fromkeys("01 17 43".split(), S.DELIVERED),
            **dict.fromkeys("02 51 52 53 54 55 56".split(), S.FAILED_ATTEMPT),
            **dict.fromkeys("04 05 11 DX".split(), S.EXCEPTION),
            **dict.fromkeys("09 21 22 23 24 25 26 27 28 29 31 44".split(), S.RETURNED_TO_SENDER),
        },
        unknown=("ZZ", "Q9"),
        parse=_usps_parse,
        families=(
            ("info_received.json", "9400111899223344556600", S.INFO_RECEIVED, "MA"),
            ("in_transit.json", "9400111899223344556617", S.IN_TRANSIT, "10"),
            ("out_for_delivery.json", "9400111899223344556624", S.OUT_FOR_DELIVERY, "OF"),
            ("available_for_pickup.json", "9400111899223344556631", S.AVAILABLE_FOR_PICKUP, "16"),
            ("delivered_signature.json", "9270190164917312751089", S.DELIVERED, "01"),
            ("failed_attempt.json", "9400111899223344556648", S.FAILED_ATTEMPT, "02"),
            ("exception.json", "9400111899223344556655", S.EXCEPTION, "05"),
            ("returned_to_sender.json", "9400111899223344556662", S.RETURNED_TO_SENDER, "09"),
        ),
    ),
    "dhl": Contract(
        code="dhl",
        map_code=lambda code: dhl_mapping.map_status(code, "Some status text"),
        # carrier-specs/README.md, DHL "statusCode" (the full enum)
        documented={
            "pre-transit": S.INFO_RECEIVED,
            "transit": S.IN_TRANSIT,
            "delivered": S.DELIVERED,
            "failure": S.EXCEPTION,
            "unknown": None,
        },
        unknown=("teleported", "lost-in-space"),
        parse=_dhl_parse,
        families=(
            ("info_received.json", DHL_PARCEL, S.INFO_RECEIVED, "pre-transit"),
            ("in_transit.json", DHL_PARCEL, S.IN_TRANSIT, "transit"),
            ("out_for_delivery.json", DHL_PARCEL, S.OUT_FOR_DELIVERY, "transit"),
            ("available_for_pickup.json", DHL_PARCEL, S.AVAILABLE_FOR_PICKUP, "delivered"),
            ("delivered_signature.json", "1234567891", S.DELIVERED, "delivered"),
            ("failed_attempt.json", DHL_PARCEL, S.FAILED_ATTEMPT, "transit"),
            ("exception.json", "1234567890", S.EXCEPTION, "failure"),
            ("returned_to_sender.json", DHL_PARCEL, S.RETURNED_TO_SENDER, "transit"),
        ),
    ),
    "simulated": Contract(
        code="simulated",
        map_code=simulated.map_status,
        documented=dict(simulated.STATUS_BY_CODE),
        unknown=("ZZ", "XX"),
        parse=lambda number, _status, body: simulated.parse_track_response([number], body)[number],
    ),
}


def _cases(pick: Callable[[Contract], Any]) -> list[Any]:
    return [
        pytest.param(code, item, id=f"{code}-{item[0] if isinstance(item, tuple) else item}")
        for code, contract in CONTRACTS.items()
        for item in pick(contract)
    ]


@pytest.mark.parametrize(
    ("carrier", "entry"), _cases(lambda c: sorted(c.documented.items(), key=lambda i: i[0]))
)
def test_each_documented_code_maps_to_its_status(
    carrier: str, entry: tuple[str, Status | None]
) -> None:
    code, expected = entry
    assert CONTRACTS[carrier].map_code(code) is expected


@pytest.mark.parametrize(("carrier", "code"), _cases(lambda c: c.unknown))
def test_an_unknown_code_keeps_the_last_status_and_is_logged(
    carrier: str, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"):
        assert CONTRACTS[carrier].map_code(code) is None
    assert code in caplog.text


@pytest.mark.parametrize(("carrier", "family"), _cases(lambda c: c.families))
def test_every_status_family_parses_into_its_status(carrier: str, family: Family) -> None:
    contract = CONTRACTS[carrier]
    name, number, status, raw_code = family
    assert contract.parse is not None
    parsed = contract.parse(number, 200, load_fixture(carrier, name))
    assert isinstance(parsed, TrackingResult), parsed
    assert_status_family(parsed, carrier, number, status, raw_code)
    assert (parsed.delivered_at is not None) is (status is S.DELIVERED)


GENERIC_JUNK: list[object] = [None, "", "<html>502</html>", 42, [], [1, 2], {}, {"x": None}]


@pytest.mark.parametrize("body", GENERIC_JUNK, ids=repr)
@pytest.mark.parametrize("http_status", [200, 207, 400, 404, 500])
@pytest.mark.parametrize("carrier", sorted(CONTRACTS))
def test_no_answer_makes_a_parser_raise(carrier: str, http_status: int, body: object) -> None:
    parse = CONTRACTS[carrier].parse
    assert parse is not None
    outcome = parse("1234567890", http_status, body)
    assert isinstance(outcome, TrackingFailure) and outcome.message


@pytest.mark.parametrize(
    ("carrier", "name"),
    [
        pytest.param(code, path.name, id=f"{code}-{path.stem}")
        for code in sorted(CONTRACTS)
        for path in sorted((FIXTURES / code).glob("*.json"))
    ],
)
def test_every_recorded_answer_gives_an_outcome(carrier: str, name: str) -> None:
    """Whatever the answer (found, refused, throttled), the parser gives an outcome for the
    number: a result, or a typed failure with a message."""
    parse = CONTRACTS[carrier].parse
    assert parse is not None
    outcome = parse("1234567890", 200, load_fixture(carrier, name))
    if isinstance(outcome, TrackingFailure):
        assert outcome.message
    else:
        assert outcome.carrier == carrier


def test_every_adapter_has_a_contract() -> None:
    from tracking_service.carriers.registry import CARRIER_CODES

    assert set(CONTRACTS) == set(CARRIER_CODES)


# ---- UPS: the whole status-code table, by meaning ---------------------------------------------

UPS_CODES_CSV = CARRIER_SPECS / "ups" / "status-codes.csv"


def _meaning(text: str) -> Status | str | None:
    """What UPS's own words say, for the codes whose words are unambiguous ("?" otherwise)."""
    lowered = text.lower()
    if "out for delivery" in lowered or "loaded on delivery vehicle" in lowered:
        return S.OUT_FOR_DELIVERY
    if lowered.startswith(("delivery attempted", "post office delivery attempted")):
        return S.FAILED_ATTEMPT
    if "attempt made" in lowered or lowered == "second delivery attempted":
        return S.FAILED_ATTEMPT
    if "pickup attempted" in lowered:
        return S.INFO_RECEIVED
    if "to sender" in lowered:
        return S.RETURNED_TO_SENDER
    if lowered.startswith(("delivered to ups access point", "delivered to post office for")):
        return S.AVAILABLE_FOR_PICKUP
    if lowered in ("delivered", "delivered by local post office"):
        return S.DELIVERED
    if lowered.startswith("delay") or "may cause delay" in lowered:
        return S.EXCEPTION
    if lowered == "on the way":
        return S.IN_TRANSIT
    if lowered == "package information unavailable" or lowered == "status not available":
        return None
    return "?"


def _ups_table() -> list[tuple[str, str]]:
    if not UPS_CODES_CSV.exists():
        pytest.skip("shared/carrier-specs is not next to the repository")
    with UPS_CODES_CSV.open(encoding="utf-8", newline="") as handle:
        return [
            (row["status_code"], row["customer_facing_description"])
            for row in csv.DictReader(handle)
        ]


def test_ups_maps_every_code_of_its_table_by_meaning() -> None:
    rows = _ups_table()
    assert len(rows) == 160
    for code, text in rows:
        assert code in ups_mapping.STATUS_CODE_TABLE, f"{code} {text!r} is not mapped"
        assert ups_mapping.STATUS_CODE_TEXT[code] == text
        meaning = _meaning(text)
        mapped = ups_mapping.STATUS_CODES[code]
        if meaning != "?":
            assert mapped is meaning, f"{code} {text!r} maps to {mapped}, means {meaning}"
        for kind in ("I", "D", "X", "M", None):  # whatever type comes with it
            if code != "013":
                assert ups_mapping.map_status(kind, code) is mapped, (kind, code)
    assert {code for code, _ in rows} == set(ups_mapping.STATUS_CODE_TABLE)


def test_ups_only_delivered_codes_say_delivered() -> None:
    delivered = {c for c, s in ups_mapping.STATUS_CODES.items() if s is S.DELIVERED}
    assert delivered == {"011", "026", "156"}  # delivered, by local post office, inside release


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        *[(c, S.OUT_FOR_DELIVERY) for c in ("037", "089", "091", "146", "162")],
        *[(c, S.FAILED_ATTEMPT) for c in ("060", "061", "062", "066", "145")],
        *[(c, S.RETURNED_TO_SENDER) for c in ("034", "036", "067", "118", "119")],
        ("161", S.AVAILABLE_FOR_PICKUP),  # Delivered to UPS Access Point
        ("144", S.AVAILABLE_FOR_PICKUP),  # Delivered to Post Office for Pickup
    ],
)
def test_ups_codes_that_fell_back_to_their_type(code: str, expected: Status) -> None:
    assert ups_mapping.map_status("D", code) is expected
    assert ups_mapping.map_status("I", code) is expected


# Transcribed from carrier-specs/README.md, "status.type".
UPS_TYPES: dict[str, Status | None] = {
    "M": S.INFO_RECEIVED,
    "MV": S.EXCEPTION,
    "P": S.IN_TRANSIT,
    "I": S.IN_TRANSIT,
    "O": S.OUT_FOR_DELIVERY,
    "D": S.DELIVERED,
    "X": S.EXCEPTION,
    "RS": S.RETURNED_TO_SENDER,
    "DO": S.IN_TRANSIT,
    "DD": S.IN_TRANSIT,
    "W": S.IN_TRANSIT,
    "NA": None,
    "U": S.IN_TRANSIT,
}


@pytest.mark.parametrize(("code", "expected"), sorted(CONTRACTS["ups"].documented.items()))
def test_ups_status_code_wins_over_the_type(code: str, expected: Status) -> None:
    assert ups_mapping.map_status("X", code) is expected


@pytest.mark.parametrize(("kind", "expected"), sorted(UPS_TYPES.items()))
def test_ups_type_maps_as_documented_when_no_status_code(
    kind: str, expected: Status | None
) -> None:
    assert ups_mapping.map_status(kind, None) is expected
    assert ups_mapping.map_status(kind.lower(), "") is expected


def test_ups_status_code_refines_type() -> None:
    assert ups_mapping.map_status("I", "021") is S.OUT_FOR_DELIVERY  # "Out For Delivery Today"
    assert ups_mapping.map_status("I", "013") is S.IN_TRANSIT  # exception/update as in transit
    assert ups_mapping.map_status("X", "013") is S.EXCEPTION
    assert ups_mapping.map_status("D", "040") is S.AVAILABLE_FOR_PICKUP


def test_ups_activity_code_when_there_is_no_status_code() -> None:
    assert ups_mapping.map_status("I", None, "OT") is S.OUT_FOR_DELIVERY
    assert ups_mapping.map_status(None, "", "ot") is S.OUT_FOR_DELIVERY
    assert ups_mapping.map_status("I", "005", "OT") is S.IN_TRANSIT  # statusCode first


def test_ups_unknown_code_falls_back_to_type_then_none(caplog: pytest.LogCaptureFixture) -> None:
    assert ups_mapping.map_status("D", "998") is S.DELIVERED
    with caplog.at_level("WARNING"):
        assert ups_mapping.map_status("ZZ", "999") is None
    assert "999" in caplog.text and "ZZ" in caplog.text
    assert ups_mapping.map_status(None, None) is None


# ---- FedEx: delivery exceptions and the order of codes -----------------------------------------


def test_fedex_first_known_code_wins() -> None:
    map_code = fedex_mapping.map_code
    assert map_code("OD", "IT") is S.OUT_FOR_DELIVERY  # derivedCode before code
    assert map_code(None, "DL") is S.DELIVERED
    assert map_code("", "  ", "HP") is S.AVAILABLE_FOR_PICKUP
    assert map_code("Q7", "AR") is S.IN_TRANSIT  # unknown scan code, known derived code
    assert map_code("ow") is S.IN_TRANSIT  # FedEx writes some codes in mixed case


def test_fedex_delivery_exception_with_attempt_is_failed_attempt() -> None:
    assert fedex_mapping.map_code("DE", attempted=True) is S.FAILED_ATTEMPT
    assert fedex_mapping.map_code("DL", attempted=True) is S.DELIVERED  # only DE is refined


@pytest.mark.parametrize(
    ("codes", "texts", "expected"),
    [
        (["15"], [None], True),
        (["08"], [None], True),
        ([None], ["Customer not available or business closed"], True),
        ([None], ["Recipient not in"], True),
        (["03"], ["Incorrect address"], False),
        ([None], ["Local delivery restriction, delivery not attempted"], False),
        ([], [], False),
    ],
)
def test_fedex_attempt_reasons(
    codes: list[str | None], texts: list[str | None], expected: bool
) -> None:
    assert fedex_mapping.is_attempt_reason(codes, texts) is expected


def test_fedex_no_code_at_all_is_none() -> None:
    assert fedex_mapping.map_code(None, "") is None


# ---- USPS: the category is the fallback --------------------------------------------------------

USPS_CATEGORIES: dict[str, Status] = {
    "Pre-Shipment": S.INFO_RECEIVED,
    "Accepted": S.IN_TRANSIT,
    "In Transit": S.IN_TRANSIT,
    "Out for Delivery": S.OUT_FOR_DELIVERY,
    "Available for Pickup": S.AVAILABLE_FOR_PICKUP,
    "Delivered": S.DELIVERED,
    "Delivery Attempt": S.FAILED_ATTEMPT,
    "Alert": S.EXCEPTION,
}


@pytest.mark.parametrize(("code", "expected"), sorted(CONTRACTS["usps"].documented.items()))
def test_usps_event_code_comes_before_the_category(code: str, expected: Status) -> None:
    assert usps_mapping.map_event(code, "Alert") is expected


@pytest.mark.parametrize(("category", "expected"), sorted(USPS_CATEGORIES.items()))
def test_usps_category_is_the_fallback(category: str, expected: Status) -> None:
    assert usps_mapping.map_event(None, category) is expected
    assert usps_mapping.map_event("ZZ", category.upper()) is expected


def test_usps_unknown_category_is_none(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        assert usps_mapping.map_event("ZZ", "Something New") is None
    assert "ZZ" in caplog.text
    assert usps_mapping.map_event(None, None) is None


# ---- DHL: one coarse code, refined by the text --------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        ("transit", "Out for delivery", S.OUT_FOR_DELIVERY),
        ("transit", "With courier for delivery", S.OUT_FOR_DELIVERY),
        ("transit", "The shipment is ready for pick-up at the PACKSTATION", S.AVAILABLE_FOR_PICKUP),
        ("delivered", "Delivered to the parcel shop, ready for pickup", S.AVAILABLE_FOR_PICKUP),
        ("delivered", "The shipment has been picked up by the recipient from the Packstation",
         S.DELIVERED),
        ("transit", "Delivery attempt unsuccessful", S.FAILED_ATTEMPT),
        ("failure", "The shipment could not be delivered", S.FAILED_ATTEMPT),
        ("transit", "The shipment will be returned to sender", S.RETURNED_TO_SENDER),
        ("unknown", "LABEL CREATED", S.INFO_RECEIVED),
    ],
)  # fmt: skip
def test_dhl_text_refines_the_code(code: str, text: str, expected: Status) -> None:
    assert dhl_mapping.map_status(code, text) is expected
    assert dhl_mapping.map_status(code, None, text.upper()) is expected


def test_dhl_return_flag_wins() -> None:
    assert dhl_mapping.map_status("transit", "Processed", return_flag=True) is S.RETURNED_TO_SENDER


def test_dhl_unknown_code_with_unknown_text_is_none(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        assert dhl_mapping.map_status("unknown", "CLOSE BAG") is None
    assert "unknown" in caplog.text
