"""Waiting: a clock that tests can replace, and the one poll loop every waiter uses.

`poll` calls an attempt at once, then every `interval_s`, until what it returns is done or
`timeout_s` has passed; the last attempt is made when time is up, so a state reached while
sleeping is seen. Tests pass a `Clock` whose time moves only when something sleeps, so a
wait of minutes takes no time and its attempts can be counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["SYSTEM_CLOCK", "Clock", "poll", "poll_async"]

T = TypeVar("T")


class Clock:
    """The machine's monotonic clock; a subclass may move time itself (tests)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = Clock()


def poll(attempt: Callable[[], T], *, timeout_s: float, interval_s: float,
         done: Callable[[T], bool] = bool, clock: Clock = SYSTEM_CLOCK) -> T:
    """What `attempt` returned last: once `done` says so, or when `timeout_s` has passed.
    An exception from `attempt` ends the wait."""
    deadline = clock.monotonic() + timeout_s
    while True:
        result = attempt()
        remaining = deadline - clock.monotonic()
        if done(result) or remaining <= 0:
            return result
        clock.sleep(min(interval_s, remaining))


async def poll_async(attempt: Callable[[], Awaitable[T]], *, timeout_s: float,
                     interval_s: float, done: Callable[[T], bool] = bool,
                     clock: Clock = SYSTEM_CLOCK) -> T:
    """`poll` for an attempt that is a coroutine; the event loop runs while it sleeps."""
    deadline = clock.monotonic() + timeout_s
    while True:
        result = await attempt()
        remaining = deadline - clock.monotonic()
        if done(result) or remaining <= 0:
            return result
        await clock.sleep_async(min(interval_s, remaining))
