"""The customer's tracking page in a real browser: headless Chromium driven by Playwright.

The orders are the scenarios of the HTTP tests (`api.test_tracking_page`: a delivered, a
delayed, an exception and a two-parcel order), registered through the back office and the
worker's store on a temporary SQLite database. The app is then served by a real uvicorn server
on a free loopback port, on a clock standing still at the same instant as those tests (Tuesday
9 December 2025, 16:00 in New York), and every page is opened at 360 px (a phone: touch,
mobile viewport, 2x pixels) and 1280 px, in English and Brazilian Portuguese (the browser's
locale, hence its `Accept-Language`), with JavaScript on and off: 32 pages.

What is checked is what a customer reads (`innerText`, after CSS): the status, the estimate
and the promise, the late note; that nothing is wider than the screen; and that no personal
data (name, street, email, phone, postal code) nor carrier jargon is in the page. Every page
is saved as a full-page screenshot under `test-output/screenshots/` (git-ignored).

The browser is Debian's Chromium at `/usr/bin/chromium` (or `$CHROMIUM`): Playwright's own
browser download is never used. `make test` installs the package when it is missing and it can
(root and apt-get); where no browser can be installed these tests are skipped with that
reason, except under CI (`CI` set), where a missing browser is an error. One browser serves
the module and the pages are opened in parallel, one browser context each: a few seconds.
"""

from __future__ import annotations

import asyncio
import faulthandler
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from api.test_tracking_page import (  # the HTTP tests' scenarios, reused as they are
    NOW,
    PERSONAL,
    delayed,
    delivered,
    held,
    sim_numbers,
    site,
    split,
)

from browser.helpers import CHROMIUM, CHROMIUM_FLAGS, SCREENSHOTS, browser_or_skip, serve
from tracking_service.app import create_app
from tracking_service.clock import FixedClock
from tracking_service.settings import Settings

SCENARIOS = ("delivered", "delayed", "exception", "two_parcels")
WIDTHS = (360, 1280)
LOCALES = ("en", "pt-BR")
SCRIPTING = (True, False)


# --- the server ---------------------------------------------------------------------------------


async def _seed(database_url: str) -> dict[str, str]:
    """The four orders, registered as in the HTTP tests; the token of each page to open."""
    numbers = sim_numbers(4)
    async with site(database_url) as s:
        tokens = {
            "delivered": await delivered(s),
            "delayed": await delayed(s, numbers[0]),
            "exception": await held(s, numbers[1]),
        }
        _, tokens["two_parcels"] = await split(s, numbers[2:])
    return tokens


