"""What the server-rendered HTML pages (the customer's tracking page, the promise report) share:
one Jinja2 environment over the package's templates, and stylesheets that a page inlines and
its Content-Security-Policy allows by hash, so a page is one request and needs no
'unsafe-inline'."""

from __future__ import annotations

import base64
import hashlib
from importlib import resources

import jinja2

PAGE_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("tracking_service", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
    undefined=jinja2.StrictUndefined,
)


def stylesheet(name: str) -> tuple[str, str]:
    """The stylesheet `name` under templates/ and the CSP source that allows it inline
    ("sha256-<base64 of its digest>")."""
    css = (resources.files("tracking_service") / "templates" / name).read_text("utf-8")
    return css, "sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
