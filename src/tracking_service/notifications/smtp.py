"""The one SMTP seam of customer email: send a message, say what came of it (aiosmtplib).

One connection per message: mail is a few messages a minute per shop, not a stream, and a
connection of its own cannot be left half-used by a failure in another send. Security is the
setting's: `none` (plain, never upgraded even when the server offers STARTTLS: it is meant
for loopback and trusted networks), `starttls` (required; a server without it is a failure)
or `tls` (implicit TLS). Certificates are verified. A login is made when a user name is
set. The whole conversation has one time limit (`timeout_seconds`), on top of aiosmtplib's
per-command one.

`send` never raises for SMTP trouble; it answers a `SendResult`:
- `SENT`: the server accepted the message (`detail`: its answer, e.g. "250 2.0.0 queued").
- `REJECTED`: the server refused the recipient for good, a 5xx answer to RCPT TO (550 no
  such mailbox, 553 bad address...). Sending again cannot help: the caller records it on the
  order and stops.
- `RETRY`: everything else, which may go better later: no connection, a timeout, the server
  hanging up, any 4xx (451, 452, greylisting), and the failures that are the deployment's to
  fix rather than the customer's (login refused, STARTTLS missing, the sender refused, the
  message refused after DATA). The caller's retry schedule ends them.

`detail` keeps the server's code and words (up to 512 characters) with the recipient's
address replaced by `<recipient>`: outcomes are shown and logged, and an address the
customer erased must not live on in them. Logs: a warning for a retry, info for a refusal.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from enum import StrEnum

import aiosmtplib

from tracking_service.notifications.config import MailConfig

log = logging.getLogger(__name__)

DETAIL_LIMIT = 512


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    detail: str


def _redact(text: str, addresses: list[str]) -> str:
    for address in addresses:
        if address:
            pattern = f"<?{re.escape(address)}>?"
            text = re.sub(pattern, "<recipient>", text, flags=re.IGNORECASE)
    return " ".join(text.split())[:DETAIL_LIMIT]


def _classify(exc: BaseException) -> tuple[Outcome, str]:
    """What an aiosmtplib failure means for this message, and the words to keep."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        permanent = bool(refused) and all(500 <= r.code < 600 for r in refused)
        words = "; ".join(f"{r.code} {r.message}" for r in refused) or str(exc)
        return (Outcome.REJECTED if permanent else Outcome.RETRY), f"recipient refused: {words}"
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        permanent = 500 <= exc.code < 600
        words = f"recipient refused: {exc.code} {exc.message}"
        return (Outcome.REJECTED if permanent else Outcome.RETRY), words
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return Outcome.RETRY, f"timeout: {exc}" if str(exc) else "timeout"
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        return Outcome.RETRY, f"connection failed: {exc}"
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return Outcome.RETRY, f"server disconnected: {exc}"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return Outcome.RETRY, f"login refused: {exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return Outcome.RETRY, f"sender refused: {exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return Outcome.RETRY, f"message refused: {exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return Outcome.RETRY, f"server answered {exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPException):
        return Outcome.RETRY, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ssl.SSLError):
        return Outcome.RETRY, f"TLS failed: {exc}"
    if isinstance(exc, OSError):
        return Outcome.RETRY, f"connection failed: {exc}"
    return Outcome.RETRY, f"{type(exc).__name__}: {exc}"


class SmtpSender:
    """Sends customer email through the configured SMTP server (see the module docstring)."""

    def __init__(self, config: MailConfig, *, tls_context: ssl.SSLContext | None = None) -> None:
        """`tls_context`: certificates to trust instead of the system's (a private CA, tests);
        None: the system's, verified."""
        self.config = config
        self._tls_context = tls_context
        self._local_hostname: str | None = None

    async def _hostname(self) -> str:
        """This host's name for EHLO, looked up once (off the loop: it may ask DNS)."""
        if self._local_hostname is None:
            name = await asyncio.to_thread(socket.getfqdn)
            ok = name and name.isascii() and not any(c.isspace() for c in name)
            self._local_hostname = name if ok else "localhost"
        return self._local_hostname

    async def _tls(self) -> ssl.SSLContext | None:
        """The verifying client context, built once (loading the system's CAs takes a while)."""
        if self.config.security == "none":
            return None
        if self._tls_context is None:
            self._tls_context = await asyncio.to_thread(ssl.create_default_context)
        return self._tls_context

    def _client(self, local_hostname: str, tls: ssl.SSLContext | None) -> aiosmtplib.SMTP:
        c = self.config
        return aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username or None,
            password=c.password if c.username else None,
            local_hostname=local_hostname,
            timeout=c.timeout_seconds,
            use_tls=c.security == "tls",
            start_tls=c.security == "starttls",
            validate_certs=True,
            tls_context=tls,
        )

    async def send(self, message: EmailMessage) -> SendResult:
        """Send `message` to its `To` address, from its `From` address, once."""
        recipients = [address for _, address in getaddresses(message.get_all("To", [])) if address]
        sender = parseaddr(str(message.get("From", "")))[1]
        message_id = str(message.get("Message-ID", ""))
        if not self.config.host:
            return self._retry(message_id, "no SMTP host configured (TRACKING_SMTP_HOST)")
        if not recipients or not sender:
            return self._retry(message_id, "the message has no To or From address")
        answer: str | None = None
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                client = self._client(await self._hostname(), await self._tls())
                async with client:
                    _, answer = await client.send_message(
                        message, sender=sender, recipients=recipients
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let one email fail a batch
            if answer is not None:  # accepted; only the goodbye failed: sending again would copy
                return SendResult(Outcome.SENT, _redact(f"accepted: {answer}", recipients))
            outcome, words = _classify(exc)
            detail = _redact(words, recipients)
            if outcome is Outcome.REJECTED:
                log.info("email %s refused for good: %s", message_id, detail)
                return SendResult(outcome, detail)
            return self._retry(message_id, detail)
        return SendResult(Outcome.SENT, _redact(f"accepted: {answer}", recipients))

    @staticmethod
    def _retry(message_id: str, detail: str) -> SendResult:
        log.warning("email %s not sent, to be retried: %s", message_id, detail)
        return SendResult(Outcome.RETRY, detail[:DETAIL_LIMIT])
