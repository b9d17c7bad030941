"""`assert`: check an experiment's conditions, polling until they hold or time is up.

Kept apart from the local runner so that checking a result never imports the tasks and the
backends they drive (gRPC, Kubernetes, aiohttp).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from canarist.core.assertions import Verdict, evaluate
from canarist.core.experiment import Experiment

log = logging.getLogger("canarist")


def assert_conditions(
    read: Callable[[], Experiment],
    conditions: list[str],
    *,
    timeout_s: float,
    poll_s: float = 3.0,
) -> list[Verdict]:
    """Check the conditions, polling every `poll_s` until they hold or `timeout_s` passes."""
    waited = 0.0
    while True:
        experiment = read()
        verdicts = [evaluate(experiment, condition) for condition in conditions]
        for verdict in verdicts:
            log.info(verdict.message)
        if all(v.holds for v in verdicts) or waited >= timeout_s:
            return verdicts
        time.sleep(poll_s)
        waited += poll_s
