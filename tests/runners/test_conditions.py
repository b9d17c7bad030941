"""`assert`: conditions polled on a clock, until they hold or time is up."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.fakes.clock import ManualClock

from canarist.core.experiment import Experiment, new_result
from canarist.runners.conditions import assert_conditions


def _experiment(completed: int) -> Experiment:
    result = new_result(now=datetime(2024, 1, 1, tzinfo=UTC))
    result.num_completed_tasks = completed
    return Experiment(spec=[{"task": "assess"}], result=result)  # type: ignore[list-item]


def test_conditions_are_read_again_every_poll_until_they_hold() -> None:
    clock = ManualClock()
    reads = iter([_experiment(0), _experiment(0), _experiment(1)])
    verdicts = assert_conditions(lambda: next(reads), ["completed"], timeout_s=60, poll_s=3,
                                 clock=clock)
    assert [v.holds for v in verdicts] == [True]
    assert clock.slept == [3, 3]


def test_conditions_that_never_hold_are_read_until_time_is_up() -> None:
    clock = ManualClock()
    reads: list[float] = []

    def read() -> Experiment:
        reads.append(clock.now - 1000)
        return _experiment(0)

    verdicts = assert_conditions(read, ["completed"], timeout_s=7, poll_s=3, clock=clock)
    assert [v.holds for v in verdicts] == [False]
    assert reads == [0, 3, 6, 7]
