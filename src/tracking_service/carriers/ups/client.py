"""UPS Track API over HTTP (`Tracking.yaml`): one number per GET, OAuth bearer token."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from urllib.parse import quote

from tracking_service.carriers.base import TrackingOutcome
from tracking_service.carriers.edge import HttpCarrierAdapter
from tracking_service.carriers.http import CarrierHttp, decode_json, join_url
from tracking_service.carriers.oauth import TokenProvider, send_authorized
from tracking_service.carriers.ups.parse import parse_track_response

TRANSACTION_SOURCE = "tracking-service"


class UpsCarrier(HttpCarrierAdapter):
    """GET {base}/api/track/v1/details/{inquiryNumber} with `transId` and `transactionSrc`."""

    code = "ups"
    max_batch = 1
    number_format = re.compile(r"[A-Z0-9]{7,34}")
    number_format_reason = "UPS inquiry numbers are 7 to 34 letters or digits"
    check_digit_carrier = "ups"  # a 1Z number with a wrong check digit is a typo

    def __init__(self, base_url: str, http: CarrierHttp, tokens: TokenProvider) -> None:
        super().__init__(http)
        self.base_url = base_url
        self.tokens = tokens

    async def _track_batch(self, numbers: list[str]) -> Mapping[str, TrackingOutcome]:
        (number,) = numbers
        response = await send_authorized(
            self.http,
            self.tokens,
            "GET",
            join_url(self.base_url, f"/api/track/v1/details/{quote(number, safe='')}"),
            params={
                "locale": "en_US",
                "returnSignature": "false",
                "returnMilestones": "false",
                "returnPOD": "false",
            },
            numbers=len(numbers),
            headers={
                "transId": uuid.uuid4().hex,  # unique per call, 32 hex
                "transactionSrc": TRANSACTION_SOURCE,
                "Accept": "application/json",
            },
        )
        return {number: parse_track_response(number, response.status_code, decode_json(response))}
