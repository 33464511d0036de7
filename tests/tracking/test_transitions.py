"""Carrier answers applied to a shipment: dedupe, idempotence, order independence."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from tracking_service.carriers.status import Status as S
from tracking_service.tracking.transitions import progress_after, stored_key

from .factory import NOW, Store, apply, at, order, result, scan, shipment

A = scan("a", at(-50), S.INFO_RECEIVED)
B = scan("b", at(-40), S.IN_TRANSIT)
C = scan("c", at(-30), S.IN_TRANSIT)
D = scan("d", at(-20), None, code="XQ")  # a code we do not know
E = scan("e", at(-10), S.OUT_FOR_DELIVERY)
F = scan("f", at(-2), S.DELIVERED)
G = scan("g", at(-1), S.IN_TRANSIT)  # a scan after delivery (a carrier's late correction)


def test_new_events_are_those_with_unknown_keys() -> None:
    s, o = shipment(), order()
    first = apply(s, o, result(A, B))
    assert [e.dedupe_key for e in first.new_events] == ["a", "b"]
    e = first.new_events[1]
    assert (e.status, e.raw_code, e.description, e.city, e.country, e.source) == (
        "in_transit",
        "code-b",
        "scan b",
        "Newark",
        "US",
        "carrier",
    )
    second = apply(first.after, first.order_after, result(A, B, C), known=frozenset({"a", "b"}))
    assert [e.dedupe_key for e in second.new_events] == ["c"]


def test_a_key_twice_in_one_answer_is_one_event() -> None:
    update = apply(shipment(), order(), result(A, B, B))
    assert [e.dedupe_key for e in update.new_events] == ["a", "b"]


def test_long_keys_are_stored_as_digests() -> None:
    key = "k" * 300
    assert stored_key("short") == "short"
    assert len(stored_key(key)) <= 128 and stored_key(key) != stored_key(key + "x")
    update = apply(shipment(), order(), result(scan(key, at(-1), S.IN_TRANSIT)))
    assert update.new_events[0].dedupe_key == stored_key(key)
    again = apply(
        update.after,
        update.order_after,
        result(scan(key, at(-1), S.IN_TRANSIT)),
        known=frozenset({stored_key(key)}),
    )
    assert not again.changed


def test_the_same_answer_twice_changes_nothing() -> None:
    store = Store(shipment(), order())
    answer = result(A, B, C, D, E, window=(NOW.date(), NOW.date()))
    first = store.apply(answer)
    assert first.changed and first.visible
    before = (store.shipment, store.order)
    second = store.apply(answer)
    assert not second.changed
    assert not second.new_events and not second.messages
    assert not second.shipment_changes and not second.order_changes
    assert (store.shipment, store.order) == before


def test_the_same_answer_later_only_moves_the_polling_bookkeeping() -> None:
    store = Store(shipment(), order())
    store.apply(result(A, B))
    again = store.apply(result(A, B), now=at(1))
    assert again.changed and not again.visible
    assert set(again.shipment_changes) <= {"next_poll_at", "last_polled_at"}


def _final(answers: list[object]) -> Store:
    store = Store(shipment(), order())
    for answer in answers:
        store.apply(answer)
    return store


def test_answers_in_any_order_leave_the_same_state() -> None:
    pushes = [result(x) for x in (A, B, C, D, E)]
    states = set()
    keys = set()
    for perm in itertools.permutations(pushes):
        store = _final(list(perm))
        states.add(replace(store.shipment, sequence=0))
        keys.add(store.keys)
        assert store.order.status == "out_for_delivery"
    assert len(states) == 1 and len(keys) == 1
    (state,) = states
    assert state.status == S.OUT_FOR_DELIVERY
    assert state.raw_status_code == "code-e"
    assert state.handed_off_at == B.occurred_at
    assert state.last_event_at == E.occurred_at


def test_overlapping_histories_in_either_order() -> None:
    older, newer = result(A, B), result(A, B, C, E)
    one = _final([older, newer])
    two = _final([newer, older])
    assert replace(one.shipment, sequence=0) == replace(two.shipment, sequence=0)
    assert one.keys == two.keys


def test_a_late_older_scan_never_moves_the_status_back_but_is_stored() -> None:
    store = _final([result(A, E)])
    assert store.shipment.status == S.OUT_FOR_DELIVERY
    late = store.apply(result(B))
    assert store.shipment.status == S.OUT_FOR_DELIVERY
    assert [e.dedupe_key for e in late.new_events] == ["b"]
    assert not late.messages
    assert store.shipment.handed_off_at == B.occurred_at  # the earliest scan with the carrier


def test_an_unknown_code_keeps_the_last_status() -> None:
    store = _final([result(A, B), result(D)])
    assert store.shipment.status == S.IN_TRANSIT
    assert store.shipment.last_event_at == D.occurred_at
    assert store.events[-1].status is None and store.events[-1].raw_code == "XQ"  # type: ignore[attr-defined]


def test_final_statuses_are_sticky_whatever_the_order() -> None:
    for answers in ([result(F), result(G)], [result(G), result(F)], [result(E, F, G)]):
        store = _final(answers)
        assert store.shipment.status == S.DELIVERED
        assert store.shipment.delivered_at == F.occurred_at
        assert store.shipment.next_poll_at is None


def test_same_instant_the_more_advanced_status_wins() -> None:
    x = scan("x", at(-5), S.IN_TRANSIT)
    y = scan("y", at(-5), S.OUT_FOR_DELIVERY)
    assert _final([result(x), result(y)]).shipment.status == S.OUT_FOR_DELIVERY
    assert _final([result(y), result(x)]).shipment.status == S.OUT_FOR_DELIVERY


def test_the_carriers_status_counts_when_no_scan_says_anything() -> None:
    update = apply(shipment(), order(), result(status=S.INFO_RECEIVED))
    assert update.after.status == S.INFO_RECEIVED
    assert not update.new_events


def test_status_event_at_is_what_the_store_computes_from_its_events() -> None:
    """The loader's contract: `status_event_at` = newest stored event with the current
    status. The plan's after-state agrees with that, answer after answer."""
    store = Store(shipment(), order())
    for answer in (result(B), result(A), result(D), result(C), result(E), result(G), result(F)):
        store.apply(answer)
        mine = [e.occurred_at for e in store.events if e.status == store.shipment.status]  # type: ignore[attr-defined]
        assert store.shipment.status_event_at == (max(mine) if mine else None)


