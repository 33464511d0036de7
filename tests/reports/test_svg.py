"""The report's charts: well-formed SVG, described in words, what each shows drawn (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

import pytest

from tracking_service.reports import svg
from tracking_service.reports.figures import groups, leads, reliability, worst_lanes
from tracking_service.reports.ledger import LedgerRow

from .rows import row, weeks_of

NS = {"s": "http://www.w3.org/2000/svg"}
MONDAY = date(2025, 9, 1)


def _rows() -> list[LedgerRow]:
    rows = weeks_of(MONDAY, [(9, 1), (7, 3), (10, 0), (8, 2)], confidence=0.9)
    rows += weeks_of(MONDAY, [(5, 0), (4, 1)], confidence=0.8, destination_region="US-TX")
    rows += weeks_of(MONDAY, [(3, 3), (2, 4)], destination_region="US-<&>")  # escaped
    return rows


def parse(text: str) -> ET.Element:
    root = ET.fromstring(text)  # raises on anything that is not well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def charts() -> dict[str, str]:
    rows = _rows()
    return {
        "reliability": svg.reliability_diagram(reliability(rows)),
        "weekly": svg.weekly_chart(groups(rows, "week")),
        "leads": svg.lead_histogram(leads(rows)),
        "worst-lanes": svg.worst_lanes_chart(worst_lanes(groups(rows, "lane"))),
    }


@pytest.mark.parametrize("name", ["reliability", "weekly", "leads", "worst-lanes"])
def test_every_chart_is_accessible_and_scales(name: str) -> None:
    text = charts()[name]
    root = parse(text)
    assert root.get("viewBox", "").startswith("0 0 400 ")
    assert root.get("width") == "100%"
    assert root.get("role") == "img"
    title = root.find("s:title", NS)
    desc = root.find("s:desc", NS)
    assert title is not None and desc is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert desc.text and len(desc.text) > 40  # the numbers in words
    # nothing a strict CSP would drop or a page without script would miss
    assert "style=" not in text and "<script" not in text and "href" not in text


def test_the_reliability_diagram_has_the_diagonal_points_and_intervals() -> None:
    root = parse(charts()["reliability"])
    assert len(root.findall(".//s:line[@class='diagonal']", NS)) == 1
    points = root.findall(".//s:circle[@class='point']", NS)
    assert len(points) == 2  # the 0.8 and the 0.9 bins
    assert len(root.findall(".//s:line[@class='interval']", NS)) == 2
    shown = texts(root)
    assert "Stated confidence" in shown and "Kept on time" in shown
    assert "n=52" in shown and "n=10" in shown  # 0.9 (US-CA and US-<&>), 0.8 (US-TX)
    desc = root.find("s:desc", NS)
    assert desc is not None and "stated 80%: kept 90% of 10" in (desc.text or "")


def test_the_weekly_chart_has_a_bar_and_a_stated_tick_per_week() -> None:
    root = parse(charts()["weekly"])
    assert len(root.findall(".//s:rect[@class='bar']", NS)) == 4
    assert len(root.findall(".//s:line[@class='stated']", NS)) == 4
    assert "1 Sep" in texts(root)


def test_an_open_week_is_marked_open() -> None:
    rows = [*weeks_of(MONDAY, [(9, 1)]), row(date(2025, 11, 25), took=None, lead=9)]
    root = parse(svg.weekly_chart(groups(rows, "week")))
    assert len(root.findall(".//s:rect[@class='bar']", NS)) == 1
    assert "open" in texts(root)


def test_the_lead_histogram_draws_promised_and_delivered() -> None:
    root = parse(charts()["leads"])
    promised = root.findall(".//s:rect[@class='bar bar--promised']", NS)
    delivered = root.findall(".//s:rect[@class='bar bar--delivered']", NS)
    assert len(promised) == 1  # every order was promised in 4 days
    assert len(delivered) == 2  # delivered in 3 or 6
    assert "promised (62)" in texts(root) and "delivered (62)" in texts(root)


def test_the_worst_lanes_name_each_lane_with_its_misses() -> None:
    root = parse(charts()["worst-lanes"])
    names = [t for t in texts(root) if "->" in t]
    assert names == ["nyc-queens -> US-<&>", "nyc-queens -> US-CA", "nyc-queens -> US-TX"]
    assert "7 of 12 late · 58%" in texts(root)
    assert len(root.findall(".//s:line[@class='allowed']", NS)) == 3


@pytest.mark.parametrize(
    ("draw", "empty"),
    [
        (svg.reliability_diagram, ()),
        (svg.weekly_chart, ()),
        (svg.worst_lanes_chart, ()),
        (svg.lead_histogram, leads([])),
    ],
)
def test_charts_of_nothing_say_so(draw: Any, empty: Any) -> None:
    root = parse(draw(empty))
    [message] = root.findall(".//s:text[@class='empty']", NS)
    assert message.text and message.text.startswith("No ")


def test_pct() -> None:
    assert (svg.pct(0.873), svg.pct(1.0), svg.pct(None)) == ("87%", "100%", "-")
