"""The promise report's charts as SVG text (pure): no script, no external file.

Each chart is one `<svg>` element meant to be inlined in the page (or opened on its own): a
`viewBox` and `width="100%"` so it scales to the screen, `role="img"` with a `<title>` and a
`<desc>` that say what it shows in words, and the numbers written on the chart as text, so it
reads without hovering. Colours are presentation attributes, not `style` attributes, which a
strict Content-Security-Policy would drop. The drawing is sized for a phone (a 400-unit wide
box: text of 12 units stays legible at 360 px) and simply grows on a desktop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from xml.sax.saxutils import escape, quoteattr

from tracking_service.reports.figures import GroupFigures, LeadDistribution, ReliabilityBin

WIDTH = 400
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
INK = "#1b1f24"
MUTED = "#4a5260"
GRID = "#d5d9df"
KEPT = "#1d7a46"
MISSED = "#b3261e"
PROMISED = "#0b4f96"
DELIVERED = "#a85800"


def pct(x: float | None) -> str:
    """0.873 -> "87%"; None -> "-"."""
    return "-" if x is None else f"{x * 100:.0f}%"


class _Chart:
    """Accumulates the elements of one chart."""

    def __init__(self, chart_id: str, height: int, title: str, desc: str) -> None:
        self.id = chart_id
        self.height = height
        self.title = title
        self.desc = desc
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(
        self,
        x: float,
        y: float,
        words: str,
        *,
        anchor: str = "start",
        size: int = 12,
        fill: str = INK,
        weight: str | None = None,
        cls: str | None = None,
    ) -> None:
        extra = f' font-weight="{weight}"' if weight else ""
        extra += f" class={quoteattr(cls)}" if cls else ""
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{fill}"{extra}>{escape(words)}</text>'
        )

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        *,
        stroke: str = GRID,
        width: float = 1,
        dash: str | None = None,
        cls: str | None = None,
    ) -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        extra += f" class={quoteattr(cls)}" if cls else ""
        self.add(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{stroke}" stroke-width="{width}"{extra}/>'
        )

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        *,
        fill: str,
        cls: str | None = None,
        label: str | None = None,
    ) -> None:
        extra = f" class={quoteattr(cls)}" if cls else ""
        inner = f"<title>{escape(label)}</title>" if label else ""
        self.add(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
            f'fill="{fill}"{extra}>{inner}</rect>'
        )

    def render(self) -> str:
        title_id, desc_id = f"{self.id}-title", f"{self.id}-desc"
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" id="{self.id}" class="chart" '
            f'viewBox="0 0 {WIDTH} {self.height}" width="100%" role="img" '
            f'aria-labelledby="{title_id} {desc_id}" font-family={quoteattr(FONT)}>'
            f'<title id="{title_id}">{escape(self.title)}</title>'
            f'<desc id="{desc_id}">{escape(self.desc)}</desc>' + "".join(self.parts) + "</svg>"
        )


def _empty(chart: _Chart, message: str) -> str:
    chart.text(WIDTH / 2, chart.height / 2, message, anchor="middle", fill=MUTED, cls="empty")
    return chart.render()


def _short_date(day: date) -> str:
    return f"{day.day} {day.strftime('%b')}"


# --- reliability diagram ------------------------------------------------------------------------


def reliability_diagram(bins: Sequence[ReliabilityBin], chart_id: str = "reliability") -> str:
    """Stated confidence (x) against the share kept on time (y), one point per confidence bin
    with its 90% interval as a vertical bar; the dashed diagonal is "kept as often as said"."""
    height = 400
    left, right, top, bottom = 52, 16, 16, 56
    said = "; ".join(
        f"stated {pct(b.stated)}: kept {pct(b.observed.value)} of {b.resolved}"
        + (
            f" (90% interval {pct(b.observed.low)} to {pct(b.observed.high)})"
            if b.observed.low is not None
            else ""
        )
        for b in bins
    )
    chart = _Chart(
        chart_id,
        height,
        "Reliability: stated confidence against promises kept",
        "Each point is a group of resolved orders by the confidence stated at checkout; on "
        "the dashed diagonal the promise is kept exactly as often as stated, below it less "
        "often. " + (said + "." if said else "No resolved orders."),
    )
    if not bins:
        return _empty(chart, "No resolved orders in this range")
    values = [b.stated for b in bins] + [
        v for b in bins for v in (b.observed.value, b.observed.low) if v is not None
    ]
    lo = min(0.5, math.floor(min(values) * 10) / 10)
    span = 1.0 - lo
    plot_w, plot_h = WIDTH - left - right, height - top - bottom

    def x(v: float) -> float:
        return left + (v - lo) / span * plot_w

    def y(v: float) -> float:
        return top + (1.0 - v) / span * plot_h

    steps = round(span / 0.1)
    for i in range(steps + 1):
        v = lo + i * 0.1
        chart.line(x(v), top, x(v), top + plot_h)
        chart.line(left, y(v), left + plot_w, y(v))
        chart.text(x(v), top + plot_h + 16, pct(v), anchor="middle", size=11, fill=MUTED)
        chart.text(left - 6, y(v) + 4, pct(v), anchor="end", size=11, fill=MUTED)
    chart.line(x(lo), y(lo), x(1.0), y(1.0), stroke=MUTED, width=1.5, dash="6 4", cls="diagonal")
    chart.text(left + plot_w / 2, height - 12, "Stated confidence", anchor="middle", weight="600")
    chart.add(
        f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" font-size="12" '
        f'font-weight="600" fill="{INK}" transform="rotate(-90 14 {top + plot_h / 2:.1f})">'
        "Kept on time</text>"
    )
    for b in bins:
        value = b.observed.value
        if value is None:
            continue
        colour = KEPT if value >= b.stated else MISSED
        cx = x(b.stated)
        if b.observed.low is not None and b.observed.high is not None:
            y1, y2 = y(b.observed.low), y(b.observed.high)
            chart.line(cx, y1, cx, y2, stroke=colour, width=2.5, cls="interval")
            chart.line(cx - 5, y1, cx + 5, y1, stroke=colour, width=2.5)
            chart.line(cx - 5, y2, cx + 5, y2, stroke=colour, width=2.5)
        chart.add(
            f'<circle cx="{cx:.1f}" cy="{y(value):.1f}" r="5.5" fill="{colour}" '
            f'stroke="#fff" stroke-width="1.5" class="point"><title>'
            f"{escape(f'stated {pct(b.stated)}: kept {pct(value)} of {b.resolved}')}"
            "</title></circle>"
        )
        above = y(b.observed.high if b.observed.high is not None else value) - 8
        below = y(b.observed.low if b.observed.low is not None else value) + 17
        chart.text(cx, above, pct(value), anchor="middle", size=11, weight="600", cls="point-label")
        chart.text(cx, below, f"n={b.resolved}", anchor="middle", size=10, fill=MUTED)
    return chart.render()


# --- on-time share by week ---------------------------------------------------------------------


def weekly_chart(weeks: Sequence[GroupFigures], chart_id: str = "weekly") -> str:
    """Per order week, a bar of the share kept on time (resolved orders) and a tick at the
    stated confidence; weeks with nothing resolved yet are marked "open"."""
    height = 250
    left, right, top, bottom = 44, 8, 28, 40
    said = "; ".join(
        f"week of {w.key}: "
        + (
            f"kept {pct(w.on_time_share.value)} of {w.resolved}, stated {pct(w.stated_confidence)}"
            if w.resolved
            else "nothing resolved yet"
        )
        for w in weeks
    )
    chart = _Chart(
        chart_id,
        height,
        "Promises kept on time, by order week",
        "Bars: share of resolved orders delivered by the latest promised date, by the week "
        "the order was placed; dark ticks: the confidence stated for them. "
        + (said + "." if said else "No orders."),
    )
    if not weeks:
        return _empty(chart, "No orders in this range")
    plot_w, plot_h = WIDTH - left - right, height - top - bottom

    def y(v: float) -> float:
        return top + (1.0 - v) * plot_h

    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        chart.line(left, y(v), left + plot_w, y(v))
        chart.text(left - 6, y(v) + 4, pct(v), anchor="end", size=11, fill=MUTED)
    slot = plot_w / len(weeks)
    bar = min(28.0, slot * 0.7)
    every = max(1, math.ceil(len(weeks) / 7))
    chart.rect(left, 6, 10, 10, fill=KEPT)
    chart.text(left + 14, 15, "kept on time", size=11)
    chart.line(left + 110, 11, left + 124, 11, stroke=INK, width=3)
    chart.text(left + 128, 15, "stated confidence", size=11)
    for i, w in enumerate(weeks):
        cx = left + slot * (i + 0.5)
        share = w.on_time_share.value
        if share is not None:
            chart.rect(
                cx - bar / 2,
                y(share),
                bar,
                y(0.0) - y(share),
                fill=KEPT,
                cls="bar",
                label=f"week of {w.key}: kept {pct(share)} of {w.resolved}",
            )
            if len(weeks) <= 13 and share >= 0.12:  # inside the bar's top, clear of the tick
                chart.text(
                    cx,
                    y(share) + 13,
                    pct(share),
                    anchor="middle",
                    size=9 if len(weeks) > 9 else 10,
                    fill="#fff",
                    cls="bar-label",
                )
        else:
            chart.text(cx, y(0.0) - 6, "open", anchor="middle", size=10, fill=MUTED)
        if w.stated_confidence is not None:
            s = y(w.stated_confidence)
            chart.line(cx - bar / 2 - 2, s, cx + bar / 2 + 2, s, stroke=INK, width=3, cls="stated")
        if i % every == 0:
            chart.text(
                cx,
                height - bottom + 16,
                _short_date(date.fromisoformat(w.key)),
                anchor="middle",
                size=11,
                fill=MUTED,
            )
    chart.text(left + plot_w / 2, height - 6, "Week the order was placed", anchor="middle")
    return chart.render()


# --- promised and delivered leads --------------------------------------------------------------


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(s * magnitude for s in (1.0, 2.0, 2.5, 5.0, 10.0) if value <= s * magnitude)


def lead_histogram(leads: LeadDistribution, chart_id: str = "leads") -> str:
    """Resolved orders by lead time in days: promised (order date to latest date) beside
    delivered (order date to delivery)."""
    height = 250
    left, right, top, bottom = 44, 8, 30, 40
    promised_n, delivered_n = sum(leads.promised), sum(leads.delivered)
    last = len(leads.promised) - 1
    chart = _Chart(
        chart_id,
        height,
        "Promised lead against delivered lead",
        f"Resolved orders by days from the order date: {promised_n} promised (to the latest "
        f"date), {delivered_n} delivered (to the delivery)"
        + (f", {leads.undelivered} not delivered" if leads.undelivered else "")
        + f"; the last column is {last} days or more.",
    )
    if promised_n == 0:
        return _empty(chart, "No resolved orders in this range")
    used = max(
        [i for i, n in enumerate(leads.promised) if n]
        + [i for i, n in enumerate(leads.delivered) if n]
    )
    days = max(used + 1, 5)
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    top_count = _nice_max(max(max(leads.promised), max(leads.delivered)))

    def y(n: float) -> float:
        return top + (1.0 - n / top_count) * plot_h

    for i in range(5):
        n = top_count * i / 4
        chart.line(left, y(n), left + plot_w, y(n))
        label = f"{n:.0f}" if n == int(n) else f"{n:.1f}"
        chart.text(left - 6, y(n) + 4, label, anchor="end", size=11, fill=MUTED)
    chart.rect(left, 8, 10, 10, fill=PROMISED)
    chart.text(left + 14, 17, f"promised ({promised_n})", size=11)
    chart.rect(left + 130, 8, 10, 10, fill=DELIVERED)
    chart.text(left + 144, 17, f"delivered ({delivered_n})", size=11)
    slot = plot_w / days
    bar = max(1.5, slot * 0.4)
    every = max(1, math.ceil(days / 11))
    for d in range(days):
        x0 = left + slot * d + slot / 2
        more = "+" if d == last else ""
        for offset, counts, colour, what in (
            (-bar, leads.promised, PROMISED, "promised"),
            (0.0, leads.delivered, DELIVERED, "delivered"),
        ):
            n = counts[d] if d < len(counts) else 0
            if n:
                chart.rect(
                    x0 + offset,
                    y(n),
                    bar,
                    y(0) - y(n),
                    fill=colour,
                    cls=f"bar bar--{what}",
                    label=f"{n} {what} in {d}{more} days",
                )
        if d % every == 0:
            chart.text(x0, height - bottom + 16, f"{d}{more}", anchor="middle", size=11, fill=MUTED)
    chart.text(left + plot_w / 2, height - 6, "Days after the order date", anchor="middle")
    return chart.render()


# --- the lanes that miss most ------------------------------------------------------------------


def worst_lanes_chart(lanes: Sequence[GroupFigures], chart_id: str = "worst-lanes") -> str:
    """One bar per lane: the share of resolved orders that came late, with its 90% interval,
    and a tick at the share the stated confidence allows (1 - confidence)."""
    row_h = 44
    top, bottom, left, right = 26, 8, 8, 8
    height = top + bottom + row_h * max(len(lanes), 1)
    said = "; ".join(
        f"{g.key}: {g.late} of {g.resolved} late ({pct(g.miss_share.value)}), "
        f"stated confidence allows {pct(1 - (g.stated_confidence or 0))}"
        for g in lanes
    )
    chart = _Chart(
        chart_id,
        height,
        "The lanes that miss most",
        "Share of resolved orders delivered late (or not yet delivered) after the latest "
        "promised date, per lane, with its 90% interval; the dark tick is the share the "
        "stated confidence allows. " + (said + "." if said else "No lane misses."),
    )
    if not lanes:
        return _empty(chart, "No lane with misses among enough resolved orders")
    plot_w = WIDTH - left - right
    highs = [g.miss_share.high or g.miss_share.value or 0.0 for g in lanes]
    allowed = [1 - (g.stated_confidence or 1.0) for g in lanes]
    top_share = min(1.0, _nice_max(max(highs + allowed)))

    def x(v: float) -> float:
        return left + v / top_share * plot_w

    chart.rect(left, 6, 10, 10, fill=MISSED)
    chart.text(left + 14, 15, "late, 90% interval", size=11)
    chart.line(left + 136, 5, left + 136, 17, stroke=INK, width=3)
    chart.text(left + 142, 15, "allowed by the stated confidence", size=11)
    for i, g in enumerate(lanes):
        y0 = top + i * row_h
        miss = g.miss_share
        chart.text(left, y0 + 13, g.key, weight="600", cls="lane-name")
        chart.text(
            left + plot_w,
            y0 + 13,
            f"{g.late} of {g.resolved} late · {pct(miss.value)}",
            anchor="end",
            size=11,
            fill=MUTED,
        )
        chart.rect(left, y0 + 20, plot_w, 14, fill="#eef0f3")
        chart.rect(
            left,
            y0 + 20,
            x(miss.value or 0.0) - left,
            14,
            fill=MISSED,
            cls="bar",
            label=f"{g.key}: {pct(miss.value)} late",
        )
        if miss.low is not None and miss.high is not None:
            chart.line(x(miss.low), y0 + 27, x(miss.high), y0 + 27, stroke=INK, width=1.5)
            for v in (miss.low, miss.high):
                chart.line(x(v), y0 + 22, x(v), y0 + 32, stroke=INK, width=1.5)
        if g.stated_confidence is not None:
            a = x(1 - g.stated_confidence)
            chart.line(a, y0 + 17, a, y0 + 37, stroke=INK, width=3, cls="allowed")
    return chart.render()
