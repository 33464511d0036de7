"""Customer email's settings as one plain object (`Settings.mail_config()`).

The retry delays are service-clock time (a fast demo clock shrinks them, as it does the
webhooks'); the SMTP timeout, the lease and the mailer's interval are real seconds, since an
SMTP server and a lease live in real time. Hours are the customer's local hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from tracking_service.notifications.kinds import KINDS

SECURITIES: tuple[str, ...] = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}

DEFAULT_RETRY: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s) for s in (0, 60, 300, 1800, 7200, 21600, 43200, 86400)
)


@dataclass(frozen=True, slots=True)
class MailConfig:
    """What the notification fan-out, the renderer and the SMTP sender need."""

    host: str | None = None
    port: int = 25
    security: str = "none"
    """`none` (plain), `starttls` (upgrade after connecting) or `tls` (implicit TLS)."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 30.0
    mail_from: str | None = None
    kinds: frozenset[str] = frozenset(KINDS)
    quiet_from_hour: int = 21
    morning_hour: int = 8
    retry: tuple[timedelta, ...] = DEFAULT_RETRY
    """The delay before each attempt, the first included; after the last, given up."""
    batch_size: int = 50
    lease_seconds: float = 120.0
    every_seconds: float = 2.0
    shop_name: str = "Our shop"
    shop_color: str = "#1f4e79"
    default_locale: str = "en"

    @property
    def enabled(self) -> bool:
        """Email is sent only when an SMTP host is set."""
        return bool(self.host)
