"""The `grpc` task: values -> experiment -> load on a real gRPC V2 server -> metrics."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.servers.grpc_v2_server import ThreadedV2Server

from canarist.core.experiment import Experiment, parse_experiment
from canarist.core.metrics import scalar_value

CANARIST = [sys.executable, "-m", "canarist"]
INFER = "inference.GRPCInferenceService.ModelInfer"


def request(model: str) -> dict[str, Any]:
    return {"model_name": model, "inputs": [{
        "name": "input-0", "shape": [1, 4], "datatype": "FP32",
        "contents": {"fp32_contents": [6.8, 2.8, 4.8, 1.4]}}]}


def launch(tmp_path: Path, values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    return subprocess.run([*CANARIST, "launch", "-f", str(tmp_path / "values.yaml"),
                           "--run-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)


def read(tmp_path: Path) -> Experiment:
    return parse_experiment(yaml.safe_load((tmp_path / "experiment.yaml").read_text()), source="x")


def test_grpc_and_assess_with_the_shipped_v2_proto(tmp_path: Path) -> None:
    with ThreadedV2Server() as server:
        done = launch(tmp_path, {
            "tasks": ["grpc", "assess"],
            "grpc": {"host": server.address, "call": INFER, "data": request("delay-2"),
                     "total": 60, "concurrency": 4},
            "assess": {"SLOs": {"upper": {"grpc/latency/p99": 1000, "grpc/error-rate": 0,
                                          "grpc/latency/mean": 1000}}},
        })
    assert done.returncode == 0, done.stderr
    exp = read(tmp_path)
    insights = exp.result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert scalar_value(insights, 0, "grpc/request-count").value == 60
    assert scalar_value(insights, 0, "grpc/error-count").value == 0
    mean = scalar_value(insights, 0, "grpc/latency/mean").value
    assert mean is not None and 2.0 <= mean < 1000
    assert mean != int(mean), "latencies keep sub-millisecond precision"
    assert exp.slos()
    report = subprocess.run([*CANARIST, "report", "--run-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert re.search(r"\n  grpc/latency/p99 \(msec\) <= 1000 +\| true\n", report)


def test_status_codes_are_errors(tmp_path: Path) -> None:
    with ThreadedV2Server() as server:
        done = launch(tmp_path, {
            "tasks": ["grpc"],
            "grpc": {"host": server.address, "call": INFER, "data": request("every-2-unavailable"),
                     "total": 20, "concurrency": 1},
        })
    assert done.returncode == 0, done.stderr
    insights = read(tmp_path).result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert scalar_value(insights, 0, "grpc/error-count").value == 10
    assert scalar_value(insights, 0, "grpc/error-rate").value == 0.5


def test_unknown_method_fails_the_task_with_a_clear_reason(tmp_path: Path) -> None:
    with ThreadedV2Server() as server:
        done = launch(tmp_path, {
            "tasks": ["grpc"],
            "grpc": {"host": server.address, "call": "inference.GRPCInferenceService.Nope",
                     "data": request("m"), "total": 5},
        })
    assert done.returncode in (1, 2), done.stderr
    assert "Nope" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr


def test_unreachable_server_is_exit_3(tmp_path: Path) -> None:
    done = launch(tmp_path, {
        "tasks": ["grpc"],
        "grpc": {"host": "127.0.0.1:9", "call": INFER, "data": request("m"), "total": 5,
                 "connect-timeout": "2s"},
    })
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: task 1: grpc: ")


def test_missing_host_is_rejected_before_anything_runs(tmp_path: Path) -> None:
    done = launch(tmp_path, {"tasks": ["grpc"], "grpc": {"call": INFER}})
    assert done.returncode == 2
    assert not (tmp_path / "experiment.yaml").exists()


def test_every_call_failing_is_explained_and_fails_a_latency_slo(tmp_path: Path) -> None:
    with ThreadedV2Server() as server:
        done = launch(tmp_path, {
            "tasks": ["grpc", "assess"],
            "grpc": {"endpoints": {"a": {"host": server.address, "call": INFER,
                                         "data": request("missing-model"), "total": 20,
                                         "concurrency": 2}}},
            "assess": {"SLOs": {"upper": {"grpc-a/latency/p95": 5000}}},
        })
    assert done.returncode == 0, done.stderr
    assert ('level=warning msg=task 1: grpc: endpoint grpc-a: 20 of 20 calls failed: '
            'NOT_FOUND ×20: "model missing-model not found"\n') in done.stderr
    exp = read(tmp_path)
    insights = exp.result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert [e.model_dump() for e in insights.errors[0]["grpc-a"]] == [
        {"code": "NOT_FOUND", "count": 20, "message": "model missing-model not found"}]
    p95 = scalar_value(insights, 0, "grpc-a/latency/p95")
    assert p95.value is None and p95.reason == "all 20 calls failed: NOT_FOUND ×20"
    assert not exp.slos()


def test_a_later_loop_without_errors_clears_them(tmp_path: Path) -> None:
    with ThreadedV2Server() as server:
        done = launch(tmp_path, {
            "tasks": ["grpc"],
            "grpc": {"host": server.address, "call": INFER, "data": request("every-2-unavailable"),
                     "total": 4, "concurrency": 1},
        })
        assert done.returncode == 0, done.stderr
        assert [e.code for e in read(tmp_path).result.insights.errors[0]["grpc"]] == [  # type: ignore[union-attr]
            "UNAVAILABLE"]
        spec = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
        spec["spec"][0]["with"]["data"]["model_name"] = "fine"
        (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(spec))
        again = subprocess.run([*CANARIST, "run", "--reuse-result", "--run-dir", str(tmp_path)],
                               capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert "failed" not in again.stderr
    saved = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    assert "errors" not in saved["result"]["insights"]


def stamp_calls(server: ThreadedV2Server) -> list[float]:
    """The monotonic times at which `server` received each ModelInfer call, as it runs."""
    times: list[float] = []
    act = server.server._act

    async def stamped(model: str, context: Any) -> None:
        times.append(time.monotonic())
        await act(model, context)

    server.server._act = stamped  # type: ignore[method-assign]
    return times


def test_each_version_is_loaded_at_once_and_judged_against_the_baseline(tmp_path: Path) -> None:
    """`grpc.versionValues`: the canary (version 0, its own server) answers 20 ms slower than
    the baseline (version 1, another server); both are loaded together, recorded apart, and
    the canary fails a 20 % p90 allowance."""
    with ThreadedV2Server() as canary, ThreadedV2Server() as baseline:
        canary_times, baseline_times = stamp_calls(canary), stamp_calls(baseline)
        done = launch(tmp_path, {
            "tasks": ["grpc", "assess"],
            "versionNames": ["canary", "baseline"],
            "grpc": {"call": INFER, "rps": 80, "concurrency": 4, "total": 120,
                     "data": request("shared-model"),
                     "versionValues": [
                         {"host": canary.address, "data": request("delay-80"), "total": 160},
                         {"host": baseline.address, "data": request("delay-5")},
                     ]},
            "assess": {"baseline": 1, "relative": {"upper": {"grpc/latency/p90": "20%",
                                                             "grpc/error-rate": 0.05}}},
        })
    assert done.returncode == 0, done.stderr
    assert canary.stats.calls == {"delay-80": 160}
    assert baseline.stats.calls == {"delay-5": 120}
    assert canary_times[0] < baseline_times[-1] and baseline_times[0] < canary_times[-1], (
        "the two versions were not under load at the same time")
    insights = read(tmp_path).result.insights  # type: ignore[union-attr]
    assert insights is not None and insights.num_versions == 2
    assert scalar_value(insights, 0, "grpc/request-count").value == 160
    assert scalar_value(insights, 1, "grpc/request-count").value == 120
    for version in (0, 1):
        assert scalar_value(insights, version, "grpc/error-count").value == 0
        assert insights.hist_metric_values[version]["grpc/latency"]
    slow, fast = (scalar_value(insights, v, "grpc/latency/p50").value for v in (0, 1))
    assert slow is not None and fast is not None and slow > fast + 15
    verdicts = {c.metric: c.verdict for c in insights.comparisons}
    assert verdicts["grpc/latency/p90"] == "fail"
    assert "assess: grpc/latency/p90, canary against baseline: fail: " in done.stderr


def test_a_version_that_fails_fails_the_task(tmp_path: Path) -> None:
    with ThreadedV2Server() as server:
        done = launch(tmp_path, {
            "tasks": ["grpc"],
            "grpc": {"call": INFER, "data": request("m"), "total": 20, "concurrency": 2,
                     "connect-timeout": "2s",
                     "versionValues": [{"host": server.address}, {"host": "127.0.0.1:9"}]},
        })
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: task 1: grpc: ")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("grpc", "message"), [
    ({"host": "127.0.0.1:9", "versionValues": {"host": "127.0.0.1:9"}},
     'grpc.versionValues: expected a list, got a map'),
    ({"host": "127.0.0.1:9", "versionValues": [{"hots": "127.0.0.1:9"}]},
     'grpc.versionValues[0].hots: unknown key "hots"; did you mean host?'),
    ({"versionValues": [{"host": "127.0.0.1:9"}, {"total": 5}]},
     "grpc.versionValues[1].host: required, as host:port (for this version, or at the top "
     "level)"),
    ({"host": "127.0.0.1:9", "versionValues": []},
     "grpc.versionValues: "),
])
def test_bad_version_values_are_named_before_anything_runs(
        tmp_path: Path, grpc: dict[str, Any], message: str) -> None:
    done = launch(tmp_path, {"tasks": ["grpc"], "grpc": {"call": INFER, **grpc}})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {message}"), done.stderr
    assert not (tmp_path / "experiment.yaml").exists()


@pytest.mark.parametrize("engine", ["h2", "aio"])
def test_either_engine_can_be_chosen(tmp_path: Path, engine: str) -> None:
    with ThreadedV2Server() as server:
        done = launch(tmp_path, {
            "tasks": ["grpc"],
            "grpc": {"host": server.address, "call": INFER, "data": request("every-5-internal"),
                     "total": 50, "concurrency": 5, "engine": engine},
        })
        assert server.stats.total_calls == 50
    assert done.returncode == 0, done.stderr
    insights = read(tmp_path).result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert scalar_value(insights, 0, "grpc/request-count").value == 50
    assert scalar_value(insights, 0, "grpc/error-count").value == 10


def test_an_unknown_engine_is_named(tmp_path: Path) -> None:
    done = launch(tmp_path, {"tasks": ["grpc"],
                             "grpc": {"host": "127.0.0.1:1", "call": INFER, "engine": "fast"}})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "grpc.engine" in lines[0] and "fast" in lines[0], done.stderr
