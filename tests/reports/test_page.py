"""The report page's HTML (pure): the verdict, the charts inline, the form, one stylesheet."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import date, timedelta

import pytest

from tracking_service.reports.figures import build_report, figures
from tracking_service.reports.page import CSS_HASH, render_page, verdict

from .rows import AS_OF, TODAY, row, weeks_of

MONDAY = date(2025, 9, 1)


@pytest.mark.parametrize(
    ("weeks", "confidence", "kind"),
    [
        ([(9, 1), (8, 2), (10, 0), (9, 1)], 0.9, "good"),
        ([(6, 4), (5, 5), (7, 3), (6, 4)], 0.9, "short"),
        ([(10, 0), (10, 0), (9, 1), (10, 0)], 0.8, "over"),
        ([(9, 1)], 0.9, "open"),  # one week: no interval
        ([], 0.9, "open"),
    ],
)
def test_the_verdict(weeks: list[tuple[int, int]], confidence: float, kind: str) -> None:
    rows = weeks_of(MONDAY, weeks, confidence=confidence)
    assert verdict(figures("all", rows)).kind == kind


def _page(form: bool = True) -> str:
    rows = weeks_of(MONDAY, [(9, 1), (6, 4), (10, 0)], destination_region="US-TX")
    rows.append(row(TODAY - timedelta(days=1), took=None))
    report = build_report(rows, start=MONDAY, end=TODAY, group_by="destination_region", as_of=AS_OF)
    return render_page(report, form=form)


def test_the_page_inlines_four_charts_and_its_one_stylesheet() -> None:
    html = _page()
    assert html.count("<svg ") == 4
    for chart in ("reliability", "weekly", "leads", "worst-lanes"):
        assert f'id="{chart}"' in html
    [css] = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert CSS_HASH == f"sha256-{digest}"  # what the route's CSP allows
    assert "<script" not in html and " style=" not in html


def test_the_page_says_the_figures() -> None:
    html = _page()
    assert '<p class="big" id="on-time-share" data-value="0.8333333333333334">83%</p>' in html
    assert "Orders placed 1 Sep 2025 \u2013 1 Dec 2025 · as of 1 Dec 2025 17:00 UTC" in html
    assert "By destination region" in html
    assert 'data-key="US-TX"' in html and 'data-key="US-CA"' in html


def test_the_form_only_where_it_can_be_sent() -> None:
    assert '<form class="controls"' in _page(form=True)
    assert "<form" not in _page(form=False)
    assert '<option value="destination_region" selected>' in _page()
