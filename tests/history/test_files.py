"""Reading delivery-history files: Olist local times in each state's zone, the generic format,
every reason a row is rejected (with its line number), and gzip."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tracking_service.estimator.records import Delivery
from tracking_service.history.files import (
    BR_STATE_ZONES,
    GENERIC_COLUMNS,
    HistoryFileError,
    RowError,
    RowInvalid,
    count_lines,
    localize,
    parse_lines,
    parse_row,
    read_deliveries,
    zone_for,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
OLIST_SMALL = FIXTURES / "handmade_marketplace_format.csv"
OLIST_REAL = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "olist"
    / "deliveries_train.csv.gz"
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def small_by_key() -> dict[str, Delivery]:
    outcomes = list(read_deliveries(OLIST_SMALL, "olist"))
    assert all(isinstance(item, Delivery) for _, item in outcomes), outcomes
    return {item.key: item for _, item in outcomes if isinstance(item, Delivery)}


# -- Olist ---------------------------------------------------------------------------------------


def test_olist_row_in_sao_paulo_winter_is_utc_minus_3() -> None:
    d = small_by_key()["a0000000000000000000000000000001"]
    assert d.order_time == utc(2017, 6, 1, 13, 0)
    assert d.handoff_time == utc(2017, 6, 2, 17, 0)
    assert d.delivered_at == utc(2017, 6, 5, 21, 30)
    assert (d.origin_country, d.origin_subdivision, d.origin_postal_code) == ("BR", "SP", "01001")
    assert (d.dest_country, d.dest_subdivision, d.dest_postal_code) == ("BR", "SP", "13010")
    assert d.promised_date == date(2017, 6, 20)
    assert (d.origin_tz, d.dest_tz) == ("America/Sao_Paulo", "America/Sao_Paulo")
    assert (d.origin_lat, d.origin_lng, d.dest_lat, d.dest_lng) == (
        -23.55,
        -46.633,
        -22.905,
        -47.06,
    )


def test_olist_delivery_time_is_read_in_the_customers_zone() -> None:
    d = small_by_key()["a0000000000000000000000000000002"]
    assert d.order_time == utc(2017, 6, 3, 12, 15)  # seller in SP, UTC-3
    assert d.delivered_at == utc(2017, 6, 10, 19, 0)  # customer in Manaus, UTC-4
    assert d.dest_tz == "America/Manaus"


def test_olist_acre_seller_and_sao_paulo_summer_time() -> None:
    d = small_by_key()["a0000000000000000000000000000003"]
    assert d.order_time == utc(2017, 1, 10, 14, 0)  # Rio Branco, UTC-5
    assert d.delivered_at == utc(2017, 1, 20, 11, 0)  # Sao Paulo summer time, UTC-2
    assert d.origin_tz == "America/Rio_Branco"


def test_olist_nonexistent_local_time_at_summer_time_start() -> None:
    # 2017-10-15 00:00 in Rio de Janeiro jumped to 01:00: 00:30 is read with the old offset.
    d = small_by_key()["a0000000000000000000000000000004"]
    assert d.order_time == utc(2017, 10, 15, 3, 30)
    assert d.handoff_time == utc(2017, 10, 16, 12, 0)  # summer time, UTC-2


def test_olist_ambiguous_local_time_at_summer_time_end_takes_the_first() -> None:
    # On 2018-02-17 Sao Paulo's 23:00-23:59 happened twice; the first one was still UTC-2.
    d = small_by_key()["a0000000000000000000000000000005"]
    assert d.delivered_at == utc(2018, 2, 18, 1, 30)
    assert d.origin_lat is None and d.origin_lng is None
    assert d.dest_postal_code == "04001"


def test_olist_empty_handoff_and_coordinates_are_none_and_cuiaba_summer_time() -> None:
    d = small_by_key()["a0000000000000000000000000000006"]
    assert d.handoff_time is None
    assert d.dest_lat is None and d.dest_lng is None
    assert d.order_time == utc(2017, 12, 1, 11, 0)  # Cuiaba summer time, UTC-3
    assert d.delivered_at == utc(2017, 12, 12, 13, 0)  # Fortaleza, no summer time, UTC-3
    assert (d.origin_tz, d.dest_tz) == ("America/Cuiaba", "America/Fortaleza")


def test_localize_gap_and_fold_directly() -> None:
    assert localize(datetime(2016, 10, 16, 0, 30), "America/Sao_Paulo") == utc(2016, 10, 16, 3, 30)
    assert localize(datetime(2017, 2, 18, 23, 30), "America/Sao_Paulo") == utc(2017, 2, 19, 1, 30)
    assert localize(datetime(2017, 2, 19, 0, 30), "America/Sao_Paulo") == utc(2017, 2, 19, 3, 30)


def test_every_brazilian_state_has_a_zone() -> None:
    assert len(BR_STATE_ZONES) == 27
    assert BR_STATE_ZONES["MS"] == "America/Campo_Grande"
    assert all(zone_for("BR", state) == zone for state, zone in BR_STATE_ZONES.items())


def test_zip_prefix_without_leading_zero_is_padded() -> None:
    row = _olist_row(seller_zip_prefix="1001")
    assert parse_row("olist", row).origin_postal_code == "01001"


# -- rejected rows -------------------------------------------------------------------------------


def _olist_lines() -> list[str]:
    return OLIST_SMALL.read_text().splitlines()


def _olist_row(**changes: str) -> dict[str, str]:
    header, first = _olist_lines()[:2]
    row = dict(zip(header.split(","), first.split(","), strict=True))
    row.update(changes)
    return row


def _as_line(row: dict[str, str]) -> str:
    return ",".join(row.values())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"order_id": ""}, "order_id: required, but empty"),
        ({"purchase_ts": "2017-13-01 10:00:00"}, "purchase_ts: '2017-13-01 10:00:00' is not a"),
        ({"purchase_ts": "2017-06-01"}, "purchase_ts: '2017-06-01' is not a YYYY-MM-DD HH:MM:SS"),
        ({"purchase_ts": "2017-06-01 10:00:00-03:00"}, "purchase_ts: '2017-06-01 10:00:00-03:00' "),
        ({"delivered_ts": ""}, "delivered_ts: required, but empty"),
        ({"delivered_ts": "2017-05-30 10:00:00"}, "delivered before it was ordered"),
        ({"carrier_handoff_ts": "2017-05-31 10:00:00"}, "handed to the carrier before it was"),
        ({"carrier_handoff_ts": "2017-06-06 10:00:00"}, "delivered before it was handed to the"),
        ({"seller_state": "XX"}, "seller_state: unknown Brazilian state 'XX'"),
        ({"customer_state": ""}, "customer_state: required, but empty"),
        ({"customer_zip_prefix": "ABCDE"}, "customer_zip_prefix: 'ABCDE' is not a zip prefix"),
        ({"seller_lat": "91"}, "seller_lat: 91 is outside -90..90"),
        ({"customer_lng": "east"}, "customer_lng: 'east' is not a number"),
        ({"promised_date": "2017-02-30"}, "promised_date: '2017-02-30' is not a YYYY-MM-DD date"),
    ],
)
def test_each_bad_olist_row_is_reported_with_its_line_and_reason(
    changes: dict[str, str], reason: str
) -> None:
    header, good, *_ = _olist_lines()
    bad = _as_line(_olist_row(**changes))
    outcomes = list(parse_lines("olist", [header, good, bad, good.replace("0001,", "0099,", 1)]))
    assert [line for line, _ in outcomes] == [2, 3, 4]
    assert isinstance(outcomes[0][1], Delivery) and isinstance(outcomes[2][1], Delivery)
    error = outcomes[1][1]
    assert isinstance(error, RowError)
    assert error.reason.startswith(reason), error.reason


def test_offset_in_olist_time_names_the_problem() -> None:
    with pytest.raises(RowInvalid, match="has an offset"):
        parse_row("olist", _olist_row(purchase_ts="2017-06-01 10:00:00-03:00"))


def test_wrong_number_of_fields_and_duplicate_ids_are_rejected() -> None:
    header, good, *_ = _olist_lines()
    outcomes = list(parse_lines("olist", [header, good + ",extra", good, "", good]))
    assert outcomes[0] == (2, RowError("20 fields, but the header has 19"))
    assert isinstance(outcomes[1][1], Delivery) and outcomes[1][0] == 3
    # line 4 is blank and skipped; line 5 repeats line 3's order id
    assert outcomes[2] == (
        5,
        RowError("duplicate id 'a0000000000000000000000000000001' (first on line 3)"),
    )


def test_line_numbers_follow_quoted_fields_that_span_lines() -> None:
    header, good, *_ = _olist_lines()
    spanning = _as_line(_olist_row(order_id="b1", seller_city='"sao\npaulo"'))
    lines = [header, *spanning.split("\n"), good, _as_line(_olist_row(seller_state="ZZ"))]
    outcomes = list(parse_lines("olist", "\n".join(lines).splitlines(keepends=True)))
    assert [line for line, _ in outcomes] == [2, 4, 5]
    assert isinstance(outcomes[2][1], RowError)


def test_missing_columns_make_the_whole_file_unreadable() -> None:
    with pytest.raises(HistoryFileError, match=r"missing column.*delivered_ts"):
        list(parse_lines("olist", ["order_id,purchase_ts\n", "x,2017-01-01 00:00:00\n"]))
    with pytest.raises(HistoryFileError, match="empty"):
        list(parse_lines("generic", []))
    with pytest.raises(HistoryFileError, match="unknown history format 'csv'"):
        read_deliveries(OLIST_SMALL, "csv")


# -- generic -------------------------------------------------------------------------------------


GENERIC_HEADER = ",".join(GENERIC_COLUMNS)


def _generic(**values: str) -> dict[str, str]:
    row = dict.fromkeys(GENERIC_COLUMNS, "")
    row.update(
        order_time="2024-03-01T10:00:00-05:00",
        handoff_time="2024-03-01T17:30:00-05:00",
        delivered_at="2024-03-04T14:00:00-08:00",
        origin_country="US",
        origin_subdivision="NY",
        origin_postal_code="10001",
        dest_country="US",
        dest_subdivision="CA",
        dest_postal_code="94103",
        carrier="ups",
        service="ground",
        promised_date="2024-03-05",
    )
    row.update(values)
    return row


def test_generic_row_keeps_offsets_as_utc_instants() -> None:
    d = parse_row("generic", _generic(id="o-1", origin_tz="America/New_York"))
    assert d.key == "o-1"
    assert d.order_time == utc(2024, 3, 1, 15, 0)
    assert d.handoff_time == utc(2024, 3, 1, 22, 30)
    assert d.delivered_at == utc(2024, 3, 4, 22, 0)
    assert (d.carrier, d.service, d.promised_date) == ("ups", "ground", date(2024, 3, 5))
    assert d.origin_tz == "America/New_York"
    assert d.dest_tz is None  # a US state alone does not name a zone


def test_generic_zone_follows_from_brazilian_state_or_single_zone_country() -> None:
    d = parse_row("generic", _generic(origin_country="br", origin_subdivision="AM"))
    assert (d.origin_country, d.origin_tz) == ("BR", "America/Manaus")
    d = parse_row("generic", _generic(dest_country="FR", dest_subdivision=""))
    assert d.dest_tz == "Europe/Paris"


def test_generic_row_without_id_gets_a_stable_key() -> None:
    first = parse_row("generic", _generic())
    again = parse_row("generic", _generic())
    other = parse_row("generic", _generic(dest_postal_code="94104"))
    assert first.key == again.key != other.key
    assert first.key.startswith("sha1:")


def test_generic_file_with_only_required_columns() -> None:
    lines = [
        "order_time,delivered_at,origin_country,dest_country",
        "2024-03-01T10:00:00Z,2024-03-03T10:00:00+01:00,NL,NL",
    ]
    [(line, d)] = list(parse_lines("generic", lines))
    assert line == 2 and isinstance(d, Delivery)
    assert d.delivered_at == utc(2024, 3, 3, 9, 0)
    assert d.handoff_time is None and d.carrier is None
    assert (d.origin_tz, d.dest_tz) == ("Europe/Amsterdam", "Europe/Amsterdam")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"order_time": "2024-03-01T10:00:00"}, "order_time: '2024-03-01T10:00:00' has no UTC"),
        ({"delivered_at": "yesterday"}, "delivered_at: 'yesterday' is not an ISO 8601"),
        ({"origin_country": "USA"}, "origin_country: 'USA' is not a two-letter"),
        ({"dest_country": ""}, "dest_country: required, but empty"),
        ({"dest_tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"carrier": "x" * 33}, "carrier: longer than 32 characters"),
        ({"delivered_at": "2024-02-29T10:00:00Z"}, "delivered before it was ordered"),
    ],
)
def test_each_bad_generic_row_is_reported(changes: dict[str, str], reason: str) -> None:
    outcomes = list(
        parse_lines(
            "generic",
            [GENERIC_HEADER, _as_line(_generic(id="a")), _as_line(_generic(id="b", **changes))],
        )
    )
    assert isinstance(outcomes[0][1], Delivery)
    line, error = outcomes[1]
    assert line == 3 and isinstance(error, RowError)
    assert error.reason.startswith(reason), error.reason


# -- files ---------------------------------------------------------------------------------------


def test_gzip_reads_the_same_as_plain(tmp_path: Path) -> None:
    packed = tmp_path / "small.csv.gz"
    packed.write_bytes(gzip.compress(OLIST_SMALL.read_bytes()))
    assert list(read_deliveries(packed, "olist")) == list(read_deliveries(OLIST_SMALL, "olist"))
    assert count_lines(packed) == count_lines(OLIST_SMALL) == 7


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    misnamed = tmp_path / "small.csv"
    misnamed.write_bytes(gzip.compress(OLIST_SMALL.read_bytes()))
    assert len(list(read_deliveries(misnamed, "olist"))) == 6


def test_missing_corrupt_and_binary_files_raise_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryFileError, match="no such file"):
        read_deliveries(tmp_path / "absent.csv", "olist")
    with pytest.raises(HistoryFileError, match="is a directory"):
        read_deliveries(tmp_path, "olist")
    corrupt = tmp_path / "corrupt.csv.gz"
    corrupt.write_bytes(gzip.compress(OLIST_SMALL.read_bytes())[:60])
    with pytest.raises(HistoryFileError, match="cannot read the file"):
        list(read_deliveries(corrupt, "olist"))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(HistoryFileError, match="not UTF-8"):
        list(read_deliveries(binary, "olist"))


@pytest.mark.skipif(not OLIST_REAL.exists(), reason="Olist data not present")
def test_real_olist_file_reads_with_aware_instants() -> None:
    outcomes = list(read_deliveries(OLIST_REAL, "olist"))
    deliveries = [d for _, d in outcomes if isinstance(d, Delivery)]
    errors = [e for _, e in outcomes if isinstance(e, RowError)]
    assert len(outcomes) == count_lines(OLIST_REAL) - 1
    assert len(deliveries) > 0.99 * len(outcomes)
    assert {e.reason for e in errors} <= {"delivered before it was handed to the carrier"}
    assert all(d.order_time.tzinfo is UTC and d.delivered_at.tzinfo is UTC for d in deliveries)
    assert all(d.origin_tz and d.dest_tz for d in deliveries)


def test_header_is_checked_when_the_file_is_opened_not_later() -> None:
    with pytest.raises(HistoryFileError, match="not a generic history file"):
        read_deliveries(OLIST_SMALL, "generic")  # no iteration needed
