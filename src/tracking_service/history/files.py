"""Delivery-history files: `generic` and `olist` CSV (plain or gzipped) to `Delivery` records.

The core is pure: `parse_row` turns one CSV row (a dict of strings) into a `Delivery` or raises
`RowInvalid` with a reason a person can act on, and `parse_lines` does that for the lines of a
whole file, checking the header once and numbering rows by their line in the file. The file edge,
`read_deliveries`, only opens the file (gzip is recognised by its magic bytes, whatever the name).

Every instant comes out timezone-aware in UTC, exactly as it comes back from the database, so
code that reads files and code that reads the table see the same records; the local zones of
origin and destination travel beside them in `origin_tz` / `dest_tz`.

Olist times are Brazilian wall-clock times without a zone: origin times (purchase, hand-off) are
read in the zone of the seller's state, the delivery time in the zone of the customer's state.
Brazil had summer time until 2019, so some local times do not exist (the clock jumped from 00:00
to 01:00) and some happen twice (23:00-23:59 on the night summer time ended); see `localize`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tracking_service.estimator.records import Delivery
from tracking_service.timezones import single_zone, zone, zone_or_none

FORMATS: tuple[str, ...] = ("generic", "olist")

# IANA zone of each of the 27 Brazilian federative units (zone.tab's descriptions). Where a
# state spans two zones (Amazonas, Pará) the zone of its capital and most of its people is used.
BR_STATE_ZONES: dict[str, str] = {
    "AC": "America/Rio_Branco",
    "AL": "America/Maceio",
    "AM": "America/Manaus",
    "AP": "America/Belem",
    "BA": "America/Bahia",
    "CE": "America/Fortaleza",
    "DF": "America/Sao_Paulo",
    "ES": "America/Sao_Paulo",
    "GO": "America/Sao_Paulo",
    "MA": "America/Fortaleza",
    "MG": "America/Sao_Paulo",
    "MS": "America/Campo_Grande",
    "MT": "America/Cuiaba",
    "PA": "America/Belem",
    "PB": "America/Fortaleza",
    "PE": "America/Recife",
    "PI": "America/Fortaleza",
    "PR": "America/Sao_Paulo",
    "RJ": "America/Sao_Paulo",
    "RN": "America/Fortaleza",
    "RO": "America/Porto_Velho",
    "RR": "America/Boa_Vista",
    "RS": "America/Sao_Paulo",
    "SC": "America/Sao_Paulo",
    "SE": "America/Maceio",
    "SP": "America/Sao_Paulo",
    "TO": "America/Araguaina",
}

OLIST_COLUMNS: tuple[str, ...] = (
    "order_id",
    "purchase_ts",
    "carrier_handoff_ts",
    "delivered_ts",
    "promised_date",
    "seller_zip_prefix",
    "seller_state",
    "customer_zip_prefix",
    "customer_state",
)
"""Columns an Olist file must have (others, like cities, weights and lat/lng, are optional)."""

GENERIC_REQUIRED: tuple[str, ...] = ("order_time", "delivered_at", "origin_country", "dest_country")
GENERIC_COLUMNS: tuple[str, ...] = (
    "id",
    "order_time",
    "handoff_time",
    "delivered_at",
    "origin_id",
    "origin_country",
    "origin_subdivision",
    "origin_postal_code",
    "origin_tz",
    "origin_lat",
    "origin_lng",
    "dest_country",
    "dest_subdivision",
    "dest_postal_code",
    "dest_tz",
    "dest_lat",
    "dest_lng",
    "carrier",
    "service",
    "promised_date",
)
"""Every column of the generic format, in the documented order (see README)."""

_REQUIRED_COLUMNS = {"generic": GENERIC_REQUIRED, "olist": OLIST_COLUMNS}
_MAX_LEN = {
    "id": 128,
    "origin_id": 64,
    "origin_subdivision": 16,
    "origin_postal_code": 16,
    "dest_subdivision": 16,
    "dest_postal_code": 16,
    "carrier": 32,
    "service": 64,
}
_COUNTRY = re.compile(r"[A-Z]{2}")
_ZIP_PREFIX = re.compile(r"\d{1,5}")


class RowInvalid(ValueError):
    """A row that cannot become a `Delivery`; the message says why."""


class HistoryFileError(Exception):
    """The file as a whole cannot be read: missing, not CSV, wrong columns, corrupt gzip."""


@dataclass(frozen=True, slots=True)
class RowError:
    """Why a row was rejected."""

    reason: str


RowOutcome = tuple[int, Delivery | RowError]
"""(line number in the file, the record or why there is none); the header is line 1."""


# -- time ----------------------------------------------------------------------------------------


def check_zone(name: str) -> str:
    """The name itself when it is a known IANA zone, else `RowInvalid`."""
    if zone_or_none(name) is None:
        raise RowInvalid(f"unknown time zone {name!r}")
    return name


def localize(naive: datetime, zone_name: str) -> datetime:
    """Read a wall-clock time in a zone, deciding deliberately around daylight-saving changes.

    A time that happens twice (clocks set back) is taken at its first occurrence (fold=0, the
    summer-time offset). A time that never happened (clocks jumped forward) is read with the offset
    in force just before the jump, i.e. as a clock not yet moved forward would show it: Brazil's
    00:30 on a summer-time start day is 03:30 UTC (= 01:30 summer time). Returns aware UTC.
    """
    # zoneinfo (PEP 495) already gives both behaviours for fold=0; we state them and rely on them.
    return naive.replace(tzinfo=zone(zone_name), fold=0).astimezone(UTC)


def zone_for(country: str, subdivision: str | None) -> str | None:
    """The IANA zone of a place when it follows from country and subdivision alone.

    Brazilian states map through `BR_STATE_ZONES`; a country with a single zone in the tz
    database's zone.tab maps to it; anything else (e.g. a US state without a table) is unknown.
    """
    if country == "BR":
        return BR_STATE_ZONES.get(subdivision or "")
    return single_zone(country)


# -- fields --------------------------------------------------------------------------------------


def _text(row: dict[str, str], column: str) -> str | None:
    value = (row.get(column) or "").strip()
    if not value:
        return None
    limit = _MAX_LEN.get(column)
    if limit is not None and len(value) > limit:
        raise RowInvalid(f"{column}: longer than {limit} characters")
    return value


def _required(row: dict[str, str], column: str) -> str:
    value = _text(row, column)
    if value is None:
        raise RowInvalid(f"{column}: required, but empty")
    return value


def _date_time(column: str, value: str, expected: str) -> datetime:
    """`value` as a date and a time; a bare date is refused, as it would silently become
    midnight. `expected` names the form in the error."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or len(value) <= 10:
        raise RowInvalid(f"{column}: {value!r} is not {expected}")
    return parsed


