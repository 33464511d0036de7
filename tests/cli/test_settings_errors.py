"""A bad `TRACKING_*` value is one line naming the variable and what is wrong, exit 2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracking_service.cli import app
from tracking_service.settings import get_settings

OLIST_SMALL = Path(__file__).parent.parent / "fixtures" / "handmade_marketplace_format.csv"
runner = CliRunner()

BAD_VALUES = {
    "TRACKING_PORT": ("abc", "valid integer"),
    "TRACKING_API_KEYS": ("notjson", "not valid JSON"),
    "TRACKING_LOG_LEVEL": ("loud", "'critical', 'error', 'warning', 'info' or 'debug'"),
    "TRACKING_HISTORY_REFRESH_SECONDS": ("-1", "greater than or equal to 0"),
}
COMMANDS_READING_SETTINGS = {
    "serve": ["serve"],
    "worker": ["worker"],
    "migrate": ["migrate"],
    "import-history": ["import-history", str(OLIST_SMALL), "--format", "olist"],
    "track": ["track", "ups", "1Z5R89390357567127"],
    "sim-carrier": ["sim-carrier"],
}


@pytest.fixture(autouse=True)
def fresh_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TRACKING_DATABASE_URL", f"sqlite:///{tmp_path / 'never.db'}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("variable", sorted(BAD_VALUES))
@pytest.mark.parametrize("command", sorted(COMMANDS_READING_SETTINGS))
def test_bad_value_is_one_line_and_exit_2(
    command: str, variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value, problem = BAD_VALUES[variable]
    monkeypatch.setenv(variable, value)
    result = runner.invoke(app, COMMANDS_READING_SETTINGS[command])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: bad configuration: ")
    assert variable in line and repr(value) in line and problem in line
    assert "Traceback" not in result.output
    assert not (tmp_path / "never.db").exists()  # nothing was opened


def test_log_level_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "WARNING")
    assert get_settings().log_level == "warning"


def test_two_bad_values_are_both_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKING_PORT", "abc")
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "loud")
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "TRACKING_PORT='abc'" in line and "TRACKING_LOG_LEVEL='loud'" in line


@pytest.mark.parametrize("command", ["serve", "worker", "migrate"])
def test_an_smtp_host_without_a_sender_stops_the_command(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKING_SMTP_HOST", "smtp.example.com")
    result = runner.invoke(app, COMMANDS_READING_SETTINGS[command])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: bad configuration: TRACKING_MAIL_FROM must be set")
    assert not (tmp_path / "never.db").exists()
