"""The MIME message of one customer email: headers, a plain-text part and an HTML part.

`new_message_id` is called once, when the notification row is made, and kept with it: a
resend after a crash between the server's acceptance and the record carries the same
Message-ID, so the receiving side can tell the copy for what it is.

`build_message` uses the `SMTP` policy (CRLF line ends, headers folded and encoded as the
protocol wants); a header value with a line break is refused there, so nothing in a subject
or an address can add a header. Both parts are quoted-printable: 7-bit clean for any server,
whether or not it offers 8BITMIME, and still readable in the raw message.
`Auto-Submitted: auto-generated` (RFC 3834) keeps vacation responders from answering a
notification.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

from tracking_service.notifications.render import Rendered

FALLBACK_DOMAIN = "localhost"


def _domain(sender: str | None) -> str:
    """The domain of a sender address ("Acme <orders@acme.example>" -> "acme.example"), as
    ASCII (IDNA); `localhost` when there is none."""
    address = parseaddr(sender or "")[1]
    domain = address.rpartition("@")[2].strip().strip(".").lower() if "@" in address else ""
    if not domain or any(c in domain for c in '<>[]()\\" \t\r\n'):
        return FALLBACK_DOMAIN
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return FALLBACK_DOMAIN


def new_message_id(sender: str | None) -> str:
    """A new, unguessable Message-ID on the sender's domain: `<32 hex digits@domain>`."""
    return f"<{secrets.token_hex(16)}@{_domain(sender)}>"


def build_message(
    r: Rendered, *, to: str, sender: str, message_id: str, at: datetime, locale: str
) -> EmailMessage:
    """The email `r` from `sender` to `to`, dated `at` (aware), in `locale`:
    multipart/alternative with the text part first and the HTML part last (the one clients
    prefer). Raises ValueError for a header value that cannot be sent (a line break)."""
    if at.tzinfo is None:
        raise ValueError("the Date of an email must be an aware instant")
    msg = EmailMessage(policy=SMTP)
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(at)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = r.subject
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(r.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(r.html, subtype="html", charset="utf-8", cte="quoted-printable")
    msg["Content-Language"] = locale  # after the parts: set_content drops Content-* headers
    return msg
