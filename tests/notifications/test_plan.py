"""Which email each outbox event calls for, on the messages the real pipeline writes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import Any

from tracking.factory import CONFIG, NOW, Store, at, order, result, scan, shipment

from tracking_service.carriers.status import Status as S
from tracking_service.notifications.plan import PAYLOAD_KEYS, Intent, OutboxFacts, intents_for
from tracking_service.tracking.plan import plan_cancel, plan_check
from tracking_service.tracking.state import OutboxMessage

LATE = (date(2026, 3, 8), date(2026, 3, 9))  # after the promise (5-6 March)
LATER = (date(2026, 3, 9), date(2026, 3, 11))


def facts(m: OutboxMessage, outbox_id: int = 1) -> OutboxFacts:
    """An outbox row as the fan-out reads it back (the payload through JSON, as stored)."""
    return OutboxFacts(
        outbox_id=outbox_id,
        event_id=m.event_id,
        event_type=m.event_type,
        order_pk=m.order_pk,
        shipment_id=m.shipment_id,
        occurred_at=m.occurred_at,
        payload=json.loads(json.dumps(m.payload)),
    )


def intents(messages: Iterable[object]) -> list[Intent]:
    out: list[Intent] = []
    for i, m in enumerate(messages, start=1):
        assert isinstance(m, OutboxMessage)
        out.extend(intents_for(facts(m, i)))
    return out


def kinds(messages: Iterable[object]) -> list[tuple[str, str]]:
    return [(i.kind, i.dedupe_key) for i in intents(messages)]


def test_a_parcel_s_life_shipped_out_for_delivery_delivered() -> None:
    store = Store(shipment(), order())
    assert kinds(store.apply(result(scan("a", at(-5), S.INFO_RECEIVED))).messages) == []
    shipped = store.apply(result(scan("b", at(-4), S.IN_TRANSIT))).messages
    assert kinds(shipped) == [("shipped", "shipment:7:shipped")]
    out = store.apply(result(scan("c", at(-3), S.OUT_FOR_DELIVERY))).messages
    (ofd,) = intents(out)
    assert ofd.kind == "out_for_delivery" and ofd.dedupe_key.startswith(
        "shipment:7:out_for_delivery:msg_"
    )
    done = store.apply(result(scan("d", at(-2), S.DELIVERED))).messages
    assert kinds(done) == [("delivered", "shipment:7:delivered")]
    (one,) = intents(done)
    assert (one.order_pk, one.shipment_id, one.occurred_at) == (1, 7, NOW)


def test_the_payload_holds_public_facts_only() -> None:
    store = Store(shipment(), order())
    (intent,) = intents(store.apply(result(scan("a", at(-4), S.IN_TRANSIT))).messages)
    assert tuple(intent.payload) == PAYLOAD_KEYS
    assert intent.payload == {
        "order_id": "shop-1001",
        "shipment_id": 7,
        "carrier": "ups",
        "tracking_number": "1Z999AA10123456787",
        "status": "in_transit",
        "estimate": {"earliest": "2026-03-05", "latest": "2026-03-06"},
        "promise": {"earliest": "2026-03-05", "latest": "2026-03-06"},
        "delay_reason": None,
        "tracking_url": "https://track.example/t/token-7",
        "occurred_at": "2026-03-02T12:00:00Z",
    }
    json.dumps(intent.payload)  # stored as JSON


def test_a_first_scan_past_in_transit_gets_its_own_email_not_shipped_too() -> None:
    straight_out = Store(shipment(), order())
    messages = straight_out.apply(result(scan("a", at(-4), S.OUT_FOR_DELIVERY))).messages
    assert [k for k, _ in kinds(messages)] == ["out_for_delivery"]
    # a second move into transit (after a failed attempt) is not a second "shipped"
    straight_out.apply(result(scan("b", at(-3), S.FAILED_ATTEMPT)))
    again = straight_out.apply(result(scan("c", at(-2), S.IN_TRANSIT))).messages
    assert [k for k, _ in kinds(again)] == []


def test_out_for_delivery_and_action_needed_are_news_every_time() -> None:
    store = Store(shipment(status=S.IN_TRANSIT, last_event_at=at(-6)), order({7: S.IN_TRANSIT}))
    first = kinds(store.apply(result(scan("a", at(-5), S.OUT_FOR_DELIVERY))).messages)
    failed = kinds(store.apply(result(scan("b", at(-4), S.FAILED_ATTEMPT))).messages)
    second = kinds(store.apply(result(scan("c", at(-3), S.OUT_FOR_DELIVERY))).messages)
    pickup = kinds(store.apply(result(scan("d", at(-2), S.AVAILABLE_FOR_PICKUP))).messages)
    assert [k for k, _ in first + failed + second + pickup] == [
        "out_for_delivery",
        "action_needed",  # its delay (carrier_exception) is told by this one, not by `late`
        "out_for_delivery",
        "action_needed",
    ]
    keys = [key for _, key in first + failed + second + pickup]
    assert len(set(keys)) == 4


def test_a_customs_hold_is_action_needed_once_not_also_late_nor_exception() -> None:
    store = Store(shipment(status=S.IN_TRANSIT, last_event_at=at(-6)), order({7: S.IN_TRANSIT}))
    held = store.apply(result(scan("a", at(-5), S.EXCEPTION, code="customs_hold"))).messages
    types = [m.event_type for m in held]
    assert {"shipment.exception", "shipment.delayed"} <= set(types)
    (intent,) = intents(held)
    assert intent.kind == "action_needed" and intent.payload["status"] == "exception"


def test_late_once_per_new_estimate() -> None:
    store = Store(shipment(), order())
    first = kinds(store.apply(result(scan("a", at(-5), S.IN_TRANSIT), window=LATE)).messages)
    assert first == [("shipped", "shipment:7:shipped"), ("late", "shipment:7:late:2026-03-09")]
    # the same date on the next poll: no event, no email
    assert kinds(store.apply(result(scan("b", at(-4), S.IN_TRANSIT), window=LATE)).messages) == []
    later = kinds(store.apply(result(scan("c", at(-3), S.IN_TRANSIT), window=LATER)).messages)
    assert later == [("late", "shipment:7:late:2026-03-11")]
    # a new reason with the same estimate: the pipeline's event, the same key (no second email)
    missed = plan_check(store.shipment, store.order, at(24 * 6), CONFIG)  # past 6 March
    assert missed.after.delay_reason == "promise_missed"
    assert kinds(missed.messages) == [("late", "shipment:7:late:2026-03-11")]


def test_no_late_notice_for_a_delivered_parcel() -> None:
    store = Store(shipment(), order())
    store.apply(result(scan("a", at(-5), S.IN_TRANSIT)))
    late = store.apply(result(scan("b", at(24 * 7), S.DELIVERED)), now=at(24 * 7))
    assert "shipment.delayed" in [m.event_type for m in late.messages]  # promise missed
    assert kinds(late.messages) == [("delivered", "shipment:7:delivered")]


def test_cancelled_shipments_and_order_events_call_for_no_email() -> None:
    s = shipment(status=S.IN_TRANSIT, last_event_at=at(-6))
    o = order({7: S.IN_TRANSIT})
    messages = plan_cancel(o, [s], NOW, CONFIG).messages
    assert {m.event_type for m in messages} == {"shipment.status_changed", "order.status_changed"}
    assert kinds(messages) == []


def _event(payload: dict[str, Any], **kw: Any) -> OutboxFacts:
    base: dict[str, Any] = {
        "outbox_id": 3,
        "event_id": "msg_x",
        "event_type": "shipment.status_changed",
        "order_pk": 1,
        "shipment_id": 7,
        "occurred_at": NOW,
        "payload": payload,
    }
    base.update(kw)
    return OutboxFacts(**base)


def test_rows_of_another_shape_call_for_none() -> None:
    good = {
        "data": {
            "shipment": {"status": "in_transit", "previous_status": "pending"},
            "order": {"order_id": "x"},
        }
    }
    assert [i.kind for i in intents_for(_event(good))] == ["shipped"]
    assert intents_for(_event(good, order_pk=None)) == []
    assert intents_for(_event(good, shipment_id=None)) == []
    assert intents_for(_event({})) == []
    assert intents_for(_event({"data": {"shipment": "x", "order": {}}})) == []
    assert intents_for(_event(good, event_type="webhook_endpoint.disabled")) == []
