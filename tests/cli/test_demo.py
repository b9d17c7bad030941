"""The main job: `canarist demo` runs the tutorial end to end on the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_tutorial_and_leaves_nothing_running(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "canarist", "demo", "--traffic-seconds", "10",
                           "--out", str(tmp_path / "demo")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "$ canarist k launch" in done.stderr
    assert "msg=SLOs are satisfied" in done.stderr
    assert "Whether or not service level objectives (SLOs) are satisfied:" in done.stdout
    verdict = json.loads((tmp_path / "demo" / "verdict.json").read_text())
    assert verdict["summary"]["numVersions"] == 2
    assert verdict["summary"]["noFailure"] is True
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "kserve-prometheus/latency-p90" in html
    assert "sandbox stopped" in done.stdout
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True,
                              check=False)
    assert leftover.stdout.strip() == "", "the demo left processes running"
