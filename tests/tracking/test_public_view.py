"""The public tracking page's view model, from plain facts (no HTTP, no database)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tracking_service.tracking import public_text
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.public_text import CATALOGUE, choose_locale, day
from tracking_service.tracking.public_view import (
    EventFacts,
    OrderFacts,
    PublicView,
    ShipmentFacts,
    build_view,
    place,
)

NOW = datetime(2025, 12, 9, 21, tzinfo=UTC)  # Tue 9 Dec 2025, 16:00 in New York
TZ = "America/New_York"


def ny(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2025, month, day, hour + 5, minute, tzinfo=UTC)


def order(**fields: Any) -> OrderFacts:
    base: dict[str, Any] = {
        "order_id": "A-1",
        "dest_country": "US",
        "dest_subdivision": "NY",
        "dest_city": "New York",
        "promise_earliest": date(2025, 12, 8),
        "promise_latest": date(2025, 12, 9),
        "promise_confidence": 0.9,
        "promise_basis": "history",
    }
    base.update(fields)
    return OrderFacts(**base)


def scan(
    when: datetime, status: str | None, city: str = "Newark", region: str = "NJ"
) -> EventFacts:
    return EventFacts(when, status, city, region)


def shipment(id: int = 1, status: str = "in_transit", **fields: Any) -> ShipmentFacts:
    base: dict[str, Any] = {
        "id": id,
        "carrier": "ups",
        "tracking_number": f"1Z{id:016d}",
        "status": status,
        "handed_off_at": ny(3, 11),
        "last_event_at": ny(3, 11),
        "events": (scan(ny(3, 11), "in_transit"),),
    }
    base.update(fields)
    return ShipmentFacts(**base)


def view(
    *shipments: ShipmentFacts,
    locale: str = "en",
    now: datetime = NOW,
    focus: int | None = 1,
    **order_fields: Any,
) -> PublicView:
    return build_view(
        order(**order_fields),
        shipments or (shipment(),),
        focus_id=focus,
        now=now,
        locale=locale,
        dest_tz=TZ,
        config=TrackingConfig(),
    )


# --- words and dates --------------------------------------------------------------------------


def test_dates_read_as_customers_of_each_language_read_them() -> None:
    assert day(date(2025, 12, 11), "en") == "Thu 11 Dec"
    assert day(date(2025, 12, 11), "pt-BR") == "qui., 11 de dez."
    assert day(date(2026, 1, 2), "en", True) == "Fri 2 Jan 2026"
    assert day(date(2026, 1, 2), "pt-BR", True) == "sex., 2 de jan. de 2026"


def test_every_language_has_every_phrase() -> None:
    keys = set(CATALOGUE["en"])
    for locale, phrases in CATALOGUE.items():
        assert set(phrases) == keys, locale


@pytest.mark.parametrize(
    ("header", "order_locale", "default", "chosen"),
    [
        ("pt-BR,pt;q=0.9,en;q=0.8", None, "en", "pt-BR"),
        ("fr-FR, en-US;q=0.8, pt;q=0.9", None, "en", "pt-BR"),
        ("fr-FR, en-US;q=0.8", None, "pt-BR", "en"),
        ("pt-PT", None, "en", "pt-BR"),
        ("de, fr", None, "pt-BR", "pt-BR"),
        ("de, fr", "en", "pt-BR", "en"),
        ("*", "en", "pt-BR", "pt-BR"),
        ("en;q=0, pt-BR;q=0.1", None, "en", "pt-BR"),
        ("en;q=abc, ;;, pt", None, "en", "pt-BR"),
        (None, "pt_BR", "en", "pt-BR"),
        (None, None, "pt-BR", "pt-BR"),
        ("", None, "en", "en"),
    ],
)
def test_the_language_comes_from_the_browser_then_the_order_then_the_default(
    header: str | None, order_locale: str | None, default: str, chosen: str
) -> None:
    assert choose_locale(header, order_locale, default) == chosen


def test_a_place_is_city_and_region_only() -> None:
    assert place("Campinas", "SP") == "Campinas, SP"
    assert place(None, "SP") == "SP"
    assert place(" ", None) is None


def test_no_personal_field_can_reach_the_view() -> None:
    names = {f.name for f in dataclasses.fields(OrderFacts)}
    assert not names & {"customer_name", "customer_email", "customer_phone", "customer_street"}
    assert {f.name for f in dataclasses.fields(EventFacts)} >= {"city", "region"}
    assert "postal_code" not in {f.name for f in dataclasses.fields(EventFacts)}


# --- the headline -----------------------------------------------------------------------------


def test_delivered_says_when_in_local_time() -> None:
    v = view(shipment(status="delivered", delivered_at=ny(25, 14, 2, month=11)))
    assert v.status == "delivered"
    assert v.status_text == "Delivered Tue 25 Nov at 14:02"
    assert v.estimate is None and v.late is None
    pt = view(shipment(status="delivered", delivered_at=ny(25, 14, 2, month=11)), locale="pt-BR")
    assert pt.status_text == "Entregue ter., 25 de nov. às 14:02"


def test_out_for_delivery_today_or_not() -> None:
    today = shipment(status="out_for_delivery", status_changed_at=ny(9, 7))
    earlier = shipment(status="out_for_delivery", status_changed_at=ny(8, 7))
    assert view(today).status_text == "Out for delivery today"
    assert view(earlier).status_text == "Out for delivery"
    assert view(today, locale="pt-BR").status_text == "Saiu para entrega hoje"


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("pending", "Being prepared for shipping"),
        ("info_received", "Ready to ship: waiting for the carrier"),
        ("in_transit", "On its way"),
        ("available_for_pickup", "Ready for pickup"),
        ("failed_attempt", "Delivery attempted: it could not be delivered"),
        ("exception", "Held up: the carrier reported a problem"),
        ("returned_to_sender", "Being returned to the sender"),
        ("expired", "No news from the carrier"),
    ],
)
def test_every_status_in_plain_words(status: str, words: str) -> None:
    assert view(shipment(status=status)).status_text == words


# --- estimate, promise, confidence ------------------------------------------------------------


def test_estimate_beside_the_promise_and_how_sure_from_history() -> None:
    s = shipment(
        estimate_earliest=date(2025, 12, 10),
        estimate_latest=date(2025, 12, 11),
        estimate_source="history",
    )
    v = view(s, promise_earliest=date(2025, 12, 10), promise_latest=date(2025, 12, 12))
    assert v.estimate is not None and v.estimate.text == "Wed 10 Dec \u2013 Thu 11 Dec"
    assert v.promise.text == "Wed 10 Dec \u2013 Fri 12 Dec"
    assert v.confidence is not None
    assert v.confidence.text == "9 in 10 parcels like this arrive by then."
    pt = view(s, locale="pt-BR", promise_earliest=date(2025, 12, 10))
    assert pt.confidence is not None
    assert pt.confidence.text == "9 em cada 10 pacotes como este chegam até essa data."


def test_confidence_only_when_the_estimate_comes_from_history() -> None:
    carrier = shipment(
        estimate_earliest=date(2025, 12, 10),
        estimate_latest=date(2025, 12, 10),
        estimate_source="carrier",
    )
    assert view(carrier).confidence is None
    assert view(shipment(), promise_basis="rules").confidence is None  # the rules' promise
    assert view(shipment(), promise_basis="history").confidence is not None


@pytest.mark.parametrize(
    ("probability", "words"),
    [(0.9, "9 in 10"), (0.8, "8 in 10"), (0.95, "19 in 20"), (0.975, "98 in 100")],
)
def test_confidence_is_not_rounded_into_another_claim(probability: float, words: str) -> None:
    v = view(shipment(), promise_confidence=probability)
    assert v.confidence is not None and v.confidence.text.startswith(words + " parcels")


def test_days_already_past_leave_the_estimate() -> None:
    # today is 9 Dec: a window of 8-10 Dec is now 9-10 Dec; one that ended on 8 Dec is none
    s = shipment(estimate_earliest=date(2025, 12, 8), estimate_latest=date(2025, 12, 10))
    v = view(s, promise_latest=date(2025, 12, 10))
    assert v.estimate is not None and (v.estimate.earliest, v.estimate.latest) == (
        date(2025, 12, 9),
        date(2025, 12, 10),
    )
    gone = shipment(estimate_earliest=date(2025, 12, 7), estimate_latest=date(2025, 12, 8))
    assert view(gone, promise_latest=date(2025, 12, 8)).estimate is None


# --- the late note ----------------------------------------------------------------------------


def _stalled(**fields: Any) -> ShipmentFacts:
    return shipment(
        delayed=True,
        delay_reason="late_estimate",
        last_event_at=ny(5, 14),
        events=(scan(ny(3, 11), "in_transit"), scan(ny(5, 14), "in_transit")),
        estimate_earliest=date(2025, 12, 11),
        estimate_latest=date(2025, 12, 11),
        estimate_source="carrier",
        **fields,
    )


def test_late_note_gives_days_cause_and_new_date() -> None:
    v = view(_stalled())
    assert v.late is not None
    assert v.late.text == (
        "Your parcel is running 2 days late: it has not been scanned since Fri 5 Dec. "
        "We now expect it Thu 11 Dec."
    )
    assert (v.late.days_late, v.late.reason) == (2, "stalled")
    pt = view(_stalled(), locale="pt-BR")
    assert pt.late is not None
    assert pt.late.text == (
        "Seu pacote está 2 dias atrasado: não há registro da transportadora desde sex., 5 de "
        "dez. Agora a previsão de entrega é qui., 11 de dez."
    )


def test_a_later_date_from_the_carrier_or_from_history() -> None:
    fresh = dict(last_event_at=ny(9, 8), events=(scan(ny(9, 8), "in_transit"),))
    carrier = shipment(
        estimate_earliest=date(2025, 12, 10),
        estimate_latest=date(2025, 12, 10),
        estimate_source="carrier",
        delayed=True,
        delay_reason="late_estimate",
        **fresh,
    )
    v = view(carrier)
    assert v.late is not None and v.late.text == (
        "Your parcel is running 1 day late: the carrier now gives a later delivery date. "
        "We now expect it Wed 10 Dec."
    )
    history = dataclasses.replace(
        carrier, estimate_latest=date(2025, 12, 12), estimate_source="history"
    )
    v = view(history)
    assert v.late is not None and v.late.reason == "slower" and v.late.days_late == 3
    assert v.late.text.endswith("We now expect it between Wed 10 Dec and Fri 12 Dec.")


def test_a_missed_promise_without_a_new_date_says_so() -> None:
    s = shipment(
        last_event_at=ny(9, 8),
        events=(scan(ny(9, 8), "in_transit"),),
        delayed=True,
        delay_reason="promise_missed",
    )
    v = view(s, promise_earliest=date(2025, 12, 5), promise_latest=date(2025, 12, 7))
    assert v.late is not None
    assert v.late.text == (
        "Your parcel is running 2 days late: it did not arrive by the date we promised "
        "(Sun 7 Dec). We will update this page as soon as the carrier tells us more."
    )
    assert v.estimate is None


def test_a_problem_may_delay_a_parcel_still_on_time() -> None:
    s = shipment(status="exception", last_event_at=ny(9, 9), delayed=True)
    v = view(s, promise_latest=date(2025, 12, 10))
    assert v.late is not None and v.late.days_late == 0
    assert v.late.text == (
        "Your parcel may be delayed: the carrier has reported a problem with it. "
        "We still expect it between Tue 9 Dec and Wed 10 Dec."
    )


def test_a_parcel_delivered_late_says_by_how_much() -> None:
    s = shipment(status="delivered", delivered_at=ny(11, 10))
    v = view(s)
    assert v.late is not None and v.late.delivered
    assert v.late.text == "Your parcel arrived 2 days after the date we promised (Tue 9 Dec)."
    on_time = shipment(status="delivered", delivered_at=ny(9, 10))
    assert view(on_time).late is None


def test_on_time_means_no_note() -> None:
    fresh = shipment(last_event_at=ny(9, 8), events=(scan(ny(9, 8), "in_transit"),))
    assert view(fresh).late is None


# --- progress and timeline --------------------------------------------------------------------


def _steps(v: PublicView, n: int = 0) -> list[tuple[str, str]]:
    return [(s.key, s.state) for s in v.shipments[n].steps]


def test_progress_steps_in_order() -> None:
    assert _steps(view(shipment(status="pending", handed_off_at=None))) == [
        ("ordered", "current"),
        ("shipped", "todo"),
        ("in_transit", "todo"),
        ("out_for_delivery", "todo"),
        ("delivered", "todo"),
    ]
    assert _steps(view(shipment(status="out_for_delivery")))[3] == ("out_for_delivery", "current")
    assert _steps(view(shipment(status="available_for_pickup")))[3] == (
        "available_for_pickup",
        "current",
    )
    assert {state for _, state in _steps(view(shipment(status="delivered")))} == {"done"}


def test_problems_are_shown_as_what_they_are() -> None:
    assert _steps(view(shipment(status="exception")))[2] == ("exception", "problem")
    assert _steps(view(shipment(status="exception", handed_off_at=None)))[1] == (
        "exception",
        "problem",
    )
    failed = _steps(view(shipment(status="failed_attempt")))
    assert failed[3] == ("failed_attempt", "problem") and failed[4] == ("delivered", "todo")
    assert _steps(view(shipment(status="returned_to_sender"))) == [
        ("ordered", "done"),
        ("shipped", "done"),
        ("in_transit", "done"),
        ("returned_to_sender", "problem"),
    ]
    assert _steps(view(shipment(status="expired", handed_off_at=None))) == [
        ("ordered", "done"),
        ("expired", "problem"),
    ]
    labels = [s.label for s in view(shipment(status="returned_to_sender")).shipments[0].steps]
    assert labels == ["Ordered", "Shipped", "In transit", "Returned"]


def test_timeline_newest_first_local_times_and_places() -> None:
    events = (
        scan(ny(2, 9), "info_received"),
        scan(ny(3, 11), "in_transit"),
        scan(ny(5, 14), "in_transit", "Edison", "NJ"),
        scan(ny(5, 15), None, "Edison", "NJ"),
        EventFacts(ny(6, 1), None, source="service", kind="cancelled"),
    )
    v = view(shipment(events=events))
    timeline = v.shipments[0].timeline
    assert [(e.day, e.time, e.text, e.place) for e in timeline] == [
        ("Sat 6 Dec", "01:00", "Cancelled by the shop", None),
        ("Fri 5 Dec", "15:00", "Update from the carrier", "Edison, NJ"),
        ("Fri 5 Dec", "14:00", "In transit", "Edison, NJ"),
        ("Wed 3 Dec", "11:00", "Picked up by the carrier", "Newark, NJ"),
        ("Tue 2 Dec", "09:00", "Label created", "Newark, NJ"),
    ]
    assert timeline[-1].occurred_at.isoformat() == "2025-12-02T09:00:00-05:00"
    pt = view(shipment(events=events), locale="pt-BR").shipments[0].timeline
    assert (pt[-1].day, pt[-1].text) == ("ter., 2 de dez.", "Etiqueta criada")


def test_times_are_local_to_the_destination() -> None:
    late_evening = shipment(events=(scan(datetime(2025, 12, 9, 2, 30, tzinfo=UTC), "in_transit"),))
    entry = view(late_evening).shipments[0].timeline[0]
    assert (entry.day, entry.time) == ("Mon 8 Dec", "21:30")  # 02:30 UTC is the evening before


# --- several parcels --------------------------------------------------------------------------


def test_several_parcels_each_shown_with_the_order_above() -> None:
    first = shipment(1, "delivered", delivered_at=ny(8, 15, 40))
    second = shipment(
        2, "in_transit", last_event_at=ny(9, 8), events=(scan(ny(9, 8), "in_transit"),)
    )
    v = view(first, second, focus=2)
    assert v.status == "partially_delivered"
    assert v.status_text == "1 of 2 parcels delivered"
    assert [(s.number, s.title, s.current) for s in v.shipments] == [
        (1, "Parcel 1 of 2", False),
        (2, "Parcel 2 of 2", True),
    ]
    assert v.estimate is not None and v.estimate.latest == date(2025, 12, 9)
    assert view(first, second, locale="pt-BR").status_text == "1 de 2 pacotes entregues"


def test_the_order_waits_for_its_least_advanced_parcel() -> None:
    ahead = shipment(1, "out_for_delivery", status_changed_at=ny(9, 7))
    behind = shipment(
        2,
        "in_transit",
        estimate_earliest=date(2025, 12, 12),
        estimate_latest=date(2025, 12, 12),
        estimate_source="carrier",
        delayed=True,
        last_event_at=ny(9, 8),
        events=(scan(ny(9, 8), "in_transit"),),
    )
    v = view(ahead, behind)
    assert v.status == "in_transit" and v.status_text == "On its way"
    assert v.estimate is not None and v.estimate.text == "Fri 12 Dec"
    assert v.late is not None and v.late.text.startswith("Parcel 2 of 2 is running 3 days late")
    both_delivered = view(
        shipment(1, "delivered", delivered_at=ny(8, 10)),
        shipment(2, "delivered", delivered_at=ny(9, 11, 5)),
    )
    assert both_delivered.status_text == "Delivered Tue 9 Dec at 11:05"


def test_cancelled_parcels_are_left_out_unless_their_link_was_opened() -> None:
    live = shipment(1)
    cancelled = shipment(2, cancelled_at=ny(4, 9))
    assert [s.number for s in view(live, cancelled, focus=1).shipments] == [1]
    v = view(live, cancelled, focus=2)
    assert [(s.status, s.status_text) for s in v.shipments] == [
        ("in_transit", "On its way"),
        ("cancelled", "Cancelled"),
    ]
    assert v.status == "in_transit"  # the order goes on with its live parcel
    whole = view(shipment(1, cancelled_at=ny(4, 9)), cancelled_at=ny(4, 9))
    assert (whole.status, whole.status_text, whole.estimate, whole.late) == (
        "cancelled",
        "Cancelled",
        None,
        None,
    )


def test_the_year_is_shown_only_when_it_is_not_this_one() -> None:
    v = view(
        shipment(estimate_earliest=date(2026, 1, 2), estimate_latest=date(2026, 1, 2)),
        promise_latest=date(2026, 1, 2),
        now=NOW + timedelta(hours=1),
    )
    assert v.estimate is not None and v.estimate.text == "Fri 2 Jan 2026"
    assert public_text.sentence("qui., 11 de dez.") == "qui., 11 de dez."
