"""The MIME message: headers, a text and an HTML part, a Message-ID fixed per notification."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy

import pytest

from tracking_service.notifications.message import build_message, new_message_id
from tracking_service.notifications.render import Rendered

R = Rendered(
    subject="Loja Ação: seu pedido 1001 foi enviado", text="Olá \u2013 texto", html="<p>Olá</p>"
)
AT = datetime(2026, 3, 5, 9, 30, tzinfo=UTC)


def build(**kw: object) -> bytes:
    args: dict[str, object] = {
        "to": "Zé <ze@exemplo.com.br>",
        "sender": "Loja Ação <pedidos@loja.example>",
        "message_id": "<abc123@loja.example>",
        "at": AT,
        "locale": "pt-BR",
    }
    args.update(kw)
    return build_message(R, **args).as_bytes()  # type: ignore[arg-type]


def test_headers_and_parts_survive_the_wire() -> None:
    raw = build()
    assert raw.isascii()  # 7-bit clean: any server takes it, with or without 8BITMIME
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["Message-ID"] == "<abc123@loja.example>"
    assert msg["Date"] == "Thu, 05 Mar 2026 09:30:00 +0000"
    assert msg["From"] == "Loja Ação <pedidos@loja.example>"
    assert msg["To"] == "Zé <ze@exemplo.com.br>"
    assert msg["Subject"] == R.subject
    assert msg["Content-Language"] == "pt-BR"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]  # the last is the one clients prefer
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and text.get_content().replace("\r\n", "\n").rstrip("\n") == R.text
    assert html is not None and html.get_content().replace("\r\n", "\n").rstrip("\n") == R.html
    assert all(p.get_content_charset() == "utf-8" for p in msg.iter_parts())


def test_the_date_is_the_instant_given_in_its_own_offset() -> None:
    brt = timezone(timedelta(hours=-3))
    msg = message_from_bytes(build(at=AT.astimezone(brt)), policy=policy.default)
    assert msg["Date"] == "Thu, 05 Mar 2026 06:30:00 -0300"
    with pytest.raises(ValueError, match="aware"):
        build(at=datetime(2026, 3, 5, 9, 30))


def test_a_line_break_cannot_add_a_header() -> None:
    with pytest.raises(ValueError):
        build(to="ze@exemplo.com.br\r\nBcc: everyone@example.com")
    with pytest.raises(ValueError):
        build_message(
            Rendered("x\r\nBcc: a@b.c", "t", "<p>h</p>"),
            to="ze@exemplo.com.br",
            sender="s@loja.example",
            message_id="<a@b>",
            at=AT,
            locale="en",
        )


def test_new_message_ids_are_unique_on_the_sender_s_domain() -> None:
    ids = {new_message_id("Loja <Pedidos@Loja.Example>") for _ in range(1000)}
    assert len(ids) == 1000
    for mid in list(ids)[:5]:
        assert re.fullmatch(r"<[0-9a-f]{32}@loja\.example>", mid)
    assert new_message_id("pedidos@lojinha-ção.com.br").endswith("@xn--lojinha-o-s2a7b.com.br>")
    assert new_message_id(None).endswith("@localhost>")
    assert new_message_id("not an address").endswith("@localhost>")
