"""The shop's rules file: origins, zones and shipping options, validated into pydantic models.

The file is TOML (read with `tomllib`). Its layout:

```toml
name = "Example Shop US"                  # optional, shown by `check-rules`

[[origins]]                               # one or more warehouses; the first is the default
id = "nyc"                                # referenced by requests ("origin") and options
name = "Queens warehouse"                 # optional
country = "US"                            # ISO 3166-1 alpha-2
subdivision = "NY"                        # ISO 3166-2 code without the country prefix
postal_code = "11101"
time_zone = "America/New_York"            # IANA zone: the cutoff is read on this clock
cutoff = 14:00:00                         # orders at or after this local time ship a day later
handling_days = 1                         # business days between processing and hand-over
working_weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri"]

[origins.holidays]                        # the warehouse's closed days
country = "US"                            # calendar of the `holidays` package (default: the
subdivision = "NY"                        #   origin's own country and subdivision)
categories = ["public"]                   # `holidays` categories counted (default public)
open_on = ["Lincoln's Birthday"]          # holidays of those categories it works anyway
closed_on = []                            # holidays of other categories it closes on
closed_dates = [2026-01-02, { date = 2026-07-03, reason = "stock-taking" }]

[[zones]]                                 # destinations; the most specific match wins per option
id = "nyc"
name = "New York City"                    # optional
country = "US"
subdivisions = ["NY"]                     # optional: states (ISO 3166-2, no prefix)
postal_prefixes = ["100", "112"]          # optional: postal-code prefixes (digits/letters)

[[shipping_options]]
code = "next_day"                         # what requests use in "options"
name = "Next-day express"
carrier = "ups"
service = "Next Day Air"
price = "24.90"                           # decimal as a string, in `currency` (ISO 4217)
currency = "USD"
confidence = 0.9                          # stated probability of the window, in (0, 1)
cutoff = 12:00:00                         # optional: overrides the origin's cutoff
handling_days = 0                         # optional: overrides the origin's handling days
origins = ["nyc"]                         # optional: origins offering it (default all)
delivery_weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]

[shipping_options.holidays]               # the carrier's non-delivery days at the destination,
categories = ["public"]                   #   beyond the destination's national and state
open_on = ["Columbus Day"]                #   public holidays: holidays it delivers anyway,
closed_on = []                            #   holidays of other categories it does not,
closed_dates = [2025-12-24]               #   and explicit dates

[[shipping_options.transit]]              # the zones it serves, with transit business days
zone = "northeast"                        # (delivery days of the carrier at the destination
min = 1                                   #  after the ship date; 0 = delivered the day it
max = 2                                   #  ships)

[shipping_options.history]                # optional: which delivery records it learns from
carrier = "ups"                           # default: the option's own carrier
service = "Next Day Air"                  # default: the option's own service
learn_from_unlabelled = false             # also records with no carrier and no service
```

Delivery history (`import-history`, delivered shipments) teaches an option its real handling
and transit days only from records that match it: by default a record whose carrier AND
service equal the option's (case and surrounding spaces ignored), so an express option never
learns from economy parcels. `history.carrier`/`history.service` point an option at records
labelled differently (an old contract name). `learn_from_unlabelled = true` also takes records
that say neither carrier nor service, like the Olist data set (`import-history --format
olist`): at most ONE option may set it, since an unlabelled parcel cannot tell which service
carried it. An option with no matching records is estimated from its rules alone.

Dates are TOML dates (`2026-01-02`), times TOML times (`14:00:00`) or strings (`"14:00"`).
Holiday names are the English names of the `holidays` package (`check-rules` refuses unknown
ones). A file with an error raises `RulesError` naming the file, the key path
(`shipping_options[2].transit[0].max`) and what is wrong.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pycountry
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from tracking_service.estimator.calendar import (
    WEEKDAY_NAMES,
    holiday_categories,
    known_holiday_names,
    supported_holiday_countries,
)
from tracking_service.estimator.postal import is_country, subdivisions_of


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file, key path and problem."""

    def __init__(self, path: Path | str, problems: list[tuple[str, str]]) -> None:
        self.path = str(path)
        self.problems = problems
        lines = [f"{key}: {msg}" if key else msg for key, msg in problems]
        if len(lines) == 1:
            message = f"{self.path}: {lines[0]}"
        else:
            message = f"{self.path}: {len(lines)} problems\n" + "\n".join(f"  {x}" for x in lines)
        super().__init__(message)


