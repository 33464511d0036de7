"""The promise report page in a real browser: headless Chromium driven by Playwright.

Thirteen weeks of orders on three lanes (`reports.seed.add_history`) are written to a temporary
SQLite database; the app is served by a real uvicorn server on a free loopback port, on a clock
standing still on Monday 1 December 2025, with a report password. The page is opened as a
person would: HTTP Basic credentials given to the browser, at 360 px (a phone: touch, mobile
viewport, 2x pixels) and 1280 px, with JavaScript on and off.

What is checked is what a person sees: the headline figure is the API's, the four charts are
drawn (visible, with their numbers written in them), their text stays legible on a phone,
nothing is wider than the screen, the form changes the grouping without any script, and
without credentials the browser gets the 401 challenge. Screenshots go to
`test-output/screenshots/` (git-ignored). Browser and skips as in the tracking page's tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from reports.seed import add_history

from browser.helpers import CHROMIUM, CHROMIUM_FLAGS, SCREENSHOTS, browser_or_skip, serve
from tracking_service.app import create_app
from tracking_service.clock import FixedClock
from tracking_service.db import create_engine
from tracking_service.migrate import upgrade_if_behind
from tracking_service.reports.svg import pct
from tracking_service.settings import Settings

NOW = datetime(2025, 12, 1, 17, tzinfo=UTC)
PASSWORD = "report-viewer"
KEY = "browser-test-key"
PAGE = "/reports/promises?from=2025-09-01&to=2025-11-30"
WIDTHS = (360, 1280)
SCRIPTING = (True, False)
CHARTS = ("reliability", "weekly", "leads", "worst-lanes")
MIN_TEXT_PX = 9.0
"""The smallest chart text, in CSS pixels, a phone may show (the page's own text is 16)."""


@dataclass
class Served:
    base_url: str
    on_time_share: float


async def _seed(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_if_behind(engine)
        await add_history(engine, date(2025, 9, 1), 13, now=NOW)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app under uvicorn on a free 127.0.0.1 port, in a thread, on the seeded database."""
    browser_or_skip()
    database_url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'report.db'}"
    asyncio.run(asyncio.wait_for(_seed(database_url), timeout=120))
    settings = Settings(
        database_url=database_url,
        api_keys=[KEY],
        reports_password=PASSWORD,  # type: ignore[arg-type]
        run_jobs_in_api=False,
        log_level="warning",
    )
    app = create_app(settings, clock=FixedClock(NOW))
    with serve(app) as base:
        answer = httpx.get(
            base + PAGE.replace("/reports/", "/v1/reports/"),
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        yield Served(base, answer.json()["total"]["on_time_share"]["value"])


_MEASURE = """() => {
  const width = window.innerWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && (box.right > width + 0.5 || box.left < -0.5)) {
      wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + " " +
                Math.round(box.left) + ".." + Math.round(box.right));
    }
  }
  const charts = {};
  for (const svg of document.querySelectorAll("svg.chart")) {
    const box = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll("text")];
    charts[svg.id] = {
      width: box.width,
      height: box.height,
      marks: svg.querySelectorAll("rect.bar, circle.point").length,
      smallest_text: Math.min(...texts.map((t) => t.getBoundingClientRect().height)),
      title: svg.querySelector("title").textContent,
    };
  }
  const text = (id) => {
    const el = document.getElementById(id);
    return el ? el.innerText.replace(/\\s+/g, " ").trim() : null;
  };
  return {
    share: text("on-time-share"),
    verdict: text("verdict"),
    groups_title: text("groups-title"),
    charts,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: width,
    wide: wide.slice(0, 5),
  };
}"""


@dataclass(frozen=True)
class Visit:
    width: int
    javascript: bool

    @property
    def name(self) -> str:
        return f"reports-{self.width}-{'js' if self.javascript else 'nojs'}"


VISITS = [Visit(w, js) for w in WIDTHS for js in SCRIPTING]


def _context(visit: Visit, credentials: bool = True) -> dict[str, Any]:
    phone = visit.width < 600
    options: dict[str, Any] = {
        "viewport": {"width": visit.width, "height": 760 if phone else 900},
        "device_scale_factor": 2 if phone else 1,
        "is_mobile": phone,
        "has_touch": phone,
        "java_script_enabled": visit.javascript,
    }
    if credentials:
        options["http_credentials"] = {"username": "ops", "password": PASSWORD}
    return options


async def _open_all(served: Served) -> dict[str, Any]:
    from playwright.async_api import Browser, async_playwright
    from playwright.async_api import Error as PlaywrightError

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def read(browser: Browser, visit: Visit) -> dict[str, Any]:
        context = await browser.new_context(**_context(visit))
        try:
            page = await context.new_page()
            response = await page.goto(served.base_url + PAGE, wait_until="load", timeout=20_000)
            assert response is not None
            seen: dict[str, Any] = await page.evaluate(_MEASURE)
            seen["http_status"] = response.status
            await page.screenshot(path=SCREENSHOTS / f"{visit.name}.png", full_page=True)
            # the form, submitted as a person would (no script needed)
            await page.select_option("select[name=group_by]", "carrier")
            async with page.expect_navigation():
                await page.click("button[type=submit]")
            seen["after_form"] = await page.evaluate(_MEASURE)
            seen["after_form_url"] = page.url
            return seen
        finally:
            await context.close()

    async def anonymous(browser: Browser) -> str:
        """What a browser without the password gets: the challenge, which it cannot answer
        (Playwright's Chromium then cancels the navigation), and nothing of the report."""
        context = await browser.new_context(**_context(Visit(1280, True), credentials=False))
        try:
            page = await context.new_page()
            try:
                await page.goto(served.base_url + PAGE, timeout=20_000)
            except PlaywrightError as exc:
                return str(exc)
            return await page.content()
        finally:
            await context.close()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            *pages, refused = await asyncio.gather(
                *(read(browser, v) for v in VISITS), anonymous(browser)
            )
        finally:
            await browser.close()
    return {"pages": dict(zip(VISITS, pages, strict=True)), "anonymous": refused}


@pytest.fixture(scope="module")
def opened(served: Served) -> dict[str, Any]:
    # A browser that stops answering fails the tests instead of hanging them.
    return asyncio.run(asyncio.wait_for(_open_all(served), timeout=180))


@pytest.mark.parametrize("visit", VISITS, ids=[v.name for v in VISITS])
def test_the_page_shows_the_apis_figure_and_four_charts(
    opened: dict[str, Any], served: Served, visit: Visit
) -> None:
    seen = opened["pages"][visit]
    assert seen["http_status"] == 200
    assert seen["share"] == pct(served.on_time_share)
    assert seen["verdict"].startswith("Promises are kept less often than stated")
    assert seen["groups_title"] == "By lane"
    assert set(seen["charts"]) == set(CHARTS)
    for name, chart in seen["charts"].items():
        assert chart["width"] > 250 and chart["height"] > 80, name  # drawn, not collapsed
        assert chart["title"], name
    assert seen["charts"]["weekly"]["marks"] == 13  # a bar per week
    assert seen["charts"]["reliability"]["marks"] == 2  # the 0.9 and 0.95 promises
    assert seen["charts"]["worst-lanes"]["marks"] == 2  # Texas and California; New York: none
    assert (SCREENSHOTS / f"{visit.name}.png").stat().st_size > 0


@pytest.mark.parametrize("visit", VISITS, ids=[v.name for v in VISITS])
def test_readable_on_the_screen_without_scrolling_sideways(
    opened: dict[str, Any], visit: Visit
) -> None:
    seen = opened["pages"][visit]
    assert seen["innerWidth"] == visit.width  # a phone did not zoom out to fit a wide page
    assert seen["scrollWidth"] <= seen["innerWidth"], seen["wide"]
    assert seen["wide"] == []
    for name, chart in seen["charts"].items():
        assert chart["smallest_text"] >= MIN_TEXT_PX, name


@pytest.mark.parametrize("visit", VISITS, ids=[v.name for v in VISITS])
def test_the_form_regroups_without_script(opened: dict[str, Any], visit: Visit) -> None:
    seen = opened["pages"][visit]
    assert "group_by=carrier" in seen["after_form_url"]
    assert "from=2025-09-01" in seen["after_form_url"]
    assert seen["after_form"]["groups_title"] == "By carrier"
    assert seen["after_form"]["wide"] == []


def test_without_credentials_the_browser_is_challenged(opened: dict[str, Any]) -> None:
    assert "net::ERR_INVALID_AUTH_CREDENTIALS" in opened["anonymous"]
