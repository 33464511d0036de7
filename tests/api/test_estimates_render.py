"""The estimate route's pre-rendered JSON is exactly what `EstimateResponse` serializes to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from history_helpers import sp_to_rio

from tracking_service.api.estimates import EstimateResponse, ResponseRenderer, _to_response
from tracking_service.app import create_app
from tracking_service.estimator.estimate import Destination, EstimateResult, Estimator, Item
from tracking_service.estimator.option_history import OptionHistories, build_option_histories
from tracking_service.estimator.rules import load_rules
from tracking_service.settings import Settings, bundled_rules_path

from .helpers import app_client, lifespan_client

NY = ZoneInfo("America/New_York")
SP = ZoneInfo("America/Sao_Paulo")


def rio_history() -> OptionHistories:
    """Unlabelled parcels Sao Paulo -> Rio: the BR standard option learns from them."""
    records = sp_to_rio((2, 3, 3, 5, 8), 200)
    rules = load_rules(bundled_rules_path("br_shop.toml"))
    return build_option_histories(
        rules, records, now=datetime(2025, 1, 1, tzinfo=UTC), warm_up=False
    )


def us_results(estimator: Estimator) -> Iterator[EstimateResult]:
    places = [
        Destination("US", "10001"),
        Destination("US", "94103-1234"),
        Destination("US", "99501", "AK"),
        Destination("US", "96813"),
    ]
    instants = [
        datetime(2024, 11, 27, 13, 59, 59, tzinfo=NY),
        datetime(2024, 11, 27, 14, tzinfo=NY),
        datetime(2024, 12, 24, 10, 30, 15, 123456, tzinfo=NY),
        datetime(2025, 7, 3, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2025, 3, 9, 6, 59, tzinfo=UTC),
    ]
    for place in places:
        for when in instants:
            yield estimator.estimate(destination=place, order_time=when)
        when = instants[0]
        yield estimator.estimate(destination=place, order_time=when, confidence=0.95)
        yield estimator.estimate(destination=place, order_time=when, options=["economy"])
        items = [Item("A", 2), Item("B", 1, date(2024, 12, 20))]
        yield estimator.estimate(destination=place, order_time=when, items=items)


def br_results(estimator: Estimator, history: OptionHistories | None) -> Iterator[EstimateResult]:
    places = [
        Destination("BR", "20040-020"),
        Destination("BR", "01310100"),
        Destination("BR", "69005-070"),
        Destination("BR", "88010-400", "SC"),
    ]
    instants = [
        datetime(2024, 11, 5, 10, tzinfo=SP),
        datetime(2024, 11, 5, 16, tzinfo=SP),
        datetime(2025, 12, 31, 14, 59, 59, tzinfo=SP),  # stock-taking day ahead ("inventário")
        datetime(2025, 3, 1, 12, tzinfo=SP),  # Carnival
    ]
    for place in places:
        for when in instants:
            yield estimator.estimate(destination=place, order_time=when, history=history)
            yield estimator.estimate(
                destination=place, order_time=when, history=history, confidence=0.99
            )


@pytest.mark.parametrize("case", ["us", "br-rules", "br-history"])
def test_rendered_json_is_the_models(case: str) -> None:
    if case == "us":
        estimator = Estimator(load_rules(bundled_rules_path("us_shop.toml")))
        results = list(us_results(estimator))
    else:
        estimator = Estimator(load_rules(bundled_rules_path("br_shop.toml")))
        history = rio_history() if case == "br-history" else None
        results = list(br_results(estimator, history))
    renderer = ResponseRenderer(estimator)
    bases = set()
    for result in results:
        model = _to_response(result)
        rendered = renderer.render(result)
        assert rendered == model.model_dump_json().encode()
        assert json.loads(rendered) == model.model_dump(mode="json")
        bases |= {e.basis for e in result.estimates}
        # rendered twice (from the caches), still the same bytes
        assert renderer.render(result) == rendered
    assert any(r.unavailable for r in results)
    assert bases == ({"rules", "history"} if case == "br-history" else {"rules"})


async def test_route_sends_the_models_json(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        rules_file=bundled_rules_path("br_shop.toml"),
    )
    app = create_app(settings)
    body = {
        "destination": {"country": "BR", "postal_code": "20040-020"},
        "order_time": "2025-12-31T14:59:59.5-03:00",
        "items": [{"sku": "CAMISA-01", "quantity": 2}],
    }
    async with lifespan_client(app) as client:
        response = await client.post("/v1/estimates", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    result = app.state.estimator.estimate(
        destination=Destination("BR", "20040-020"),
        order_time=datetime.fromisoformat(body["order_time"]),  # type: ignore[arg-type]
        items=[Item("CAMISA-01", 2)],
    )
    assert response.content == _to_response(result).model_dump_json().encode()
    assert EstimateResponse.model_validate_json(response.content).order_time == datetime(
        2025, 12, 31, 17, 59, 59, 500000, tzinfo=UTC
    )


async def test_each_app_renders_its_own_rules(tmp_path: Path) -> None:
    """Equal values render alike only within one set of rules: 24.90 and 24.9 are equal
    Decimals, and each app must still show its own rules' price."""
    text = bundled_rules_path("br_shop.toml").read_text()
    assert 'price = "24.90"' in text
    bodies = {"24.90": text, "24.9": text.replace('price = "24.90"', 'price = "24.9"')}
    body = {
        "destination": {"country": "BR", "postal_code": "20040-020"},
        "order_time": "2024-11-05T10:00:00-03:00",
        "options": ["standard"],
    }
    for price, rules_text in bodies.items():
        rules_file = tmp_path / f"rules-{price}.toml"
        rules_file.write_text(rules_text)
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'api.db'}", rules_file=rules_file)
        async with app_client(settings) as client:
            response = await client.post("/v1/estimates", json=body)
        assert response.status_code == 200
        assert response.json()["estimates"][0]["price"]["amount"] == price
