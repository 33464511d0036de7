"""Delivery history for tests: every delivery record the tests make is built here, one way.

Imported as `history_helpers` (pytest puts `tests/` on the import path: it has no `__init__.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tracking_service.estimator.history import Calendars
from tracking_service.estimator.records import Delivery

SP = ZoneInfo("America/Sao_Paulo")
FIRST_ORDER = datetime(2024, 1, 2, 13, tzinfo=SP)
# Sao Paulo (Paulista) and Rio de Janeiro (centre), for lanes by distance band
SP_COORDS = (-23.55, -46.63)
RIO_COORDS = (-22.91, -43.17)


def delivery(
    key: str,
    ordered: datetime,
    transit: float,
    *,
    handling: timedelta = timedelta(days=1),
    origin_postal: str = "03178",
    dest_subdivision: str = "RJ",
    dest_postal: str = "20040",
    tz: str = "America/Sao_Paulo",
    promised: date | None = None,
    coordinates: tuple[tuple[float, float], tuple[float, float]] | None = None,
    carrier: str | None = None,
    service: str | None = None,
) -> Delivery:
    """One parcel from Sao Paulo state to `dest_subdivision` (Brazil): ordered at `ordered`,
    handed over `handling` later, delivered `transit` days after the hand-off. `tz` is the
    zone of both ends (local dates are read in it); `coordinates` are (origin, destination)."""
    handoff = ordered + handling
    (olat, olng), (dlat, dlng) = coordinates or ((None, None), (None, None))
    return Delivery(
        key=key,
        order_time=ordered,
        handoff_time=handoff,
        delivered_at=handoff + timedelta(days=transit),
        origin_country="BR",
        origin_subdivision="SP",
        origin_postal_code=origin_postal,
        dest_country="BR",
        dest_subdivision=dest_subdivision,
        dest_postal_code=dest_postal,
        carrier=carrier,
        service=service,
        promised_date=promised,
        origin_tz=tz,
        dest_tz=tz,
        origin_lat=olat,
        origin_lng=olng,
        dest_lat=dlat,
        dest_lng=dlng,
    )


def sp_to_rio(
    transit_days: Sequence[int],
    n: int,
    *,
    from_index: int = 0,
    first_order: datetime = FIRST_ORDER,
    every: timedelta = timedelta(days=1),
    key: str = "r",
    carrier: str | None = None,
    service: str | None = None,
) -> list[Delivery]:
    """Parcels `from_index` to `from_index + n - 1` from Sao Paulo (03178) to Rio (20040).

    Parcel i is ordered at `first_order + i * every`, handed over a day later, then spends
    `transit_days[i % len(transit_days)]` days on the way; its key is `f"{key}{i}"`.
    """
    return [
        delivery(
            f"{key}{i}",
            first_order + every * i,
            transit_days[i % len(transit_days)],
            carrier=carrier,
            service=service,
        )
        for i in range(from_index, from_index + n)
    ]


def sp_history(n: int = 300, carrier: str | None = None, service: str | None = None) -> list:
    """Parcels from Sao Paulo to Rio, one ordered per day: handed over the next day, then
    2 days in transit for half of them, 3 for 30 %, 6 for 20 %."""
    transit = (2, 2, 2, 2, 2, 3, 3, 3, 6, 6)
    return sp_to_rio(transit, n, key="p", carrier=carrier, service=service)


def every_day() -> Calendars:
    """Calendars open every day: days counted are calendar days, so answers are plain sums."""

    def open_(country: str, subdivision: str | None) -> Callable[[date], bool]:
        return lambda d: True

    return Calendars(open_, open_)
