"""The poll loop every waiter uses, on a clock that moves only when something sleeps."""

from __future__ import annotations

import asyncio

import pytest
from tests.fakes.clock import ManualClock

from canarist.backends.clock import Clock, poll, poll_async


def test_attempts_at_once_then_every_interval_until_done() -> None:
    clock = ManualClock()
    answers = iter([0, 0, 7, 9])
    assert poll(lambda: next(answers), timeout_s=60, interval_s=3, clock=clock) == 7
    assert clock.slept == [3, 3]


def test_the_last_attempt_is_made_when_time_is_up_and_its_result_returned() -> None:
    clock = ManualClock()
    calls: list[float] = []

    def attempt() -> str:
        calls.append(clock.now - 1000)
        return "no status yet"

    assert poll(attempt, done=lambda v: v == "", timeout_s=10, interval_s=3,
                clock=clock) == "no status yet"
    assert calls == [0, 3, 6, 9, 10]
    assert sum(clock.slept) == 10


def test_done_is_asked_of_every_result_and_a_failure_ends_the_wait() -> None:
    clock = ManualClock()
    assert poll(lambda: "", done=lambda v: v == "", timeout_s=5, interval_s=1, clock=clock) == ""
    assert clock.slept == []

    def broken() -> int:
        raise LookupError("gone")

    with pytest.raises(LookupError, match="gone"):
        poll(broken, timeout_s=5, interval_s=1, clock=clock)


def test_a_wait_of_zero_attempts_once() -> None:
    clock = ManualClock()
    assert poll(lambda: False, timeout_s=0, interval_s=1, clock=clock) is False
    assert clock.slept == []


def test_async_attempts_on_the_same_schedule() -> None:
    clock = ManualClock()
    seen: list[float] = []

    async def attempt() -> bool | None:
        seen.append(clock.now - 1000)
        return True if len(seen) == 3 else None

    found = asyncio.run(poll_async(attempt, done=lambda v: v is not None, timeout_s=30,
                                   interval_s=0.25, clock=clock))
    assert found is True and seen == [0, 0.25, 0.5]
    clock = ManualClock()
    assert asyncio.run(poll_async(_never, timeout_s=1, interval_s=0.4, clock=clock)) is False
    assert clock.slept == pytest.approx([0.4, 0.4, 0.2])


async def _never() -> bool:
    return False


def test_the_system_clock_sleeps_for_real() -> None:
    clock = Clock()
    before = clock.monotonic()
    clock.sleep(0.01)
    asyncio.run(clock.sleep_async(0.01))
    assert clock.monotonic() - before >= 0.02
