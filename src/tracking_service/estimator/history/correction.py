"""Keeping the stated confidence true: a bounded online correction of the quantile level."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class LevelCorrector:
    """Adaptive conformal inference on the quantile level, bounded.

    After each known outcome: level += step * (missed - (1 - target)). Over many promises the
    on-time share converges to `target`; `bound` caps how far the level may move from the
    target, so a slow reaction cannot swing promises to absurd lengths.
    """

    target: float
    step: float = 0.002
    bound: float = 0.03
    floor: float = 0.5
    ceiling: float = 0.995
    shift: float = 0.0
    outcomes: int = 0
    on_time: int = 0

    @property
    def level(self) -> float:
        return min(self.ceiling, max(self.floor, self.target + self.shift))

    def record(self, on_time: bool) -> None:
        self.outcomes += 1
        self.on_time += on_time
        missed = 0.0 if on_time else 1.0
        self.shift += self.step * (missed - (1.0 - self.target))
        self.shift = max(-self.bound, min(self.bound, self.shift))
