"""The `make run` demo's mail server: a local SMTP server that keeps each email as a file.

Under the demo only (`demo.py` starts it), an aiosmtpd server listens inside the process on
`TRACKING_SMTP_HOST`:`TRACKING_SMTP_PORT`, which the Makefile's `run` target points at
loopback with `TRACKING_SMTP_SECURITY=none`; the service's mailer talks to it as to any mail
server. Each message it receives is written as it arrived to a `.eml` file under
`TRACKING_DEMO_MAIL_DIR` (open it with any mail client) and announced in one line: to whom,
the subject, the language and the file. Nothing leaves the machine. Outside the demo there is
no such server: a deployment names its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any, TextIO

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class Received:
    """One email the server took: its recipients, subject, language and file."""

    to: tuple[str, ...]
    subject: str
    language: str | None
    message_id: str | None
    path: Path


def describe(received: Received) -> str:
    """The line a person reads for one email, e.g. `email to ana@example.com: "Seu pedido
    foi enviado" (pt-BR) -> var/demo-mail/20261124T153000-0001.eml`."""
    language = f" ({received.language})" if received.language else ""
    return f'email to {", ".join(received.to)}: "{received.subject}"{language} -> {received.path}'


def _language(message: Message) -> str | None:
    """The message's Content-Language, or its first part's."""
    for part in message.walk():
        found = part.get("Content-Language")
        if found:
            return str(found)
    return None


@dataclass
class MailDrop:
    """The aiosmtpd handler: every message accepted, written to `directory`, announced."""

    directory: Path
    out: TextIO | None = None
    received: list[Received] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _write(self, content: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.directory / f"{stamp}-{next(self._numbers):04d}.eml"
        path.write_bytes(content)
        return path

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if not content and isinstance(envelope.content, bytes):
            content = envelope.content
        path = await asyncio.to_thread(self._write, content)
        parsed = message_from_bytes(content, policy=policy.default)
        received = Received(
            to=tuple(str(r) for r in envelope.rcpt_tos),
            subject=str(parsed.get("Subject", "")),
            language=_language(parsed),
            message_id=parsed.get("Message-ID"),
            path=path,
        )
        self.received.append(received)
        line = describe(received)
        if self.out is not None:
            print(line, file=self.out, flush=True)
        else:
            log.info(line)
        return "250 Message accepted for delivery"


class DemoSmtpServer:
    """An aiosmtpd server on this event loop (no thread), on `host`:`port` (0: a free port)."""

    def __init__(self, drop: MailDrop, host: str = "127.0.0.1", port: int = 0) -> None:
        self.drop = drop
        self.host = host
        self.port = port
        self._server: asyncio.AbstractServer | None = None

    def _protocol(self) -> SMTP:
        return SMTP(self.drop, hostname="localhost", enable_SMTPUTF8=True)

    async def start(self) -> None:
        # aiosmtpd logs every SMTP command at INFO (the addresses too): its warnings only
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._protocol, host=self.host, port=self.port)
        except OSError as exc:
            raise RuntimeError(
                f"the demo's mail server cannot listen on {self.host}:{self.port} "
                f"({exc.strerror}); stop what uses it or set TRACKING_SMTP_PORT to a free port"
            ) from None
        sockets: Any = self._server.sockets
        self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)
            self._server = None


@contextlib.asynccontextmanager
async def demo_smtp(
    host: str | None, port: int, security: str, directory: Path, out: TextIO | None
) -> AsyncIterator[DemoSmtpServer | None]:
    """Run the demo's mail server for the settings' SMTP host and port while the block runs;
    None (with a warning) when the settings do not point plain SMTP at this machine."""
    if host is None or host not in LOOPBACK or security != "none":
        log.warning(
            "no demo mail server: it needs TRACKING_SMTP_HOST=127.0.0.1 and "
            "TRACKING_SMTP_SECURITY=none (make run sets them)"
        )
        yield None
        return
    server = DemoSmtpServer(MailDrop(directory, out), host, port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
