"""The simulated carrier's adapter: the same httpx edge as the real carriers, its own API.

The server side (`create_sim_app`) is in `carriers/sim/`; this module maps its answers into our
result types. `parse_track_response` and `map_status` are pure; `SimulatedCarrier` is the edge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import httpx

from tracking_service.carriers.base import (
    DeliveryWindow,
    FailureKind,
    Location,
    TrackingEvent,
    TrackingFailure,
    TrackingOutcome,
    TrackingResult,
)
from tracking_service.carriers.edge import HttpCarrierAdapter
from tracking_service.carriers.http import (
    CarrierCallError,
    CarrierHttp,
    CarrierLimits,
    decode_json,
    join_url,
)
from tracking_service.carriers.parse_support import settled
from tracking_service.carriers.sim.number import SimNumberError, decode
from tracking_service.carriers.sim.server import MAX_TRACK_BATCH, create_sim_app
from tracking_service.carriers.status import Status

__all__ = ["STATUS_BY_CODE", "SimulatedCarrier", "create_sim_app", "map_status"]

log = logging.getLogger(__name__)
CODE = "simulated"

# Every code the simulated carrier emits (sim/timeline.py CODES) and what it means to us.
STATUS_BY_CODE: Mapping[str, Status] = {
    "LC": Status.INFO_RECEIVED,
    "PU": Status.IN_TRANSIT,
    "AR": Status.IN_TRANSIT,
    "DP": Status.IN_TRANSIT,
    "IG": Status.IN_TRANSIT,
    "CH": Status.EXCEPTION,
    "CR": Status.IN_TRANSIT,
    "OD": Status.OUT_FOR_DELIVERY,
    "AT": Status.FAILED_ATTEMPT,
    "HP": Status.AVAILABLE_FOR_PICKUP,
    "DL": Status.DELIVERED,
    "RS": Status.RETURNED_TO_SENDER,
    "RT": Status.RETURNED_TO_SENDER,
    "RD": Status.RETURNED_TO_SENDER,
}

# Generous: the simulated carrier exists to be leaned on (settings may pass tighter limits).
DEFAULT_LIMITS = CarrierLimits(
    requests_per_second=2000.0, burst=2000, max_concurrency=64, timeout=10.0
)


def map_status(code: str) -> Status | None:
    """Our status for a simulated-carrier code; None (keep the last status) when unknown."""
    status = STATUS_BY_CODE.get(code)
    if status is None:
        log.warning("simulated: unknown status code %r", code)
    return status


def _aware(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"instant without offset: {text!r}")
    return when


def _location(raw: Any) -> Location | None:
    if not isinstance(raw, dict):
        return None
    return Location(
        city=raw.get("city"),
        region=raw.get("region"),
        postal_code=raw.get("postal_code"),
        country=raw.get("country"),
    )


def _result(number: str, raw: Mapping[str, Any]) -> TrackingOutcome:
    error = raw.get("error")
    if error is not None:
        code = str(error.get("code", ""))
        kind = {
            "NOT_FOUND": FailureKind.NOT_FOUND,
            "INVALID_NUMBER": FailureKind.INVALID_NUMBER,
        }.get(code, FailureKind.BAD_RESPONSE)
        return TrackingFailure(CODE, number, kind, str(error.get("message") or code))

    events = []
    for item in reversed(raw["events"]):  # the carrier sends newest first
        occurred_at = _aware(item["occurred_at"])
        code = str(item["code"])
        events.append(
            TrackingEvent(
                occurred_at=occurred_at,
                status=map_status(code),
                raw_code=code,
                description=str(item.get("description") or ""),
                location=_location(item.get("location")),
                dedupe_key=f"{CODE}:{number}:{code}:{occurred_at.astimezone(UTC).isoformat()}",
            )
        )
    events.sort(key=lambda e: e.occurred_at)
    status = raw["status"]
    window = raw.get("estimated_delivery")
    delivered_at = raw.get("delivered_at")
    return settled(
        TrackingResult(
            carrier=CODE,
            tracking_number=number,
            status=map_status(str(status["code"])),
            raw_status_code=str(status["code"]),
            raw_status_description=str(status.get("description") or ""),
            events=tuple(events),
            estimated_delivery=(
                DeliveryWindow(
                    date.fromisoformat(window["earliest"]), date.fromisoformat(window["latest"])
                )
                if window
                else None
            ),
            delivered_at=_aware(delivered_at) if delivered_at else None,
            signed_by=raw.get("signed_by") or None,
        )
    )


def parse_track_response(numbers: Sequence[str], body: object) -> dict[str, TrackingOutcome]:
    """`POST /v1/track` answer -> one outcome per asked number (bad_response when unusable)."""
    outcomes: dict[str, TrackingOutcome] = {}
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return {
            n: TrackingFailure(CODE, n, FailureKind.BAD_RESPONSE, "answer has no results list")
            for n in numbers
        }
    for raw in results:
        if not isinstance(raw, dict) or not isinstance(raw.get("tracking_number"), str):
            continue
        number = raw["tracking_number"]
        try:
            outcomes[number] = _result(number, raw)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            outcomes[number] = TrackingFailure(
                CODE, number, FailureKind.BAD_RESPONSE, f"unreadable result: {exc!r}"
            )
    return {
        n: outcomes.get(n)
        or TrackingFailure(CODE, n, FailureKind.BAD_RESPONSE, "the answer did not mention it")
        for n in numbers
    }


class SimulatedCarrier(HttpCarrierAdapter):
    """`POST {base_url}/v1/track` in batches of up to 100, over one shared AsyncClient."""

    code = CODE
    max_batch = MAX_TRACK_BATCH

    def __init__(
        self,
        base_url: str,
        *,
        http: CarrierHttp | None = None,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: CarrierLimits | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`http` as the registry builds it, else one from `client`/`transport`/`limits`."""
        super().__init__(
            http
            or CarrierHttp(
                CODE,
                limits or DEFAULT_LIMITS,
                client=client,
                transport=transport,
                sleep=sleep,
                base_url=base_url,
            )
        )
        self.base_url = base_url

    @classmethod
    def invalid_reason(cls, number: str) -> str | None:
        try:
            decode(number)
        except SimNumberError as exc:
            return str(exc)
        return None

    async def _track_batch(self, numbers: list[str]) -> Mapping[str, TrackingOutcome]:
        response = await self.http.request(
            "POST",
            join_url(self.base_url, "/v1/track"),
            json={"tracking_numbers": numbers},
            numbers=len(numbers),
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            raise CarrierCallError(
                FailureKind.BAD_RESPONSE,
                f"simulated: unexpected HTTP {response.status_code}: {response.text[:200]}",
            )
        return parse_track_response(numbers, decode_json(response))
