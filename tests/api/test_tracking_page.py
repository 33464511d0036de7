"""The customer's tracking page over HTTP, on SQLite and PostgreSQL: `GET /t/{token}` (HTML)
and `GET /v1/tracking/{token}` (JSON).

Orders and shipments are registered through the back office (`tracking.registration`) and
their scans applied by the worker's store (`store.apply_outcome`), as in production; the
page is then read on a clock that stands still on Tuesday 9 December 2025, 16:00 in New York.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tracking_service.carriers.base import DeliveryWindow, Location, TrackingEvent, TrackingResult
from tracking_service.carriers.sim.number import Scenario, encode
from tracking_service.carriers.status import Status
from tracking_service.clock import FixedClock
from tracking_service.db import create_engine, unit_of_work
from tracking_service.settings import Settings
from tracking_service.tracking import store
from tracking_service.tracking.config import TrackingConfig

from .helpers import app_client
from .orders_helpers import BASE_URL, KEY, PROBLEM, UPS, order_body

ST = Status
PLACED = datetime(2025, 12, 1, 15, tzinfo=UTC)  # Mon 1 Dec, 10:00 in New York
NOW = datetime(2025, 12, 9, 21, tzinfo=UTC)  # Tue 9 Dec, 16:00 in New York
PROMISE = {"earliest": "2025-12-08", "latest": "2025-12-09"}
PERSONAL = ("Ada", "Lovelace", "ada@example.com", "555 0100", "Analytical Engine")
NEWARK = Location("Newark", "NJ", "07102", "US")
NEW_YORK = Location("New York", "NY", "10001", "US")

pytestmark = pytest.mark.usefixtures("database_url")


def sim_numbers(count: int) -> list[str]:
    """Simulated carrier numbers (the carrier is never called: scans are applied by hand)."""
    return [encode(Scenario.NORMAL, PLACED, serial) for serial in range(count)]


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of December 2025 given as New York's wall clock (UTC-5 then)."""
    return datetime(2025, 12, day, hour + 5, minute, tzinfo=UTC)


@dataclass
class Site:
    """The app on one database, a back-office client and the page's client."""

    client: httpx.AsyncClient
    clock: FixedClock
    database_url: str

    async def order(self, order_id: str, numbers: list[tuple[str, str]]) -> list[tuple[int, str]]:
        """Register an order (promise 8-9 Dec) with its parcels: (shipment id, token) each."""
        headers = {"Authorization": f"Bearer {KEY}"}
        body = order_body(order_id, placed_at=PLACED.isoformat(), promise=PROMISE)
        response = await self.client.post("/v1/orders", json=body, headers=headers)
        assert response.status_code == 201, response.text
        out = []
        for carrier, number in numbers:
            response = await self.client.post(
                f"/v1/orders/{order_id}/shipments",
                json={"carrier": carrier, "tracking_number": number},
                headers=headers,
            )
            assert response.status_code == 201, response.text
            out.append((response.json()["id"], response.json()["tracking_token"]))
        return out

    async def scans(
        self,
        shipment_id: int,
        scans: list[tuple[datetime, Status, Location]],
        *,
        window: tuple[date, date] | None = None,
        delivered_at: datetime | None = None,
    ) -> None:
        """The carrier's answer with these scans, applied by the worker's store at the last
        scan's instant."""
        events = tuple(
            TrackingEvent(
                occurred_at=when,
                status=status,
                raw_code=f"X{i}",
                description=f"CARRIER JARGON {i}",
                location=where,
                dedupe_key=f"k{i}",
            )
            for i, (when, status, where) in enumerate(scans)
        )
        engine = create_engine(self.database_url)
        try:
            async with unit_of_work(engine) as session:
                row = await store.lock_and_load(session, shipment_id, base_url=BASE_URL)
                assert row is not None
                result = TrackingResult(
                    carrier=row.shipment.carrier,
                    tracking_number=row.shipment.tracking_number,
                    status=events[-1].status,
                    raw_status_code=events[-1].raw_code,
                    raw_status_description=events[-1].description,
                    events=events,
                    estimated_delivery=DeliveryWindow(*window) if window else None,
                    delivered_at=delivered_at,
                )
                await store.apply_outcome(
                    session,
                    shipment_id,
                    result,
                    now=scans[-1][0] + timedelta(minutes=5),
                    config=TrackingConfig(),
                    base_url=BASE_URL,
                )
        finally:
            await engine.dispose()

    async def page(self, token: str, **headers: str) -> httpx.Response:
        return await self.client.get(f"/t/{token}", headers=headers)

    async def data(self, token: str, **headers: str) -> httpx.Response:
        return await self.client.get(f"/v1/tracking/{token}", headers=headers)


