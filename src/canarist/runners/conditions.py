"""`assert`: check an experiment's conditions, polling until they hold or time is up.

Kept apart from the local runner so that checking a result never imports the tasks and the
backends they drive (gRPC, Kubernetes, aiohttp).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from canarist.backends.clock import SYSTEM_CLOCK, Clock, poll
from canarist.core.assertions import Verdict, evaluate
from canarist.core.experiment import Experiment

log = logging.getLogger("canarist")


def assert_conditions(
    read: Callable[[], Experiment],
    conditions: list[str],
    *,
    timeout_s: float,
    poll_s: float = 3.0,
    clock: Clock = SYSTEM_CLOCK,
) -> list[Verdict]:
    """Check the conditions, polling every `poll_s` until they hold or `timeout_s` passes."""

    def check() -> list[Verdict]:
        experiment = read()
        verdicts = [evaluate(experiment, condition) for condition in conditions]
        for verdict in verdicts:
            log.info(verdict.message)
        return verdicts

    return poll(check, done=lambda verdicts: all(v.holds for v in verdicts),
                timeout_s=timeout_s, interval_s=poll_s, clock=clock)
