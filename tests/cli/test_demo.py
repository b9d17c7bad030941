"""The main job, as README.md shows it: `./scripts/demo` runs the tutorial end to end on the
sandbox, writes the report and the verdict into `canarist-demo/`, and leaves nothing running.
`canarist demo --scenario promote|rollback`, as docs/sandbox.md shows them, roll a canary out
to 100 % or back to 0 % while predictions flow, and say so with their exit code."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from canarist.cli.demo_rollout import LAUNCH, SCENARIOS, TrafficDriver, conclude
from canarist.core.errors import ExperimentFailed, UnavailableError
from canarist.core.experiment import RolloutAction, RolloutRecord

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


# -- the rollout scenarios ------------------------------------------------------------------

WINDOW = re.compile(r"^    (\d\d:\d\d:\d\d)  +(\d+)  +(\d+)  (.+)$", re.M)


def test_the_sandbox_page_shows_the_scenarios_and_their_experiment() -> None:
    page = (REPO / "docs" / "sandbox.md").read_text()
    for scenario in ("promote", "rollback"):
        assert f"canarist demo --scenario {scenario}" in page
    for value in LAUNCH[1::2]:
        assert shlex.quote(value) in page, value


def run_scenario(scenario: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`canarist demo --scenario NAME`, typed in a terminal whose PATH has canarist."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("KUBECONFIG", None)
    done = subprocess.run(["bash", "-c", f"canarist demo --scenario {scenario}"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=540, check=False)
    print(done.stderr)  # shown when an assertion fails: the demo's story, windows and all
    return done


def windows(stderr: str) -> list[tuple[int, int, list[str]]]:
    """(requests, errors, the splits in effect) of each 5 s window the traffic driver printed."""
    return [(int(m.group(2)), int(m.group(3)), m.group(4).split(" -> "))
            for m in WINDOW.finditer(stderr)]


def check_common(done: subprocess.CompletedProcess[str], out: Path) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Traceback" not in done.stderr
    launch = next(line for line in done.stderr.splitlines() if line.startswith("$ canarist k launch"))
    assert "kserve.isvc=sklearn-iris" in launch and "runner=cronjob" in launch
    assert "'cronjobSchedule=@every 10s'" in launch
    assert "assess.relative.upper.kserve-prometheus/latency-mean=50%" in launch
    assert "predictor-default-0000" not in launch  # no revision typed by hand
    html = (out / "report.html").read_text()
    assert 'id="rollout"' in html
    leftover = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True,
                              check=False)
    assert leftover.stdout.strip() == "", "the demo left processes running"
    return dict(json.loads((out / "verdict.json").read_text()))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_promote_steps_a_healthy_canary_to_100_without_dropping_a_request(tmp_path: Path) -> None:
    done = run_scenario("promote", tmp_path)
    verdict = check_common(done, tmp_path / "canarist-demo" / "promote")
    rollout = verdict["rollout"]
    assert (rollout["state"], rollout["percent"]) == ("promoted", 100), rollout
    moves = [(a["action"], a["from"], a["to"], a["verdict"]) for a in rollout["actions"]
             if a["action"] != "hold"]
    assert moves == [("step", 10, 25, "pass"), ("step", 25, 50, "pass"),
                     ("promote", 50, 100, "pass")]
    seen = windows(done.stderr)
    assert sum(requests for requests, _, _ in seen) >= 300
    assert [errors for _, errors, _ in seen if errors] == [], seen  # not one request dropped
    splits = [split for _, _, in_window in seen for split in in_window]
    for split in ("00001 90% / 00002 10%", "00001 75% / 00002 25%", "00001 50% / 00002 50%"):
        assert split in splits, splits  # traffic flowed at every step
    assert splits[-1].endswith("00002 100%"), splits
    assert re.search(r"\d+ predictions in \d+ s, 0 failed", done.stderr)
    assert done.stderr.rstrip().splitlines()[-1].startswith(
        "Scenario promote: promoted at 100 %;")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_rollback_returns_a_slow_canary_to_0(tmp_path: Path) -> None:
    done = run_scenario("rollback", tmp_path)
    verdict = check_common(done, tmp_path / "canarist-demo" / "rollback")
    rollout = verdict["rollout"]
    assert (rollout["state"], rollout["percent"]) == ("rolled-back", 0), rollout
    last = rollout["actions"][-1]
    assert (last["action"], last["from"], last["to"], last["verdict"]) == (
        "rollback", 10, 0, "fail")
    assert "kserve-prometheus/latency-mean" in last["reason"]
    assert [a["action"] for a in rollout["actions"]].count("step") == 0
    seen = windows(done.stderr)
    splits = [split for _, _, in_window in seen for split in in_window]
    assert "00001 90% / 00002 10%" in splits, splits
    assert splits[-1] == "00001 100% / 00002 0%", splits
    assert [errors for _, errors, _ in seen if errors] == [], seen
    assert done.stderr.rstrip().splitlines()[-1].startswith(
        "Scenario rollback: rolled-back at 0 %;")


def test_a_bad_timeout_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "canarist", "demo", "--scenario", "promote",
                           "--timeout", "soon"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "--timeout" in errors[0], done.stderr
    assert not (tmp_path / "canarist-demo").exists()


def _record(state: str, percent: int, verdict: str = "pass", reason: str = "") -> RolloutRecord:
    action = RolloutAction.model_validate({"time": "2026-01-01T00:00:00Z", "action": "hold",
                                          "from": percent, "to": percent, "verdict": verdict,
                                          "reason": reason})
    return RolloutRecord(state=state, percent=percent, actions=[action])  # type: ignore[arg-type]


def test_each_way_a_scenario_can_go_wrong_is_one_line() -> None:
    promote = SCENARIOS["promote"]
    quiet = TrafficDriver("127.0.0.1:1", 1.0, lambda: "-")
    quiet.requests = 100
    with pytest.raises(UnavailableError) as timed_out:
        conclude(promote, _record("held", 25, "inconclusive", "thin data"), quiet, 240)
    assert str(timed_out.value) == (
        "scenario promote: the rollout did not end within 240 s (held at 25 % (inconclusive: "
        "thin data)); raise --timeout on a busy machine")
    with pytest.raises(UnavailableError, match="no loop judged the canary yet"):
        conclude(promote, None, quiet, 240)
    with pytest.raises(ExperimentFailed) as wrong:
        conclude(promote, _record("rolled-back", 0, "fail", "latency-mean is worse"), quiet, 240)
    assert str(wrong.value) == ("scenario promote: the rollout ended rolled-back at 0 %, expected "
                                "promoted (fail: latency-mean is worse)")
    dropped = TrafficDriver("127.0.0.1:1", 1.0, lambda: "-")
    dropped.requests, dropped.errors = 100, 3
    dropped.reasons.update({"HTTP 503": 2, "timeout": 1})
    with pytest.raises(ExperimentFailed) as lost:
        conclude(promote, _record("promoted", 100), dropped, 240)
    assert str(lost.value) == ("scenario promote: promoted, but 3 of 100 predictions failed "
                               "(2 HTTP 503, 1 timeout) (see the 5 s windows)")
    assert conclude(promote, _record("promoted", 100), quiet, 240) == (
        "Scenario promote: promoted at 100 %; 100 predictions, none failed")
