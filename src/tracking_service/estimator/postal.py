"""Countries and postal codes: validate, normalize, and derive the state from the code.

US ZIP codes and Brazilian CEPs map to a state by range, so a destination's state holidays
apply even when the request names no subdivision. Other countries get a permissive pattern.

Input is NFKC-normalized before it is validated: full-width digits and letters (U+FF10 to
U+FF19, U+FF21 to U+FF3A, as East Asian keyboards type them) are the ASCII ones, so they match
the same zones and are echoed in ASCII. Patterns are ASCII-only: other digits (Arabic-Indic,
...) are refused.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

import pycountry


class PostalError(ValueError):
    """A country, postal code or subdivision that does not fit; `field` names which one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@lru_cache(maxsize=512)
def is_country(code: str) -> bool:
    """True for a real ISO 3166-1 alpha-2 code (upper case)."""
    return len(code) == 2 and code.isalpha() and pycountry.countries.get(alpha_2=code) is not None


@lru_cache(maxsize=512)
def subdivisions_of(country: str) -> frozenset[str]:
    """ISO 3166-2 subdivision codes of a country without the country prefix (`NY`, `SP`)."""
    subs = pycountry.subdivisions.get(country_code=country) or []  # type: ignore[no-untyped-call]
    return frozenset(s.code.split("-", 1)[1] for s in subs)


def _fold(raw: str) -> str:
    """Compatibility forms folded (NFKC: full-width to ASCII), trimmed, upper case."""
    return unicodedata.normalize("NFKC", raw).strip().upper()


def normalize_country(raw: str) -> str:
    code = _fold(raw)
    if not is_country(code):
        raise PostalError("country", f"{raw!r} is not an ISO 3166-1 alpha-2 country code")
    return code


_US = re.compile(r"^(\d{5})(?:[- ]?(\d{4}))?$", re.ASCII)
_BR = re.compile(r"^(\d{5})-?(\d{3})$", re.ASCII)
_ANY = re.compile(r"^[A-Z0-9](?:[A-Z0-9 -]{0,10}[A-Z0-9])?$")


@dataclass(frozen=True, slots=True)
class PostalCode:
    """A normalized postal code: `display` as customers write it, `key` for prefix matching."""

    country: str
    display: str
    key: str


def normalize_postal_code(country: str, raw: str) -> PostalCode:
    """Validate a postal code for its country; raise PostalError("postal_code", ...)."""
    text = _fold(raw)
    if country == "US":
        m = _US.match(text)
        if not m:
            raise PostalError("postal_code", f"{raw!r} is not a US ZIP code (12345 or 12345-6789)")
        display = m.group(1) + (f"-{m.group(2)}" if m.group(2) else "")
        return PostalCode(country, display, display.replace("-", ""))
    if country == "BR":
        m = _BR.match(text)
        if not m:
            raise PostalError("postal_code", f"{raw!r} is not a Brazilian CEP (01310-100)")
        return PostalCode(country, f"{m.group(1)}-{m.group(2)}", m.group(1) + m.group(2))
    if not _ANY.match(text):
        raise PostalError("postal_code", f"{raw!r} is not a postal code for {country}")
    return PostalCode(country, text, text.replace(" ", "").replace("-", ""))


