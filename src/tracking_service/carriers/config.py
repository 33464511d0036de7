"""What one carrier adapter is built from: base URL, credentials and limits, as plain data.

`tracking_service.settings.Settings.carrier_configs()` builds these from `TRACKING_*` values;
carriers/ never read settings themselves. Each config names the setting its base URL came from,
so an error can tell the user what to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracking_service.carriers.http import CarrierLimits

# Seconds of the steady rate a carrier may spend at once: UPS and USPS tolerate short bursts
# above their rate, FedEx and DHL count per second.
BURST_SECONDS: dict[str, float] = {"ups": 2.0, "fedex": 1.0, "usps": 5.0, "dhl": 1.0}


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """An OAuth 2 client-credentials pair (UPS, FedEx, USPS)."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A static API key sent with every call (DHL)."""

    key: str = field(repr=False)


Credentials = ClientCredentials | ApiKey


@dataclass(frozen=True, slots=True)
class CarrierConfig:
    """One carrier: where it is, how to authenticate (None: not configured) and its limits.

    `base_url_setting` and `credentials_settings` are the names of the settings that set them
    (`TRACKING_UPS_BASE_URL`, ...), for messages that tell the user what to change.
    `limits.requests_per_second` and `daily_limit` are the account's limits, held for every
    process of a deployment together by the `CallGate` the registry is given.
    """

    code: str
    base_url: str
    base_url_setting: str
    credentials: Credentials | None = None
    credentials_settings: tuple[str, ...] = ()
    limits: CarrierLimits = field(default_factory=CarrierLimits)
    daily_limit: int | None = None  # calls per UTC day, all processes together; None: no limit

    def missing_credentials(self) -> str:
        """The `not_configured` message: which settings to set."""
        return f"{self.code} is not configured: set " + " and ".join(self.credentials_settings)


def carrier_limits(
    code: str,
    *,
    requests_per_second: float,
    max_concurrency: int,
    timeout: float,
    max_attempts: int,
) -> CarrierLimits:
    """Limits from the configured rate and concurrency; the burst follows the carrier's habit."""
    return CarrierLimits(
        requests_per_second=requests_per_second,
        burst=max(1, round(requests_per_second * BURST_SECONDS.get(code, 1.0))),
        max_concurrency=max_concurrency,
        timeout=timeout,
        max_attempts=max_attempts,
    )