def _aware(row: dict[str, str], column: str, *, required: bool) -> datetime | None:
    value = _required(row, column) if required else _text(row, column)
    if value is None:
        return None
    parsed = _date_time(column, value, "an ISO 8601 date-time")
    if parsed.tzinfo is None:
        raise RowInvalid(
            f"{column}: {value!r} has no UTC offset (write e.g. 2024-05-02T14:30:00-03:00)"
        )
    return parsed.astimezone(UTC)


def _local(row: dict[str, str], column: str, zone_name: str, *, required: bool) -> datetime | None:
    value = _required(row, column) if required else _text(row, column)
    if value is None:
        return None
    parsed = _date_time(column, value, "a YYYY-MM-DD HH:MM:SS time")
    if parsed.tzinfo is not None:
        raise RowInvalid(f"{column}: {value!r} has an offset; Olist times are local wall-clock")
    return localize(parsed, zone_name)


def _date(row: dict[str, str], column: str) -> date | None:
    value = _text(row, column)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RowInvalid(f"{column}: {value!r} is not a YYYY-MM-DD date") from None


def _coordinate(row: dict[str, str], column: str, bound: float) -> float | None:
    value = _text(row, column)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise RowInvalid(f"{column}: {value!r} is not a number") from None
    if not -bound <= number <= bound:  # also rejects nan
        raise RowInvalid(f"{column}: {value} is outside -{bound:g}..{bound:g}")
    return number


def _country(row: dict[str, str], column: str) -> str:
    value = _required(row, column).upper()
    if not _COUNTRY.fullmatch(value):
        raise RowInvalid(f"{column}: {value!r} is not a two-letter ISO 3166 country code")
    return value


def _br_state(row: dict[str, str], column: str) -> str:
    value = _required(row, column).upper()
    if value not in BR_STATE_ZONES:
        raise RowInvalid(f"{column}: unknown Brazilian state {value!r}")
    return value


def _zip_prefix(row: dict[str, str], column: str) -> str:
    value = _required(row, column)
    if not _ZIP_PREFIX.fullmatch(value):
        raise RowInvalid(f"{column}: {value!r} is not a zip prefix of up to 5 digits")
    return value.zfill(5)  # some copies of the data set dropped the leading zeros


