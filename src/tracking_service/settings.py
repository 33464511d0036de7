"""Service settings, read from `TRACKING_*` environment variables and a `.env` file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tracking_service.carriers.config import (
    ApiKey,
    CarrierConfig,
    ClientCredentials,
    carrier_limits,
)
from tracking_service.carriers.status import Status
from tracking_service.notifications.config import DEFAULT_PORTS as DEFAULT_SMTP_PORTS
from tracking_service.notifications.config import MailConfig
from tracking_service.tracking.config import (
    DEFAULT_POLL_EVERY,
    DEFAULT_STALL_HOURS,
    TrackingConfig,
)
from tracking_service.webhooks.config import DEFAULT_SCHEDULE as DEFAULT_WEBHOOK_SCHEDULE
from tracking_service.webhooks.config import WebhookConfig


def bundled_rules_path(name: str = "us_shop.toml") -> Path:
    """Path of a sample rules file shipped inside the package."""
    return Path(str(resources.files("tracking_service") / "rules" / name))


LogLevel = Literal["critical", "error", "warning", "info", "debug"]
"""Names uvicorn and `logging` both know; `TRACKING_LOG_LEVEL` is read case-insensitively."""


class Settings(BaseSettings):
    """Everything configurable; every field maps to `TRACKING_<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="TRACKING_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite:///var/tracking.db",
        description="Plain SQLAlchemy URL: sqlite:///path.db or postgresql://user@host:5432/db",
    )
    rules_file: Path = Field(default_factory=bundled_rules_path)
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: LogLevel = "info"

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: one readable line per record; json: one JSON object per line "
        "(time, level, logger, message, request_id in a request, extra fields)",
    )
    api_keys: list[str] = Field(
        default_factory=list,
        description="Back-office keys besides those made by `create-api-key` (JSON list)",
    )
    history_refresh_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Rebuild the delivery-history model this often when the table changed; 0: "
        "only at start-up and on POST /v1/history/refresh",
    )
    run_jobs_in_api: bool = Field(
        default=True,
        description="Run the background jobs inside the API process (one `serve` process); "
        "false when a separate `tracking-service worker` runs them",
    )
    # The service's clock and the tracking worker (tracking.jobs): intervals of the jobs, the
    # lease and batch sizes are in real seconds, whatever the clock speed.
    clock_speed: float = Field(
        default=1.0,
        gt=0,
        description="Run the service's clock this many times faster than real time (1440: a "
        "simulated day a real minute); every process of a deployment must use the same speed",
    )
    clock_anchor: datetime | None = Field(
        default=None,
        description="Instant (ISO 8601 with offset) from which a fast clock runs; unset: the "
        "first process stores one in the database and every other process reads it",
    )
    poll_every_seconds: float = Field(
        default=2.0, ge=0, description="Real seconds between poll passes; 0: no polling job"
    )
    poll_batch_size: int = Field(default=100, ge=1, le=1000, description="Shipments per claim")
    poll_concurrency: int = Field(
        default=4,
        ge=1,
        description="Claimed batches one worker polls at once (as many again may wait to apply)",
    )
    poll_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Real seconds a claim holds its shipments; after that a dead worker's "
        "shipments are polled by another",
    )
    check_every_seconds: float = Field(
        default=30.0, ge=0, description="Real seconds between promise and stall checks; 0: none"
    )
    expire_every_seconds: float = Field(
        default=300.0, ge=0, description="Real seconds between expiry passes; 0: none"
    )

    @field_validator("clock_anchor")
    @classmethod
    def _aware_anchor(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("needs a UTC offset, e.g. 2026-03-02T15:00:00Z")
        return value

    max_body_bytes: int = Field(
        default=1_048_576,
        ge=0,
        description="Largest request body accepted; a larger one is refused with 413 before "
        "it is read to the end or parsed",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Where customers reach this service: a shipment's tracking URL is this "
        "plus /t/{token} (a trailing slash is ignored)",
    )
    default_locale: Literal["en", "pt-BR"] = Field(
        default="en",
        description="Language of the public tracking page when neither the browser's "
        "Accept-Language nor the order's locale names one it speaks",
    )
    tracking_rate_limit_per_minute: int = Field(
        default=60,
        ge=0,
        description="Public tracking requests (/t/{token}, /v1/tracking/{token}) a client "
        "address may make a minute, counted in each API process separately; 0: no limit",
    )
    access_log: bool = Field(
        default=False,
        description="One structured log line per request (logger tracking_service.access), "
        "formatted and written by a thread off the event loop; off by default: it still costs "
        "30-45 us of the process's CPU per request, a fifth of the estimate route's throughput",
    )
    demo: bool = Field(
        default=False,
        description="The live demo of `make run` (only its Makefile target sets it): the "
        "simulated carrier runs inside the process and an empty database is seeded with demo "
        "orders and a printed API key; never set it in production",
    )

    # Carriers: all optional; a carrier without credentials is "not configured".
    ups_client_id: str | None = None
    ups_client_secret: SecretStr | None = None
    ups_base_url: str = "https://onlinetools.ups.com"
    fedex_client_id: str | None = None
    fedex_client_secret: SecretStr | None = None
    fedex_base_url: str = "https://apis.fedex.com"
    usps_client_id: str | None = None
    usps_client_secret: SecretStr | None = None
    usps_base_url: str = "https://apis.usps.com"
    dhl_api_key: SecretStr | None = None
    dhl_base_url: str = "https://api-eu.dhl.com"
    simulated_base_url: str = "http://127.0.0.1:8900"
    # Carrier call limits per process (token bucket + concurrent requests). Defaults sit under
    # the published limits: FedEx 1,400 tx/10 s; DHL starter 1 call/s; UPS unpublished and
    # USPS hourly quota, so modest.
    ups_requests_per_second: float = Field(default=5.0, gt=0)
    ups_max_concurrency: int = Field(default=4, ge=1)
    fedex_requests_per_second: float = Field(default=100.0, gt=0)
    fedex_max_concurrency: int = Field(default=16, ge=1)
    usps_requests_per_second: float = Field(default=1.0, gt=0)
    usps_max_concurrency: int = Field(default=2, ge=1)
    dhl_requests_per_second: float = Field(default=1.0, gt=0)
    dhl_max_concurrency: int = Field(default=1, ge=1)
    simulated_requests_per_second: float = Field(default=2000.0, gt=0)
    simulated_max_concurrency: int = Field(default=64, ge=1)
    carrier_timeout_seconds: float = Field(default=15.0, gt=0)
    carrier_max_attempts: int = Field(default=4, ge=1, description="tries per call, retries incl.")
    # Carrier account limits for every process together (the database counts): calls per UTC
    # day, 0 = no limit. DHL's starter plan allows 250 a day. The requests_per_second above
    # are held for all processes together as well.
    ups_daily_limit: int = Field(default=0, ge=0, description="calls a UTC day; 0: no limit")
    fedex_daily_limit: int = Field(default=0, ge=0, description="calls a UTC day; 0: no limit")
    usps_daily_limit: int = Field(default=0, ge=0, description="calls a UTC day; 0: no limit")
    dhl_daily_limit: int = Field(default=250, ge=0, description="calls a UTC day; 0: no limit")
    simulated_daily_limit: int = Field(default=0, ge=0, description="calls a day; 0: no limit")
    carrier_usage_flush_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Counted carrier calls are written to carrier_calls this often (and when "
        "the process stops)",
    )
    simulated_push_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret the simulated carrier sends in X-Push-Secret to POST "
        "/v1/carriers/simulated/events (sim-carrier --push-url); unset: pushes are refused",
    )

    def carrier_configs(self) -> dict[str, CarrierConfig]:
        """Every carrier's base URL, credentials and limits, keyed by code (the registry's
        input; a carrier whose credentials are not all set has `credentials=None`)."""

        def secret(value: SecretStr | None) -> str:
            return value.get_secret_value() if value is not None else ""

        def oauth(
            client_id: str | None, client_secret: SecretStr | None
        ) -> ClientCredentials | None:
            both = bool(client_id) and bool(secret(client_secret))
            return ClientCredentials(client_id or "", secret(client_secret)) if both else None

        def config(
            code: str,
            base_url: str,
            credentials: ClientCredentials | ApiKey | None,
            needs: tuple[str, ...],
            rate: float,
            most: int,
            daily: int,
        ) -> CarrierConfig:
            upper = code.upper()
            return CarrierConfig(
                code=code,
                base_url=base_url,
                base_url_setting=f"TRACKING_{upper}_BASE_URL",
                credentials=credentials,
                credentials_settings=tuple(f"TRACKING_{upper}_{name}" for name in needs),
                limits=carrier_limits(
                    code,
                    requests_per_second=rate,
                    max_concurrency=most,
                    timeout=self.carrier_timeout_seconds,
                    max_attempts=self.carrier_max_attempts,
                ),
                daily_limit=daily or None,
            )

        pair = ("CLIENT_ID", "CLIENT_SECRET")
        dhl_key = secret(self.dhl_api_key)
        configs = (
            config(
                "ups",
                self.ups_base_url,
                oauth(self.ups_client_id, self.ups_client_secret),
                pair,
                self.ups_requests_per_second,
                self.ups_max_concurrency,
                self.ups_daily_limit,
            ),
            config(
                "fedex",
                self.fedex_base_url,
                oauth(self.fedex_client_id, self.fedex_client_secret),
                pair,
                self.fedex_requests_per_second,
                self.fedex_max_concurrency,
                self.fedex_daily_limit,
            ),
            config(
                "usps",
                self.usps_base_url,
                oauth(self.usps_client_id, self.usps_client_secret),
                pair,
                self.usps_requests_per_second,
                self.usps_max_concurrency,
                self.usps_daily_limit,
            ),
            config(
                "dhl",
                self.dhl_base_url,
                ApiKey(dhl_key) if dhl_key else None,
                ("API_KEY",),
                self.dhl_requests_per_second,
                self.dhl_max_concurrency,
                self.dhl_daily_limit,
            ),
            config(
                "simulated",
                self.simulated_base_url,
                None,
                (),
                self.simulated_requests_per_second,
                self.simulated_max_concurrency,
                self.simulated_daily_limit,
            ),
        )
        return {c.code: c for c in configs}

    # The tracking pipeline's rules (tracking.config): stall thresholds, polling cadence and
    # expiry, all in the service clock's time. The per-status maps are JSON objects keyed by
    # status; the statuses they leave out keep their defaults.
    stall_hours: dict[str, float] = Field(
        default_factory=dict,
        description="Business hours without a scan before a shipment is stalled, per status, "
        'e.g. {"in_transit": 48}; merged over the defaults',
    )
    poll_interval_minutes: dict[str, float] = Field(
        default_factory=dict,
        description='Polling interval per status, e.g. {"out_for_delivery": 30}; merged over '
        "the defaults (in transit: the interval while the expected date is 2+ days away)",
    )
    poll_near_minutes: float = Field(
        default=120.0, gt=0, description="In-transit polling interval on the expected date"
    )
    poll_backoff_max_minutes: float = Field(
        default=720.0, gt=0, description="Longest wait after repeated carrier failures"
    )
    poll_spread: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Fraction of an interval added per shipment so polls do not come in bursts",
    )
    expiry_days: int = Field(
        default=30,
        ge=1,
        description="A shipment the carrier still does not know this many days after its "
        "registration is expired",
    )

    @field_validator("stall_hours", "poll_interval_minutes")
    @classmethod
    def _per_status(cls, value: dict[str, float]) -> dict[str, float]:
        known = {str(s) for s in Status}
        for key, number in value.items():
            if key not in known:
                raise ValueError(f"unknown status {key!r}; statuses: {', '.join(sorted(known))}")
            if not number > 0:
                raise ValueError(f"{key}: must be greater than 0")
        return value

    def tracking_config(self) -> TrackingConfig:
        """The tracking pipeline's config: these settings over its defaults."""
        stall = {**DEFAULT_STALL_HOURS, **{Status(k): v for k, v in self.stall_hours.items()}}
        every = {
            **DEFAULT_POLL_EVERY,
            **{Status(k): timedelta(minutes=v) for k, v in self.poll_interval_minutes.items()},
        }
        return TrackingConfig(
            stall_hours=MappingProxyType(stall),
            poll_every=MappingProxyType(every),
            poll_near=timedelta(minutes=self.poll_near_minutes),
            backoff_max=timedelta(minutes=self.poll_backoff_max_minutes),
            spread=self.poll_spread,
            expiry_days=self.expiry_days,
        )

    # Webhooks (webhooks/): the URL guard, the signer and the dispatcher. Retry delays, the
    # rotation overlap and the disabling period are service-clock time; timeout, lease and the
    # job's interval are real seconds.
    webhook_allow_http: bool = Field(
        default=False, description="Allow http:// webhook URLs (development only)"
    )
    webhook_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names or IP/CIDR ranges webhook URLs may reach although loopback, "
        "private or link-local (comma-separated or a JSON list, e.g. 127.0.0.1,10.1.0.0/16)",
    )

    @field_validator("webhook_allow_hosts", "mail_kinds", mode="before")
    @classmethod
    def _comma_or_json_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Real seconds a receiver has to answer one POST"
    )
    webhook_retry_seconds: list[float] = Field(
        default_factory=lambda: [d.total_seconds() for d in DEFAULT_WEBHOOK_SCHEDULE],
        min_length=1,
        description="Delay before each attempt, the first included (JSON list; default: 0, "
        "5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h), in service-clock seconds",
    )
    webhook_retry_jitter: float = Field(
        default=0.2, ge=0, le=1, description="Retry delays vary by up to this fraction"
    )
    webhook_secret_overlap_hours: float = Field(
        default=24.0, ge=0, description="After a rotation the old secret signs this long too"
    )
    webhook_disable_after_days: float = Field(
        default=5.0, gt=0, description="An endpoint failing every attempt this long is disabled"
    )
    webhook_batch_size: int = Field(
        default=200, ge=1, le=5000, description="Deliveries per claim of the dispatcher"
    )
    webhook_concurrency: int = Field(
        default=64, ge=1, description="POSTs one dispatcher has in flight at once"
    )
    webhook_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Real seconds a claim holds its deliveries; a dead worker's are sent again "
        "after it (same webhook-id)",
    )
    webhook_dispatch_every_seconds: float = Field(
        default=1.0, ge=0, description="Real seconds between dispatch passes; 0: no dispatcher"
    )

    # Customer email (notifications/): SMTP, the sender, what is sent and when. No host: no
    # email (said once in the log). Hours are the customer's local hours (the destination's zone).
    smtp_host: str | None = Field(
        default=None, description="SMTP server; unset: no email is sent (said once in the log)"
    )
    smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="SMTP port; unset: 25 for none, 587 for starttls, 465 for tls",
    )
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="starttls",
        description="none (plain, loopback or trusted networks only), starttls or tls "
        "(implicit TLS)",
    )
    smtp_username: str | None = Field(default=None, description="SMTP login, when needed")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password")
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Real seconds one SMTP conversation may take"
    )
    mail_from: str | None = Field(
        default=None,
        description='Sender of customer email, e.g. "Acme Shop <orders@acme.example>"; '
        "needed when TRACKING_SMTP_HOST is set",
    )
    mail_kinds: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "shipped",
            "out_for_delivery",
            "delivered",
            "late",
            "action_needed",
        ],
        description="Notifications sent to customers (comma-separated or a JSON list): "
        "shipped, out_for_delivery, delivered, late, action_needed; empty: none",
    )
    mail_quiet_from_hour: int = Field(
        default=21,
        ge=0,
        le=23,
        description="From this local hour of the customer's evening, email waits for the morning",
    )
    mail_morning_hour: int = Field(
        default=8, ge=0, le=23, description="Local hour at which email held overnight is sent"
    )
    mail_retry_seconds: list[float] = Field(
        default_factory=lambda: [0.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0, 43200.0, 86400.0],
        min_length=1,
        description="Delay before each attempt to send one email, the first included (JSON "
        "list), in service-clock seconds; after the last, the email is given up",
    )
    mail_batch_size: int = Field(
        default=50, ge=1, le=1000, description="Emails per claim of the mailer"
    )
    mail_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Real seconds a claim holds its emails; a dead worker's are sent again "
        "after it, with the same Message-ID",
    )
    mail_every_seconds: float = Field(
        default=2.0, ge=0, description="Real seconds between mailer passes; 0: no mailer"
    )
    shop_name: str = Field(
        default="Our shop",
        min_length=1,
        max_length=128,
        description="The shop's name in customer email",
    )
    shop_color: str = Field(
        default="#1f4e79",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="The shop's brand colour in customer email (#rrggbb)",
    )
    demo_mail_dir: Path = Field(
        default=Path("var/demo-mail"),
        description="make run only: where the demo's local SMTP server writes each email it "
        "receives as a .eml file",
    )

    @field_validator("mail_kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        known = ("shipped", "out_for_delivery", "delivered", "late", "action_needed")
        unknown = [k for k in value if k not in known]
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; known: {', '.join(known)}")
        return value

    # Reports and the promise's recalibration (reports/, estimator/history/recalibration).
    reports_password: SecretStr | None = Field(
        default=None,
        description="Password of the promise report page /reports/promises for people "
        "without an API key (HTTP Basic, any user name); unset: API key only",
    )
    recalibrate: bool = Field(
        default=True,
        description="Keep the stated confidence true by recalibrating the quantile level from "
        "the outcomes of recent promises (open and closed), recomputed with the history",
    )

    @field_validator("webhook_retry_seconds", "mail_retry_seconds")
    @classmethod
    def _non_negative_delays(cls, value: list[float]) -> list[float]:
        if any(not d >= 0 for d in value):
            raise ValueError("delays must be 0 or more seconds")
        return value

    def mail_config(self) -> MailConfig:
        """Customer email's config (notifications.config). The port defaults from the
        security (25 none, 587 starttls, 465 tls); a host without a usable
        `TRACKING_MAIL_FROM` is a start-up error (ValueError), not a failure at the first
        email."""
        if self.smtp_host and (not self.mail_from or "@" not in parseaddr(self.mail_from)[1]):
            raise ValueError(
                "TRACKING_MAIL_FROM must be set to a sender address (e.g. "
                '"Acme Shop <orders@acme.example>") when TRACKING_SMTP_HOST is set'
            )
        return MailConfig(
            host=self.smtp_host or None,
            port=self.smtp_port or DEFAULT_SMTP_PORTS[self.smtp_security],
            security=self.smtp_security,
            username=self.smtp_username or None,
            password=self.smtp_password.get_secret_value() if self.smtp_password else None,
            timeout_seconds=self.smtp_timeout_seconds,
            mail_from=self.mail_from,
            kinds=frozenset(self.mail_kinds),
            quiet_from_hour=self.mail_quiet_from_hour,
            morning_hour=self.mail_morning_hour,
            retry=tuple(timedelta(seconds=s) for s in self.mail_retry_seconds),
            batch_size=self.mail_batch_size,
            lease_seconds=self.mail_lease_seconds,
            every_seconds=self.mail_every_seconds,
            shop_name=self.shop_name,
            shop_color=self.shop_color,
            default_locale=self.default_locale,
        )

    def webhook_config(self) -> WebhookConfig:
        """The webhook dispatcher's config (webhooks.config)."""
        return WebhookConfig(
            allow_http=self.webhook_allow_http,
            allow_hosts=tuple(self.webhook_allow_hosts),
            timeout_seconds=self.webhook_timeout_seconds,
            schedule=tuple(timedelta(seconds=s) for s in self.webhook_retry_seconds),
            jitter=self.webhook_retry_jitter,
            rotation_overlap=timedelta(hours=self.webhook_secret_overlap_hours),
            disable_after=timedelta(days=self.webhook_disable_after_days),
            batch_size=self.webhook_batch_size,
            concurrency=self.webhook_concurrency,
            lease_seconds=self.webhook_lease_seconds,
            dispatch_every_seconds=self.webhook_dispatch_every_seconds,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
