"""Write the app's OpenAPI document as YAML: `python -m tracking_service.openapi_export FILE`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from tracking_service.app import create_app


def openapi_document() -> dict[str, Any]:
    return create_app().openapi()


def render(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def main(argv: list[str]) -> int:
    text = render(openapi_document())
    if len(argv) > 1:
        Path(argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
