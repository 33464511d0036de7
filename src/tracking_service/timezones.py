"""IANA time zones, read once: a cached `ZoneInfo` by name and the tz database's `zone.tab`.

Carrier parsers, history files, the estimator and the simulated carrier all turn zone names
into `ZoneInfo` objects on hot paths and ask which zones a country has; both answers come from
here so there is one cache and one reader of `zone.tab`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@cache
def zone(name: str) -> ZoneInfo:
    """The zone called `name`; raises `ZoneInfoNotFoundError` (or `ValueError`) if unknown."""
    return ZoneInfo(name)


def zone_or_none(name: str) -> ZoneInfo | None:
    """The zone called `name`, or None when the tz database has no such zone."""
    try:
        return zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@cache
def zones_by_country() -> dict[str, tuple[str, ...]]:
    """Zone names per ISO 3166-1 alpha-2 country, in `zone.tab` order (most populous first)."""
    try:
        content = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):  # pragma: no cover - tzdata is a dep
        return {}
    table: dict[str, list[str]] = {}
    for line in content.splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            table.setdefault(fields[0], []).append(fields[2])
    return {country: tuple(names) for country, names in table.items()}


def single_zone(country: str) -> str | None:
    """The zone of a country that has exactly one in `zone.tab`, else None."""
    names = zones_by_country().get(country, ())
    return names[0] if len(names) == 1 else None