def _check_order(delivery: Delivery) -> Delivery:
    if delivery.delivered_at < delivery.order_time:
        raise RowInvalid("delivered before it was ordered")
    if delivery.handoff_time is not None:
        if delivery.handoff_time < delivery.order_time:
            raise RowInvalid("handed to the carrier before it was ordered")
        if delivery.delivered_at < delivery.handoff_time:
            raise RowInvalid("delivered before it was handed to the carrier")
    return delivery


# -- rows ----------------------------------------------------------------------------------------


def parse_olist(row: dict[str, str]) -> Delivery:
    """One row of the Olist deliveries file (see its README) as a `Delivery`."""
    key = _required(row, "order_id")
    if len(key) > _MAX_LEN["id"]:
        raise RowInvalid(f"order_id: longer than {_MAX_LEN['id']} characters")
    seller_state = _br_state(row, "seller_state")
    customer_state = _br_state(row, "customer_state")
    origin_tz = BR_STATE_ZONES[seller_state]
    dest_tz = BR_STATE_ZONES[customer_state]
    order_time = _local(row, "purchase_ts", origin_tz, required=True)
    delivered_at = _local(row, "delivered_ts", dest_tz, required=True)
    assert order_time is not None and delivered_at is not None
    return _check_order(
        Delivery(
            key=key,
            order_time=order_time,
            handoff_time=_local(row, "carrier_handoff_ts", origin_tz, required=False),
            delivered_at=delivered_at,
            origin_country="BR",
            origin_subdivision=seller_state,
            origin_postal_code=_zip_prefix(row, "seller_zip_prefix"),
            dest_country="BR",
            dest_subdivision=customer_state,
            dest_postal_code=_zip_prefix(row, "customer_zip_prefix"),
            promised_date=_date(row, "promised_date"),
            origin_tz=origin_tz,
            dest_tz=dest_tz,
            origin_lat=_coordinate(row, "seller_lat", 90),
            origin_lng=_coordinate(row, "seller_lng", 180),
            dest_lat=_coordinate(row, "customer_lat", 90),
            dest_lng=_coordinate(row, "customer_lng", 180),
        )
    )


def _generic_key(row: dict[str, str]) -> str:
    """A stable key for a row without `id`: the same row imported twice is the same record."""
    canonical = "\x1f".join((row.get(column) or "").strip() for column in GENERIC_COLUMNS[1:])
    return "sha1:" + hashlib.sha1(canonical.encode("utf-8")).hexdigest()


def parse_generic(row: dict[str, str]) -> Delivery:
    """One row of the generic format (columns in `GENERIC_COLUMNS`) as a `Delivery`."""
    order_time = _aware(row, "order_time", required=True)
    delivered_at = _aware(row, "delivered_at", required=True)
    assert order_time is not None and delivered_at is not None
    origin_country = _country(row, "origin_country")
    dest_country = _country(row, "dest_country")
    origin_subdivision = _text(row, "origin_subdivision")
    dest_subdivision = _text(row, "dest_subdivision")
    origin_tz = _text(row, "origin_tz")
    dest_tz = _text(row, "dest_tz")
    return _check_order(
        Delivery(
            key=_text(row, "id") or _generic_key(row),
            order_time=order_time,
            handoff_time=_aware(row, "handoff_time", required=False),
            delivered_at=delivered_at,
            origin_country=origin_country,
            origin_subdivision=origin_subdivision,
            origin_postal_code=_text(row, "origin_postal_code"),
            dest_country=dest_country,
            dest_subdivision=dest_subdivision,
            dest_postal_code=_text(row, "dest_postal_code"),
            carrier=_text(row, "carrier"),
            service=_text(row, "service"),
            promised_date=_date(row, "promised_date"),
            origin_id=_text(row, "origin_id"),
            origin_tz=check_zone(origin_tz)
            if origin_tz
            else zone_for(origin_country, origin_subdivision),
            dest_tz=check_zone(dest_tz) if dest_tz else zone_for(dest_country, dest_subdivision),
            origin_lat=_coordinate(row, "origin_lat", 90),
            origin_lng=_coordinate(row, "origin_lng", 180),
            dest_lat=_coordinate(row, "dest_lat", 90),
            dest_lng=_coordinate(row, "dest_lng", 180),
        )
    )


_PARSERS = {"generic": parse_generic, "olist": parse_olist}


