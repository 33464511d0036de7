"""Postal codes typed in full-width forms are the ASCII ones over HTTP too."""

from __future__ import annotations

from pathlib import Path

from tracking_service.settings import Settings, bundled_rules_path

from .helpers import app_client

FULL_WIDTH_10001 = "\uff11\uff10\uff10\uff10\uff11"
ORDER = "2024-03-05T10:00:00-05:00"


async def test_full_width_postal_code_is_normalized_and_echoed(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        rules_file=bundled_rules_path("us_shop.toml"),
    )
    async with app_client(settings) as client:
        answers = []
        for postal in (FULL_WIDTH_10001, "10001"):
            body = {"destination": {"country": "US", "postal_code": postal}, "order_time": ORDER}
            response = await client.post("/v1/estimates", json=body)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        arabic_indic = "\u0661\u0660\u0660\u0660\u0661"
        body = {"destination": {"country": "US", "postal_code": arabic_indic}, "order_time": ORDER}
        refused = await client.post("/v1/estimates", json=body)
    full_width, ascii_ = answers
    assert full_width["destination"] == {
        "country": "US",
        "postal_code": "10001",
        "subdivision": "NY",
        "zones": ["nyc", "northeast"],
    }
    assert full_width == ascii_
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["body.destination.postal_code"]
