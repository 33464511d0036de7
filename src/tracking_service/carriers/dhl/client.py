"""DHL Shipment Tracking - Unified (`shipment-tracking-unified-1.4.1.yaml`): one number per GET."""

from __future__ import annotations

import re
from collections.abc import Mapping

from tracking_service.carriers.base import TrackingOutcome
from tracking_service.carriers.dhl.parse import parse_track_response
from tracking_service.carriers.edge import HttpCarrierAdapter
from tracking_service.carriers.http import CarrierHttp, decode_json, join_url
from tracking_service.carriers.oauth import refusal, token_error_text


class DhlCarrier(HttpCarrierAdapter):
    """GET {base}/track/shipments?trackingNumber=... with the `DHL-API-Key` header."""

    code = "dhl"
    max_batch = 1
    number_format = re.compile(r"[A-Z0-9]{4,50}")
    number_format_reason = "DHL tracking numbers are 4 to 50 letters or digits"

    def __init__(self, base_url: str, http: CarrierHttp, api_key: str) -> None:
        super().__init__(http)
        self.base_url = base_url
        self._api_key = api_key

    async def _track_batch(self, numbers: list[str]) -> Mapping[str, TrackingOutcome]:
        (number,) = numbers
        response = await self.http.request(
            "GET",
            join_url(self.base_url, "/track/shipments"),
            params={"trackingNumber": number, "language": "en"},
            numbers=len(numbers),
            headers={"DHL-API-Key": self._api_key, "Accept": "application/json"},
        )
        if response.status_code in (401, 403):
            raise refusal(self.code, "the API key", response, _problem_text)
        return {number: parse_track_response(number, response.status_code, decode_json(response))}


def _problem_text(body: object) -> str:
    """RFC 7807 `title`/`detail` (DHL's error shape), else any other known error shape."""
    if isinstance(body, dict) and (body.get("title") or body.get("detail")):
        return " - ".join(str(body[k]) for k in ("title", "detail") if body.get(k))
    return token_error_text(body)
