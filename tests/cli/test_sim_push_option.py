"""`sim-carrier --push-url`: checked before the server starts, secret from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from tracking_service.carriers.sim import server
from tracking_service.cli import app
from tracking_service.settings import get_settings

runner = CliRunner()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """What `serve` would have been called with (nothing is served)."""
    calls: dict[str, Any] = {}

    def serve(*args: Any, **kwargs: Any) -> None:
        calls.update(kwargs)

    monkeypatch.setattr(server, "serve", serve)
    monkeypatch.setenv("TRACKING_LOG_LEVEL", "warning")
    monkeypatch.setenv("TRACKING_SIMULATED_PUSH_SECRET", "from-settings")
    get_settings.cache_clear()
    yield calls
    get_settings.cache_clear()


def test_push_url_and_secret_reach_the_server(served: dict[str, Any]) -> None:
    url = "http://127.0.0.1:8000/v1/carriers/simulated/events"
    result = runner.invoke(app, ["sim-carrier", "--push-url", url])
    assert result.exit_code == 0, result.output
    assert (served["push_url"], served["push_secret"]) == (url, "from-settings")
    result = runner.invoke(app, ["sim-carrier", "--push-url", url, "--push-secret", "given"])
    assert served["push_secret"] == "given"


def test_a_push_url_that_is_not_http_is_refused(served: dict[str, Any]) -> None:
    result = runner.invoke(app, ["sim-carrier", "--push-url", "ftp://example.com/x"])
    assert result.exit_code == 2
    assert "--push-url must be an http:// or https:// URL" in result.output
    assert served == {}