@asynccontextmanager
async def site(database_url: str, **settings: Any) -> AsyncIterator[Site]:
    config = Settings(
        database_url=database_url, api_keys=[KEY], public_base_url=BASE_URL, **settings
    )
    clock = FixedClock(PLACED)
    async with app_client(config, clock=clock) as client:
        yield Site(client, clock, database_url)


# --- scenarios --------------------------------------------------------------------------------


async def delivered(s: Site) -> str:
    ((sid, token),) = await s.order("D-1", [("ups", UPS)])
    await s.scans(
        sid,
        [
            (ny(2, 9), ST.INFO_RECEIVED, NEWARK),
            (ny(3, 18), ST.IN_TRANSIT, NEWARK),
            (ny(8, 7, 30), ST.OUT_FOR_DELIVERY, NEW_YORK),
            (ny(8, 14, 2), ST.DELIVERED, NEW_YORK),
        ],
        delivered_at=ny(8, 14, 2),
    )
    return token


async def delayed(s: Site, number: str) -> str:
    ((sid, token),) = await s.order("L-1", [("simulated", number)])
    await s.scans(
        sid,
        [(ny(3, 11), ST.IN_TRANSIT, NEWARK), (ny(5, 14), ST.IN_TRANSIT, NEWARK)],
        window=(date(2025, 12, 11), date(2025, 12, 11)),
    )
    return token


async def held(s: Site, number: str) -> str:
    ((sid, token),) = await s.order("X-1", [("simulated", number)])
    await s.scans(sid, [(ny(4, 10), ST.IN_TRANSIT, NEWARK), (ny(9, 9), ST.EXCEPTION, NEW_YORK)])
    return token


async def split(s: Site, numbers: list[str]) -> tuple[str, str]:
    (first, second) = await s.order("S-1", [("simulated", numbers[0]), ("simulated", numbers[1])])
    await s.scans(
        first[0],
        [(ny(3, 10), ST.IN_TRANSIT, NEWARK), (ny(8, 15, 40), ST.DELIVERED, NEW_YORK)],
        delivered_at=ny(8, 15, 40),
    )
    await s.scans(second[0], [(ny(9, 8), ST.IN_TRANSIT, Location("Edison", "NJ", None, "US"))])
    return first[1], second[1]


def text_of(html: str) -> str:
    """The page's visible words, tags removed and spaces collapsed."""
    body = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()