def parse_row(fmt: str, row: dict[str, str]) -> Delivery:
    """One CSV row of format `fmt` as a `Delivery` (aware UTC instants), or `RowInvalid`."""
    try:
        parser = _PARSERS[fmt]
    except KeyError:
        raise HistoryFileError(
            f"unknown history format {fmt!r}: use one of {', '.join(FORMATS)}"
        ) from None
    return parser(row)


# -- files ---------------------------------------------------------------------------------------


def parse_lines(fmt: str, lines: Iterable[str]) -> Iterator[RowOutcome]:
    """Every data row of a CSV text, numbered by its line in the file, parsed or rejected.

    The header is checked at once, before any row is asked for: without the format's required
    columns this raises `HistoryFileError`. A key seen earlier in the same file is rejected,
    naming the line that had it first.
    """
    if fmt not in _PARSERS:
        raise HistoryFileError(f"unknown history format {fmt!r}: use one of {', '.join(FORMATS)}")
    reader = csv.reader(iter(lines))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise HistoryFileError(f"line 1: not valid CSV: {exc}") from None
    if header is None:
        raise HistoryFileError("the file is empty: expected a CSV header line")
    columns = [name.strip().lstrip("\ufeff") for name in header]
    missing = [name for name in _REQUIRED_COLUMNS[fmt] if name not in columns]
    if missing:
        shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
        raise HistoryFileError(
            f"not a {fmt} history file: missing column(s) {', '.join(missing)} "
            f"(its header has {shown or 'nothing'})"
        )
    return _rows(_PARSERS[fmt], reader, columns)


def _rows(
    parser: Callable[[dict[str, str]], Delivery], reader: Any, columns: list[str]
) -> Iterator[RowOutcome]:
    width = len(columns)
    first_seen: dict[str, int] = {}
    start = reader.line_num + 1
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            if len(fields) != width:
                yield line, RowError(f"{len(fields)} fields, but the header has {width}")
                continue
            try:
                delivery = parser(dict(zip(columns, fields, strict=True)))
            except RowInvalid as exc:
                yield line, RowError(str(exc))
                continue
            earlier = first_seen.setdefault(delivery.key, line)
            if earlier != line:
                yield line, RowError(f"duplicate id {delivery.key!r} (first on line {earlier})")
                continue
            yield line, delivery
    except csv.Error as exc:
        raise HistoryFileError(f"line {reader.line_num}: not valid CSV: {exc}") from None


_GZIP_MAGIC = b"\x1f\x8b"


def open_history(path: Path | str) -> io.TextIOWrapper:
    """A text stream over a history file, gunzipped when it starts with the gzip magic bytes."""
    path = Path(path)
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
        raw = gzip.open(path, "rb") if magic == _GZIP_MAGIC else path.open("rb")
    except FileNotFoundError:
        raise HistoryFileError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise HistoryFileError(f"{path} is a directory, not a history file") from None
    except OSError as exc:
        raise HistoryFileError(f"cannot open {path}: {exc.strerror or exc}") from None
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def read_deliveries(path: Path | str, fmt: str) -> Iterator[RowOutcome]:
    """Stream a `generic` or `olist` history file (`.csv` or `.csv.gz`) as numbered outcomes.

    Raises `HistoryFileError` (a message for a person, never a traceback) when the file is
    missing, unreadable, corrupt or not of the format: at once for the name, the format and the
    header, while iterating for damage further in. Bad rows are outcomes, not exceptions.
    """
    if fmt not in _PARSERS:
        raise HistoryFileError(f"unknown history format {fmt!r}: use one of {', '.join(FORMATS)}")
    stream = open_history(path)
    try:
        with _readable(path):
            rows = parse_lines(fmt, stream)
    except BaseException:
        stream.close()
        raise
    return _closing(rows, stream, path)


@contextmanager
def _readable(path: Path | str) -> Iterator[None]:
    """Turn the ways reading bytes can fail into `HistoryFileError`."""
    try:
        yield
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise HistoryFileError(f"{path}: cannot read the file: {exc}") from None
    except UnicodeDecodeError as exc:
        raise HistoryFileError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _closing(
    rows: Iterator[RowOutcome], stream: io.TextIOWrapper, path: Path | str
) -> Iterator[RowOutcome]:
    with stream, _readable(path):
        yield from rows


def count_lines(path: Path | str) -> int:
    """Physical lines in a history file (header included), for a progress bar's total."""
    try:
        with open_history(path) as stream:
            return sum(1 for _ in stream)
    except (OSError, EOFError, UnicodeDecodeError):
        return 0  # reading it for real will report what is wrong
