"""`tracking-service check-rules FILE`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tracking_service.cli import app
from tracking_service.settings import bundled_rules_path

runner = CliRunner()


def flat(text: str) -> str:
    """The output without the line breaks rich adds at the terminal width."""
    return " ".join(text.split())


def test_valid_sample_prints_tables() -> None:
    result = runner.invoke(app, ["check-rules", str(bundled_rules_path("br_shop.toml"))])
    assert result.exit_code == 0, result.output
    for text in ("sp-mooca", "SEDEX", "express", "sp-capital", "valid:"):
        assert text in result.output


def test_invalid_file_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        bundled_rules_path("us_shop.toml")
        .read_text()
        .replace('time_zone = "America/New_York"', 'time_zone = "America/Gotham"')
    )
    result = runner.invoke(app, ["check-rules", str(bad)])
    assert result.exit_code == 2
    assert "origins[0].time_zone" in flat(result.output)
    assert "America/Gotham" in result.output
    assert "Traceback" not in result.output


def test_missing_file_and_syntax_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check-rules", str(tmp_path / "none.toml")])
    assert result.exit_code == 2
    assert "cannot read the file" in flat(result.output)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[origins]\n")
    result = runner.invoke(app, ["check-rules", str(broken)])
    assert result.exit_code == 2
    assert "TOML syntax error" in flat(result.output)
