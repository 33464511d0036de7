"""`tracking-service detect` and `sim-label`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tracking_service.carriers.sim.number import Scenario, decode
from tracking_service.cli import app

runner = CliRunner()


def test_detect_a_valid_number_exits_0_and_names_carrier_and_format() -> None:
    result = runner.invoke(app, ["detect", "1Z5R89390357567127"])
    assert result.exit_code == 0, result.output
    assert "ups" in result.output
    assert "check digit valid" in result.output
    assert "UPS United States Ground" in result.output


def test_detect_lists_every_candidate_and_says_which_is_invalid() -> None:
    result = runner.invoke(app, ["detect", "0307 1790 0005 2348 3741"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    usps_20 = next(line for line in lines if "usps_20" in line)
    legacy = next(line for line in lines if "usps_legacy" in line)
    assert usps_20.rstrip().endswith("valid") and "INVALID" in legacy
    assert lines.index(usps_20) < lines.index(legacy)


def test_detect_a_wrong_check_digit_exits_1() -> None:
    result = runner.invoke(app, ["detect", "1Z5R89390357567128"])
    assert result.exit_code == 1
    assert "INVALID" in result.output


def test_detect_json_output() -> None:
    result = runner.invoke(app, ["detect", "RB123456785XX", "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["number"] == "RB123456785XX"
    assert payload["valid"] is False
    [match] = payload["matches"]
    assert match["carrier"] == "s10"
    assert match["check_digit"] == "valid"
    assert match["valid"] is False


def test_detect_unknown_text() -> None:
    result = runner.invoke(app, ["detect", "hello"])
    assert result.exit_code == 1
    assert "matches no known format" in result.output


def test_sim_label_mints_detectable_numbers() -> None:
    result = runner.invoke(app, ["sim-label", "--scenario", "lost", "--count", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.split("\n")
    numbers = [line.split()[0] for line in lines if line.strip()]
    assert len(numbers) == 3
    assert all(decode(n).scenario is Scenario.LOST for n in numbers)
    detected = runner.invoke(app, ["detect", numbers[0], "--json"])
    assert detected.exit_code == 0
    assert json.loads(detected.output)["matches"][0]["carrier"] == "simulated"


def test_sim_label_unknown_scenario_is_a_clear_error() -> None:
    result = runner.invoke(app, ["sim-label", "--scenario", "teleported"])
    assert result.exit_code == 2
    assert "unknown scenario" in result.output


def test_detect_an_empty_number_is_a_usage_error() -> None:
    for blank in ("", "   "):
        result = runner.invoke(app, ["detect", blank])
        assert result.exit_code == 2, result.output
        assert "NUMBER" in result.output and "is empty" in result.output
        assert "Traceback" not in result.output
