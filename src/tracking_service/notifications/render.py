"""Customer email's subject, plain text and HTML, in the order's language.

Pure apart from reading the two templates once. `render` turns a notification's kind and
payload (the public facts `plan.intents_for` kept) into a `Rendered`: the words are decided
here, the layout is the templates' (`templates/email/notification.html`, autoescaped, and
`notification.txt`), so the HTML and the text part always say the same thing.

Words: the email's own phrases are a dict per locale like the tracking page's, and every
status, delay reason and date comes from `tracking.public_text`, so a customer reads the same
words in the email as on the page the link opens ("On its way", "qui., 11 de dez."). A locale
the emails do not speak falls back to English (the mailer resolves the order's locale against
the shop's default before it gets here).

What an email can contain is what the payload has, and the payload has only what the tracking
page shows: the order's id, carrier, tracking number, status, dates, the delay's reason and the
link. Dates are local to the destination: the promise and estimates are local dates already;
"today" (for a date's year and whether an estimate has passed) is the event's instant in the
payload's `dest_tz` when it has one, else in UTC.

The HTML is one narrow column of tables with inline styles, no image, font or stylesheet
from anywhere: it reads on a phone and in clients that block remote content. The shop's colour
fills the header and the button; their text is white or near-black, whichever contrasts more,
and the plain link uses the colour only when it is dark enough to read on white.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from types import MappingProxyType
from typing import Any

import jinja2

from tracking_service.notifications.kinds import (
    ACTION_NEEDED,
    DELIVERED,
    KINDS,
    LATE,
    OUT_FOR_DELIVERY,
    SHIPPED,
)
from tracking_service.timezones import zone_or_none
from tracking_service.tracking import public_text as t
from tracking_service.tracking.public_view import CARRIER_NAMES, EN_DASH

DEFAULT_COLOR = "#1f4e79"
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_TEXT_DARK = "#1f2328"
_TEXT_LIGHT = "#ffffff"

ACTIONS: tuple[str, ...] = ("failed_attempt", "available_for_pickup", "exception")
"""The statuses an `action_needed` email explains; another status reads as `exception`."""

_EN: dict[str, str] = {
    "subject.shipped": "{shop}: your order {order_id} has shipped",
    "subject.out_for_delivery": "{shop}: your order {order_id} is out for delivery",
    "subject.delivered": "{shop}: your order {order_id} has been delivered",
    "subject.late": "{shop}: your order {order_id} is running late",
    "subject.late_may_be": "{shop}: your order {order_id} may be delayed",
    "subject.failed_attempt": "{shop}: the delivery attempt for your order {order_id} failed",
    "subject.available_for_pickup": "{shop}: your order {order_id} is ready for pickup",
    "subject.exception": "{shop}: your order {order_id} is held up \u2013 what to do",
    "heading.shipped": "Your order is on its way",
    "heading.late": "Your parcel is running late",
    "heading.late_may_be": "Your parcel may be delayed",
    "heading.exception": "Your parcel is held up",
    "shipped.intro": "Good news: your parcel is with {carrier} and on its way to you.",
    "shipped.promise": "We promised delivery {when}",
    "shipped.estimate": "The carrier now expects it {when}",
    "out_for_delivery.intro": "{carrier} is bringing your parcel to you: it should arrive "
    "soon, usually today.",
    "out_for_delivery.next": "If you can, make sure someone is there to receive it.",
    "delivered.intro": "{carrier} reports that your parcel has been delivered. We hope you "
    "enjoy your order.",
    "delivered.next": "If you cannot find it, please contact us.",
    "late.sorry": "We are sorry for the wait.",
    "late.no_date": "We will tell you as soon as the carrier gives a new date; the tracking "
    "page always shows the latest news",
    "reason.stalled": "the carrier has not scanned it for a while",
    "reason.late_estimate": "its delivery estimate is now later than the date we promised",
    "failed_attempt.intro": "{carrier} tried to deliver your parcel but could not.",
    "failed_attempt.do.1": "Check the carrier's notice or the tracking page for the next "
    "attempt, or for how to arrange another delivery.",
    "failed_attempt.do.2": "Make sure someone can receive the parcel, or that the carrier can "
    "reach your door.",
    "failed_attempt.do.3": "If the carrier needs anything else, contact them with the "
    "tracking number below.",
    "available_for_pickup.intro": "{carrier} is keeping your parcel for you to collect.",
    "available_for_pickup.do.1": "Collect it soon: pickup points keep parcels only for a "
    "limited time before sending them back.",
    "available_for_pickup.do.2": "The carrier's notice says where to collect it; bring an ID "
    "and the tracking number below.",
    "exception.intro": "{carrier} has reported a problem with your parcel, such as a hold at "
    "customs or a missing detail, and it is not moving for now.",
    "exception.do.1": "Look for a message from the carrier or from customs: they may need a "
    "document, a payment of duties or a corrected address.",
    "exception.do.2": "Follow their instructions, quoting the tracking number below.",
    "exception.do.3": "If nothing has reached you, or you are unsure, contact us and we will help.",
    "what_to_do": "What to do",
    "by_day": "by {day}",
    "order": "Order",
    "status": "Status",
    "link_hint": "If the button does not work, copy this link into your browser:",
    "footer": "You received this email because you placed order {order_id} with {shop}.",
}

_PT_BR: dict[str, str] = {
    "subject.shipped": "{shop}: seu pedido {order_id} foi enviado",
    "subject.out_for_delivery": "{shop}: seu pedido {order_id} saiu para entrega",
    "subject.delivered": "{shop}: seu pedido {order_id} foi entregue",
    "subject.late": "{shop}: seu pedido {order_id} está atrasado",
    "subject.late_may_be": "{shop}: seu pedido {order_id} pode atrasar",
    "subject.failed_attempt": "{shop}: não foi possível entregar seu pedido {order_id}",
    "subject.available_for_pickup": "{shop}: seu pedido {order_id} está disponível para retirada",
    "subject.exception": "{shop}: seu pedido {order_id} está retido \u2013 veja o que fazer",
    "heading.shipped": "Seu pedido está a caminho",
    "heading.late": "Seu pacote está atrasado",
    "heading.late_may_be": "Seu pacote pode atrasar",
    "heading.exception": "Seu pacote está retido",
    "shipped.intro": "Boa notícia: seu pacote já está com a transportadora {carrier} e a caminho.",
    "shipped.promise": "Prometemos a entrega {when}",
    "shipped.estimate": "A transportadora agora prevê a entrega {when}",
    "out_for_delivery.intro": "A transportadora {carrier} saiu para entregar seu pacote: ele "
    "deve chegar em breve, normalmente ainda hoje.",
    "out_for_delivery.next": "Se puder, deixe alguém no endereço para receber.",
    "delivered.intro": "A transportadora {carrier} informou que seu pacote foi entregue. "
    "Esperamos que você aproveite sua compra.",
    "delivered.next": "Se não encontrar o pacote, fale conosco.",
    "late.sorry": "Pedimos desculpas pela espera.",
    "late.no_date": "Avisaremos assim que a transportadora informar uma nova data; a página "
    "de rastreio mostra sempre as últimas notícias",
    "reason.stalled": "a transportadora não registra movimentação dele há algum tempo",
    "reason.late_estimate": "a previsão de entrega dele agora é posterior à data prometida",
    "failed_attempt.intro": "A transportadora {carrier} tentou entregar seu pacote, mas não "
    "conseguiu.",
    "failed_attempt.do.1": "Confira no aviso da transportadora ou na página de rastreio "
    "quando será a próxima tentativa ou como combinar uma nova entrega.",
    "failed_attempt.do.2": "Garanta que alguém possa receber o pacote ou que o entregador "
    "consiga chegar até a sua porta.",
    "failed_attempt.do.3": "Se a transportadora precisar de mais alguma coisa, fale com ela "
    "informando o código de rastreio abaixo.",
    "available_for_pickup.intro": "A transportadora {carrier} está guardando seu pacote para "
    "você retirar.",
    "available_for_pickup.do.1": "Retire logo: os pontos de retirada guardam os pacotes só "
    "por um tempo limitado antes de devolvê-los.",
    "available_for_pickup.do.2": "O aviso da transportadora informa onde retirar; leve um "
    "documento com foto e o código de rastreio abaixo.",
    "exception.intro": "A transportadora {carrier} informou um problema com seu pacote, como "
    "uma retenção na alfândega ou um dado faltando, e ele está parado por enquanto.",
    "exception.do.1": "Procure uma mensagem da transportadora ou da alfândega: pode ser "
    "preciso enviar um documento, pagar impostos ou corrigir o endereço.",
    "exception.do.2": "Siga as instruções recebidas, informando o código de rastreio abaixo.",
    "exception.do.3": "Se você não recebeu nenhum aviso ou tiver dúvidas, fale conosco que "
    "vamos ajudar.",
    "what_to_do": "O que fazer",
    "by_day": "até {day}",
    "order": "Pedido",
    "status": "Situação",
    "link_hint": "Se o botão não funcionar, copie este link no navegador:",
    "footer": "Você está recebendo este e-mail por causa do pedido {order_id} feito em {shop}.",
}

CATALOGUE: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"en": MappingProxyType(_EN), "pt-BR": MappingProxyType(_PT_BR)}
)
"""The emails' own phrases per locale (the same keys in each; a test holds them equal)."""

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("tracking_service", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    auto_reload=False,
    undefined=jinja2.StrictUndefined,
)
_HTML = _env.get_template("email/notification.html")
_TEXT = _env.get_template("email/notification.txt")


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


