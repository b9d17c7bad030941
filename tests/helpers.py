"""Shared test helpers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from canarist.core.experiment import Experiment, parse_experiment
from canarist.core.yamltext import load_yaml

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture_experiment(name: str) -> Experiment:
    path = FIXTURES / "iter8" / name
    return parse_experiment(load_yaml(path.read_text(), source=str(path)), source=str(path))


def require(available: bool, message: str) -> None:
    """Skip a test whose tool is missing on a developer's machine; in CI, fail instead.

    CI installs every tool the tests use (scripts/setup), so a missing one there is a broken
    set-up, never a reason to pass quietly.
    """
    import os

    import pytest

    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must install it: see scripts/setup)", pytrace=False)
    pytest.skip(message)


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Terminate a test server process, killing it if it does not exit within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()
