"""The words and date formats of the public tracking page, in each language it speaks.

Pure. The catalogue is a plain dict per locale (`en`, `pt-BR`) of `str.format` templates: a
page has some sixty phrases and two languages, which a dict keeps readable and greppable
without a gettext tool chain; a new language is one more dict with the same keys (a test
holds them equal). Dates are formatted by Babel with the locale's own day and month names in
the pattern customers of that language read ("Thu 11 Dec", "qui., 11 de dez."); times are
24-hour `HH:mm` in both. A date's text is cached: a page repeats a handful of dates, and
Babel takes ~25 us a call.

Nothing here ever sees a carrier's code or a customer's personal data: it is handed dates,
numbers and the service's own status names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from types import MappingProxyType

from babel.dates import format_date

LOCALES: tuple[str, ...] = ("en", "pt-BR")
"""The languages the page speaks, the first the fallback of last resort."""

_BABEL = {"en": "en_GB", "pt-BR": "pt_BR"}
"""Babel's locale per page locale. English dates read day-month ("Thu 11 Dec"), the order
both the issue and most English-speaking customers outside the US read without a doubt."""

_DAY = {"en": "EEE d MMM", "pt-BR": "EEE, d 'de' MMM"}
_DAY_YEAR = {"en": "EEE d MMM y", "pt-BR": "EEE, d 'de' MMM 'de' y"}

_EN: dict[str, str] = {
    # page
    "page.title": "Track your order",
    "page.order": "Order {order_id}",
    "page.delivering_to": "Delivering to {place}",
    "page.estimate": "Expected",
    "page.promise": "Promised at checkout",
    "page.parcels": "Your parcels",
    "page.parcel": "Parcel {n} of {total}",
    "page.your_parcel": "Your parcel",
    "page.carrier": "Carrier",
    "page.tracking_number": "Tracking number",
    "page.progress": "Progress",
    "page.timeline": "Tracking history",
    "page.no_events": "No scans yet: the carrier has not reported this parcel.",
    "page.times": "Dates and times are local to the delivery address.",
    "page.confidence": "{n} in {d} parcels like this arrive by then.",
    "page.not_found.title": "We could not find this tracking link",
    "page.not_found.body": "Check that the link is complete, or copy it again from your order "
    "confirmation email. If it still does not work, please contact the shop.",
    "page.rate_limited.title": "Too many requests",
    "page.rate_limited.body": "Please wait a minute, then refresh this page.",
    "state.done": "Done",
    "state.current": "Now",
    "state.todo": "Still to come",
    "state.problem": "Problem",
    # statuses, as the headline says them
    "status.processing": "Order received: being prepared",
    "status.pending": "Being prepared for shipping",
    "status.info_received": "Ready to ship: waiting for the carrier",
    "status.in_transit": "On its way",
    "status.out_for_delivery": "Out for delivery",
    "status.out_for_delivery_today": "Out for delivery today",
    "status.available_for_pickup": "Ready for pickup",
    "status.delivered": "Delivered",
    "status.delivered_at": "Delivered {day} at {time}",
    "status.failed_attempt": "Delivery attempted: it could not be delivered",
    "status.exception": "Held up: the carrier reported a problem",
    "status.returned_to_sender": "Being returned to the sender",
    "status.expired": "No news from the carrier",
    "status.cancelled": "Cancelled",
    "status.partially_delivered": "{delivered} of {total} parcels delivered",
    # progress steps
    "step.ordered": "Ordered",
    "step.shipped": "Shipped",
    "step.in_transit": "In transit",
    "step.out_for_delivery": "Out for delivery",
    "step.delivered": "Delivered",
    "step.available_for_pickup": "Ready for pickup",
    "step.exception": "Problem reported",
    "step.failed_attempt": "Attempt failed",
    "step.returned_to_sender": "Returned",
    "step.expired": "No news",
    "step.cancelled": "Cancelled",
    # timeline entries
    "event.pending": "Registered",
    "event.info_received": "Label created",
    "event.picked_up": "Picked up by the carrier",
    "event.in_transit": "In transit",
    "event.out_for_delivery": "Out for delivery",
    "event.available_for_pickup": "Ready for pickup",
    "event.delivered": "Delivered",
    "event.failed_attempt": "Delivery attempt failed",
    "event.exception": "Problem reported by the carrier",
    "event.returned_to_sender": "Returned to the sender",
    "event.expired": "Tracking stopped: no news from the carrier",
    "event.cancelled": "Cancelled by the shop",
    "event.unknown": "Update from the carrier",
    # the late note
    "late.running": "{subject} is running {days} late: {reason}",
    "late.may_be": "{subject} may be delayed: {reason}",
    "late.arrived": "{subject} arrived {days} after the date we promised ({promise})",
    "late.expect": "We now expect it {when}",
    "late.still_expect": "We still expect it {when}",
    "late.no_date": "We will update this page as soon as the carrier tells us more",
    "late.subject": "Your parcel",
    "late.subject_of": "Parcel {n} of {total}",
    "late.day": "{n} day",
    "late.days": "{n} days",
    "late.window": "between {earliest} and {latest}",
    "reason.stalled": "it has not been scanned since {day}",
    "reason.exception": "the carrier has reported a problem with it",
    "reason.failed_attempt": "a delivery attempt did not succeed",
    "reason.returned_to_sender": "it is being returned to the sender",
    "reason.carrier_later": "the carrier now gives a later delivery date",
    "reason.slower": "it is moving more slowly than parcels like it usually do",
    "reason.promise_missed": "it did not arrive by the date we promised ({promise})",
}

_PT_BR: dict[str, str] = {
    "page.title": "Rastreie seu pedido",
    "page.order": "Pedido {order_id}",
    "page.delivering_to": "Entrega em {place}",
    "page.estimate": "Previsão de entrega",
    "page.promise": "Prometido na compra",
    "page.parcels": "Seus pacotes",
    "page.parcel": "Pacote {n} de {total}",
    "page.your_parcel": "Seu pacote",
    "page.carrier": "Transportadora",
    "page.tracking_number": "Código de rastreio",
    "page.progress": "Andamento",
    "page.timeline": "Histórico de rastreio",
    "page.no_events": "Ainda sem registros: a transportadora não informou nada sobre este pacote.",
    "page.times": "Datas e horários no fuso do endereço de entrega.",
    "page.confidence": "{n} em cada {d} pacotes como este chegam até essa data.",
    "page.not_found.title": "Não encontramos este link de rastreio",
    "page.not_found.body": "Confira se o link está completo ou copie-o de novo do e-mail de "
    "confirmação do pedido. Se ainda não funcionar, fale com a loja.",
    "page.rate_limited.title": "Muitas solicitações",
    "page.rate_limited.body": "Aguarde um minuto e atualize esta página.",
    "state.done": "Concluído",
    "state.current": "Agora",
    "state.todo": "A seguir",
    "state.problem": "Problema",
    "status.processing": "Pedido recebido: em preparação",
    "status.pending": "Em preparação para envio",
    "status.info_received": "Pronto para envio: aguardando a transportadora",
    "status.in_transit": "A caminho",
    "status.out_for_delivery": "Saiu para entrega",
    "status.out_for_delivery_today": "Saiu para entrega hoje",
    "status.available_for_pickup": "Disponível para retirada",
    "status.delivered": "Entregue",
    "status.delivered_at": "Entregue {day} às {time}",
    "status.failed_attempt": "Tentativa de entrega sem sucesso",
    "status.exception": "Retido: a transportadora informou um problema",
    "status.returned_to_sender": "Em devolução ao remetente",
    "status.expired": "Sem notícias da transportadora",
    "status.cancelled": "Cancelado",
    "status.partially_delivered": "{delivered} de {total} pacotes entregues",
    "step.ordered": "Pedido feito",
    "step.shipped": "Enviado",
    "step.in_transit": "Em trânsito",
    "step.out_for_delivery": "Saiu para entrega",
    "step.delivered": "Entregue",
    "step.available_for_pickup": "Para retirada",
    "step.exception": "Problema informado",
    "step.failed_attempt": "Tentativa sem sucesso",
    "step.returned_to_sender": "Devolvido",
    "step.expired": "Sem notícias",
    "step.cancelled": "Cancelado",
    "event.pending": "Registrado",
    "event.info_received": "Etiqueta criada",
    "event.picked_up": "Coletado pela transportadora",
    "event.in_transit": "Em trânsito",
    "event.out_for_delivery": "Saiu para entrega",
    "event.available_for_pickup": "Disponível para retirada",
    "event.delivered": "Entregue",
    "event.failed_attempt": "Tentativa de entrega sem sucesso",
    "event.exception": "Problema informado pela transportadora",
    "event.returned_to_sender": "Devolvido ao remetente",
    "event.expired": "Rastreamento encerrado: sem notícias da transportadora",
    "event.cancelled": "Cancelado pela loja",
    "event.unknown": "Atualização da transportadora",
    "late.running": "{subject} está {days} atrasado: {reason}",
    "late.may_be": "{subject} pode atrasar: {reason}",
    "late.arrived": "{subject} chegou {days} depois da data prometida ({promise})",
    "late.expect": "Agora a previsão de entrega é {when}",
    "late.still_expect": "A previsão de entrega continua {when}",
    "late.no_date": "Atualizaremos esta página assim que a transportadora informar mais",
    "late.subject": "Seu pacote",
    "late.subject_of": "O pacote {n} de {total}",
    "late.day": "{n} dia",
    "late.days": "{n} dias",
    "late.window": "entre {earliest} e {latest}",
    "reason.stalled": "não há registro da transportadora desde {day}",
    "reason.exception": "a transportadora informou um problema com ele",
    "reason.failed_attempt": "uma tentativa de entrega não deu certo",
    "reason.returned_to_sender": "ele está sendo devolvido ao remetente",
    "reason.carrier_later": "a transportadora agora informa uma data de entrega posterior",
    "reason.slower": "ele está andando mais devagar do que pacotes parecidos costumam andar",
    "reason.promise_missed": "ele não chegou até a data prometida ({promise})",
}

CATALOGUE: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"en": MappingProxyType(_EN), "pt-BR": MappingProxyType(_PT_BR)}
)


def supported(locale: str | None) -> str | None:
    """The page locale a language tag asks for (`pt`, `pt-PT` and `pt-br` all read as
    `pt-BR`, the only Portuguese the page speaks; `en-US` as `en`), or None."""
    if not locale:
        return None
    primary = locale.strip().replace("_", "-").split("-", 1)[0].lower()
    return {"en": "en", "pt": "pt-BR"}.get(primary)


def choose_locale(accept_language: str | None, order_locale: str | None, default: str) -> str:
    """The page's language: the first of `Accept-Language` (by quality, then order) that the
    page speaks; else the order's own locale, when the shop gave one; else `default`.

    `*` stands for `default`; a quality of 0 means "not this one"; a malformed entry is
    skipped, never an error (the header is the browser's, not the customer's choice to fix).
    """
    if accept_language:
        ranked: list[tuple[float, int, str]] = []
        for i, part in enumerate(accept_language.split(",")[:32]):
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            params = params.strip()
            if params.startswith("q="):
                try:
                    quality = float(params[2:])
                except ValueError:
                    continue
            if quality > 0 and tag:
                ranked.append((-quality, i, tag.strip()))
        for _, _, tag in sorted(ranked):
            found = default if tag == "*" else supported(tag)
            if found is not None:
                return found
    return supported(order_locale) or default


def text(locale: str, key: str, **values: object) -> str:
    """The phrase `key` in `locale`, its `{placeholders}` filled."""
    template = CATALOGUE[locale][key]
    return template.format(**values) if values else template


def sentence(phrase: str) -> str:
    """`phrase` ended with a full stop, unless it already ends with one (a Portuguese date
    such as "qui., 11 de dez." does)."""
    return phrase if phrase.endswith(".") else phrase + "."


@lru_cache(maxsize=4096)
def day(value: date, locale: str, with_year: bool = False) -> str:
    """A local date as the customer reads it: "Thu 11 Dec" / "qui., 11 de dez." (with the year
    when it is not this year's)."""
    pattern = (_DAY_YEAR if with_year else _DAY)[locale]
    return format_date(value, pattern, locale=_BABEL[locale])


def clock_time(value: datetime) -> str:
    """A local time of day, 24-hour: "14:02"."""
    return f"{value.hour:02d}:{value.minute:02d}"


def days(locale: str, n: int) -> str:
    """ "1 day", "2 days" / "1 dia", "2 dias"."""
    return text(locale, "late.day" if n == 1 else "late.days", n=n)