# --- colours ----------------------------------------------------------------------------------


def _luminance(color: str) -> float:
    """WCAG relative luminance of `#rrggbb`."""

    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two `#rrggbb` colours (1 to 21)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _colours(shop_color: str) -> tuple[str, str, str]:
    """The brand colour (a malformed one: the default), the text on it, and the colour of a
    link on white (the brand's when it reads at 4.5:1, else the body text's)."""
    color = shop_color if _COLOR.fullmatch(shop_color) else DEFAULT_COLOR
    on = _TEXT_LIGHT if contrast(color, _TEXT_LIGHT) >= contrast(color, _TEXT_DARK) else _TEXT_DARK
    link = color if contrast(color, "#ffffff") >= 4.5 else _TEXT_DARK
    return color, on, link


# --- words ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Window:
    earliest: date
    latest: date


def _window(value: object) -> _Window | None:
    if not isinstance(value, Mapping):
        return None
    try:
        return _Window(date.fromisoformat(value["earliest"]), date.fromisoformat(value["latest"]))
    except (KeyError, TypeError, ValueError):
        return None


class _Words:
    """One email's locale and local "today": what its phrases and dates need."""

    def __init__(self, locale: str, today: date) -> None:
        self.locale = locale
        self.today = today

    def __call__(self, key: str, **values: object) -> str:
        template = CATALOGUE[self.locale][key]
        return template.format(**values) if values else template

    def page(self, key: str, **values: object) -> str:
        """A phrase of the tracking page (`tracking.public_text`)."""
        return t.text(self.locale, key, **values)

    def day(self, value: date) -> str:
        return t.day(value, self.locale, value.year != self.today.year)

    def span(self, w: _Window) -> str:
        """A window as a fact: "Thu 11 Dec", or two dates joined by an en dash."""
        if w.earliest == w.latest:
            return self.day(w.latest)
        return f"{self.day(w.earliest)} {EN_DASH} {self.day(w.latest)}"

    def when(self, w: _Window) -> str:
        """A window inside a sentence: "by Thu 11 Dec" / "between Wed 10 Dec and Thu 11 Dec"."""
        if w.earliest == w.latest:
            return self("by_day", day=self.day(w.latest))
        return self.page("late.window", earliest=self.day(w.earliest), latest=self.day(w.latest))

    def ahead(self, w: _Window | None) -> _Window | None:
        """A window as still ahead: its days before today dropped, None once it has passed."""
        if w is None or w.latest < self.today:
            return None
        return _Window(max(w.earliest, self.today), w.latest)


