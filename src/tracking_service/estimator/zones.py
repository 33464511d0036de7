"""Destination -> zones: which of the rules' zones a destination falls in, most specific first."""

from __future__ import annotations

from collections import defaultdict

from tracking_service.estimator.rules import Rules, ShippingOption, Zone


class ZoneIndex:
    """Zones indexed by country, subdivision and postal prefix: a match is a few dict lookups."""

    def __init__(self, rules: Rules) -> None:
        self._by_prefix: dict[tuple[str, str], list[Zone]] = defaultdict(list)
        self._by_subdivision: dict[tuple[str, str], list[Zone]] = defaultdict(list)
        self._by_country: dict[str, list[Zone]] = defaultdict(list)
        self._prefix_lengths: dict[str, list[int]] = defaultdict(list)
        for zone in rules.zones:
            if zone.postal_prefixes:
                for prefix in zone.postal_prefixes:
                    key = prefix.upper()
                    self._by_prefix[(zone.country, key)].append(zone)
                    if len(key) not in self._prefix_lengths[zone.country]:
                        self._prefix_lengths[zone.country].append(len(key))
            elif zone.subdivisions:
                for sub in zone.subdivisions:
                    self._by_subdivision[(zone.country, sub)].append(zone)
            else:
                self._by_country[zone.country].append(zone)
        for lengths in self._prefix_lengths.values():
            lengths.sort(reverse=True)

    def match(self, country: str, postal_key: str, subdivision: str | None) -> tuple[Zone, ...]:
        """Matching zones, most specific first: longest postal prefix, then state, then country.

        A zone with postal prefixes and states must match both.
        """
        out: list[Zone] = []
        for length in self._prefix_lengths.get(country, ()):
            if length <= len(postal_key):
                for zone in self._by_prefix.get((country, postal_key[:length]), ()):
                    if zone.subdivisions and subdivision not in zone.subdivisions:
                        continue
                    if zone not in out:
                        out.append(zone)
        if subdivision is not None:
            out.extend(self._by_subdivision.get((country, subdivision), ()))
        out.extend(self._by_country.get(country, ()))
        return tuple(out)


def served_zone(option: ShippingOption, zones_by_id: dict[str, int]) -> str | None:
    """The most specific destination zone this option has transit days for."""
    best: tuple[int, str] | None = None
    for entry in option.transit:
        rank = zones_by_id.get(entry.zone)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, entry.zone)
    return best[1] if best else None
