"""`openapi.yaml` is the contract: it must equal what the app serves (`make openapi`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tracking_service.openapi_export import openapi_document, render

CONTRACT = Path(__file__).resolve().parent.parent / "openapi.yaml"


def test_openapi_yaml_matches_the_app() -> None:
    served = openapi_document()
    committed = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    assert committed == served, "openapi.yaml is stale: run `make openapi` and commit it"


def test_rendering_is_stable() -> None:
    assert render(openapi_document()) == CONTRACT.read_text(encoding="utf-8")


def test_every_error_response_is_problem_json() -> None:
    document = openapi_document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (
                        f"{method.upper()} {path} {status} must declare problem+json only"
                    )
