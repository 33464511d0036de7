"""The SMTP sender against a real aiosmtpd server on loopback: what arrives, and how each kind
of trouble is classified (sent, retry, rejected) without raising. Also the mail settings."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tracking_service.notifications.config import MailConfig
from tracking_service.notifications.message import build_message, new_message_id
from tracking_service.notifications.render import render
from tracking_service.notifications.smtp import Outcome, SmtpSender
from tracking_service.settings import Settings

TO = "Maria <maria@example.com>"
FROM = "Acme Shop <orders@acme.example>"
URL = "https://track.example/t/tok_7"
PAYLOAD = {
    "order_id": "shop-1001",
    "shipment_id": 7,
    "carrier": "ups",
    "tracking_number": "1Z999AA10123456787",
    "status": "out_for_delivery",
    "estimate": {"earliest": "2026-03-05", "latest": "2026-03-06"},
    "promise": {"earliest": "2026-03-05", "latest": "2026-03-06"},
    "delay_reason": None,
    "tracking_url": URL,
    "occurred_at": "2026-03-05T09:00:00Z",
}


def email(to: str = TO, locale: str = "pt-BR") -> EmailMessage:
    rendered = render("out_for_delivery", PAYLOAD, locale, shop_name="Acme", shop_color="#1f4e79")
    return build_message(
        rendered,
        to=to,
        sender=FROM,
        message_id=new_message_id(FROM),
        at=datetime(2026, 3, 5, 9, 0, tzinfo=UTC),
        locale=locale,
    )


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: bytes | None


class Handler:
    """Records what arrives; answers RCPT TO or DATA with a set reply when given one."""

    def __init__(self, rcpt: str | None = None, data: str | None = None) -> None:
        self.rcpt = rcpt
        self.data = data
        self.received: list[Received] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.rcpt is not None:
            return self.rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data is not None:
            return self.data
        assert server.transport is not None
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=bytes(envelope.original_content or b""),
                tls=server.transport.get_extra_info("ssl_object") is not None,
                login=getattr(session.auth_data, "login", None) if session.authenticated else None,
            )
        )
        return "250 2.0.0 Ok: queued as 4F2A"


def _login(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"shop", b"s3cret")
    return AuthResult(success=ok, handled=False, auth_data=data)


@asynccontextmanager
async def smtp_server(
    handler: Handler,
    *,
    implicit_tls: ssl.SSLContext | None = None,
    starttls: ssl.SSLContext | None = None,
    auth: bool = False,
) -> AsyncIterator[int]:
    """aiosmtpd on this loop on a free loopback port (yielded)."""

    def protocol() -> SMTP:
        return SMTP(
            handler,
            hostname="mail.test",
            tls_context=starttls,
            require_starttls=starttls is not None,
            authenticator=_login if auth else None,
            auth_required=auth,
            auth_require_tls=False,
        )

    server = await asyncio.get_running_loop().create_server(
        protocol, "127.0.0.1", 0, ssl=implicit_tls
    )
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def config(port: int, **changes: Any) -> MailConfig:
    return replace(
        MailConfig(host="127.0.0.1", port=port, security="none", mail_from=FROM), **changes
    )


async def test_a_message_arrives_with_its_headers_and_both_parts() -> None:
    handler = Handler()
    message = email()
    async with smtp_server(handler) as port:
        result = await SmtpSender(config(port)).send(message)
    assert result.outcome is Outcome.SENT
    assert "4F2A" in result.detail
    (got,) = handler.received
    assert got.mail_from == "orders@acme.example" and got.rcpt_tos == ["maria@example.com"]
    assert not got.tls and got.login is None
    parsed = message_from_bytes(got.content, policy=policy.default)
    assert parsed["Message-ID"] == message["Message-ID"]
    assert parsed["Subject"] == "Acme: seu pedido shop-1001 saiu para entrega"
    assert parsed["Content-Language"] == "pt-BR"
    assert parsed["From"] == FROM and parsed["To"] == TO
    assert parsed["Date"] == "Thu, 05 Mar 2026 09:00:00 +0000"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    assert "Saiu para entrega" in text.get_content() and URL in text.get_content()
    assert f'href="{URL}"' in html.get_content()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_a_login_over_plain_smtp() -> None:
    handler = Handler()
    async with smtp_server(handler, auth=True) as port:
        good = await SmtpSender(config(port, username="shop", password="s3cret")).send(email())
        bad = await SmtpSender(config(port, username="shop", password="wrong")).send(email())
        none = await SmtpSender(config(port)).send(email())
    assert good.outcome is Outcome.SENT
    assert [r.login for r in handler.received] == [b"shop"]
    assert bad.outcome is Outcome.RETRY and "login refused: 535" in bad.detail
    assert none.outcome is Outcome.RETRY and "530" in none.detail  # authentication required


@pytest.mark.parametrize(
    "reply", ["550 5.1.1 <maria@example.com>: no such user", "553 5.1.3 bad address syntax"]
)
async def test_a_recipient_refused_for_good_is_rejected_with_the_server_s_words(
    reply: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "tracking_service.notifications.smtp")
    async with smtp_server(Handler(rcpt=reply)) as port:
        result = await SmtpSender(config(port)).send(email())
    assert result.outcome is Outcome.REJECTED
    code = reply.split()[0]
    assert result.detail.startswith(f"recipient refused: {code} ")
    assert "maria@example.com" not in result.detail  # the address never lives on in outcomes
    if "no such user" in reply:
        assert "<recipient>: no such user" in result.detail
    (record,) = [r for r in caplog.records if r.name.endswith("smtp")]
    assert record.levelno == logging.INFO and "maria@example.com" not in record.getMessage()


async def test_a_temporary_refusal_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "tracking_service.notifications.smtp")
    async with smtp_server(Handler(rcpt="451 4.7.1 greylisted, try again later")) as port:
        result = await SmtpSender(config(port)).send(email())
    assert result.outcome is Outcome.RETRY and "451 4.7.1 greylisted" in result.detail
    assert [r.levelno for r in caplog.records if r.name.endswith("smtp")] == [logging.WARNING]


async def test_a_message_refused_after_data_is_retried_not_blamed_on_the_address() -> None:
    async with smtp_server(Handler(data="554 5.7.1 message refused")) as port:
        result = await SmtpSender(config(port)).send(email())
    assert result.outcome is Outcome.RETRY and "554" in result.detail


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_server_that_is_not_listening_is_retried() -> None:
    result = await SmtpSender(config(_free_port())).send(email())
    assert result.outcome is Outcome.RETRY and result.detail.startswith("connection failed")


@asynccontextmanager
async def raw_server(on_connect: Callable[[asyncio.StreamWriter], Any]) -> AsyncIterator[int]:
    """A TCP server that does only what `on_connect` does with each connection."""
    held: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await on_connect(writer)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


async def test_a_server_that_never_answers_is_a_timeout_to_retry() -> None:
    async def silent(writer: asyncio.StreamWriter) -> None:
        return None

    async with raw_server(silent) as port:
        result = await SmtpSender(config(port, timeout_seconds=0.2)).send(email())
    assert result.outcome is Outcome.RETRY and "timeout" in result.detail.lower()


async def test_a_server_that_hangs_up_is_retried() -> None:
    async def hang_up(writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mail.test ESMTP\r\n")
        await writer.drain()
        writer.close()

    async with raw_server(hang_up) as port:
        result = await SmtpSender(config(port)).send(email())
    assert result.outcome is Outcome.RETRY
    assert "disconnected" in result.detail or "connection" in result.detail


async def test_no_host_or_no_address_is_a_retry_not_an_exception() -> None:
    assert (await SmtpSender(MailConfig()).send(email())).outcome is Outcome.RETRY
    bare = EmailMessage()
    bare["Subject"] = "x"
    assert (await SmtpSender(config(25)).send(bare)).outcome is Outcome.RETRY


# --- TLS: a throwaway self-signed certificate for 127.0.0.1 ------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make the test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


async def test_starttls_and_implicit_tls_with_a_verified_certificate(
    certificate: tuple[Path, Path],
) -> None:
    server_ctx, client_ctx = contexts(certificate)
    handler = Handler()
    async with smtp_server(handler, starttls=server_ctx) as port:
        upgraded = await SmtpSender(config(port, security="starttls"), tls_context=client_ctx).send(
            email()
        )
        plain = await SmtpSender(config(port, security="none")).send(email())
        untrusted = await SmtpSender(config(port, security="starttls")).send(email())
    assert upgraded.outcome is Outcome.SENT
    assert plain.outcome is Outcome.RETRY  # the server requires STARTTLS; `none` never upgrades
    assert untrusted.outcome is Outcome.RETRY  # a certificate nobody vouches for
    async with smtp_server(handler, implicit_tls=server_ctx) as port:
        implicit = await SmtpSender(config(port, security="tls"), tls_context=client_ctx).send(
            email()
        )
    assert implicit.outcome is Outcome.SENT
    assert [r.tls for r in handler.received] == [True, True]


async def test_starttls_demanded_of_a_server_without_it_is_retried() -> None:
    async with smtp_server(Handler()) as port:
        result = await SmtpSender(config(port, security="starttls")).send(email())
    assert result.outcome is Outcome.RETRY and "STARTTLS" in result.detail


# --- settings ---------------------------------------------------------------------------------


def test_mail_config_from_settings() -> None:
    c = Settings(
        smtp_host="smtp.acme.example",
        smtp_security="tls",
        smtp_username="shop",
        smtp_password="s3cret",  # type: ignore[arg-type]
        mail_from=FROM,
        mail_kinds=["late", "delivered"],
        mail_retry_seconds=[0, 60],
    ).mail_config()
    assert c.enabled and (c.host, c.port, c.security) == ("smtp.acme.example", 465, "tls")
    assert (c.username, c.password) == ("shop", "s3cret") and "s3cret" not in repr(c)
    assert c.kinds == frozenset({"late", "delivered"})
    assert [d.total_seconds() for d in c.retry] == [0, 60]
    assert Settings(smtp_host="h", mail_from=FROM).mail_config().port == 587
    assert Settings(smtp_host="h", smtp_security="none", mail_from=FROM).mail_config().port == 25
    assert Settings(smtp_host="h", smtp_port=2525, mail_from=FROM).mail_config().port == 2525
    assert not Settings().mail_config().enabled  # no host: no email, and no sender needed


@pytest.mark.parametrize("mail_from", [None, "", "orders", "Acme Shop"])
def test_a_host_without_a_sender_address_is_a_start_up_error(mail_from: str | None) -> None:
    with pytest.raises(ValueError, match="TRACKING_MAIL_FROM"):
        Settings(smtp_host="smtp.acme.example", mail_from=mail_from).mail_config()
