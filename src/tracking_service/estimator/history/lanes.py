"""Lanes: which keys a parcel's handling and transit are learned under, most specific first.

Also what one delivery says in model units (`observe`) and the lane an estimate rests on
(`LaneUse`).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tracking_service.estimator.history.calendars import Calendars
from tracking_service.estimator.history.config import HistoryConfig, LaneKey
from tracking_service.estimator.records import Delivery
from tracking_service.timezones import zone


@dataclass(frozen=True, slots=True)
class LaneQuery:
    """Where a parcel goes: what the lane keys are made of."""

    origin_country: str
    origin_subdivision: str | None
    origin_postal_code: str | None
    dest_country: str
    dest_subdivision: str | None
    dest_postal_code: str | None
    service: str | None = None
    origin_id: str | None = None
    distance_km: float | None = None

    @classmethod
    def of(cls, d: Delivery) -> LaneQuery:
        return cls(
            origin_country=d.origin_country,
            origin_subdivision=d.origin_subdivision,
            origin_postal_code=d.origin_postal_code,
            dest_country=d.dest_country,
            dest_subdivision=d.dest_subdivision,
            dest_postal_code=d.dest_postal_code,
            service=_service(d.carrier, d.service),
            origin_id=d.origin_id,
            distance_km=distance_km(d.origin_lat, d.origin_lng, d.dest_lat, d.dest_lng),
        )


def _service(carrier: str | None, service: str | None) -> str | None:
    if carrier is None and service is None:
        return None
    return f"{carrier or ''}/{service or ''}"


def distance_km(
    lat1: float | None, lng1: float | None, lat2: float | None, lng2: float | None
) -> float | None:
    """Great-circle distance (haversine), or None when a coordinate is missing."""
    if lat1 is None or lng1 is None or lat2 is None or lng2 is None:
        return None
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def _prefix(code: str | None, digits: int) -> str | None:
    if not code:
        return None
    return "".join(ch for ch in code if ch.isalnum())[:digits] or None


def handling_chain(q: LaneQuery, cfg: HistoryConfig) -> list[LaneKey]:
    """Handling lane keys, most specific first, ending with the root `("handling",)`."""
    chain: list[LaneKey] = []
    for level in cfg.handling_levels:
        if level == "origin_id":
            if q.origin_id:
                chain.append(("h:id", q.origin_country, q.origin_id))
        elif level == "origin_postal":
            prefix = _prefix(q.origin_postal_code, cfg.origin_postal_digits)
            if prefix:
                chain.append(("h:postal", q.origin_country, q.origin_subdivision, prefix))
        elif level == "origin_subdivision":
            chain.append(("h:sub", q.origin_country, q.origin_subdivision))
        elif level == "origin_country":
            chain.append(("h:country", q.origin_country))
    chain.append(("handling",))
    return chain


def _band(km: float | None, bands: Sequence[float]) -> str | None:
    if km is None or not bands:
        return None
    return str(bisect_left(bands, km))


def transit_chain(q: LaneQuery, cfg: HistoryConfig, weekday: int | None = None) -> list[LaneKey]:
    """Transit lane keys, most specific first, ending with the service's root.

    With `handoff_weekday`, the most specific lane is split again by the hand-off weekday.
    """
    svc = q.service
    o = (q.origin_country, q.origin_subdivision)
    chain: list[LaneKey] = []
    for level in cfg.transit_levels:
        if level == "dest_postal_fine":
            prefix = _prefix(q.dest_postal_code, cfg.dest_postal_fine_digits)
            if prefix:
                chain.append(("t:fine", svc, *o, q.dest_country, q.dest_subdivision, prefix))
        elif level == "dest_postal":
            prefix = _prefix(q.dest_postal_code, cfg.dest_postal_digits)
            if prefix:
                chain.append(("t:postal", svc, *o, q.dest_country, q.dest_subdivision, prefix))
        elif level == "dest_subdivision":
            chain.append(("t:sub", svc, *o, q.dest_country, q.dest_subdivision))
        elif level == "dest_distance":  # the distance band into this destination state
            band = _band(q.distance_km, cfg.distance_bands_km)
            if band is not None:
                chain.append(("t:subdist", svc, q.dest_country, q.dest_subdivision, band))
        elif level == "distance":
            band = _band(q.distance_km, cfg.distance_bands_km)
            if band is not None:
                chain.append(("t:dist", svc, q.origin_country, q.dest_country, band))
        elif level == "dest_country":
            chain.append(("t:country", svc, *o, q.dest_country))
    chain.append(("transit", svc))
    if cfg.handoff_weekday and weekday is not None:
        if cfg.handoff_weekday_levels == "all":
            return [("t:weekday", str(weekday), *key) for key in chain] + chain[-1:]
        chain.insert(0, ("t:weekday", str(weekday), *chain[0]))
    return chain


def describe_lane(key: LaneKey) -> str:
    """A lane key as one string, its id for machines: `t:postal * BR SP BR RJ 200`."""
    kind, *parts = key
    return f"{kind} " + " ".join("*" if p is None else str(p) for p in parts)


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def lane_in_words(key: LaneKey) -> str:
    """Where a lane's parcels went, for a shopper: `from SP to RJ`, `from SP to RJ (postal
    codes starting 200)`, `within BR over a similar distance`; empty for a root lane (every
    parcel of the option). A state is named by its code, a place without one by its country.
    """
    kind = key[0] if key else None

    def place(country: str | None, subdivision: str | None) -> str:
        return subdivision or country or "anywhere"

    if kind == "t:weekday":
        inner = lane_in_words(key[2:])
        day = _WEEKDAYS[int(key[1] or 0) % 7]
        return f"{inner} handed over on a {day}".strip()
    if kind in ("t:fine", "t:postal"):
        _, _, oc, osub, dc, dsub, prefix = key
        return f"from {place(oc, osub)} to {place(dc, dsub)} (postal codes starting {prefix})"
    if kind == "t:sub":
        _, _, oc, osub, dc, dsub = key
        return f"from {place(oc, osub)} to {place(dc, dsub)}"
    if kind == "t:subdist":
        _, _, dc, dsub, _ = key
        return f"to {place(dc, dsub)} over a similar distance"
    if kind == "t:dist":
        _, _, oc, dc, _ = key
        where = f"within {oc}" if oc == dc else f"from {oc} to {dc}"
        return f"{where} over a similar distance"
    if kind == "t:country":
        _, _, oc, osub, dc = key
        return f"from {place(oc, osub)} to anywhere in {dc}"
    if kind in ("h:postal", "h:sub"):
        return f"from {place(key[1], key[2])}"
    if kind == "h:id":
        return f"from {key[2]}"
    if kind == "h:country":
        return f"from {key[1]}"
    return ""


@dataclass(frozen=True, slots=True)
class Observation:
    """One delivery in model units: handling and transit days and the recency instant."""

    handling_days: int
    transit_days: int
    handoff_weekday: int
    known_at: datetime


def observe(d: Delivery, calendars: Calendars, cfg: HistoryConfig) -> Observation | None:
    """Handling and transit days of a delivery, or None when it has no hand-off time."""
    if d.handoff_time is None:
        return None
    otz = zone(d.origin_tz) if d.origin_tz else UTC
    dtz = zone(d.dest_tz) if d.dest_tz else UTC
    origin = calendars.origin(d.origin_country, d.origin_subdivision)
    dest = calendars.destination(d.dest_country, d.dest_subdivision)
    order_i = origin.ceil(d.order_time.astimezone(otz).date())
    ship_i = max(order_i, origin.ceil(d.handoff_time.astimezone(otz).date()))
    ship_day = origin.day(ship_i)
    delivered = d.delivered_at.astimezone(dtz).date()
    transit = max(0, dest.ceil(delivered) - dest.ceil(ship_day))
    return Observation(
        handling_days=min(ship_i - order_i, cfg.max_handling_days),
        transit_days=min(transit, cfg.max_transit_days),
        handoff_weekday=ship_day.weekday(),
        known_at=d.delivered_at,
    )


@dataclass(frozen=True, slots=True)
class LaneUse:
    """The lane an estimate rests on: the most specific with records, and how many."""

    lane: str
    records: int
    weight: float  # recency-weighted records at estimate time
    key: LaneKey = ()  # the lane's key (`lane` is its id); empty for "rules"
