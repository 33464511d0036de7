"""The estimator's one LRU map: what it forgets first, and what counts as a use."""

from __future__ import annotations

from tracking_service.estimator.lru import Lru


def test_forgets_the_least_recently_used_first() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert lru.get("b") is None
    assert lru.get("a") == 1
    assert lru.get("c") == 3
    assert len(lru) == 2


def test_a_put_of_a_known_key_makes_it_the_most_recent() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.put("a", 10)  # written again: as fresh as a new entry
    lru.put("c", 3)
    assert lru.get("a") == 10
    assert lru.get("b") is None


def test_counts_hits_and_misses_and_clears() -> None:
    lru: Lru[str, int] = Lru(4)
    lru.put("a", 1)
    assert lru.get("a") == 1
    assert lru.get("x") is None
    assert (lru.hits, lru.misses) == (1, 1)
    lru.clear()
    assert len(lru) == 0
    assert lru.get("a") is None


def test_size_zero_keeps_nothing() -> None:
    lru: Lru[str, int] = Lru(0)
    lru.put("a", 1)
    assert lru.get("a") is None
    assert len(lru) == 0
