"""FedEx Track API over HTTP (`track-trackingnumbers.json`): up to 30 numbers per POST."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

import httpx

from tracking_service.carriers.base import TrackingOutcome
from tracking_service.carriers.edge import HttpCarrierAdapter
from tracking_service.carriers.fedex.parse import parse_track_response
from tracking_service.carriers.http import CarrierHttp, decode_json, join_url
from tracking_service.carriers.oauth import TokenProvider, is_unauthorized, send_authorized


def track_request_body(numbers: list[str]) -> dict[str, object]:
    """The `Full_Schema_Tracking_Numbers` body, with every scan requested."""
    return {
        "includeDetailedScans": True,
        "trackingInfo": [{"trackingNumberInfo": {"trackingNumber": n}} for n in numbers],
    }


INVALID_JWT = "The given JWT is invalid"


def token_refused(response: httpx.Response) -> bool:
    """FedEx says an expired or revoked token is "The given JWT is invalid", and not always
    with a 401: that text means "refresh the token" whatever the HTTP status."""
    return is_unauthorized(response) or INVALID_JWT.lower() in response.text.lower()


class FedexCarrier(HttpCarrierAdapter):
    """POST {base}/track/v1/trackingnumbers with a bearer token."""

    code = "fedex"
    max_batch = 30  # trackingInfo: "Maximum limit is 30"
    number_format = re.compile(r"[A-Z0-9]{4,40}")
    number_format_reason = "FedEx tracking numbers are 4 to 40 letters or digits"
    check_digit_carrier = "fedex"

    def __init__(self, base_url: str, http: CarrierHttp, tokens: TokenProvider) -> None:
        super().__init__(http)
        self.base_url = base_url
        self.tokens = tokens

    async def _track_batch(self, numbers: list[str]) -> Mapping[str, TrackingOutcome]:
        response = await send_authorized(
            self.http,
            self.tokens,
            "POST",
            join_url(self.base_url, "/track/v1/trackingnumbers"),
            json=track_request_body(numbers),
            token_refused=token_refused,
            numbers=len(numbers),
            headers={
                "Accept": "application/json",
                "X-locale": "en_US",
                "x-customer-transaction-id": str(uuid.uuid4()),
            },
        )
        if response.status_code == 400 and len(numbers) > 1:  # the whole request was refused
            return await self._track_one_by_one(numbers)
        return parse_track_response(numbers, response.status_code, decode_json(response))
