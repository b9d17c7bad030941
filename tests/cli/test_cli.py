"""The command line as a user runs it: a real `canarist` process, its output and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tests.helpers import FIXTURES

CANARIST = [sys.executable, "-m", "canarist"]


def canarist(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CANARIST, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def run_dir_with(tmp_path: Path, fixture: str) -> Path:
    shutil.copy(FIXTURES / "iter8" / fixture, tmp_path / "experiment.yaml")
    return tmp_path


def test_launch_names_the_versions(tmp_path: Path) -> None:
    from tests.servers.http_target import ThreadedHttpTarget

    with ThreadedHttpTarget() as url:
        done = canarist("launch", "--set", "tasks={http,assess}", "--set", f"http.url={url}/",
                         "--set", "http.numRequests=5",
                         "--set", "assess.SLOs.upper.http/error-count=0",
                         "--set", "versionNames={canary}", "--runDir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    experiment = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    assert experiment["result"]["versionNames"] == ["canary"]
    report = json.loads(canarist("report", "-o", "json", "--run-dir", str(tmp_path)).stdout)
    assert [v["label"] for v in report["versions"]] == ["canary"]
    assert report["verdict"] == "pass"
    assert report["reason"] == "the SLO is satisfied by canary"
    text = canarist("report", "--run-dir", str(tmp_path)).stdout
    assert text.startswith("\nVerdict: ✔ PASSED (pass)\n  the SLO is satisfied by canary\n")
    bad = canarist("launch", "--dry", "--set", "tasks={http}",
                   "--set", "http.url=http://127.0.0.1:8080/",
                   "--set", "versionNames={canary,baseline}", "--runDir", str(tmp_path / "bad"))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "Error: versionNames: 2 names for 1 version (at most one name per version)")
    assert "Traceback" not in bad.stderr


def test_launch_dry_writes_sorted_slos(tmp_path: Path) -> None:
    done = canarist("launch", "--dry", "--set", "tasks={http,assess}",
                    "--set", "http.url=http://127.0.0.1:8080/",
                    "--set", "assess.SLOs.upper.http/latency-mean=50",
                    "--set", "assess.SLOs.upper.http/error-count=0", "--runDir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    experiment = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    assert experiment["spec"][1:] == [{"task": "assess", "with": {"SLOs": {"upper": [
        {"metric": "http/error-count", "limit": 0},
        {"metric": "http/latency-mean", "limit": 50}]}}}]
    assert experiment["result"]["numLoops"] == 0
    assert "level=info msg=created experiment.yaml file" in done.stderr
    assert (tmp_path / "experiment.yaml").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("name", ["kserve-two-versions", "http-one-version"])
def test_report_prints_iter8_text_report(tmp_path: Path, name: str) -> None:
    done = canarist("report", "--run-dir", str(run_dir_with(tmp_path, f"{name}.yaml")))
    assert done.returncode == 0, done.stderr
    # The verdict first, then Iter8's report byte for byte.
    verdict, iter8 = done.stdout.split("\n\nExperiment summary:", 1)
    expected = {"kserve-two-versions": "✖ REJECTED (fail)", "http-one-version": "✔ PASSED (pass)"}
    assert verdict.startswith(f"\nVerdict: {expected[name]}\n  ")
    assert "\nExperiment summary:" + iter8 == (FIXTURES / "iter8" / f"{name}.txt").read_text()


@pytest.mark.parametrize(
    ("fixture", "condition", "code"),
    [
        ("kserve-two-versions.yaml", "completed", 0),
        ("kserve-two-versions.yaml", "nofailure", 0),
        ("kserve-two-versions.yaml", "slos", 1),
        ("kserve-two-versions.yaml", "Completed,NoFailure", 0),
        ("http-one-version.yaml", "completed,nofailure,slos", 0),
    ],
)
def test_assert_exit_codes(tmp_path: Path, fixture: str, condition: str, code: int) -> None:
    done = canarist("assert", "-c", condition, "--runDir", str(run_dir_with(tmp_path, fixture)))
    assert done.returncode == code, done.stderr
    if code == 0:
        assert "msg=all conditions were satisfied" in done.stderr
    else:
        assert "msg=not all conditions were satisfied" in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("Error: assert conditions failed: SLOs are not satisfied: ")
        assert "kserve-prometheus/latency-mean for version 1 is 31.2, expected <= 25" in last


def test_assert_with_timeout_waits_for_the_experiment(tmp_path: Path) -> None:
    data = yaml.safe_load((FIXTURES / "iter8" / "kserve-two-versions.yaml").read_text())
    data["result"]["numCompletedTasks"] = 1
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(data))
    started = time.monotonic()
    process = subprocess.Popen([*CANARIST, "assert", "-c", "completed", "--timeout", "30s",
                                "--run-dir", str(tmp_path)], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    first = process.stderr.readline()  # the first check has seen the unfinished experiment
    data["result"]["numCompletedTasks"] = 3
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(data))
    _, rest = process.communicate(timeout=60)
    stderr = first + rest
    assert process.returncode == 0, stderr
    assert "experiment did not complete" in stderr
    assert time.monotonic() - started < 30


def test_assert_timeout_expires_with_exit_1(tmp_path: Path) -> None:
    data = yaml.safe_load((FIXTURES / "iter8" / "kserve-two-versions.yaml").read_text())
    data["result"]["numCompletedTasks"] = 1
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(data))
    done = canarist("assert", "-c", "completed", "--timeout", "3s", "--run-dir", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.count("msg=experiment did not complete") == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["assert", "-c", "fast"], 2, "Error: --condition: unsupported assert condition detected; fast"),
        (["assert", "-c", "slos", "--timeout", "soon"], 2,
             'Error: --timeout: expected a Go duration such as 30s, 1m30s or 500ms, got "soon"'),
        (["report", "-o", "pdf"], 2, "Error: Invalid value for '-o' / '--output'"),
        (["launch", "--set", "tasks={assess"], 2, "Error: --set"),
        (["launch", "--set", "tasks={bogus}"], 2, "Error: tasks"),
        (["report"], 3, "Error: "),
        (["run"], 3, "Error: "),
        (["nonsense"], 2, "Error: No such command 'nonsense'."),
        (["-l", "loud", "version"], 2, "Error: Invalid value for '-l'"),
    ],
)
def test_bad_input_is_one_line_with_the_documented_exit_code(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    done = canarist(*args, cwd=tmp_path)
    assert done.returncode == code, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) >= 1 and errors[0].startswith(message), done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "experiment.yaml").exists()


def test_malformed_experiment_file(tmp_path: Path) -> None:
    (tmp_path / "experiment.yaml").write_text("spec: [\n  - task: assess\n")
    done = canarist("report", "--run-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith(f"Error: {tmp_path / 'experiment.yaml'}:")
    assert "invalid YAML" in done.stderr


def test_version() -> None:
    short = canarist("version", "--short")
    assert short.returncode == 0 and short.stdout.startswith("v0.")
    full = canarist("version")
    assert full.stdout.startswith('canarist.BuildInfo{Version:"v')


def test_sigkill_never_leaves_a_torn_experiment_file(tmp_path: Path) -> None:
    """Kill `canarist run` at many moments; the file must always parse as an experiment."""
    spec = [{"run": "true"} for _ in range(40)]
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump({"spec": spec}))
    import random

    rng = random.Random(7)
    for attempt in range(12):
        process = subprocess.Popen([*CANARIST, "run", "--reuse-result", "--run-dir", str(tmp_path)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.2))
        process.kill()
        process.wait()
        text = (tmp_path / "experiment.yaml").read_text()
        data = yaml.safe_load(text)
        assert data["spec"] == spec, f"attempt {attempt}"
        assert "result" not in data or 0 <= data["result"]["numCompletedTasks"] <= 40
        report = canarist("report", "--run-dir", str(tmp_path))
        assert report.returncode == 0, report.stderr
    leftovers = [p.name for p in tmp_path.iterdir()
                 if p.name not in ("experiment.yaml", ".experiment.yaml.lock")]
    assert all(name.startswith(".experiment.yaml.") for name in leftovers)
