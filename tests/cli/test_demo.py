"""The main job, as README.md shows it: `./scripts/demo` runs the tutorial end to end on the
sandbox, writes the report and the verdict into `canarist-demo/`, and leaves nothing running."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMAND = "./scripts/demo"


def test_the_readme_shows_the_command() -> None:
    assert f"{COMMAND}    # the main job" in (REPO / "README.md").read_text()


@pytest.mark.slow
def test_demo_runs_the_tutorial_and_leaves_nothing_running() -> None:
    out = REPO / "canarist-demo"
    shutil.rmtree(out, ignore_errors=True)
    try:
        done = subprocess.run(["bash", "-c", COMMAND], cwd=REPO, capture_output=True, text=True,
                              timeout=900, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "$ canarist k launch" in done.stderr
        assert "Whether or not service level objectives (SLOs) are satisfied:" in done.stdout
        verdict = json.loads((out / "verdict.json").read_text())
        assert verdict["summary"]["numVersions"] == 2
        assert verdict["summary"]["noFailure"] is True
        html = (out / "report.html").read_text()
        assert "kserve-prometheus/latency-p90" in html
        assert "sandbox stopped" in done.stdout
        leftover = subprocess.run(["pgrep", "-f", str(out)],
                                  capture_output=True, text=True, check=False)
        assert leftover.stdout.strip() == "", "the demo left processes running"
    finally:
        shutil.rmtree(out, ignore_errors=True)