def _today(payload: Mapping[str, Any]) -> date:
    """The destination's date when the event happened (the payload's `occurred_at`)."""
    raw = payload.get("occurred_at")
    try:
        at = datetime.fromisoformat(str(raw).replace("Z", "+00:00")) if raw else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ValueError("payload has no aware occurred_at instant")
    tz = payload.get("dest_tz")
    where: tzinfo = (zone_or_none(tz) if isinstance(tz, str) and tz else None) or UTC
    return at.astimezone(where).date()


@dataclass(frozen=True, slots=True)
class _Late:
    days: int
    reason: str
    then: str


def _late(payload: Mapping[str, Any], w: _Words) -> _Late:
    """How late, why and what next, decided as the tracking page's late note decides them
    (`tracking.public_view`) from what the payload has."""
    status = str(payload.get("status") or "")
    promise = _window(payload.get("promise"))
    estimate = _window(payload.get("estimate")) or promise
    reason_code = payload.get("delay_reason")
    days = 0
    if promise is not None:
        late_by = [(w.today - promise.latest).days]
        if estimate is not None:
            late_by.append((estimate.latest - promise.latest).days)
        days = max(0, *late_by)
    if status in ("exception", "failed_attempt", "returned_to_sender"):
        reason = w.page(f"reason.{status}")
    elif reason_code == "stalled":
        reason = w("reason.stalled")
    elif promise is not None and estimate is not None and estimate.latest > promise.latest:
        reason = w("reason.late_estimate")
    elif promise is not None and (days > 0 or reason_code == "promise_missed"):
        reason = w.page("reason.promise_missed", promise=w.day(promise.latest))
    else:
        reason = w.page("reason.exception")
    ahead = w.ahead(estimate)
    if status in ("delivered", "returned_to_sender", "expired") or ahead is None:
        then = w("late.no_date")
    elif days > 0:
        then = w.page("late.expect", when=_page_when(w, ahead))
    else:
        then = w.page("late.still_expect", when=_page_when(w, ahead))
    return _Late(days, reason, then)


