"""Helpers for the carrier HTTP tests: a sleep that records instead of sleeping."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tracking_service.carrier_tokens import SqlTokenStore
from tracking_service.carriers.base import CarrierAdapter
from tracking_service.carriers.registry import build_adapter
from tracking_service.settings import Settings


class RecordingSleep:
    """Stands in for `asyncio.sleep`: remembers every delay, returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def adapter_for(
    code: str,
    settings: Settings,
    engine: AsyncEngine | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> CarrierAdapter:
    """`code`'s adapter from settings, its tokens in `engine` (None: in memory)."""
    tokens = SqlTokenStore(engine) if engine is not None else None
    return build_adapter(settings.carrier_configs()[code], tokens, transport=transport, sleep=sleep)


# ---- fake carriers answering in the official shapes (bodies per the specs) --------------------


BASES = {
    "ups": "https://ups.test",
    "fedex": "https://fedex.test",
    "usps": "https://usps.test",
    "dhl": "https://dhl.test/",  # a trailing slash must not double up
}


def carrier_settings(**overrides: object) -> Settings:
    """Credentials for every carrier, test hosts, limits loose enough never to wait."""
    values: dict[str, object] = {
        "ups_client_id": "ups-id",
        "ups_client_secret": SecretStr("ups-secret"),
        "ups_base_url": BASES["ups"],
        "fedex_client_id": "fedex-id",
        "fedex_client_secret": SecretStr("fedex-secret"),
        "fedex_base_url": BASES["fedex"],
        "usps_client_id": "usps-id",
        "usps_client_secret": SecretStr("usps-secret"),
        "usps_base_url": BASES["usps"],
        "dhl_api_key": SecretStr("dhl-key"),
        "dhl_base_url": BASES["dhl"],
        "carrier_max_attempts": 3,
    }
    for code in ("ups", "fedex", "usps", "dhl", "simulated"):
        values[f"{code}_requests_per_second"] = 10_000.0
        values[f"{code}_max_concurrency"] = 50
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# UPS: Tracking.yaml TrackApiResponse; unknown number = 200 with warning TW0001 (observed).
def ups_found(number: str) -> dict[str, object]:
    activity = {
        "location": {
            "address": {"city": "Atlanta", "stateProvince": "GA", "countryCode": "US"},
            "slic": "3036",
        },
        "status": {
            "type": "I",
            "description": "Departed from Facility",
            "code": "DP",
            "statusCode": "005",
        },
        "date": "20260105",
        "time": "101500",
        "gmtDate": "20260105",
        "gmtTime": "151500",
        "gmtOffset": "-05:00",
    }
    package = {
        "trackingNumber": number,
        "currentStatus": {
            "type": "I",
            "code": "DP",
            "statusCode": "005",
            "description": "On the Way",
        },
        "activity": [activity],
        "deliveryDate": [{"type": "SDD", "date": "20260108"}],
        "packageCount": 1,
    }
    return {"trackResponse": {"shipment": [{"inquiryNumber": number, "package": [package]}]}}


def ups_unknown(number: str) -> dict[str, object]:
    return {
        "trackResponse": {
            "shipment": [
                {
                    "inquiryNumber": number,
                    "warnings": [{"code": "TW0001", "message": "Tracking Information Not Found"}],
                }
            ]
        }
    }


# FedEx: TrackingNumbersResponse; per-number errors inside completeTrackResults with HTTP 200.
def fedex_entry(number: str, known: bool) -> dict[str, object]:
    if not known:
        return {
            "trackingNumber": number,
            "trackResults": [
                {
                    "trackingNumberInfo": {"trackingNumber": number},
                    "error": {
                        "code": "TRACKING.TRACKINGNUMBER.NOTFOUND",
                        "message": "Tracking number cannot be found. Please correct the "
                        "tracking number and try again.",
                    },
                }
            ],
        }
    where = {"city": "MEMPHIS", "stateOrProvinceCode": "TN", "postalCode": "38118",
             "countryCode": "US"}  # fmt: skip
    return {
        "trackingNumber": number,
        "trackResults": [
            {
                "trackingNumberInfo": {"trackingNumber": number, "carrierCode": "FDXE"},
                "latestStatusDetail": {
                    "code": "IT",
                    "derivedCode": "IT",
                    "statusByLocale": "In transit",
                    "description": "In transit",
                    "scanLocation": where,
                },
                "dateAndTimes": [
                    {"type": "ESTIMATED_DELIVERY", "dateTime": "2026-01-08T00:00:00-06:00"}
                ],
                "scanEvents": [
                    {
                        "date": "2026-01-05T10:15:00-06:00",
                        "eventType": "DP",
                        "eventDescription": "Departed FedEx location",
                        "derivedStatusCode": "IT",
                        "derivedStatus": "In transit",
                        "scanLocation": where,
                    }
                ],
            }
        ],
    }


def fedex_body(numbers: Iterable[str], known: set[str]) -> dict[str, object]:
    return {
        "transactionId": "624deea6-b709-470c-8c39-4b5511281492",
        "output": {"completeTrackResults": [fedex_entry(n, n in known) for n in numbers]},
    }


# USPS: TrackingDetails array (200) or MultiStatusResponse (207) mixing 200 and 404 elements.
def usps_found(number: str) -> dict[str, object]:
    return {
        "trackingNumber": number,
        "status": "Departed USPS Regional Facility",
        "statusCategory": "In Transit",
        "statusSummary": "Your item departed our facility.",
        "mailClass": "Priority Mail",
        "trackingEvents": [
            {
                "eventType": "Departed USPS Regional Facility",
                "eventTimestamp": "2026-01-05T10:15:00-05:00",
                "GMTTimestamp": "2026-01-05T15:15:00Z",
                "GMTOffset": "-05:00",
                "eventCountry": "US",
                "eventCity": "ATLANTA GA DISTRIBUTION CENTER",
                "eventState": "GA",
                "eventZIPCode": "30320",
                "eventCode": "EF",
            }
        ],
    }


def usps_unknown(number: str) -> dict[str, object]:
    return {
        "statusCode": "404",
        "trackingNumber": number,
        "apiVersion": "3.2.0",
        "error": {
            "code": "404",
            "message": "Not Found",
            "errors": [
                {
                    "status": "404",
                    "code": "150004",
                    "title": "No tracking information available for this item.",
                    "detail": "The tracking number may be incorrect or the status update is "
                    "not yet available.",
                }
            ],
        },
    }


def usps_response(numbers: Iterable[str], known: set[str]) -> httpx.Response:
    numbers = list(numbers)
    if all(n in known for n in numbers):
        return httpx.Response(200, json=[usps_found(n) for n in numbers])
    elements = [
        {"statusCode": "200", **usps_found(n)} if n in known else usps_unknown(n) for n in numbers
    ]
    return httpx.Response(207, json=elements)


# DHL: supermodelIoLogisticsTrackingShipments; unknown = 404 problem+json.
def dhl_found(number: str) -> dict[str, object]:
    status = {
        "timestamp": "2026-01-05T10:15:00+01:00",
        "location": {"address": {"addressLocality": "Leipzig - Germany", "countryCode": "DE"}},
        "statusCode": "transit",
        "status": "PROCESSED AT LEIPZIG - GERMANY",
        "description": "Processed at LEIPZIG - GERMANY",
    }
    return {"shipments": [{"id": number, "service": "express", "status": status,
                           "events": [status]}]}  # fmt: skip


def dhl_unknown(number: str) -> httpx.Response:
    return httpx.Response(
        404,
        headers={"Content-Type": "application/problem+json"},
        content=json.dumps(
            {
                "title": "No result found",
                "detail": "No shipment with given tracking number found.",
                "status": 404,
                "instance": f"/shipment/{number}",
            }
        ).encode(),
    )


@dataclass
class Kit:
    """One fake carrier: where its routes are and how it answers, per the official spec."""

    code: str
    method: str
    url: str  # regex
    numbers_of: Callable[[httpx.Request], list[str]]
    answer: Callable[[list[str], set[str]], httpx.Response]
    token_path: str | None = None
    expires_in: object = None
    known: set[str] = field(default_factory=set)

    def handler(self, known: set[str]) -> Callable[[httpx.Request], httpx.Response]:
        return lambda request: self.answer(self.numbers_of(request), known)

    def token_url(self) -> str:
        assert self.token_path
        return BASES[self.code].rstrip("/") + self.token_path


def _ups_numbers(request: httpx.Request) -> list[str]:
    return [request.url.path.rsplit("/", 1)[-1]]


def _dhl_numbers(request: httpx.Request) -> list[str]:
    return parse_qs(request.url.query.decode())["trackingNumber"]


def _json(request: httpx.Request) -> object:
    return json.loads(request.content)


KITS: dict[str, Kit] = {
    "ups": Kit(
        "ups",
        "GET",
        re.escape(BASES["ups"]) + r"/api/track/v1/details/[^/?]+",
        _ups_numbers,
        lambda ns, known: httpx.Response(
            200, json=ups_found(ns[0]) if ns[0] in known else ups_unknown(ns[0])
        ),
        token_path="/security/v1/oauth/token",
        expires_in="14399",  # UPS sends strings
    ),
    "fedex": Kit(
        "fedex",
        "POST",
        re.escape(BASES["fedex"]) + r"/track/v1/trackingnumbers",
        lambda r: [i["trackingNumberInfo"]["trackingNumber"] for i in _json(r)["trackingInfo"]],  # type: ignore[index]
        lambda ns, known: httpx.Response(200, json=fedex_body(ns, known)),
        token_path="/oauth/token",
        expires_in=3599,
    ),
    "usps": Kit(
        "usps",
        "POST",
        re.escape(BASES["usps"]) + r"/tracking/v3r2/tracking",
        lambda r: [i["trackingNumber"] for i in _json(r)],  # type: ignore[attr-defined,index]
        usps_response,
        token_path="/oauth2/v3/token",
        expires_in=28799,
    ),
    "dhl": Kit(
        "dhl",
        "GET",
        re.escape(BASES["dhl"].rstrip("/")) + r"/track/shipments\?.*",
        _dhl_numbers,
        lambda ns, known: (
            httpx.Response(200, json=dhl_found(ns[0])) if ns[0] in known else dhl_unknown(ns[0])
        ),
    ),
}

NUMBERS = {
    "ups": ("1Z999AA10123456784", "1Z999AA10000000006"),  # check digits right
    "fedex": ("123456789012", "900000000005"),  # check digits right: both reach the carrier
    "usps": ("9400111899223100000001", "9400111899223199999999"),
    "dhl": ("1234567890", "9999999999"),
}


def numbers_like(code: str, count: int) -> list[str]:
    """`count` distinct numbers shaped like `code`'s first test number that its adapter accepts
    (right check digit where the adapter checks one)."""
    from tracking_service.carriers.registry import ADAPTERS

    stem = NUMBERS[code][0][:-4]
    candidates = (f"{stem}{i:04d}" for i in range(10_000))
    accepted = (n for n in candidates if ADAPTERS[code].invalid_reason(n) is None)
    return [next(accepted) for _ in range(count)]
