"""`canarist launch` with custommetrics, as a user runs it: exit codes and the one error line."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import yaml


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_prometheus_cannot_evaluate(tmp_path: Path) -> None:
    port = _closed_port()
    done = subprocess.run(
        [sys.executable, "-m", "canarist", "launch", "--set", "tasks={custommetrics,assess}",
         "--set", "custommetrics.templates.kserve-prometheus=kserve-prometheus",
         "--set", f"custommetrics.values.prometheusURL=http://admin:s3cret@127.0.0.1:{port}"
                  "/api/v1/query?token=s3cret",
         "--set", "custommetrics.values.labels.service_name=sklearn-iris-predictor-default",
         "--set", "assess.SLOs.upper.kserve-prometheus/error-count=0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"Error: task 1: custommetrics: templates.kserve-prometheus: cannot reach "
        f"http://127.0.0.1:{port}/api/v1/query: connection refused")
    assert "s3cret" not in done.stderr
    result = yaml.safe_load((tmp_path / "experiment.yaml").read_text())["result"]
    assert result["failure"] is True
    assert result["numCompletedTasks"] == 0