def _page_when(w: _Words, window: _Window) -> str:
    """A window as the page's late note says it: one date, or "between X and Y"."""
    if window.earliest == window.latest:
        return w.day(window.latest)
    return w.page("late.window", earliest=w.day(window.earliest), latest=w.day(window.latest))


# --- one email --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Content:
    subject: str
    heading: str
    paragraphs: tuple[str, ...]
    actions: tuple[str, ...] = ()


def _content(kind: str, payload: Mapping[str, Any], w: _Words, shop: str) -> _Content:
    order_id = str(payload["order_id"])
    carrier = _carrier(payload)
    status = str(payload.get("status") or "")
    promise = _window(payload.get("promise"))
    estimate = _window(payload.get("estimate"))
    if kind == SHIPPED:
        paragraphs = [w("shipped.intro", carrier=carrier)]
        if promise is not None:
            paragraphs.append(t.sentence(w("shipped.promise", when=w.when(promise))))
        ahead = w.ahead(estimate)
        if ahead is not None and promise is not None and ahead != promise:
            paragraphs.append(t.sentence(w("shipped.estimate", when=w.when(ahead))))
        return _Content(
            w("subject.shipped", shop=shop, order_id=order_id),
            w("heading.shipped"),
            tuple(paragraphs),
        )
    if kind == OUT_FOR_DELIVERY:
        return _Content(
            w("subject.out_for_delivery", shop=shop, order_id=order_id),
            w.page("status.out_for_delivery"),
            (w("out_for_delivery.intro", carrier=carrier), w("out_for_delivery.next")),
        )
    if kind == DELIVERED:
        return _Content(
            w("subject.delivered", shop=shop, order_id=order_id),
            w.page("status.delivered"),
            (w("delivered.intro", carrier=carrier), w("delivered.next")),
        )
    if kind == LATE:
        late = _late(payload, w)
        subject = w.page("late.subject")
        if late.days > 0:
            first = w.page(
                "late.running",
                subject=subject,
                days=t.days(w.locale, late.days),
                reason=late.reason,
            )
            key = "late"
        else:
            first = w.page("late.may_be", subject=subject, reason=late.reason)
            key = "late_may_be"
        return _Content(
            w(f"subject.{key}", shop=shop, order_id=order_id),
            w(f"heading.{key}"),
            (f"{t.sentence(first)} {t.sentence(late.then)}", w("late.sorry")),
        )
    if kind == ACTION_NEEDED:
        action = status if status in ACTIONS else "exception"
        heading = w("heading.exception") if action == "exception" else w.page(f"status.{action}")
        steps = tuple(
            CATALOGUE[w.locale][key]
            for key in sorted(CATALOGUE[w.locale])
            if key.startswith(f"{action}.do.")
        )
        return _Content(
            w(f"subject.{action}", shop=shop, order_id=order_id),
            heading,
            (w(f"{action}.intro", carrier=carrier),),
            steps,
        )
    raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")


