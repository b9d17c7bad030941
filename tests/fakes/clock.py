"""A clock for tests: time moves only when something sleeps, and what was slept is kept."""

from __future__ import annotations

from canarist.backends.clock import Clock


class ManualClock(Clock):
    """Time that passes only by sleeping; what was slept is kept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def sleep_async(self, seconds: float) -> None:
        self.sleep(seconds)
