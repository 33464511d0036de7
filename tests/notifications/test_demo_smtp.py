"""The demo's mail server: a real SMTP conversation on loopback, one .eml file and one line
per email; none at all unless the settings point plain SMTP at this machine."""

from __future__ import annotations

import io
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from tracking_service.notifications.demo_smtp import demo_smtp


def message(to: str, subject: str, language: str, message_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Demo Shop <orders@shop.example>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("Olá! Seu pedido saiu para entrega.")
    msg["Content-Language"] = language  # after set_content, which drops Content-* headers
    return msg


def emails_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.eml")) if folder.exists() else []


async def test_each_email_becomes_a_file_and_a_line(tmp_path: Path) -> None:
    out = io.StringIO()
    folder = tmp_path / "mail"
    async with demo_smtp("127.0.0.1", 0, "none", folder, out) as server:
        assert server is not None and server.port > 0
        for n, (subject, language) in enumerate(
            [("Seu pedido foi enviado", "pt-BR"), ("Your order is late", "en")], start=1
        ):
            await aiosmtplib.send(
                message("ana@example.com", subject, language, f"<m{n}@shop.example>"),
                hostname="127.0.0.1",
                port=server.port,
            )
        received = list(server.drop.received)
    files = emails_in(folder)
    assert [r.path for r in received] == files and len(files) == 2
    first = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert first["Subject"] == "Seu pedido foi enviado"
    assert first["Message-ID"] == "<m1@shop.example>"
    assert "Olá!" in first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    lines = out.getvalue().splitlines()
    assert lines == [
        f'email to ana@example.com: "Seu pedido foi enviado" (pt-BR) -> {files[0]}',
        f'email to ana@example.com: "Your order is late" (en) -> {files[1]}',
    ]
    assert [r.message_id for r in received] == ["<m1@shop.example>", "<m2@shop.example>"]


async def test_no_server_unless_plain_smtp_on_loopback(tmp_path: Path) -> None:
    for host, security in [(None, "none"), ("smtp.example.com", "none"), ("127.0.0.1", "tls")]:
        async with demo_smtp(host, 2525, security, tmp_path, io.StringIO()) as server:
            assert server is None
    assert emails_in(tmp_path) == []
