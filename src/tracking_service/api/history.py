"""Back office: what the delivery history taught the estimator, and a refresh on demand.

`GET /v1/history` reads the snapshot being served; `POST /v1/history/refresh` rebuilds it now if
the `delivery_records` table changed (e.g. right after `tracking-service import-history`, which
runs in another process; otherwise the periodic refresh picks the rows up). Both are back
office: they need an API key (`require_api_key`).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from tracking_service.api.deps import ServicesDep, require_api_key
from tracking_service.api.problems import problem_responses
from tracking_service.estimator.option_history import OptionHistories

router = APIRouter(prefix="/v1/history", tags=["history"], dependencies=[Depends(require_api_key)])


class OptionHistoryOut(BaseModel):
    option: str
    records: int = Field(description="Records this option learned from")
    zones: list[str] = Field(description="Zones of the rules where it has a model")
    level_shift: float = Field(
        description="Correction of the quantile level, warmed on the recent promises"
    )


class HistoryStatus(BaseModel):
    records: int = Field(description="Delivery records in the table at the last build")
    as_of: datetime | None = Field(description="Newest delivery in the data (the models' now)")
    built_at: datetime
    options: list[OptionHistoryOut] = Field(description="Options estimated from history")


class RefreshOut(HistoryStatus):
    rebuilt: bool = Field(description="False when the table had not changed")
    seconds: float


def _status(snapshot: OptionHistories) -> dict[str, object]:
    return {
        "records": snapshot.records,
        "as_of": snapshot.as_of,
        "built_at": snapshot.built_at,
        "options": [
            OptionHistoryOut(
                option=s.option,
                records=s.records,
                zones=list(s.zones),
                level_shift=round(s.level_shift, 4),
            )
            for s in snapshot.options.values()
        ],
    }


@router.get(
    "",
    response_model=HistoryStatus,
    responses=problem_responses(401, 422, 503),
    summary="What the served delivery-history snapshot holds",
)
async def history_status(services: ServicesDep) -> HistoryStatus:
    return HistoryStatus(**_status(services.history.snapshot))  # type: ignore[arg-type]


@router.post(
    "/refresh",
    response_model=RefreshOut,
    responses=problem_responses(401, 422, 500, 503),
    summary="Rebuild the delivery-history model now if its table changed",
)
async def refresh_history(services: ServicesDep) -> RefreshOut:
    """Reads the table's row count and highest id; when they changed since the last build,
    loads every record and rebuilds the models off the event loop, then serves them. The
    estimate route keeps answering from the previous snapshot meanwhile."""
    result = await services.history.refresh()
    return RefreshOut(
        **_status(result.snapshot),  # type: ignore[arg-type]
        rebuilt=result.rebuilt,
        seconds=round(result.seconds, 3),
    )
