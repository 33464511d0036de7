"""The lane-history model on small hand-made histories whose right answer is known."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from history_helpers import delivery, every_day

from tracking_service.estimator.history import (
    DayIndex,
    HistoryConfig,
    InFlight,
    LaneHistory,
    LaneQuery,
    LevelCorrector,
    RulesPrior,
    describe_lane,
    distance_km,
    handling_chain,
    holiday_calendars,
    lane_in_words,
    transit_chain,
)
from tracking_service.estimator.records import Delivery

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)  # a Friday
ORDER_DAY = date(2024, 6, 3)
NOW = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)


def config(**kwargs: object) -> HistoryConfig:
    base: dict[str, object] = {
        "half_life_days": None,
        "handling_levels": (),
        "transit_levels": ("dest_subdivision",),
    }
    base.update(kwargs)
    return HistoryConfig(**base)  # type: ignore[arg-type]


def parcel(
    n: int,
    transit: int,
    dest: str = "RJ",
    handling: int = 0,
    ordered: datetime = T0,
) -> Delivery:
    return delivery(
        f"{dest}-{transit}-{handling}-{ordered:%Y%m%d}-{n}",
        ordered,
        transit,
        handling=timedelta(days=handling),
        origin_postal="01310",
        dest_subdivision=dest,
        dest_postal="20000",
        tz="UTC",
    )


def query(dest: str = "RJ") -> LaneQuery:
    return LaneQuery("BR", "SP", "01310", "BR", dest, "20000")


def latest(model: LaneHistory, confidence: float, dest: str = "RJ") -> int:
    window = model.window(query(dest), ORDER_DAY, NOW, confidence)
    assert window is not None
    return (window.latest - ORDER_DAY).days


def test_quantiles_of_a_single_lane_are_its_empirical_quantiles() -> None:
    model = LaneHistory(config(), every_day())
    for t in range(1, 11):  # transit 1..10 days, once each
        model.add(parcel(t, t))
    window = model.window(query(), ORDER_DAY, NOW, 0.9)
    assert window is not None
    assert (window.latest - ORDER_DAY).days == 9
    assert (window.earliest - ORDER_DAY).days == 1  # the 10 % quantile
    assert {q: (d - ORDER_DAY).days for q, d in window.percentiles.items()} == {
        50: 5,
        75: 8,
        85: 9,
        90: 9,
        95: 10,
        97: 10,
        99: 10,
    }
    assert window.basis == "history"
    assert window.transit.records == 10
    assert "RJ" in window.transit.lane


def test_handling_and_transit_are_combined() -> None:
    # handling 0 or 2 days (half each), transit exactly 3: delivered on day 3 or day 5
    model = LaneHistory(config(), every_day())
    for n in range(10):
        model.add(parcel(n, 3, handling=0 if n % 2 else 2))
    assert latest(model, 0.5) == 3
    assert latest(model, 0.51) == 5
    assert latest(model, 0.99) == 5


def test_a_lane_with_little_evidence_speaks_with_its_parents_voice() -> None:
    model = LaneHistory(config(prior_strength=15), every_day())
    for n in range(200):
        model.add(parcel(n, 10, dest="MG"))  # the parent (everything) takes 10 days
    model.add(parcel(0, 2, dest="RJ"))  # one fast parcel on the RJ lane
    assert latest(model, 0.5, "RJ") == 10
    for n in range(1, 300):  # much evidence: the lane's own speed wins
        model.add(parcel(n, 2, dest="RJ"))
    assert latest(model, 0.9, "RJ") == 2
    assert latest(model, 0.5, "MG") == 10


def test_blending_moves_toward_the_lane_as_evidence_grows() -> None:
    def share_by_day_2(records: int) -> float:
        model = LaneHistory(config(prior_strength=10), every_day())
        for n in range(100):
            model.add(parcel(n, 10, dest="MG"))
        for n in range(records):
            model.add(parcel(n, 2, dest="RJ"))
        blend = model.blend(query("RJ"), NOW)
        assert blend is not None
        return blend.transit_cdf[2]

    shares = [share_by_day_2(n) for n in (1, 5, 10, 40, 160)]
    assert shares == sorted(shares)
    # day-2 hazard: (lane's done + k * parent's hazard) / (lane's at risk + k); the parent
    # (everything) holds the lane's records too: not a switch at a threshold
    assert shares[0] == pytest.approx((1 + 10 * 1 / 101) / (1 + 10))
    assert shares[2] == pytest.approx((10 + 10 * 10 / 110) / (10 + 10))


def test_an_unseen_lane_takes_its_parent() -> None:
    model = LaneHistory(config(), every_day())
    for t in range(1, 11):
        model.add(parcel(t, t, dest="MG"))
    assert latest(model, 0.9, "AM") == 9
    window = model.window(query("AM"), ORDER_DAY, NOW, 0.9)
    assert window is not None and window.transit.lane.startswith("transit")


def test_recent_records_weigh_more_with_a_half_life() -> None:
    old = T0
    recent = datetime(2024, 6, 1, tzinfo=UTC)  # 92 days later
    for half_life, expected in ((None, 10), (10.0, 2)):
        model = LaneHistory(config(half_life_days=half_life), every_day())
        for n in range(10):
            model.add(parcel(n, 10, ordered=old))
            model.add(parcel(n, 2, ordered=recent))
        assert latest(model, 0.75) == expected


def test_parcels_in_flight_lengthen_the_promise() -> None:
    ordered = NOW - timedelta(days=8)
    fast = [parcel(n, 2, ordered=ordered) for n in range(10)]
    slow = [parcel(n, 30, dest="RJ", ordered=ordered + timedelta(seconds=1)) for n in range(10)]
    model = LaneHistory(config(), every_day())
    for d in fast:
        model.add(d)
    assert latest(model, 0.9) == 2
    for d in slow:  # handed over 8 days ago, not delivered yet: more than 7 days in transit
        model.add_in_flight(InFlight.of(d, handed_off=True))
    assert latest(model, 0.9) > 7
    assert latest(model, 0.4) == 2
    without = LaneHistory(config(censoring=False), every_day())
    for d in fast:
        without.add(d)
    assert latest(without, 0.9) == 2


def test_a_delivered_parcel_leaves_the_in_flight_set() -> None:
    model = LaneHistory(config(), every_day())
    d = parcel(0, 3, ordered=NOW - timedelta(days=2))
    model.add_in_flight(InFlight.of(d, handed_off=False))
    model.add_in_flight(InFlight.of(d, handed_off=True))
    assert model.in_flight == 1
    model.add(d)
    assert model.in_flight == 0
    assert model.records == 1


def test_a_lane_faster_than_its_parent_stays_fast_under_the_correction() -> None:
    model = LaneHistory(config(prior_strength=5), every_day())
    for n in range(100):
        model.add(parcel(n, 2, dest="RJ"))
    for n in range(1000):
        model.add(parcel(n, 10 + n % 5, dest="MG"))
    corrector = LevelCorrector(target=0.9, step=0.01, bound=0.05)
    for _ in range(20):
        corrector.record(on_time=False)  # the service has been late lately: the level goes up
    assert corrector.level == pytest.approx(0.95)
    fast = model.window(query("RJ"), ORDER_DAY, NOW, 0.9, level=corrector.level)
    slow = model.window(query("MG"), ORDER_DAY, NOW, 0.9, level=corrector.level)
    assert fast is not None and slow is not None
    assert (fast.latest - ORDER_DAY).days == 2
    assert (slow.latest - ORDER_DAY).days == 14
    assert fast.level == pytest.approx(0.95) and fast.confidence == 0.9


def test_the_correction_moves_the_right_way_and_stays_in_bounds() -> None:
    c = LevelCorrector(target=0.9, step=0.01, bound=0.05)
    c.record(on_time=False)
    assert c.level == pytest.approx(0.9 + 0.01 * 0.9)
    c.record(on_time=True)
    assert c.level == pytest.approx(0.9 + 0.01 * 0.9 - 0.01 * 0.1)
    for _ in range(1000):
        c.record(on_time=False)
    assert c.level == pytest.approx(0.95)
    for _ in range(10000):
        c.record(on_time=True)
    assert c.level == pytest.approx(0.85)
    # nine on time for one late is exactly the target: the level comes back to it
    even = LevelCorrector(target=0.9, step=0.01, bound=0.05)
    for _ in range(50):
        for i in range(10):
            even.record(on_time=i != 0)
    assert even.level == pytest.approx(0.9)
    assert LevelCorrector(target=0.99, bound=0.05, shift=0.05).level == 0.995


def test_the_frozen_model_answers_like_the_builder() -> None:
    model = LaneHistory(config(transit_levels=("dest_postal", "dest_subdivision")), every_day())
    for n in range(30):
        model.add(parcel(n, 2 + n % 7, dest="RJ", handling=n % 3))
        model.add(parcel(n, 5 + n % 4, dest="MG", handling=1))
    frozen = model.freeze(NOW)
    for dest in ("RJ", "MG", "AM"):
        for c in (0.5, 0.9, 0.97):
            a = model.window(query(dest), ORDER_DAY, NOW, c)
            b = frozen.window(query(dest), ORDER_DAY, c)
            assert a is not None and b is not None
            assert (a.earliest, a.latest, dict(a.percentiles)) == (
                b.earliest,
                b.latest,
                dict(b.percentiles),
            )
            assert a.transit == b.transit


def test_the_rules_prior_answers_when_there_is_no_history() -> None:
    prior = RulesPrior(handling_min=1, handling_max=1, transit_min=3, transit_max=5)
    model = LaneHistory(config(), every_day(), prior=prior)
    window = model.window(query(), ORDER_DAY, NOW, 0.99)
    assert window is not None
    assert (window.latest - ORDER_DAY).days == 6
    assert (window.earliest - ORDER_DAY).days == 4
    assert window.transit.lane == "rules" and window.transit.records == 0
    assert LaneHistory(config(), every_day()).window(query(), ORDER_DAY, NOW, 0.9) is None


def test_business_and_delivery_days_come_from_the_calendars() -> None:
    cals = holiday_calendars()
    # Mon 11 Feb 2018 .. Carnival is not a public holiday; Good Friday 30 Mar 2018 is
    model = LaneHistory(config(), cals)
    friday = datetime(2018, 3, 23, 15, 0, tzinfo=UTC)
    for n in range(5):  # ordered Friday, handed over Monday, delivered Wednesday
        model.add(parcel(n, 2, handling=3, ordered=friday))
    blend = model.blend(query(), friday)
    assert blend is not None
    assert blend.handling == ((1, 1.0),)  # Mon is 1 business day after Fri
    window = model.window(query(), date(2018, 3, 27), friday, 0.9)  # ordered Tue 27 Mar
    assert window is not None
    # ships Wed 28, transit 2 delivery days: Thu 29, (Good Friday), (weekend), Mon 2 Apr
    assert window.latest == date(2018, 4, 2)


def test_day_index_counts_open_days_and_rolls_closed_days_forward() -> None:
    index = DayIndex(lambda d: d.weekday() < 5, date(2024, 1, 1), date(2024, 1, 31))
    sat, mon = date(2024, 1, 6), date(2024, 1, 8)
    assert index.ceil(sat) == index.ceil(mon)
    assert index.day(index.ceil(sat)) == mon
    assert index.ceil(date(2024, 1, 12)) - index.ceil(mon) == 4
    assert index.day(index.ceil(date(2025, 6, 2))) == date(2025, 6, 2)  # extends itself


def test_distance_and_configuration_checks() -> None:
    assert distance_km(-23.55, -46.63, -22.91, -43.17) == pytest.approx(357, abs=5)
    assert distance_km(None, 1, 2, 3) is None
    with pytest.raises(ValueError, match="unknown lane levels"):
        HistoryConfig(transit_levels=("planet",))
    with pytest.raises(ValueError):
        HistoryConfig(half_life_days=0)


# --------------------------------------------------------------------------- drift signal

DRIFT = {"drift_parts": ("transit",), "drift_window_days": 21.0, "drift_prior": 5.0}


def steady(model: LaneHistory, days: int = 120, until: datetime = NOW) -> None:
    """Four parcels a day, 2 to 5 days in transit in turn, all delivered before `until`."""
    for day in range(days, 6, -1):
        for n in range(4):
            d = parcel(n, 2 + n, ordered=until - timedelta(days=day, hours=n))
            model.add_in_flight(InFlight.of(d, handed_off=True))
            model.add(d)


def test_drift_is_neutral_on_a_steady_history() -> None:
    model = LaneHistory(config(**DRIFT), every_day())
    steady(model)
    drift = model.drift(NOW)
    assert drift.observed[1] > 50  # the recent cohorts were read...
    assert drift.transit == pytest.approx(1.0, abs=0.1)  # ...and found as fast as the lanes
    assert drift.handling == 1.0  # not asked for
    off = LaneHistory(config(drift_window_days=None), every_day())
    steady(off)
    assert latest(model, 0.9) == latest(off, 0.9)


def test_drift_sees_a_slowdown_in_parcels_still_in_flight() -> None:
    """No slow parcel has arrived yet; the ones waiting past their usual days already tell."""
    model = LaneHistory(config(**DRIFT), every_day())
    off = LaneHistory(config(drift_window_days=None), every_day())
    for m in (model, off):
        steady(m, until=NOW - timedelta(days=16))  # last delivered ordered 23 days ago
        for day in range(10, 0, -1):  # handed over 1 to 10 days ago, none delivered
            for n in range(4):
                d = parcel(100 + n, 30, ordered=NOW - timedelta(days=day, hours=n))
                m.add_in_flight(InFlight.of(d, handed_off=True))
    drift = model.drift(NOW)
    assert drift.observed[1] == 0  # nothing delivered in the window...
    assert drift.transit < 0.6  # ...yet the waiting parcels already say "slower"
    assert latest(model, 0.9) > latest(off, 0.9)
    # the frozen model carries the same factor, applied to every lane
    frozen = model.freeze(NOW)
    assert frozen.drift == drift
    window = frozen.window(query(), ORDER_DAY, 0.9)
    assert window is not None and (window.latest - ORDER_DAY).days == latest(model, 0.9)


def test_drift_sees_a_speedup() -> None:
    model = LaneHistory(config(**DRIFT), every_day())
    steady(model, until=NOW - timedelta(days=14))
    for day in range(14, 1, -1):  # lately every parcel arrives the next day
        for n in range(4):
            d = parcel(200 + n, 1, ordered=NOW - timedelta(days=day, hours=n))
            model.add_in_flight(InFlight.of(d, handed_off=True))
            model.add(d)
    assert model.drift(NOW).transit > 1.3


def test_drift_uses_nothing_after_now_and_stays_in_bounds() -> None:
    def slow(m: LaneHistory) -> None:
        steady(m, until=NOW - timedelta(days=10))
        for day in range(10, 0, -1):
            for n in range(4):
                d = parcel(300 + n, 30, ordered=NOW - timedelta(days=day, hours=n))
                m.add_in_flight(InFlight.of(d, handed_off=True))

    model = LaneHistory(config(**DRIFT, drift_bounds=(0.8, 1.25)), every_day())
    slow(model)
    early = NOW - timedelta(days=3)
    at_early = model.drift(early)
    assert at_early.transit == 0.8  # slow, held at the bound
    # a clock that starts, or a parcel that arrives, after `early` changes nothing at `early`
    later = parcel(400, 1, ordered=NOW - timedelta(hours=30))
    model.add_in_flight(InFlight.of(later, handed_off=True))
    model.add(later)
    fresh = LaneHistory(config(**DRIFT, drift_bounds=(0.8, 1.25)), every_day())
    slow(fresh)
    fresh.add_in_flight(InFlight.of(later, handed_off=True))
    fresh.add(later)
    assert fresh.drift(early).observed == at_early.observed
    assert fresh.drift(early).expected[1] == pytest.approx(at_early.expected[1], rel=0.05)
    with pytest.raises(ValueError):
        HistoryConfig(drift_parts=("speed",))
    with pytest.raises(ValueError):
        HistoryConfig(drift_bounds=(1.2, 2.0))


def test_the_frozen_model_answers_like_the_builder_when_a_lane_has_several_parents() -> None:
    """A postal-prefix lane whose parcels fall in two distance bands has two parent chains:
    each query must be blended over its OWN chain, frozen or not."""
    cfg = config(transit_levels=("dest_postal", "dest_subdivision", "distance"))
    model = LaneHistory(cfg, every_day())
    near, far = (-23.0, -46.2), (-22.9, -43.2)  # ~75 km and ~357 km from the origin
    origin = {"origin_lat": -23.55, "origin_lng": -46.63}

    def at(d: Delivery, where: tuple[float, float]) -> Delivery:
        return replace(d, dest_lat=where[0], dest_lng=where[1], **origin)

    for n in range(200):  # elsewhere, the near band is fast and the far band slow
        model.add(at(replace(parcel(n, 2, dest="MG"), key=f"mg-near-{n}"), near))
        model.add(at(replace(parcel(n, 12, dest="MG"), key=f"mg-far-{n}"), far))
    for n in range(3):  # the RJ lane: near parcels seen first, then far ones
        model.add(at(replace(parcel(n, 3), key=f"rj-near-{n}"), near))
        model.add(at(replace(parcel(n, 4), key=f"rj-far-{n}"), far))
    frozen = model.freeze(NOW)
    for where in (near, far):
        q = replace(query(), distance_km=distance_km(-23.55, -46.63, *where))
        for c in (0.5, 0.9, 0.97):
            a = model.window(q, ORDER_DAY, NOW, c)
            b = frozen.window(q, ORDER_DAY, c)
            assert a is not None and b is not None
            assert (a.latest, dict(a.percentiles)) == (b.latest, dict(b.percentiles)), (where, c)
            assert (a.transit, a.handling) == (b.transit, b.handling)
    # a query whose chain was never seen whole (RJ lane, a band it never had) answers too
    q = replace(query(), distance_km=1000.0)
    a, b = model.window(q, ORDER_DAY, NOW, 0.9), frozen.window(q, ORDER_DAY, 0.9)
    assert a is not None and b is not None and a.latest == b.latest


# --------------------------------------------------------------------------- sharper lanes


def test_transit_by_ship_weekday_is_mixed_inside_the_convolution() -> None:
    """Handed over on a Friday: 5 days; any other day: 1 day. An order on a Thursday ships
    Thursday or Friday (half each): delivered on day 1 or on day 6, nothing in between."""
    thursday = date(2024, 6, 6)
    cfg = config(handoff_weekday=True, prior_strength=0.1)
    model = LaneHistory(cfg, every_day())
    for week in range(20):
        for day in range(7):
            ordered = T0 + timedelta(days=7 * week + day)  # T0 is a Friday
            for handling in (0, 1):
                shipped = (ordered + timedelta(days=handling)).weekday()
                model.add(
                    parcel(week, 5 if shipped == 4 else 1, handling=handling, ordered=ordered)
                )

    def days(m: LaneHistory, c: float) -> int:
        w = m.window(query(), thursday, NOW, c)
        assert w is not None
        return (w.latest - thursday).days

    assert days(model, 0.49) == 1  # (lanes blended with 0.1 pseudo-record: not exactly 0.5)
    assert days(model, 0.55) == days(model, 0.9) == 6
    pooled = LaneHistory(config(prior_strength=1.0), every_day())
    for d in [parcel(0, 5 if n % 7 == 0 else 1, ordered=T0 + timedelta(n)) for n in range(280)]:
        pooled.add(d)
    assert days(pooled, 0.5) == 1 and days(pooled, 0.9) < 6  # one transit for every weekday
    frozen = model.freeze(NOW)
    for c in (0.49, 0.55, 0.9):
        w = frozen.window(query(), thursday, c)
        assert w is not None and (w.latest - thursday).days == days(model, c)
    # every level split by weekday, under one unsplit root
    chain = transit_chain(query(), replace(cfg, handoff_weekday_levels="all"), 4)
    assert [k[0] for k in chain] == ["t:weekday", "t:weekday", "transit"]
    with pytest.raises(ValueError):
        HistoryConfig(handoff_weekday_levels="some")


def test_a_customer_zip5_lane_and_a_distance_band_per_destination_state() -> None:
    cfg = config(transit_levels=("dest_postal_fine", "dest_postal", "dest_distance"))
    q = replace(query(), dest_postal_code="20231-000", distance_km=350.0)
    assert transit_chain(q, cfg) == [
        ("t:fine", None, "BR", "SP", "BR", "RJ", "20231"),
        ("t:postal", None, "BR", "SP", "BR", "RJ", "202"),
        ("t:subdist", None, "BR", "RJ", "2"),
        ("transit", None),
    ]
    model = LaneHistory(replace(cfg, prior_strength=1.0), every_day())
    for n in range(50):  # two zip5 areas of one zip3: one fast, one slow
        model.add(replace(parcel(n, 2), key=f"a{n}", dest_postal_code="20231"))
        model.add(replace(parcel(n, 8), key=f"b{n}", dest_postal_code="20299"))
    for zip5, expected in (("20231", 2), ("20299", 8)):
        w = model.window(replace(query(), dest_postal_code=zip5), ORDER_DAY, NOW, 0.9)
        assert w is not None and (w.latest - ORDER_DAY).days == expected


def test_handling_lanes_can_shrink_less_than_transit_lanes() -> None:
    def same_day_share(handling_k: float | None) -> float:
        cfg = config(handling_levels=("origin_postal",), handling_prior_strength=handling_k)
        model = LaneHistory(cfg, every_day())
        for n in range(200):  # other sellers take 3 business days
            model.add(replace(parcel(n, 2, handling=3), origin_postal_code="99999"))
        for n in range(5):  # this seller ships the same day
            model.add(replace(parcel(n, 2), key=f"s{n}"))
        blend = model.blend(query(), NOW)
        assert blend is not None
        return dict(blend.handling).get(0, 0.0)

    assert same_day_share(1.0) > 0.8 > same_day_share(None) > same_day_share(100.0)
    with pytest.raises(ValueError):
        HistoryConfig(handling_prior_strength=0)


def test_lanes_in_words_for_a_shopper() -> None:
    cfg = HistoryConfig(
        transit_levels=("dest_postal_fine", "dest_postal", "dest_subdivision", "distance"),
        handling_levels=("origin_id", "origin_postal", "origin_subdivision", "origin_country"),
    )
    q = LaneQuery("BR", "SP", "01310", "BR", "RJ", "20040", origin_id="sp-mooca", distance_km=360)
    assert [lane_in_words(k) for k in transit_chain(q, cfg)] == [
        "from SP to RJ (postal codes starting 20040)",
        "from SP to RJ (postal codes starting 200)",
        "from SP to RJ",
        "within BR over a similar distance",
        "",
    ]
    assert [lane_in_words(k) for k in handling_chain(q, cfg)] == [
        "from sp-mooca",
        "from SP",
        "from SP",
        "from BR",
        "",
    ]
    weekday = transit_chain(q, replace(cfg, handoff_weekday=True), 0)[0]
    assert (
        lane_in_words(weekday)
        == "from SP to RJ (postal codes starting 20040) handed over on a Monday"
    )
    assert describe_lane(weekday).startswith("t:weekday 0 t:fine")