# --- field types ------------------------------------------------------------------------------

_WEEKDAYS = {name.lower(): i for i, name in enumerate(WEEKDAY_NAMES)}
_WEEKDAYS.update(
    {
        full: i
        for i, full in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    }
)


def _weekday(value: Any) -> int:
    if isinstance(value, str) and value.strip().lower() in _WEEKDAYS:
        return _WEEKDAYS[value.strip().lower()]
    raise ValueError(f"{value!r} is not a weekday (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")


def _country(value: Any) -> str:
    if isinstance(value, str) and is_country(value.strip().upper()):
        return value.strip().upper()
    raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")


def _time_zone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be an IANA time zone name such as America/New_York")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known IANA time zone") from None
    return value


def _currency(value: Any) -> str:
    if isinstance(value, str) and pycountry.currencies.get(alpha_3=value.upper()) is not None:
        return value.upper()
    raise ValueError(f"{value!r} is not an ISO 4217 currency code")


def _price(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError('write prices as strings ("12.90") to keep them exact')
    return value


def _closed_day(value: Any) -> Any:
    if isinstance(value, str) or (isinstance(value, date) and not isinstance(value, datetime)):
        return {"date": value}
    return value


Weekday = Annotated[int, BeforeValidator(_weekday)]
Country = Annotated[str, BeforeValidator(_country)]
TimeZoneName = Annotated[str, BeforeValidator(_time_zone)]
Currency = Annotated[str, BeforeValidator(_currency)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
BusinessDays = Annotated[int, Field(ge=0, le=90)]
MON_TO_FRI = (0, 1, 2, 3, 4)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClosedDay(_Model):
    """A date a warehouse or carrier does not work, with the reason shown in explanations."""

    date: date
    reason: str = "closed"


ClosedDayInput = Annotated[ClosedDay, BeforeValidator(_closed_day)]


class HolidayRules(_Model):
    """Holiday adjustments: categories counted, exceptions by name, explicit closed dates."""

    categories: tuple[str, ...] = ("public",)
    open_on: tuple[str, ...] = ()
    closed_on: tuple[str, ...] = ()
    closed_dates: tuple[ClosedDayInput, ...] = ()


class OriginHolidays(HolidayRules):
    """The warehouse's holiday calendar; country/subdivision default to the origin's own."""

    country: Country | None = None
    subdivision: str | None = None


class Origin(_Model):
    id: Identifier
    name: str | None = None
    country: Country
    subdivision: str | None = None
    postal_code: str
    time_zone: TimeZoneName
    cutoff: time
    handling_days: BusinessDays = 1
    working_weekdays: tuple[Weekday, ...] = Field(default=MON_TO_FRI, min_length=1)
    holidays: OriginHolidays = OriginHolidays()

    @property
    def holiday_country(self) -> str:
        return self.holidays.country or self.country

    @property
    def holiday_subdivision(self) -> str | None:
        if self.holidays.country is None:
            return self.holidays.subdivision or self.subdivision
        return self.holidays.subdivision


class Zone(_Model):
    id: Identifier
    name: str | None = None
    country: Country
    subdivisions: tuple[str, ...] = ()
    postal_prefixes: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,10}$")], ...] = ()

    @field_validator("subdivisions")
    @classmethod
    def _known_subdivisions(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        country = info.data.get("country")
        if country:
            known = subdivisions_of(country)
            bad = [s for s in value if s.upper() not in known]
            if bad:
                raise ValueError(f"not subdivisions of {country}: {', '.join(bad)}")
        return tuple(s.upper() for s in value)

    @property
    def specificity(self) -> int:
        """Postal prefixes beat states beat a whole country; longer prefixes beat shorter."""
        if self.postal_prefixes:
            return 2
        return 1 if self.subdivisions else 0


class Transit(_Model):
    zone: str
    min: BusinessDays
    max: BusinessDays

    @field_validator("max")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min")
        if low is not None and value < low:
            raise ValueError(f"max ({value}) is less than min ({low})")
        return value


HistoryLabel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class OptionHistory(_Model):
    """Which delivery records teach an option (see the module docstring)."""

    carrier: HistoryLabel | None = None  # default: the option's carrier
    service: HistoryLabel | None = None  # default: the option's service
    learn_from_unlabelled: StrictBool = False


class ShippingOption(_Model):
    code: Identifier
    name: str
    carrier: str
    service: str
    price: Annotated[Decimal, BeforeValidator(_price), Field(ge=0, max_digits=12)]
    currency: Currency
    confidence: float = Field(gt=0, lt=1)
    cutoff: time | None = None
    handling_days: BusinessDays | None = None
    origins: tuple[str, ...] | None = None
    delivery_weekdays: tuple[Weekday, ...] = Field(default=MON_TO_FRI, min_length=1)
    holidays: HolidayRules = HolidayRules()
    transit: tuple[Transit, ...] = Field(min_length=1)
    history: OptionHistory = OptionHistory()

    @property
    def history_label(self) -> tuple[str, str]:
        """(carrier, service) of the delivery records this option learns from, casefolded."""
        carrier = self.history.carrier or self.carrier
        service = self.history.service or self.service
        return carrier.strip().casefold(), service.strip().casefold()


class Rules(_Model):
    name: str | None = None
    origins: tuple[Origin, ...] = Field(min_length=1)
    zones: tuple[Zone, ...] = Field(min_length=1)
    shipping_options: tuple[ShippingOption, ...] = Field(min_length=1)

    def origin(self, origin_id: str | None) -> Origin | None:
        if origin_id is None:
            return self.origins[0]
        return next((o for o in self.origins if o.id == origin_id), None)

    def zone(self, zone_id: str) -> Zone:
        return next(z for z in self.zones if z.id == zone_id)


# --- loading ----------------------------------------------------------------------------------


def key_path(loc: Iterable[Any]) -> str:
    """('shipping_options', 2, 'transit', 0, 'min') -> 'shipping_options[2].transit[0].min'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith("function-"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _pydantic_problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    errors = exc.errors(include_url=False)
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "too_short" and any(
            len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors
        ):
            continue  # pydantic adds this after a bad element; the element's error says it all
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        problems.append((key_path(err["loc"]), msg))
    return problems


def _years_around_today() -> range:
    this = date.today().year
    return range(this - 1, this + 3)


def _check_holidays(
    spec: HolidayRules, where: str, places: list[tuple[str, str | None]]
) -> list[tuple[str, str]]:
    """Categories and holiday names must exist for at least one of the places they apply to."""
    problems: list[tuple[str, str]] = []
    countries = {c for c, _ in places}
    cats = {cat for c in countries for cat in holiday_categories(c)}
    for i, cat in enumerate(spec.categories):
        if cats and cat not in cats:
            problems.append(
                (f"{where}.categories[{i}]", f"unknown category {cat!r}; known: {sorted(cats)}")
            )
    if spec.open_on or spec.closed_on:
        names: set[str] = set()
        for country, sub in places:
            names |= known_holiday_names(country, sub, _years_around_today())
        for key in ("open_on", "closed_on"):
            for i, name in enumerate(getattr(spec, key)):
                if name not in names:
                    problems.append(
                        (
                            f"{where}.{key}[{i}]",
                            f"unknown holiday name {name!r} for {_places(places)}",
                        )
                    )
    return problems


def _places(places: list[tuple[str, str | None]]) -> str:
    return ", ".join(sorted({f"{c}-{s}" if s else c for c, s in places}))


def _duplicates(values: Iterable[str]) -> list[tuple[int, str]]:
    seen: set[str] = set()
    out = []
    for i, v in enumerate(values):
        if v in seen:
            out.append((i, v))
        seen.add(v)
    return out


def cross_check(rules: Rules) -> list[tuple[str, str]]:
    """Checks that span several keys: references, duplicates, holiday calendars."""
    problems: list[tuple[str, str]] = []
    supported = supported_holiday_countries()
    for what, items in (
        ("origins", [o.id for o in rules.origins]),
        ("zones", [z.id for z in rules.zones]),
        ("shipping_options", [s.code for s in rules.shipping_options]),
    ):
        field = "code" if what == "shipping_options" else "id"
        for i, v in _duplicates(items):
            problems.append((f"{what}[{i}].{field}", f"duplicate {field} {v!r}"))

    for i, origin in enumerate(rules.origins):
        where = f"origins[{i}]"
        if origin.subdivision and origin.subdivision not in subdivisions_of(origin.country):
            problems.append(
                (f"{where}.subdivision", f"{origin.subdivision!r} is not a subdivision of "
                 f"{origin.country}")
            )  # fmt: skip
        country, sub = origin.holiday_country, origin.holiday_subdivision
        if country not in supported:
            problems.append(
                (f"{where}.holidays.country", f"the holidays package has no calendar for {country}")
            )
            continue
        if sub is not None and sub not in supported[country]:
            problems.append(
                (f"{where}.holidays.subdivision", f"the holidays package has no subdivision "
                 f"{sub!r} for {country}; known: {', '.join(supported[country])}")
            )  # fmt: skip
            continue
        problems += _check_holidays(origin.holidays, f"{where}.holidays", [(country, sub)])

    zones = {z.id: z for z in rules.zones}
    origin_ids = {o.id for o in rules.origins}
    for i, option in enumerate(rules.shipping_options):
        where = f"shipping_options[{i}]"
        for j, ref in enumerate(option.origins or ()):
            if ref not in origin_ids:
                problems.append((f"{where}.origins[{j}]", f"unknown origin {ref!r}"))
        for j, _ in _duplicates(t.zone for t in option.transit):
            problems.append((f"{where}.transit[{j}].zone", "zone listed twice"))
        places: set[tuple[str, str | None]] = set()
        for j, entry in enumerate(option.transit):
            zone = zones.get(entry.zone)
            if zone is None:
                problems.append(
                    (f"{where}.transit[{j}].zone", f"unknown zone {entry.zone!r}; known: "
                     f"{', '.join(zones)}")
                )  # fmt: skip
                continue
            if zone.country in supported:
                places.add((zone.country, None))
                places.update((zone.country, s) for s in zone.subdivisions)
        if places:
            problems += _check_holidays(
                option.holidays, f"{where}.holidays", sorted(places, key=str)
            )
    problems += _check_unlabelled(rules)
    return problems


def _check_unlabelled(rules: Rules) -> list[tuple[str, str]]:
    """At most one option learns from records without carrier and service."""
    takers = [i for i, o in enumerate(rules.shipping_options) if o.history.learn_from_unlabelled]
    first = takers[0] if takers else None
    return [
        (
            f"shipping_options[{i}].history.learn_from_unlabelled",
            f"only one shipping option may learn from unlabelled records and "
            f"shipping_options[{first}] ({rules.shipping_options[first].code!r}) already does: "
            "a record without carrier and service cannot tell which service carried it",
        )
        for i in takers[1:]
        if first is not None
    ]


def parse_rules(data: dict[str, Any], path: Path | str = "<rules>") -> Rules:
    """Validate already-parsed TOML data; raise RulesError naming every problem."""
    try:
        rules = Rules.model_validate(data)
    except ValidationError as exc:
        raise RulesError(path, _pydantic_problems(exc)) from None
    problems = cross_check(rules)
    if problems:
        raise RulesError(path, problems)
    return rules


def load_rules(path: Path | str) -> Rules:
    """Read and validate a rules file; every failure is a RulesError, never a traceback."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RulesError(path, [("", f"cannot read the file: {exc.strerror or exc}")]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RulesError(path, [("", f"not UTF-8 text: {exc.reason}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(path, [("", f"TOML syntax error: {exc}")]) from None
    return parse_rules(data, path)
