"""The public address of a shipment's tracking page.

A module of its own because both registration (which answers the URL) and the store (which
builds the pipeline's shipment state) need it, and the store must not import registration.
"""

from __future__ import annotations


def tracking_url(public_base_url: str, token: str) -> str:
    """The public page of a shipment: `TRACKING_PUBLIC_BASE_URL` + `/t/{token}`."""
    return f"{public_base_url.rstrip('/')}/t/{token}"
