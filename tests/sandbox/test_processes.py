"""Stopping a process: SIGTERM first, SIGKILL for one that will not go."""

from __future__ import annotations

import subprocess
import sys
import time

from canarist.sandbox.processes import stop
from canarist.sandbox.state import pid_alive

OBEYS = "import time; time.sleep(60)"
IGNORES = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
           "print('ready', flush=True); time.sleep(60)")


def _start(code: str, *, group: bool = False) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               start_new_session=group)
    assert process.stdout is not None
    with process.stdout:  # the handler is set once it says so
        if "ready" in code:
            assert process.stdout.readline() == b"ready\n"
    return process


def test_sigterm_stops_a_process_that_obeys_it() -> None:
    process = _start(OBEYS)
    assert stop(process.pid, exited=lambda: process.poll() is not None, grace_s=10)
    assert process.returncode == -15


def test_sigkill_follows_when_sigterm_is_ignored() -> None:
    process = _start(IGNORES, group=True)
    began = time.monotonic()
    assert stop(process.pid, exited=lambda: process.poll() is not None, grace_s=0.3, group=True)
    assert process.returncode == -9
    assert time.monotonic() - began < 10  # a hang guard: the grace is 0.3s


def test_a_bare_pid_is_stopped_and_one_already_gone_is_not_an_error() -> None:
    process = _start(IGNORES)
    assert stop(process.pid, exited=lambda: not pid_alive(process.pid), grace_s=0.3)
    assert process.wait(5) == -9
    assert stop(process.pid, exited=lambda: not pid_alive(process.pid), grace_s=0.3)
