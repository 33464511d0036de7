"""USPS Tracking 3.2 over HTTP (`tracking-v3r2.yaml`): up to 35 numbers per POST."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from tracking_service.carriers.base import TrackingOutcome
from tracking_service.carriers.edge import HttpCarrierAdapter
from tracking_service.carriers.http import CarrierHttp, decode_json, join_url
from tracking_service.carriers.oauth import TokenProvider, send_authorized
from tracking_service.carriers.usps.parse import parse_track_response

MAX_BATCH = 35  # TrackingRequest maxItems
_NUMBER = re.compile(r"[A-Z0-9]{4,34}")  # "alphanumeric characters, length between 4 and 34"


class UspsCarrier(HttpCarrierAdapter):
    """POST {base}/tracking/v3r2/tracking with a JSON array of {"trackingNumber": ...}."""

    code = "usps"
    max_batch = MAX_BATCH

    def __init__(self, base_url: str, http: CarrierHttp, tokens: TokenProvider) -> None:
        super().__init__(http)
        self.base_url = base_url
        self.tokens = tokens

    def invalid_reason(self, number: str) -> str | None:
        if not _NUMBER.fullmatch(number):
            return "USPS tracking numbers are 4 to 34 letters or digits"
        return None

    async def _track_batch(self, numbers: list[str]) -> Mapping[str, TrackingOutcome]:
        response = await send_authorized(
            self.http,
            self.tokens,
            "POST",
            join_url(self.base_url, "/tracking/v3r2/tracking"),
            json=[{"trackingNumber": n} for n in numbers],
            headers={"Accept": "application/json"},
        )
        if response.status_code == 400 and len(numbers) > 1:
            # The whole request was refused: ask one by one so one bad number fails alone.
            outcomes: dict[str, TrackingOutcome] = {}
            for answer in await asyncio.gather(*(self._track_batch([n]) for n in numbers)):
                outcomes.update(answer)
            return outcomes
        return parse_track_response(numbers, response.status_code, decode_json(response))
