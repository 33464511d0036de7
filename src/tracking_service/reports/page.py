"""The promise report as one HTML page: headline, charts (inline SVG), tables; no script.

The same page is served at `GET /reports/promises` and written by `tracking-service report
promises --html FILE`. Its one stylesheet is inline and allowed by its hash (`CSS_HASH`) in the
route's Content-Security-Policy; the charts use no `style` attribute, so nothing else needs
allowing. The form that changes the range and the grouping is a plain GET form (left out of a
file written by the command, where it has nowhere to go).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from markupsafe import Markup

from tracking_service.estimator.bootstrap import Interval
from tracking_service.pages import PAGE_TEMPLATES, stylesheet
from tracking_service.reports import svg
from tracking_service.reports.figures import GROUP_BY, GroupFigures, PromiseReport

CSS, CSS_HASH = stylesheet("reports/reports.css")
_PAGE = PAGE_TEMPLATES.get_template("reports/promises.html")

GROUP_LABELS = {
    "lane": "Lane",
    "carrier": "Carrier",
    "option": "Shipping option",
    "origin": "Origin",
    "destination_region": "Destination region",
    "week": "Order week",
}


def day(d: date) -> str:
    """1 Sep 2025."""
    return f"{d.day} {d.strftime('%b %Y')}"


def days(x: float | None) -> str:
    """2.35 -> "2.4 d"; None -> "-"."""
    return "-" if x is None else f"{x:.1f} d"


def interval(i: Interval) -> str:
    """The interval as "83-91%" (with an en dash), or "" when there are too few weeks."""
    if i.low is None or i.high is None:
        return ""
    return f"{i.low * 100:.0f}\u2013{svg.pct(i.high)}"


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str  # good, short, over, open
    text: str


def verdict(total: GroupFigures) -> Verdict:
    """Is the word kept? The stated confidence against the on-time share's interval."""
    share, stated = total.on_time_share, total.stated_confidence
    if share.value is None or stated is None:
        return Verdict("open", "No promise in this range has reached its latest date yet.")
    if share.low is None or share.high is None:
        return Verdict(
            "open",
            "One week of orders only: too little to tell whether the stated confidence holds.",
        )
    if share.high < stated:
        return Verdict(
            "short",
            f"Promises are kept less often than stated: {svg.pct(share.value)} on time against "
            f"{svg.pct(stated)} stated, and even the interval's top ({svg.pct(share.high)}) "
            "falls short.",
        )
    if share.low > stated:
        return Verdict(
            "over",
            f"Promises are kept more often than stated ({svg.pct(share.value)} against "
            f"{svg.pct(stated)}): they could be shorter and still be true.",
        )
    return Verdict(
        "good",
        f"The word is kept: {svg.pct(share.value)} on time against {svg.pct(stated)} stated, "
        "within the interval.",
    )


def render_page(report: PromiseReport, *, form: bool = True) -> str:
    """The page of `report`; `form`: include the range and grouping form (served page)."""
    return _PAGE.render(
        css=Markup(CSS),
        report=report,
        form=form,
        group_by_choices=[(g, GROUP_LABELS[g]) for g in GROUP_BY],
        group_label=GROUP_LABELS.get(report.group_by, report.group_by),
        verdict=verdict(report.total),
        charts={
            "reliability": Markup(svg.reliability_diagram(report.reliability)),
            "weekly": Markup(svg.weekly_chart(report.weeks)),
            "leads": Markup(svg.lead_histogram(report.leads)),
            "worst_lanes": Markup(svg.worst_lanes_chart(report.worst_lanes)),
        },
        pct=svg.pct,
        days=days,
        day=day,
        interval=interval,
        as_of=_as_of(report.as_of),
    )


def _as_of(instant: datetime) -> str:
    return f"{instant.day} {instant.strftime('%b %Y %H:%M')} UTC"