def _carrier(payload: Mapping[str, Any]) -> str:
    code = str(payload.get("carrier") or "")
    return CARRIER_NAMES.get(code, code.upper()) if code else ""


def _facts(payload: Mapping[str, Any], kind: str, w: _Words) -> list[tuple[str, str]]:
    """The facts under the message: order, status (late notices: the heading says the rest's),
    carrier, tracking number, the promise and, while the parcel travels, the estimate still
    ahead."""
    status = str(payload.get("status") or "")
    facts = [(w("order"), str(payload["order_id"]))]
    if kind == LATE and f"status.{status}" in t.CATALOGUE[w.locale]:
        facts.append((w("status"), w.page(f"status.{status}")))
    if payload.get("carrier"):
        facts.append((w.page("page.carrier"), _carrier(payload)))
    if payload.get("tracking_number"):
        facts.append((w.page("page.tracking_number"), str(payload["tracking_number"])))
    promise = _window(payload.get("promise"))
    if promise is not None:
        facts.append((w.page("page.promise"), w.span(promise)))
    if kind != DELIVERED and status not in ("delivered", "returned_to_sender", "expired"):
        ahead = w.ahead(_window(payload.get("estimate")) or (promise if kind == LATE else None))
        if ahead is not None:
            facts.append((w.page("page.estimate"), w.span(ahead)))
    return facts


def _url(payload: Mapping[str, Any]) -> str:
    url = payload.get("tracking_url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ValueError("payload has no http(s) tracking_url: every email carries the link")
    return url


def render(
    kind: str, payload: Mapping[str, Any], locale: str, *, shop_name: str, shop_color: str
) -> Rendered:
    """The email of `kind` for `payload` (plan.PAYLOAD_KEYS) in `locale` (`en`, `pt-BR`;
    `pt`, `en-US`... read as the nearest; others: English). Raises ValueError for an unknown
    kind or a payload without an order id, an http(s) tracking link or its instant."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if not payload.get("order_id"):
        raise ValueError("payload has no order_id")
    url = _url(payload)
    lang = t.supported(locale) or t.LOCALES[0]
    w = _Words(lang, _today(payload))
    shop = " ".join(shop_name.split()) or "Shop"
    content = _content(kind, payload, w, shop)
    color, on_color, link_color = _colours(shop_color)
    order_id = str(payload["order_id"])
    view = {
        "lang": lang,
        "kind": kind,
        "subject": " ".join(content.subject.split()),
        "preheader": content.paragraphs[0] if content.paragraphs else content.heading,
        "heading": content.heading,
        "paragraphs": content.paragraphs,
        "actions_title": w("what_to_do"),
        "actions": content.actions,
        "facts": _facts(payload, kind, w),
        "button": w.page("page.title"),
        "url": url,
        "link_hint": w("link_hint"),
        "footer": (w("footer", order_id=order_id, shop=shop), w.page("page.times")),
        "shop_name": shop,
        "color": color,
        "on_color": on_color,
        "link_color": link_color,
    }
    return Rendered(view["subject"], _TEXT.render(view), _HTML.render(view))  # type: ignore[arg-type]