def test_progress_after_gives_the_edge_what_it_reestimates_from() -> None:
    p = progress_after(shipment(), result(A, B, C), frozenset({"a"}))
    assert p.status == S.IN_TRANSIT
    assert p.handed_off_at == B.occurred_at
    assert p.last_event_at == C.occurred_at
    assert [e.dedupe_key for e in p.new_events] == ["b", "c"]


statuses = st.sampled_from([*S, None])
scans = st.lists(
    st.tuples(st.integers(min_value=-200, max_value=0), statuses),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(scans=scans, data=st.data())
def test_any_split_and_order_of_the_same_scans_leaves_the_same_state(
    scans: list[tuple[int, S | None]], data: st.DataObject
) -> None:
    events = [scan(f"k{i}", at(h), s) for i, (h, s) in enumerate(scans)]
    reference = _final([result(*events)])
    # the same scans, split into answers (each repeating some) and applied in any order
    answers = [
        result(*data.draw(st.lists(st.sampled_from(events), min_size=1, max_size=4)))
        for _ in range(data.draw(st.integers(min_value=1, max_value=5)))
    ]
    answers.append(result(*data.draw(st.permutations(events))))
    store = _final(data.draw(st.permutations(answers)))
    assert replace(store.shipment, sequence=0, status_changed_at=None) == replace(
        reference.shipment, sequence=0, status_changed_at=None
    )
    assert store.keys == reference.keys
    assert store.order.status == reference.order.status
    # and the loader's `status_event_at` (newest stored event with the current status) agrees
    mine = [e.occurred_at for e in store.events if e.status == store.shipment.status]  # type: ignore[attr-defined]
    assert store.shipment.status_event_at == (max(mine) if mine else None)
