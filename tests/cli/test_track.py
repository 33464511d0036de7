"""`tracking-service track CARRIER NUMBER [--json]` against a respx fake of UPS."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import respx
from carriers.http_helpers import BASES, KITS, NUMBERS
from typer.testing import CliRunner

from tracking_service.cli import app
from tracking_service.settings import get_settings

runner = CliRunner()


@pytest.fixture
def configured(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TRACKING_DATABASE_URL", database_url)
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "warning")
    monkeypatch.setenv("TRACKING_UPS_CLIENT_ID", "ups-id")
    monkeypatch.setenv("TRACKING_UPS_CLIENT_SECRET", "ups-secret")
    monkeypatch.setenv("TRACKING_UPS_BASE_URL", BASES["ups"])
    monkeypatch.delenv("TRACKING_FEDEX_CLIENT_ID", raising=False)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


@pytest.fixture
def ups() -> Iterator[respx.MockRouter]:
    kit = KITS["ups"]
    with respx.mock(assert_all_called=False) as router:
        router.post(kit.token_url()).mock(
            return_value=httpx.Response(200, json={"access_token": "t", "expires_in": "14399"})
        )
        router.route(method="GET", url__regex=kit.url).mock(
            side_effect=kit.handler({NUMBERS["ups"][0]})
        )
        yield router


def test_track_json_prints_the_result_and_exits_0(configured: str, ups: respx.MockRouter) -> None:
    number = NUMBERS["ups"][0]
    result = runner.invoke(app, ["track", "ups", number, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["carrier"] == "ups"
    assert payload["tracking_number"] == number
    assert set(payload) == {
        "carrier",
        "tracking_number",
        "status",
        "raw_status",
        "estimated_delivery",
        "delivered_at",
        "signed_by",
        "events",
    }
    assert payload["status"] == "in_transit"
    occurred = datetime.fromisoformat(payload["events"][0]["occurred_at"])
    assert occurred == datetime(2026, 1, 5, 15, 15, tzinfo=UTC)  # an offset is always there


def test_track_unknown_number_exits_1_with_the_failure(
    configured: str, ups: respx.MockRouter
) -> None:
    number = NUMBERS["ups"][1]
    result = runner.invoke(app, ["track", "UPS", number, "--json"])
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    assert payload["error"]["kind"] == "not_found"
    assert set(payload) == {"carrier", "tracking_number", "error"}


def test_track_readable_output(configured: str, ups: respx.MockRouter) -> None:
    result = runner.invoke(app, ["track", "ups", NUMBERS["ups"][0]])
    assert result.exit_code == 0, result.output
    assert f"ups {NUMBERS['ups'][0]}: in_transit" in result.stdout
    assert "Departed" in result.stdout


def test_track_not_configured_carrier_exits_1(configured: str) -> None:
    result = runner.invoke(app, ["track", "fedex", "123456789012", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["kind"] == "not_configured"


def test_track_auto_detects_ups(configured: str) -> None:
    number = "1Z5R89390357567127"
    kit = KITS["ups"]
    with respx.mock(assert_all_called=False) as router:
        router.post(kit.token_url()).mock(
            return_value=httpx.Response(200, json={"access_token": "t", "expires_in": "14399"})
        )
        route = router.route(method="GET", url__regex=kit.url).mock(
            side_effect=kit.handler({number})
        )
        result = runner.invoke(app, ["track", "auto", number, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["carrier"] == "ups"
    assert route.call_count == 1


def test_track_auto_with_an_unrecognizable_number(configured: str) -> None:
    result = runner.invoke(app, ["track", "auto", "12345", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["kind"] == "invalid_number"


def test_track_unknown_carrier_is_a_usage_error(configured: str) -> None:
    result = runner.invoke(app, ["track", "royalmail", "12345"])
    assert result.exit_code == 2
    assert "unknown carrier" in result.output


def test_track_names_its_database_and_hides_httpx_info_lines(
    configured: str,
    ups: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "info")
    get_settings.cache_clear()
    result = runner.invoke(app, ["track", "ups", NUMBERS["ups"][0], "--json"])
    assert result.exit_code == 0, result.output
    assert ups.calls  # requests were made, and logged by httpx at INFO ...
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("database: ")]
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]


def test_track_debug_shows_httpx_lines(
    configured: str,
    ups: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "debug")
    get_settings.cache_clear()
    result = runner.invoke(app, ["track", "ups", NUMBERS["ups"][0], "--json"])
    assert result.exit_code == 0, result.output
    assert [r for r in caplog.records if r.name == "httpx" and r.levelno == logging.INFO]


def test_track_unreachable_base_url_names_the_url_and_its_variable(
    configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKING_UPS_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TRACKING_CARRIER_MAX_ATTEMPTS", "1")
    get_settings.cache_clear()
    result = runner.invoke(app, ["track", "ups", NUMBERS["ups"][0]])
    assert result.exit_code == 1, result.output
    [line] = [line for line in result.stdout.splitlines() if line.strip()]  # never wrapped
    assert "unavailable" in line
    assert "http://127.0.0.1:9" in line and "TRACKING_UPS_BASE_URL" in line
    assert "Traceback" not in result.output


def test_track_a_failed_check_digit_is_invalid_before_not_configured(configured: str) -> None:
    result = runner.invoke(app, ["track", "fedex", "123456789013", "--json"])  # ...012 is valid
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["kind"] == "invalid_number"