# US: first three ZIP digits -> state, as (first ZIP3 of a range, state); None = not a state.
_US_ZIP3: tuple[tuple[int, str | None], ...] = (
    (0, None), (5, "NY"), (6, "PR"), (8, "VI"), (9, "PR"), (10, "MA"), (28, "RI"), (30, "NH"),
    (39, "ME"), (50, "VT"), (55, "MA"), (56, "VT"), (60, "CT"), (70, "NJ"), (90, None),
    (100, "NY"), (150, "PA"), (197, "DE"), (200, "DC"), (201, "VA"), (202, "DC"), (206, "MD"),
    (220, "VA"), (247, "WV"), (269, None), (270, "NC"), (290, "SC"), (300, "GA"), (320, "FL"),
    (340, None), (341, "FL"), (350, "AL"), (370, "TN"), (386, "MS"), (398, "GA"), (400, "KY"),
    (428, None), (430, "OH"), (460, "IN"), (480, "MI"), (500, "IA"), (529, None), (530, "WI"),
    (550, "MN"), (568, None), (569, "DC"), (570, "SD"), (578, None), (580, "ND"), (589, None),
    (590, "MT"), (600, "IL"), (630, "MO"), (659, None), (660, "KS"), (680, "NE"), (694, None),
    (700, "LA"), (715, None), (716, "AR"), (730, "OK"), (733, "TX"), (734, "OK"), (750, "TX"),
    (800, "CO"), (817, None), (820, "WY"), (832, "ID"), (839, None), (840, "UT"), (848, None),
    (850, "AZ"), (866, None), (870, "NM"), (885, "TX"), (886, None), (889, "NV"), (899, None),
    (900, "CA"), (962, None), (967, "HI"), (969, "GU"), (970, "OR"), (980, "WA"), (995, "AK"),
)  # fmt: skip
_US_ZIP5_EXCEPTIONS = {"96799": "AS", "96950": "MP", "96951": "MP", "96952": "MP"}

# Brazil: first five CEP digits -> state, as (first CEP5 of a range, state).
_BR_CEP5: tuple[tuple[int, str | None], ...] = (
    (0, None), (1000, "SP"), (20000, "RJ"), (29000, "ES"), (30000, "MG"), (40000, "BA"),
    (49000, "SE"), (50000, "PE"), (57000, "AL"), (58000, "PB"), (59000, "RN"), (60000, "CE"),
    (64000, "PI"), (65000, "MA"), (66000, "PA"), (68900, "AP"), (69000, "AM"), (69300, "RR"),
    (69400, "AM"), (69900, "AC"), (70000, "DF"), (72800, "GO"), (73000, "DF"), (73700, "GO"),
    (76800, "RO"), (77000, "TO"), (78000, "MT"), (78900, "RO"), (79000, "MS"), (80000, "PR"),
    (88000, "SC"), (90000, "RS"),
)  # fmt: skip


_US_ZIP3_STARTS = tuple(start for start, _ in _US_ZIP3)
_BR_CEP5_STARTS = tuple(start for start, _ in _BR_CEP5)


def _lookup(
    table: tuple[tuple[int, str | None], ...], starts: tuple[int, ...], value: int
) -> str | None:
    """The entry of a range table (`starts` are its first column, precomputed) holding value."""
    return table[bisect_right(starts, value) - 1][1]


def subdivision_from_postal(code: PostalCode) -> str | None:
    """The state a US ZIP or Brazilian CEP belongs to; None when unknown or not a state."""
    if code.country == "US":
        if code.key[:5] in _US_ZIP5_EXCEPTIONS:
            return _US_ZIP5_EXCEPTIONS[code.key[:5]]
        return _lookup(_US_ZIP3, _US_ZIP3_STARTS, int(code.key[:3]))
    if code.country == "BR":
        return _lookup(_BR_CEP5, _BR_CEP5_STARTS, int(code.key[:5]))
    return None


def resolve_subdivision(code: PostalCode, given: str | None) -> str | None:
    """The destination's subdivision: the given one (checked) or the one the code implies.

    A given subdivision must exist in the country and agree with the postal code when the code
    implies one; a contradiction is the caller's error, not something to guess around.
    """
    derived = subdivision_from_postal(code)
    if given is None:
        return derived
    sub = _fold(given).removeprefix(f"{code.country}-")
    known = subdivisions_of(code.country)
    if known and sub not in known:
        raise PostalError("subdivision", f"{given!r} is not a subdivision of {code.country}")
    if derived is not None and sub != derived:
        raise PostalError(
            "subdivision",
            f"{given!r} contradicts postal code {code.display}, which is in {derived}",
        )
    return sub
