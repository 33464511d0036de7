"""Customer email's words and layout: each kind in both languages, the link, no personal data,
escaped HTML, the late reason as the tracking page gives it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from tracking_service.notifications.kinds import KINDS
from tracking_service.notifications.render import CATALOGUE, contrast, render
from tracking_service.tracking import public_text

URL = "https://track.example/t/tok_7"
LOCALES = ("en", "pt-BR")


def payload(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "order_id": "shop-1001",
        "shipment_id": 7,
        "carrier": "ups",
        "tracking_number": "1Z999AA10123456787",
        "status": "in_transit",
        "estimate": {"earliest": "2026-03-05", "latest": "2026-03-06"},
        "promise": {"earliest": "2026-03-05", "latest": "2026-03-06"},
        "delay_reason": None,
        "tracking_url": URL,
        "occurred_at": "2026-03-02T12:00:00Z",
    }
    base.update(changes)
    return base


STATUS_OF = {
    "shipped": "in_transit",
    "out_for_delivery": "out_for_delivery",
    "delivered": "delivered",
    "late": "in_transit",
    "action_needed": "failed_attempt",
}
LATE = {"estimate": {"earliest": "2026-03-08", "latest": "2026-03-09"}, "delayed": True}


def email(kind: str, locale: str = "en", shop: str = "Acme", **changes: Any) -> Any:
    facts = payload(status=STATUS_OF[kind], **(LATE if kind == "late" else {}))
    facts.update(changes)
    return render(kind, facts, locale, shop_name=shop, shop_color="#1f4e79")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> _Tags:
    p = _Tags()
    p.feed(html)
    return p


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_in_both_languages_carries_the_link_and_the_shop(kind: str, locale: str) -> None:
    r = email(kind, locale, shop="Loja Sol")
    assert r.subject.startswith("Loja Sol: ") and "shop-1001" in r.subject
    assert "\n" not in r.subject
    assert URL in r.text
    tags = parsed(r.html)
    links = [a.get("href") for tag, a in tags.tags if tag == "a"]
    assert links and set(links) == {URL}
    html_tag = next(a for tag, a in tags.tags if tag == "html")
    assert html_tag["lang"] == locale
    assert "Loja Sol" in r.text and "Loja Sol" in "".join(tags.text)
    # nothing loaded from anywhere: no image, stylesheet, script or frame
    assert not {tag for tag, _ in tags.tags} & {"img", "link", "script", "iframe", "style"}
    assert not any("src" in a for _, a in tags.tags)


@pytest.mark.parametrize("locale", LOCALES)
def test_subjects_are_distinct_per_kind(locale: str) -> None:
    subjects = [email(kind, locale).subject for kind in KINDS]
    assert len(set(subjects)) == len(KINDS)
    actions = {
        email("action_needed", locale, status=s).subject
        for s in ("failed_attempt", "available_for_pickup", "exception")
    }
    assert len(actions) == 3 and not actions & set(subjects[:4])


def test_english_and_brazilian_portuguese_words() -> None:
    en = email("shipped", "en")
    assert en.subject == "Acme: your order shop-1001 has shipped"
    assert "Your order is on its way" in en.text
    assert "We promised delivery between Thu 5 Mar and Fri 6 Mar." in en.text
    pt = email("shipped", "pt-BR")
    assert pt.subject == "Acme: seu pedido shop-1001 foi enviado"
    assert "Seu pedido está a caminho" in pt.text
    assert "Prometemos a entrega entre qui., 5 de mar. e sex., 6 de mar." in pt.text
    assert "Código de rastreio: 1Z999AA10123456787" in pt.text
    assert "Rastreie seu pedido: " + URL in pt.text
    out = email("out_for_delivery", "pt-BR")
    assert out.subject == "Acme: seu pedido shop-1001 saiu para entrega"
    assert "Saiu para entrega" in out.text  # the tracking page's status words
    delivered = email("delivered", "pt-BR")
    assert "foi entregue" in delivered.subject and "Entregue" in delivered.text


def test_the_catalogues_have_the_same_phrases_and_placeholders() -> None:
    en, pt = CATALOGUE["en"], CATALOGUE["pt-BR"]
    assert set(en) == set(pt)
    for key in en:
        assert set(re.findall(r"{(\w+)}", en[key])) == set(re.findall(r"{(\w+)}", pt[key])), key
    assert all(pt[k] != en[k] for k in en if k not in ("order",))


def test_an_unknown_locale_reads_english_and_pt_reads_brazilian() -> None:
    assert email("delivered", "fr").subject == email("delivered", "en").subject
    assert email("delivered", "").subject == email("delivered", "en").subject
    assert email("delivered", "pt").subject == email("delivered", "pt-BR").subject
    assert email("delivered", "en-US").subject == email("delivered", "en").subject


def test_no_personal_data_even_if_the_payload_had_some() -> None:
    secret = {
        "customer_name": "Maria Silva",
        "customer_email": "maria@example.com",
        "customer_phone": "+55 11 99999-0000",
        "street": "Rua das Flores 123",
        "delay_note": "no scan since Fri at the Campinas hub",
    }
    for kind in KINDS:
        for locale in LOCALES:
            r = email(kind, locale, **secret)
            for value in secret.values():
                assert value not in r.text and value not in r.html and value not in r.subject


def test_html_is_escaped_and_the_text_part_is_not() -> None:
    r = email("shipped", shop='<script>alert("x")</script> & Co', order_id="<b>1</b>")
    assert "<script>" not in r.html and "<b>1</b>" not in r.html
    assert "&lt;script&gt;" in r.html and "&amp; Co" in r.html and "&lt;b&gt;1&lt;/b&gt;" in r.html
    assert '<script>alert("x")</script> & Co' in r.text and "<b>1</b>" in r.text


def test_a_payload_without_a_usable_link_or_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="tracking_url"):
        email("shipped", tracking_url="javascript:alert(1)")
    with pytest.raises(ValueError, match="tracking_url"):
        email("shipped", tracking_url=None)
    with pytest.raises(ValueError, match="occurred_at"):
        email("shipped", occurred_at=None)
    with pytest.raises(ValueError, match="kind"):
        render("birthday", payload(), "en", shop_name="Acme", shop_color="#000000")


def test_late_gives_the_new_estimate_and_the_reason_in_plain_words() -> None:
    r = email("late", "en", delay_reason="late_estimate")
    assert r.subject == "Acme: your order shop-1001 is running late"
    assert (
        "Your parcel is running 3 days late: its delivery estimate is now later than the date "
        "we promised. We now expect it between Sun 8 Mar and Mon 9 Mar." in r.text
    )
    assert "Expected: Sun 8 Mar \u2013 Mon 9 Mar" in r.text
    pt = email("late", "pt-BR", delay_reason="late_estimate")
    assert pt.subject == "Acme: seu pedido shop-1001 está atrasado"
    assert "Seu pacote está 3 dias atrasado" in pt.text
    assert "Agora a previsão de entrega é entre dom., 8 de mar. e seg., 9 de mar." in pt.text


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": "returned_to_sender"}, "reason.returned_to_sender"),
        ({"delay_reason": "stalled", "estimate": None}, None),
        ({"delay_reason": "stalled"}, None),
    ],
)
def test_late_reasons_as_the_tracking_page_words_them(
    changes: dict[str, Any], reason: str | None
) -> None:
    r = email("late", "en", **changes)
    if reason is not None:
        assert public_text.text("en", reason) in r.text
    else:
        assert "the carrier has not scanned it for a while" in r.text


def test_a_missed_promise_without_a_date_ahead_says_so_honestly() -> None:
    # the check found the promise (6 March) passed on 8 March, the estimate is old news
    r = email(
        "late",
        "en",
        estimate={"earliest": "2026-03-05", "latest": "2026-03-06"},
        delay_reason="promise_missed",
        occurred_at="2026-03-08T15:00:00Z",
    )
    assert "Your parcel is running 2 days late: it did not arrive by the date we promised" in (
        r.text
    )
    assert "We will tell you as soon as the carrier gives a new date" in r.text
    assert "Expected:" not in r.text


def test_may_be_delayed_when_the_estimate_still_keeps_the_promise() -> None:
    r = email("late", "en", estimate=payload()["estimate"], delay_reason="stalled")
    assert r.subject == "Acme: your order shop-1001 may be delayed"
    assert "Your parcel may be delayed: the carrier has not scanned it for a while." in r.text
    assert "We still expect it between Thu 5 Mar and Fri 6 Mar." in r.text


def test_today_is_the_destination_s_when_the_payload_names_its_zone() -> None:
    # 02:00 UTC on 7 March is still 6 March in Los Angeles: the promised day has not passed
    late = {
        "delay_reason": "stalled",
        "estimate": payload()["estimate"],
        "occurred_at": "2026-03-07T02:00:00Z",
    }
    utc = email("late", "en", **late)
    la = email("late", "en", dest_tz="America/Los_Angeles", **late)
    assert "may be delayed" in la.subject and "We still expect it" in la.text
    assert "running late" in utc.subject and "1 day late" in utc.text


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("failed_attempt", ("tried to deliver your parcel", "next attempt")),
        ("available_for_pickup", ("keeping your parcel for you to collect", "bring an ID")),
        ("exception", ("hold at customs", "payment of duties")),
    ],
)
def test_action_needed_says_what_to_do(status: str, words: tuple[str, str]) -> None:
    r = email("action_needed", "en", status=status)
    assert "What to do:" in r.text
    for w in words:
        assert w in r.text
    items = [tag for tag, _ in parsed(r.html).tags if tag == "li"]
    assert len(items) >= 2
    pt = email("action_needed", "pt-BR", status=status)
    assert "O que fazer:" in pt.text


def test_the_shop_colour_with_readable_text() -> None:
    dark = render("delivered", payload(), "en", shop_name="A", shop_color="#1f4e79")
    assert "background-color:#1f4e79;color:#ffffff" in dark.html
    light = render("delivered", payload(), "en", shop_name="A", shop_color="#ffe600")
    assert "background-color:#ffe600;color:#1f2328" in light.html
    assert "color:#ffe600;word-break" not in light.html  # too pale for a link on white
    odd = render("delivered", payload(), "en", shop_name="A", shop_color="red;x:y")
    assert "red;x:y" not in odd.html and "#1f4e79" in odd.html
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
