"""Tracking-number detection: which carriers and formats a number matches, check digit included.

The formats come from the vendored jkeen/tracking_number_data 2.0.0 files in
`data/tracking_numbers/` (MIT, see the LICENSE beside them); the check-digit algorithms are
written here from the published rules. The simulated carrier's own format is added in code.
Pure: no I/O except reading the packaged JSON once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from tracking_service.carriers.base import normalize_number
from tracking_service.carriers.sim import number as sim_number

COURIER_FILES = ("ups", "fedex", "usps", "dhl", "s10")
DATA_PACKAGE = "tracking_service.carriers"
DATA_DIR = ("data", "tracking_numbers")

# `(?<Name>` is PCRE/Ruby; Python wants `(?P<Name>`. Lookbehinds `(?<=`, `(?<!` stay as they are.
_PCRE_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")


class CheckDigit(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    NOT_APPLICABLE = "not_applicable"  # the format has no check digit


@dataclass(frozen=True, slots=True)
class NumberMatch:
    """One format a number matches. `valid` = check digit right (or none) and lookups satisfied."""

    carrier: str  # ups | fedex | usps | dhl | s10 | simulated
    format_id: str
    format_name: str
    check_digit: CheckDigit
    valid: bool
    number: str  # the input without whitespace, upper-cased
    tracking_number: str  # what the carrier tracks (USPS routing prefix 420+ZIP dropped)
    tracking_url: str | None
    details: tuple[tuple[str, str], ...] = ()  # e.g. ("Service Type", "UPS Ground")
    problem: str | None = None  # why `valid` is False

    def as_json(self) -> dict[str, Any]:
        return {
            "carrier": self.carrier,
            "format_id": self.format_id,
            "format_name": self.format_name,
            "check_digit": self.check_digit.value,
            "valid": self.valid,
            "tracking_number": self.tracking_number,
            "tracking_url": self.tracking_url,
            "details": dict(self.details),
            "problem": self.problem,
        }


@dataclass(frozen=True, slots=True)
class Lookup:
    name: str
    group: str
    entries: tuple[tuple[str | None, re.Pattern[str] | None, str], ...]  # exact, regex, label

    def find(self, value: str) -> str | None:
        for exact, pattern, label in self.entries:
            if exact is not None and exact == value:
                return label
            if pattern is not None and pattern.fullmatch(value):
                return label
        return None


@dataclass(frozen=True, slots=True)
class Format:
    carrier: str
    id: str
    name: str
    pattern: re.Pattern[str]
    checksum: Mapping[str, Any] | None
    prepend_if: tuple[re.Pattern[str], str] | None
    lookups: tuple[Lookup, ...]
    required_lookups: tuple[str, ...]
    tracking_url: str | None
    valid_examples: tuple[str, ...]
    invalid_examples: tuple[str, ...]


# ---------------------------------------------------------------- check-digit algorithms


def _digit_value(char: str) -> int:
    """Digits count as themselves, letters as (ord(c) - 3) % 10 (the UPS rule)."""
    return int(char) if char.isdigit() else (ord(char) - 3) % 10


def mod10(
    serial: str, check: str, *, evens_multiplier: int, odds_multiplier: int, reverse: bool
) -> bool:
    """Weighted sum: even 0-based indexes get `evens_multiplier`, odd ones `odds_multiplier`."""
    chars = serial[::-1] if reverse else serial
    total = 0
    for index, char in enumerate(chars):
        weight = odds_multiplier if index % 2 else evens_multiplier
        total += _digit_value(char) * weight
    return (10 - total % 10) % 10 == int(check)


def mod7(serial: str, check: str) -> bool:
    return int(serial) % 7 == int(check)


def s10(serial: str, check: str, *, weightings: Sequence[int], modulo: int = 11) -> bool:
    """UPU S10: r = sum mod 11; check = 11 - r, with 10 -> 0 and 11 -> 5."""
    total = sum(int(c) * w for c, w in zip(serial, weightings, strict=True))
    expected = modulo - total % modulo
    if expected == 10:
        expected = 0
    elif expected == 11:
        expected = 5
    return expected == int(check)


def sum_product_with_weightings_and_modulo(
    serial: str, check: str, *, weightings: Sequence[int], modulo1: int, modulo2: int
) -> bool:
    total = sum(int(c) * w for c, w in zip(serial, weightings, strict=True))
    return total % modulo1 % modulo2 == int(check)


def _run_checksum(spec: Mapping[str, Any], serial: str, check: str) -> bool:
    name = spec["name"]
    if name == "mod10":
        return mod10(
            serial,
            check,
            evens_multiplier=int(spec.get("evens_multiplier", 1)),
            odds_multiplier=int(spec.get("odds_multiplier", 1)),
            reverse=bool(spec.get("reverse", False)),
        )
    if name == "mod7":
        return mod7(serial, check)
    if name == "s10":
        return s10(serial, check, weightings=spec["weightings"], modulo=int(spec["modulo"]))
    if name == "sum_product_with_weightings_and_modulo":
        return sum_product_with_weightings_and_modulo(
            serial,
            check,
            weightings=spec["weightings"],
            modulo1=int(spec["modulo1"]),
            modulo2=int(spec["modulo2"]),
        )
    raise ValueError(f"unknown checksum algorithm {name!r}")


# ---------------------------------------------------------------- loading the data set


def pcre_to_python(regex: str | Sequence[str]) -> str:
    text = regex if isinstance(regex, str) else "".join(regex)
    return _PCRE_NAMED_GROUP.sub("(?P<", text)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _lookups(entries: Sequence[Mapping[str, Any]]) -> tuple[Lookup, ...]:
    lookups = []
    for entry in entries:
        rows = []
        for row in entry.get("lookup", []):
            label = row.get("name") or row.get("courier") or row.get("matches") or ""
            pattern = re.compile(row["matches_regex"]) if "matches_regex" in row else None
            rows.append((row.get("matches"), pattern, str(label)))
        lookups.append(Lookup(entry["name"], entry["regex_group_name"], tuple(rows)))
    return tuple(lookups)


def _format(carrier: str, raw: Mapping[str, Any]) -> Format:
    validation = raw.get("validation") or {}
    prepend = (validation.get("serial_number_format") or {}).get("prepend_if")
    return Format(
        carrier=carrier,
        # "UPS Waybill" ships without an id in 2.0.0; derive the documented one from its name.
        id=raw.get("id") or _slug(raw["name"]),
        name=raw["name"],
        pattern=re.compile(pcre_to_python(raw["regex"])),
        checksum=validation.get("checksum"),
        prepend_if=(re.compile(prepend["matches_regex"]), prepend["content"]) if prepend else None,
        lookups=_lookups(raw.get("additional") or []),
        required_lookups=tuple((validation.get("additional") or {}).get("exists", [])),
        tracking_url=raw.get("tracking_url"),
        valid_examples=tuple(raw.get("test_numbers", {}).get("valid", [])),
        invalid_examples=tuple(raw.get("test_numbers", {}).get("invalid", [])),
    )


def load_courier_file(name: str) -> dict[str, Any]:
    path = resources.files(DATA_PACKAGE).joinpath(*DATA_DIR, f"{name}.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


SIMULATED_FORMAT_ID = "simulated"


def _simulated_format() -> Format:
    return Format(
        carrier="simulated",
        id=SIMULATED_FORMAT_ID,
        name="Simulated carrier",
        pattern=sim_number.NUMBER_RE,
        checksum=None,  # checked by sim_number.check_digit_ok
        prepend_if=None,
        lookups=(),
        required_lookups=(),
        tracking_url=None,
        valid_examples=(),
        invalid_examples=(),
    )


@cache
def formats() -> tuple[Format, ...]:
    """Every known format, loaded once."""
    loaded: list[Format] = []
    for name in COURIER_FILES:
        data = load_courier_file(name)
        carrier = data["courier_code"]
        loaded.extend(_format(carrier, raw) for raw in data["tracking_numbers"])
    loaded.append(_simulated_format())
    return tuple(loaded)


@cache
def format_by_id(format_id: str) -> Format:
    for fmt in formats():
        if fmt.id == format_id:
            return fmt
    raise KeyError(format_id)


def carriers() -> tuple[str, ...]:
    return tuple(dict.fromkeys(fmt.carrier for fmt in formats()))


# ---------------------------------------------------------------- matching


# The one normalizer, under the name the `detect` command has always used.
compact = normalize_number


def match_format(number: str, fmt: Format) -> NumberMatch | None:
    """The match of `number` against one format, or None when its pattern does not fit."""
    text = compact(number)
    found = fmt.pattern.fullmatch(text)
    if found is None:
        return None
    groups = found.groupdict()
    tracking_number = text
    if groups.get("RoutingApplicationId"):
        tracking_number = text[found.start("SerialNumber") :]

    problem: str | None = None
    if fmt.carrier == "simulated":
        ok = sim_number.check_digit_ok(text)
        check = CheckDigit.VALID if ok else CheckDigit.INVALID
        if sim_number.Scenario.from_digit(int(groups["Scenario"])) is None:
            problem = "unknown scenario digit"
    elif fmt.checksum:
        serial = groups["SerialNumber"]
        if fmt.prepend_if is not None and fmt.prepend_if[0].search(serial):
            serial = fmt.prepend_if[1] + serial
        ok = _run_checksum(fmt.checksum, serial, groups["CheckDigit"])
        check = CheckDigit.VALID if ok else CheckDigit.INVALID
    else:
        check = CheckDigit.NOT_APPLICABLE
    if check is CheckDigit.INVALID:
        problem = "check digit does not match"

    details: list[tuple[str, str]] = []
    for lookup in fmt.lookups:
        value = groups.get(lookup.group)
        label = lookup.find(value) if value is not None else None
        if label is not None:
            details.append((lookup.name, label))
        elif lookup.name in fmt.required_lookups and problem is None:
            problem = f"unknown {lookup.name.lower()} {value!r}"

    return NumberMatch(
        carrier=fmt.carrier,
        format_id=fmt.id,
        format_name=fmt.name,
        check_digit=check,
        valid=problem is None,
        number=text,
        tracking_number=tracking_number,
        tracking_url=fmt.tracking_url % tracking_number if fmt.tracking_url else None,
        details=tuple(details),
        problem=problem,
    )


_CHECK_RANK = {CheckDigit.VALID: 0, CheckDigit.NOT_APPLICABLE: 1, CheckDigit.INVALID: 2}


def detect(number: str, *, prefer: str | None = None) -> list[NumberMatch]:
    """Every format the number fits, best first.

    Order: valid before invalid; a verified check digit before a format without one; then the
    `prefer`red carrier (the one the caller declared); then the format whose coded fields
    (service type, application identifier...) name more known values; then the data set's order.
    """
    matches = [m for fmt in formats() if (m := match_format(number, fmt)) is not None]
    return sorted(
        matches,
        key=lambda m: (
            not m.valid,
            _CHECK_RANK[m.check_digit],
            m.carrier != prefer,
            -len(m.details),
        ),
    )


def is_valid(number: str, carrier: str | None = None) -> bool:
    """True when some format (of `carrier`, if given) matches with a right check digit."""
    return any(m.valid and (carrier is None or m.carrier == carrier) for m in detect(number))