@dataclass
class Served:
    base_url: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app under uvicorn on a free 127.0.0.1 port, in a thread, on the seeded database."""
    browser_or_skip()
    database_url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'pages.db'}"
    # Should anything here stop answering, the stacks are printed after 4 minutes.
    faulthandler.dump_traceback_later(240)
    try:
        yield from _serve(database_url)
    finally:
        faulthandler.cancel_dump_traceback_later()


def _serve(database_url: str) -> Iterator[Served]:
    tokens = asyncio.run(asyncio.wait_for(_seed(database_url), timeout=120))
    settings = Settings(
        database_url=database_url,
        run_jobs_in_api=False,  # nothing polls the carriers while the pages are read
        tracking_rate_limit_per_minute=0,  # 32 pages from one address in a few seconds
        log_level="warning",
    )
    app = create_app(settings, clock=FixedClock(NOW))
    with serve(app) as base_url:
        yield Served(base_url, tokens)


# --- the browser --------------------------------------------------------------------------------

_MEASURE = """() => {
  const text = (id) => {
    const el = document.getElementById(id);
    return el ? el.innerText.replace(/\\s+/g, " ").trim() : null;
  };
  const width = window.innerWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && (box.right > width + 0.5 || box.left < -0.5)) {
      wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                (el.className ? "." + String(el.className).split(" ").join(".") : "") +
                " " + Math.round(box.left) + ".." + Math.round(box.right));
    }
  }
  return {
    lang: document.documentElement.lang,
    status: text("order-status"),
    estimate: text("estimate"),
    promise: text("promise"),
    late: text("late-note"),
    parcels: [...document.querySelectorAll("[data-shipment]")].map(
      (el) => el.getAttribute("data-status")),
    body: document.body.innerText,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: width,
    wide: wide.slice(0, 5),
  };
}"""


@dataclass(frozen=True)
class Visit:
    scenario: str
    width: int
    locale: str
    javascript: bool

    @property
    def name(self) -> str:
        js = "js" if self.javascript else "nojs"
        return f"{self.scenario}-{self.width}-{self.locale}-{js}"


VISITS = [
    Visit(scenario, width, locale, js)
    for scenario in SCENARIOS
    for width in WIDTHS
    for locale in LOCALES
    for js in SCRIPTING
]


def _context_options(visit: Visit) -> dict[str, Any]:
    phone = visit.width < 600
    return {
        "viewport": {"width": visit.width, "height": 760 if phone else 900},
        "device_scale_factor": 2 if phone else 1,
        "is_mobile": phone,
        "has_touch": phone,
        "locale": visit.locale,
        "java_script_enabled": visit.javascript,
    }


async def _open_all(served: Served) -> tuple[dict[Visit, dict[str, Any]], dict[str, Any]]:
    """Open every page and measure what it shows: one browser, one context per screen width,
    language and scripting, the contexts in parallel, each reading the four orders in turn.

    Screenshots are taken with JavaScript on (the page has no script: with it off it renders
    the same, which the tests check on its text). Also opens, with JavaScript off, a page whose
    script would change its title: the proof that the "off" contexts really run no script."""
    from playwright.async_api import Browser, async_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def read(browser: Browser, visits: list[Visit]) -> list[dict[str, Any]]:
        context = await browser.new_context(**_context_options(visits[0]))
        try:
            page = await context.new_page()
            out = []
            for v in visits:
                url = f"{served.base_url}/t/{served.tokens[v.scenario]}"
                response = await page.goto(url, wait_until="load", timeout=20_000)
                assert response is not None
                seen: dict[str, Any] = await page.evaluate(_MEASURE)
                seen["http_status"] = response.status
                seen["html"] = await page.content()
                if v.javascript:
                    await page.screenshot(path=SCREENSHOTS / f"{v.name}.png", full_page=True)
                out.append(seen)
            return out
        finally:
            await context.close()

    async def scripts_off(browser: Browser) -> dict[str, Any]:
        context = await browser.new_context(java_script_enabled=False)
        try:
            page = await context.new_page()
            await page.goto("data:text/html,<title>off</title><script>document.title='on'</script>")
            return {"title": await page.title()}
        finally:
            await context.close()

    groups: dict[tuple[int, str, bool], list[Visit]] = {}
    for v in VISITS:
        groups.setdefault((v.width, v.locale, v.javascript), []).append(v)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            *read_groups, probe = await asyncio.gather(
                *(read(browser, visits) for visits in groups.values()), scripts_off(browser)
            )
        finally:
            await browser.close()
    seen = {
        v: page
        for visits, pages in zip(groups.values(), read_groups, strict=True)
        for v, page in zip(visits, pages, strict=True)
    }
    return seen, probe


@pytest.fixture(scope="module")
def opened(served: Served) -> tuple[dict[Visit, dict[str, Any]], dict[str, Any]]:
    # A browser that stops answering fails the tests instead of hanging them.
    return asyncio.run(asyncio.wait_for(_open_all(served), timeout=180))


@pytest.fixture
def pages(
    opened: tuple[dict[Visit, dict[str, Any]], dict[str, Any]],
) -> dict[Visit, dict[str, Any]]:
    return opened[0]


# --- what the customer reads ---------------------------------------------------------------------

EXPECTED: dict[tuple[str, str], dict[str, Any]] = {
    ("delivered", "en"): {
        "status": "Delivered Mon 8 Dec at 14:02",
        "estimate": None,
        "late": None,
        "parcels": ["delivered"],
    },
    ("delivered", "pt-BR"): {
        "status": "Entregue seg., 8 de dez. às 14:02",
        "estimate": None,
        "late": None,
        "parcels": ["delivered"],
    },
    ("delayed", "en"): {
        "status": "On its way",
        "estimate": "Expected Thu 11 Dec",
        "late": "Your parcel is running 2 days late: it has not been scanned since Fri 5 Dec. "
        "We now expect it Thu 11 Dec.",
        "parcels": ["in_transit"],
    },
    ("delayed", "pt-BR"): {
        "status": "A caminho",
        "estimate": "Previsão de entrega qui., 11 de dez.",
        "late": "Seu pacote está 2 dias atrasado: não há registro da transportadora desde sex., "
        "5 de dez. Agora a previsão de entrega é qui., 11 de dez.",
        "parcels": ["in_transit"],
    },
    ("exception", "en"): {
        "status": "Held up: the carrier reported a problem",
        "estimate": "Expected Tue 9 Dec",
        "late": "Your parcel may be delayed: the carrier has reported a problem with it. "
        "We still expect it Tue 9 Dec.",
        "parcels": ["exception"],
    },
    ("exception", "pt-BR"): {
        "status": "Retido: a transportadora informou um problema",
        "estimate": "Previsão de entrega ter., 9 de dez.",
        "late": "Seu pacote pode atrasar: a transportadora informou um problema com ele. "
        "A previsão de entrega continua ter., 9 de dez.",
        "parcels": ["exception"],
    },
    ("two_parcels", "en"): {
        "status": "1 of 2 parcels delivered",
        "estimate": "Expected Tue 9 Dec",
        "late": None,
        "parcels": ["delivered", "in_transit"],
    },
    ("two_parcels", "pt-BR"): {
        "status": "1 de 2 pacotes entregues",
        "estimate": "Previsão de entrega ter., 9 de dez.",
        "late": None,
        "parcels": ["delivered", "in_transit"],
    },
}
PROMISES = {
    "en": "Promised at checkout Mon 8 Dec \u2013 Tue 9 Dec",
    "pt-BR": "Prometido na compra seg., 8 de dez. \u2013 ter., 9 de dez.",
}


@pytest.mark.parametrize("visit", VISITS, ids=[v.name for v in VISITS])
def test_the_customer_reads_status_dates_and_the_late_note(
    pages: dict[Visit, dict[str, Any]], visit: Visit
) -> None:
    seen = pages[visit]
    expected = EXPECTED[(visit.scenario, visit.locale)]
    assert seen["http_status"] == 200
    assert seen["lang"] == visit.locale
    assert seen["status"] == expected["status"]
    assert seen["estimate"] == expected["estimate"]
    assert seen["promise"] == PROMISES[visit.locale]
    assert seen["late"] == expected["late"]
    assert seen["parcels"] == expected["parcels"]
    if visit.javascript:
        assert (SCREENSHOTS / f"{visit.name}.png").stat().st_size > 0
    else:  # the same words without JavaScript
        assert seen["body"] == pages[Visit(**{**visit.__dict__, "javascript": True})]["body"]


@pytest.mark.parametrize("visit", VISITS, ids=[v.name for v in VISITS])
def test_nothing_is_wider_than_the_screen(pages: dict[Visit, dict[str, Any]], visit: Visit) -> None:
    seen = pages[visit]
    assert seen["innerWidth"] == visit.width  # a phone did not zoom out to fit a wide page
    assert seen["scrollWidth"] <= seen["innerWidth"], seen["wide"]
    assert seen["wide"] == []


@pytest.mark.parametrize("visit", VISITS, ids=[v.name for v in VISITS])
def test_no_personal_data_nor_carrier_jargon(
    pages: dict[Visit, dict[str, Any]], visit: Visit
) -> None:
    seen = pages[visit]
    for shown in (seen["body"], seen["html"]):
        for value in (*PERSONAL, "Ada", "+1 212", "07102", "10001", "CARRIER JARGON"):
            assert value not in shown, value
    assert re.search(r"\bX\d\b", seen["body"]) is None  # the carrier's raw codes


def test_the_pages_without_javascript_really_ran_none(
    opened: tuple[dict[Visit, dict[str, Any]], dict[str, Any]],
) -> None:
    assert opened[1]["title"] == "off"
