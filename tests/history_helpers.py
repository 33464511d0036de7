"""Delivery history for tests: parcels on the Sao Paulo -> Rio lane, built the same way everywhere.

Imported as `history_helpers` (pytest puts `tests/` on the import path: it has no `__init__.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tracking_service.estimator.records import Delivery

SP = ZoneInfo("America/Sao_Paulo")
FIRST_ORDER = datetime(2024, 1, 2, 13, tzinfo=SP)


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
    out = []
    for i in range(from_index, from_index + n):
        ordered = first_order + every * i
        handoff = ordered + timedelta(days=1)
        out.append(
            Delivery(
                key=f"{key}{i}",
                order_time=ordered,
                handoff_time=handoff,
                delivered_at=handoff + timedelta(days=transit_days[i % len(transit_days)]),
                origin_country="BR",
                origin_subdivision="SP",
                origin_postal_code="03178",
                dest_country="BR",
                dest_subdivision="RJ",
                dest_postal_code="20040",
                carrier=carrier,
                service=service,
                origin_tz="America/Sao_Paulo",
                dest_tz="America/Sao_Paulo",
            )
        )
    return out
