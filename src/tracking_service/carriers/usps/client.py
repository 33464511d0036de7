"""USPS Tracking 3.2 over HTTP (`tracking-v3r2.yaml`): up to 35 numbers per POST."""

from __future__ import annotations

import re
from collections.abc import Mapping

from tracking_service.carriers.base import TrackingOutcome
from tracking_service.carriers.edge import HttpCarrierAdapter
from tracking_service.carriers.http import CarrierHttp, decode_json, join_url
from tracking_service.carriers.oauth import TokenProvider, send_authorized
from tracking_service.carriers.usps.parse import parse_track_response


class UspsCarrier(HttpCarrierAdapter):
    """POST {base}/tracking/v3r2/tracking with a JSON array of {"trackingNumber": ...}."""

    code = "usps"
    max_batch = 35  # TrackingRequest maxItems
    # "alphanumeric characters, length between 4 and 34"
    number_format = re.compile(r"[A-Z0-9]{4,34}")
    number_format_reason = "USPS tracking numbers are 4 to 34 letters or digits"

    def __init__(self, base_url: str, http: CarrierHttp, tokens: TokenProvider) -> None:
        super().__init__(http)
        self.base_url = base_url
        self.tokens = tokens

    async def _track_batch(self, numbers: list[str]) -> Mapping[str, TrackingOutcome]:
        response = await send_authorized(
            self.http,
            self.tokens,
            "POST",
            join_url(self.base_url, "/tracking/v3r2/tracking"),
            json=[{"trackingNumber": n} for n in numbers],
            numbers=len(numbers),
            headers={"Accept": "application/json"},
        )
        if response.status_code == 400 and len(numbers) > 1:  # the whole request was refused
            return await self._track_one_by_one(numbers)
        return parse_track_response(numbers, response.status_code, decode_json(response))
