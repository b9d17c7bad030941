"""Every row of docs/ci.md's table of causes and exit codes, caused for real and checked."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.servers.http_target import ThreadedHttpTarget

from canarist.core.experiment import (
    ComparisonRecord,
    Experiment,
    TaskEntry,
    experiment_to_data,
    new_result,
)
from canarist.core.insights import ensure_insights
from canarist.core.yamltext import dump_yaml

CANARIST = [sys.executable, "-m", "canarist"]
DOCS = Path(__file__).parents[2] / "docs"


def canarist(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CANARIST, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert errors, done.stderr
    assert "Traceback" not in done.stderr
    return errors[0]


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with ThreadedHttpTarget() as url:
        yield url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_test(url: str, *slos: str) -> list[str]:
    return ["--set", "tasks={http,assess}", "--set", f"http.url={url}",
            "--set", "http.numRequests=20", "--set", "http.qps=100",
            *[arg for slo in slos for arg in ("--set", slo)]]


def test_the_table_is_documented() -> None:
    text = (DOCS / "ci.md").read_text()
    rows = re.findall(r"^\| (\d) \| (.+?) \|", text, re.M)
    assert {code for code, _ in rows} == {"0", "1", "2", "3"}


def test_0_the_conditions_hold(tmp_path: Path, target: str) -> None:
    done = canarist("launch", *load_test(target, "assess.SLOs.upper.http/error-rate=0"),
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert canarist("assert", "-c", "completed,nofailure,slos", cwd=tmp_path).returncode == 0


def test_1_an_slo_does_not_hold(tmp_path: Path, target: str) -> None:
    done = canarist("launch", *load_test(target, "assess.SLOs.upper.http/latency-max=0\\.000001"),
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = canarist("assert", "-c", "slos", cwd=tmp_path)
    assert done.returncode == 1
    assert "http/latency-max" in one_error_line(done)


def test_1_a_task_fails_through_the_service(tmp_path: Path) -> None:
    (tmp_path / "experiment.yaml").write_text("spec:\n- run: exit 7\n")
    done = canarist("run", cwd=tmp_path)
    assert done.returncode == 1
    assert "task 1: run" in one_error_line(done)


@pytest.mark.parametrize(("args", "key"), [
    (["--set", "tasks={http}", "--set", "http.ur=http://127.0.0.1:1/"], "http.ur"),
    (["--set", "tasks={http}", "--set", "http.url=http://127.0.0.1:1/",
      "--set", "http.duration=30"], "http.duration"),
    (["--set", "tasks={custommetrics}", "--set", "custommetrics.templates.p=kserve-prom"],
     "custommetrics.templates.p"),
])
def test_2_bad_values_before_anything_runs(tmp_path: Path, args: list[str], key: str) -> None:
    done = canarist("launch", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert one_error_line(done).startswith(f"Error: {key}: ")
    assert not (tmp_path / "experiment.yaml").exists()


def test_2_an_slo_on_a_metric_no_task_records(tmp_path: Path, target: str) -> None:
    done = canarist("launch", *load_test(target, "assess.SLOs.upper.http/latancy-mean=5"),
                    cwd=tmp_path)
    assert done.returncode == 2
    assert "did you mean http/latency-mean?" in one_error_line(done)
    assert not (tmp_path / "experiment.yaml").exists()


def test_2_a_bad_flag(tmp_path: Path) -> None:
    done = canarist("report", "-o", "pdf", cwd=tmp_path)
    assert done.returncode == 2


def test_2_a_kubeconfig_that_does_not_exist(tmp_path: Path) -> None:
    done = canarist("launch", "--set", "tasks={ready}", "--set", "ready.isvc=sklearn-iris",
                    "--kubeconfig", str(tmp_path / "nope"), cwd=tmp_path)
    assert done.returncode == 2
    assert "kubeconfig" in one_error_line(done)


def without(modules: tuple[str, ...], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """canarist as if `modules` were not installed."""
    hide = "; ".join(f"sys.modules[{m!r}] = None" for m in modules)
    code = f"import sys; {hide}; from canarist.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("command", [["sandbox", "status"], ["demo"]])
def test_2_the_sandbox_without_its_extra(tmp_path: Path, command: list[str]) -> None:
    done = without(("croniter",), *command, cwd=tmp_path)
    assert done.returncode == 2
    assert one_error_line(done) == (
        f"Error: canarist {command[0]} needs canarist[sandbox], which is not installed (no module "
        "'croniter'); install it with: pip install 'canarist[sandbox]'")


def test_2_a_proto_to_compile_without_its_extra(tmp_path: Path) -> None:
    (tmp_path / "echo.proto").write_text('syntax = "proto3";\npackage echo;\nmessage M {}\n'
                                         "service E { rpc Say(M) returns (M); }\n")
    done = without(("grpc_tools",), "launch", "--set", "tasks={grpc}", "--set",
                   "grpc.host=127.0.0.1:1", "--set", "grpc.call=echo.E.Say",
                   "--set", "grpc.proto=echo.proto", cwd=tmp_path)
    assert done.returncode == 2
    assert one_error_line(done).endswith(
        "proto: compiling echo.proto needs canarist[proto], which is not installed (no module "
        "'grpc_tools'); install it with: pip install 'canarist[proto]'")


def test_3_the_target_cannot_be_reached(tmp_path: Path) -> None:
    done = canarist("launch", *load_test(f"http://127.0.0.1:{closed_port()}/",
                                         "assess.SLOs.upper.http/error-rate=0"), cwd=tmp_path)
    assert done.returncode == 3
    assert "task 1: http" in one_error_line(done)


def test_3_slos_only_on_unavailable_values(tmp_path: Path) -> None:
    (tmp_path / "experiment.yaml").write_text(
        "spec:\n- task: assess\n  with:\n    SLOs:\n      upper:\n"
        "      - {metric: p/latency, limit: 5}\n"
        "result:\n  startTime: 2026-01-01T00:00:00Z\n  numLoops: 1\n  numCompletedTasks: 1\n"
        "  failure: false\n  insights:\n    numVersions: 1\n"
        "    metricsInfo: {p/latency: {type: Gauge}}\n"
        "    SLOs: {upper: [{metric: p/latency, limit: 5}]}\n"
        "    SLOsSatisfied: {upper: [[false]]}\n"
        "    unavailable: [{p/latency: Prometheus did not answer}]\n")
    done = canarist("assert", "-c", "slos", cwd=tmp_path)
    assert done.returncode == 3
    assert "Prometheus did not answer" in one_error_line(done)


def test_3_the_experiment_file_is_missing(tmp_path: Path) -> None:
    for command in (["report"], ["assert", "-c", "completed"], ["run"]):
        done = canarist(*command, cwd=tmp_path)
        assert done.returncode == 3, command
        assert "experiment.yaml" in one_error_line(done)


@pytest.mark.parametrize(("verdict", "code"), [("pass", 0), ("fail", 1), ("inconclusive", 3)])
def test_assert_slos_reads_comparisons_with_the_baseline(tmp_path: Path, verdict: str,
                                                          code: int) -> None:
    """Relative objectives: a failed comparison rejects (1); one the data cannot decide yet
    cannot decide (3); all within their allowance pass (0)."""
    experiment = Experiment(spec=[TaskEntry(task="assess")], result=new_result(now=datetime.now(UTC)))
    assert experiment.result is not None
    experiment.result.num_completed_tasks = 1
    insights = ensure_insights(experiment.result, 2)
    insights.comparisons = [ComparisonRecord(
        metric="http/latency-p90", candidate=0, baseline=1, direction="upper", allowance="20%",
        verdict=verdict, reason="+31.0 %, between +22.1 % and +40.2 %")]  # type: ignore[arg-type]
    (tmp_path / "experiment.yaml").write_text(dump_yaml(experiment_to_data(experiment)))
    done = canarist("assert", "-c", "completed,nofailure,slos", cwd=tmp_path)
    assert done.returncode == code, done.stderr
    lead = {1: "assert conditions failed", 3: "cannot decide"}
    if code:
        assert one_error_line(done) == (
            f"Error: {lead[code]}: SLOs are not satisfied: http/latency-p90 of version 0 "
            "against version 1: +31.0 %, between +22.1 % and +40.2 %")