def by_id(html: str, element_id: str) -> str:
    """The text of the element with this id (one level of nesting is enough here)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', html, flags=re.S)
    assert match is not None, f"no #{element_id}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(2))).strip()


def assert_no_personal_data(body: str) -> None:
    for value in PERSONAL:
        assert value not in body, value
    assert "07102" not in body and "10001" not in body  # postal codes: city and region only
    assert "CARRIER JARGON" not in body and "postal_code" not in body


# --- what the customer reads ------------------------------------------------------------------


async def test_delivered_order_in_english(database_url: str) -> None:
    async with site(database_url) as s:
        token = await delivered(s)
        s.clock.advance(NOW - PLACED)
        response = await s.page(token)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert '<html lang="en">' in html
    assert by_id(html, "order-status") == "Delivered Mon 8 Dec at 14:02"
    assert 'data-status="delivered"' in html
    assert by_id(html, "promise") == "Promised at checkout Mon 8 Dec \u2013 Tue 9 Dec"
    assert 'id="estimate"' not in html and 'id="late-note"' not in html  # arrived on time
    assert by_id(html, "destination") == "Delivering to New York, NY"
    steps = re.findall(r'data-step="(\w+)" data-state="(\w+)"', html)
    assert steps == [
        ("ordered", "done"),
        ("shipped", "done"),
        ("in_transit", "done"),
        ("out_for_delivery", "done"),
        ("delivered", "done"),
    ]
    timeline = re.findall(r'<li class="event"[^>]*>(.*?)</li>', html, flags=re.S)
    assert [text_of(item) for item in timeline] == [
        "Mon 8 Dec, 14:02 Delivered New York, NY",
        "Mon 8 Dec, 07:30 Out for delivery New York, NY",
        "Wed 3 Dec, 18:00 Picked up by the carrier Newark, NJ",
        "Tue 2 Dec, 09:00 Label created Newark, NJ",
    ]
    assert '<time datetime="2025-12-08T14:02:00-05:00">' in html
    assert "UPS" in html and UPS in html
    assert_no_personal_data(html)


async def test_delayed_order_says_how_late_why_and_when(database_url: str) -> None:
    (number,) = sim_numbers(1)
    async with site(database_url) as s:
        token = await delayed(s, number)
        s.clock.advance(NOW - PLACED)
        html = (await s.page(token)).text
        data = (await s.data(token)).json()
    note = (
        "Your parcel is running 2 days late: it has not been scanned since Fri 5 Dec. "
        "We now expect it Thu 11 Dec."
    )
    assert by_id(html, "late-note") == note
    assert 'data-days-late="2" data-reason="stalled"' in html
    assert by_id(html, "order-status") == "On its way"
    assert by_id(html, "estimate") == "Expected Thu 11 Dec"
    assert by_id(html, "promise") == "Promised at checkout Mon 8 Dec \u2013 Tue 9 Dec"
    assert data["late"] == {
        "days_late": 2,
        "reason": "stalled",
        "text": note,
        "delivered": False,
    }
    assert data["estimate"]["latest"] == "2025-12-11" and data["estimate"]["source"] == "carrier"
    steps = [(st["key"], st["state"]) for st in data["shipments"][0]["steps"]]
    assert steps[2] == ("in_transit", "current") and steps[3] == ("out_for_delivery", "todo")


async def test_exception_is_shown_as_what_it_is(database_url: str) -> None:
    (number,) = sim_numbers(1)
    async with site(database_url) as s:
        token = await held(s, number)
        s.clock.advance(NOW - PLACED)
        html = (await s.page(token)).text
    assert by_id(html, "order-status") == "Held up: the carrier reported a problem"
    assert by_id(html, "late-note") == (
        "Your parcel may be delayed: the carrier has reported a problem with it. "
        "We still expect it Tue 9 Dec."
    )
    steps = re.findall(r'data-step="(\w+)" data-state="(\w+)"', html)
    assert ("exception", "problem") in steps and ("in_transit", "done") not in steps
    assert 'data-status="exception"' in html


async def test_an_order_in_two_parcels_shows_each_and_the_order_above(database_url: str) -> None:
    numbers = sim_numbers(2)
    async with site(database_url) as s:
        first, second = await split(s, numbers)
        s.clock.advance(NOW - PLACED)
        html = (await s.page(second)).text
        data = (await s.data(first)).json()
    assert by_id(html, "order-status") == "1 of 2 parcels delivered"
    assert by_id(html, "shipment-1-title") == "Parcel 1 of 2"
    assert by_id(html, "shipment-2-title") == "Parcel 2 of 2"
    assert 'id="shipment-2" data-shipment="2" data-status="in_transit" data-current="true"' in html
    assert 'id="shipment-1" data-shipment="1" data-status="delivered" data-current="false"' in html
    assert "Delivered Mon 8 Dec at 15:40" in html and "Edison, NJ" in html
    assert data["status"] == "partially_delivered"
    assert [(p["number"], p["current"], p["status"]) for p in data["shipments"]] == [
        (1, True, "delivered"),
        (2, False, "in_transit"),
    ]


async def test_portuguese_from_accept_language_and_from_the_default(database_url: str) -> None:
    (number,) = sim_numbers(1)
    async with site(database_url) as s:
        token = await delayed(s, number)
        s.clock.advance(NOW - PLACED)
        html = (await s.page(token, **{"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.5"})).text
        english = (await s.page(token, **{"Accept-Language": "en-US"})).text
    assert '<html lang="pt-BR">' in html
    assert by_id(html, "late-note") == (
        "Seu pacote está 2 dias atrasado: não há registro da transportadora desde sex., 5 de "
        "dez. Agora a previsão de entrega é qui., 11 de dez."
    )
    assert by_id(html, "order-status") == "A caminho"
    assert by_id(html, "estimate") == "Previsão de entrega qui., 11 de dez."
    assert '<html lang="en">' in english

    async with site(database_url, default_locale="pt-BR") as s:
        s.clock.advance(NOW - PLACED)
        default = (await s.page(token)).text
        asked = (await s.data(token, **{"Accept-Language": "en"})).json()
    assert '<html lang="pt-BR">' in default and "Previsão de entrega" in default
    assert asked["locale"] == "en" and asked["status_text"] == "On its way"


# --- the JSON route ---------------------------------------------------------------------------


async def test_json_is_the_same_content_without_personal_data(database_url: str) -> None:
    async with site(database_url) as s:
        token = await delivered(s)
        s.clock.advance(NOW - PLACED)
        response = await s.data(token)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert data["status"] == "delivered"
    assert data["status_text"] == "Delivered Mon 8 Dec at 14:02"
    assert data["order_id"] == "D-1" and data["destination"] == "New York, NY"
    assert data["promise"] == {
        "earliest": "2025-12-08",
        "latest": "2025-12-09",
        "text": "Mon 8 Dec \u2013 Tue 9 Dec",
        "source": None,
    }
    (parcel,) = data["shipments"]
    assert parcel["delivered_at"] == "2025-12-08T14:02:00-05:00"
    assert parcel["timeline"][0]["place"] == "New York, NY"
    assert_no_personal_data(response.text)


# --- safety -----------------------------------------------------------------------------------


async def test_unknown_and_malformed_tokens_get_the_same_404(database_url: str) -> None:
    async with site(database_url) as s:
        real = await delivered(s)
        unknown = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
        tokens = [unknown, "abc", "x" * 300, "not a token!", "%2e%2e", real.upper() + "=", "a/b"]
        pages = [await s.page(t) for t in tokens]
        datas = [await s.data(t) for t in tokens[:-1]]
    assert {p.status_code for p in pages} == {404}
    assert len({p.text for p in pages}) == 1
    assert "We could not find this tracking link" in pages[0].text
    assert pages[0].headers["content-type"].startswith("text/html")
    assert pages[0].headers["cache-control"] == "no-store"
    assert {d.status_code for d in datas} == {404}
    assert {d.headers["content-type"] for d in datas} == {PROBLEM}
    assert len({d.text for d in datas}) == 1
    assert "instance" not in datas[0].json()


async def test_a_client_over_the_limit_gets_429(database_url: str) -> None:
    async with site(database_url, tracking_rate_limit_per_minute=3) as s:
        token = await delivered(s)
        answers = [await s.page(token) for _ in range(3)]
        page = await s.page(token)
        data = await s.data("unknown-token-of-some-length")
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert page.status_code == 429
    assert "Too many requests" in page.text and int(page.headers["retry-after"]) >= 1
    assert data.status_code == 429 and data.headers["content-type"] == PROBLEM
    assert page.headers["x-frame-options"] == "DENY"


async def test_etag_and_304(database_url: str) -> None:
    async with site(database_url) as s:
        token = await delivered(s)
        s.clock.advance(NOW - PLACED)
        first = await s.page(token)
        etag = first.headers["etag"]
        again = await s.page(token, **{"If-None-Match": etag})
        other = await s.page(token, **{"If-None-Match": '"something-else"'})
        portuguese = await s.page(token, **{"Accept-Language": "pt-BR"})
        data = await s.data(token)
        data_again = await s.data(token, **{"If-None-Match": f"W/{data.headers['etag']}"})
    assert re.fullmatch(r'"[A-Za-z0-9_-]{22}"', etag)
    assert first.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=300"
    assert first.headers["vary"] == "Accept-Language"
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert again.headers["content-security-policy"] == first.headers["content-security-policy"]
    assert other.status_code == 200 and other.headers["etag"] == etag
    assert portuguese.headers["etag"] != etag
    assert data_again.status_code == 304


async def test_security_headers_and_no_script(database_url: str) -> None:
    async with site(database_url) as s:
        token = await delivered(s)
        page = await s.page(token)
        data = await s.data(token)
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp
    (style,) = re.findall(r"<style>(.*?)</style>", page.text, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp
    for response in (page, data):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    html = page.text.lower()
    assert "<script" not in html and "javascript:" not in html and " on" + "click" not in html
    assert 'name="viewport"' in html and "<main" in html and "<h1" in html


async def test_a_page_is_one_statement_and_a_malformed_token_none(database_url: str) -> None:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    async with site(database_url, run_jobs_in_api=False, history_refresh_seconds=0) as s:
        token = await delivered(s)
        transport = s.client._transport
        assert isinstance(transport, httpx.ASGITransport)
        engine = transport.app.state.services.engine.sync_engine  # type: ignore[attr-defined]
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            seen = []
            for path in (f"/t/{token}", f"/v1/tracking/{token}", f"/t/{token[:-4]}AAAA", "/t/x!"):
                statements.clear()
                answer = await s.client.get(path)
                seen.append((answer.status_code, len(statements)))
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
    assert seen == [(200, 1), (200, 1), (404, 1), (404, 0)]
