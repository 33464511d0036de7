"""The per-process, per-client token bucket of the public tracking routes."""

from __future__ import annotations

import pytest

from tracking_service.api.rate_limit import RateLimiter


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_limit_then_the_pace_of_the_limit() -> None:
    clock = Ticks()
    limiter = RateLimiter(60, clock=clock)
    assert [limiter.check("a") for _ in range(60)] == [None] * 60
    wait = limiter.check("a")
    assert wait == pytest.approx(1.0)  # one request a second refills
    assert limiter.check("b") is None  # another address has its own bucket
    clock.now += 0.5
    assert limiter.check("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.check("a") is None
    assert limiter.check("a") is not None


def test_an_idle_client_is_forgotten_when_the_table_is_full() -> None:
    clock = Ticks()
    limiter = RateLimiter(6, clock=clock, max_clients=3)
    for key in "abc":
        assert limiter.check(key) is None
    clock.now += 61  # every bucket full again: no information left in them
    assert limiter.check("d") is None
    assert len(limiter) == 1
    for key in "efg":
        limiter.check(key)
    assert len(limiter) <= 3  # never more than the bound, even when nobody is idle


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
