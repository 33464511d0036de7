"""GET /metrics as the app serves it: public, Prometheus text, request latency by route
template, the database's figures, and an answer even when the database does not answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tracking_service.settings import Settings, bundled_rules_path

from .helpers import app_client

US = {"destination": {"country": "US", "postal_code": "10001"}}


def settings_for(database_url: str, **kw: object) -> Settings:
    return Settings(
        database_url=database_url,
        rules_file=bundled_rules_path(),
        history_refresh_seconds=0,
        **kw,  # type: ignore[arg-type]
    )


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_are_public_prometheus_text(database_url: str) -> None:
    async with app_client(settings_for(database_url, api_keys=["k"])) as client:
        assert (await client.post("/v1/estimates", json=US)).status_code == 200
        assert (await client.get("/v1/nowhere/42")).status_code == 404
        assert (await client.get("/v1/history")).status_code == 401
        response = await client.get("/metrics")  # no key
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        got = parse(response.text)
    count = "tracking_http_request_duration_seconds_count"
    assert got[(count, (("method", "POST"), ("route", "/v1/estimates"), ("status", "200")))] == 1
    assert got[(count, (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert got[(count, (("method", "GET"), ("route", "/v1/history"), ("status", "401")))] == 1
    assert got[("tracking_database_up", ())] == 1
    assert got[("tracking_shipments", (("status", "in_transit"),))] == 0
    assert got[("tracking_poll_lag_seconds", ())] == 0
    assert got[("tracking_outbox_backlog", ())] == 0
    assert got[("tracking_webhook_deliveries_pending", ())] == 0
    for carrier in ("ups", "fedex", "usps", "dhl", "simulated"):
        assert got[("tracking_carrier_polls_total", (("carrier", carrier),))] == 0


async def test_metrics_answer_when_the_database_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'm.db'}")
    async with app_client(settings) as client:
        services = client._transport.app.state.services  # type: ignore[attr-defined]

        def broken() -> object:
            raise ConnectionRefusedError("database down")

        monkeypatch.setattr(services, "sessions", broken)
        response = await client.get("/metrics")
    assert response.status_code == 200
    got = parse(response.text)
    assert got[("tracking_database_up", ())] == 0
    assert ("tracking_poll_lag_seconds", ()) not in got
