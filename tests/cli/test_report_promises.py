"""`tracking-service report promises` (both databases): table, --json, --html, bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from reports.seed import add_history
from typer.testing import CliRunner

from tracking_service.cli import app
from tracking_service.db import create_engine, unit_of_work
from tracking_service.models.base import utcnow
from tracking_service.models.clock import ClockAnchor
from tracking_service.settings import get_settings

runner = CliRunner()
NOW = datetime(2025, 12, 1, 17, tzinfo=UTC)  # Mon 1 Dec, noon in New York
RANGE = ["--from", "2025-09-01", "--to", "2025-11-30"]


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


async def _seed(url: str) -> int:
    """13 weeks of orders, and the deployment's clock anchored at NOW (as a demo's is)."""
    engine = create_engine(url)
    try:
        async with unit_of_work(engine) as session:
            session.add(ClockAnchor(real_at=utcnow(), simulated_at=NOW, speed=1.0))
        return await add_history(engine, date(2025, 9, 1), 13, now=NOW)
    finally:
        await engine.dispose()


@pytest.fixture
def seeded(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("TRACKING_DATABASE_URL", database_url)
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "warning")
    monkeypatch.setenv("COLUMNS", "100")
    get_settings.cache_clear()
    yield asyncio.run(_seed(database_url))
    get_settings.cache_clear()


def test_the_table(seeded: int) -> None:
    code, out = run("report", "promises", *RANGE)
    assert code == 0, out
    lines = out.splitlines()
    assert (
        lines[0] == "Promises of orders placed 2025-09-01 to 2025-11-30 (as of 2025-12-01T17:00Z)"
    )
    assert lines[1].startswith("Kept on time: ") and f"{seeded} orders" in lines[1]
    assert "By lane" in out
    for lane in ("nyc-queens -> US-CA", "nyc-queens -> US-TX", "nyc-queens -> US-NY"):
        assert lane in out
    assert "Lanes that miss most: nyc-queens -> US-TX" in out


def test_json_is_the_api_answer(seeded: int) -> None:
    code, out = run("report", "promises", *RANGE, "--group-by", "carrier", "--json")
    assert code == 0, out
    body = json.loads(out)
    assert (body["from"], body["to"], body["group_by"]) == ("2025-09-01", "2025-11-30", "carrier")
    assert body["as_of"].startswith("2025-12-01T17:0")  # the deployment's clock
    assert body["total"]["orders"] == seeded
    assert {g["key"] for g in body["groups"]} == {"ups", "usps"}
    assert set(body) == {
        "from",
        "to",
        "group_by",
        "as_of",
        "total",
        "groups",
        "reliability",
        "weeks",
        "leads",
        "worst_lanes",
    }


def test_the_default_range_ends_today_on_the_deployments_clock(seeded: int) -> None:
    code, out = run("report", "promises", "--json")
    assert code == 0, out
    body = json.loads(out)
    assert (body["from"], body["to"]) == ("2025-09-03", "2025-12-01")


def test_html_writes_the_page(seeded: int, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    code, out = run("report", "promises", *RANGE, "--html", str(target))
    assert code == 0, out
    assert out.strip() == f"wrote {target}: {seeded} orders placed 2025-09-01 to 2025-11-30"
    html = target.read_text("utf-8")
    assert html.startswith("<!doctype html>")
    assert html.count("<svg ") == 4
    assert "<form" not in html  # nowhere to send it from a file


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "1 Sep"], "error: --from: '1 Sep' is not a date; write it YYYY-MM-DD"),
        (["--to", "2025-02-30"], "error: --to: '2025-02-30' is not a date; write it YYYY-MM-DD"),
        (
            ["--from", "2025-11-02", "--to", "2025-11-01"],
            "error: --to: to (2025-11-01) is before from (2025-11-02)",
        ),
        (
            ["--from", "2020-01-01", "--to", "2025-01-01"],
            "error: --from: a report covers at most 731 days; this range has 1828",
        ),
        (
            ["--group-by", "zone"],
            "error: --group-by: unknown 'zone'; choose one of lane, carrier, option, origin, "
            "destination_region, week",
        ),
        (["--json", "--html", "x.html"], "error: --json and --html: choose one"),
    ],
)
def test_bad_input_is_one_error_line(seeded: int, args: list[str], message: str) -> None:
    code, out = run("report", "promises", *args)
    assert code == 2
    assert out.strip() == message


def test_help_says_what_it_reports() -> None:
    code, out = run("report", "promises", "--help")
    assert code == 0
    for words in ("--from", "--to", "--group-by", "--json", "--html", "90% interval"):
        assert words in out
