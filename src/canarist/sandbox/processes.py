"""Stopping a process the sandbox started: SIGTERM, then SIGKILL when it does not exit."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable

from canarist.backends.clock import SYSTEM_CLOCK, Clock, poll

__all__ = ["EXIT_POLL_S", "stop"]

EXIT_POLL_S = 0.05


def stop(pid: int, *, exited: Callable[[], bool], grace_s: float, group: bool = False,
         clock: Clock = SYSTEM_CLOCK) -> bool:
    """SIGTERM to `pid` (to its process group when `group`), SIGKILL when it has not exited
    within `grace_s`, then up to `grace_s` more for it to go. `exited` tells whether it has
    (`Popen.poll`, which also reaps it, or that the pid is gone). True once it has exited."""
    if exited():
        return True
    send = os.killpg if group else os.kill
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):  # gone, or not ours
            send(pid, signum)
        if poll(exited, timeout_s=grace_s, interval_s=EXIT_POLL_S, clock=clock):
            return True
    return False
