"""Property-based API test: every route of `openapi.yaml`, in-process against the ASGI app.

It must find no 5xx, no undocumented status code, no undocumented content type, no response
that breaks its schema, and no schema-invalid request accepted (inputs are strict).

Schemathesis runs the app's lifespan itself before the first call (and ends it with the test),
so the app is tested as `serve` runs it, like `app_client` does for the other API tests. Every
call carries a back-office key of the app's settings, so the back-office routes are tested
past the key check (whatever key header a case generates, the bearer one is the one read).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tracking_service.app import create_app
from tracking_service.settings import Settings

CONTRACT = Path(__file__).resolve().parents[2] / "openapi.yaml"
_DB_DIR = tempfile.mkdtemp(prefix="ts-schemathesis-")
_KEY = "schemathesis-back-office-key"

app = create_app(Settings(database_url=f"sqlite:///{_DB_DIR}/api.db", api_keys=[_KEY]))
schema = schemathesis.openapi.from_path(CONTRACT)
schema.app = app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_contract(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {_KEY}"}, checks=CHECKS)
