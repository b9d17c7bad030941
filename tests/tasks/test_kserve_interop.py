"""Interop with a server nobody here wrote: the http and grpc tasks against a real KServe
ModelServer (scikit-learn iris model trained locally) over V1 REST, V2 REST and V2 gRPC."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from tests.servers.kserve_fixture import IRIS_V2_GRPC_REQUEST, KServeServer, kserve_server

from canarist.core.experiment import Experiment, parse_experiment
from canarist.core.metrics import scalar_value

__all__ = ["kserve_server"]

CANARIST = [sys.executable, "-m", "canarist"]


def launch(tmp_path: Path, values: dict[str, Any]) -> Experiment:
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    done = subprocess.run([*CANARIST, "launch", "-f", "values.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    return parse_experiment(yaml.safe_load((tmp_path / "experiment.yaml").read_text()), source="x")


def test_http_v1_and_v2_rest(tmp_path: Path, kserve_server: KServeServer) -> None:
    base = kserve_server.http_url
    model = kserve_server.model_name
    exp = launch(tmp_path, {
        "tasks": ["http", "assess"],
        "http": {"numRequests": 50, "qps": 50, "contentType": "application/json", "endpoints": {
            "v1": {"url": f"{base}/v1/models/{model}:predict",
                   "payloadStr": '{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}'},
            "v2": {"url": f"{base}/v2/models/{model}/infer",
                   "payloadStr": '{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": '
                                 '"FP32", "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}]}'},
        }},
        "assess": {"SLOs": {"upper": {"http-v1/error-count": 0, "http-v2/error-count": 0}}},
    })
    insights = exp.result.insights  # type: ignore[union-attr]
    assert insights is not None
    for provider in ("http-v1", "http-v2"):
        assert scalar_value(insights, 0, f"{provider}/request-count").value == 50
        assert scalar_value(insights, 0, f"{provider}/error-count").value == 0
    assert exp.slos()


def test_http_counts_kserve_errors(tmp_path: Path, kserve_server: KServeServer) -> None:
    exp = launch(tmp_path, {
        "tasks": ["http"],
        "http": {"numRequests": 10, "qps": 50, "url": f"{kserve_server.http_url}/v1/models/nope:predict",
                 "contentType": "application/json", "payloadStr": '{"instances": [[1, 2, 3, 4]]}'},
    })
    insights = exp.result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert scalar_value(insights, 0, "http/error-count").value == 10


def test_grpc_model_infer(tmp_path: Path, kserve_server: KServeServer) -> None:
    exp = launch(tmp_path, {
        "tasks": ["grpc", "assess"],
        "grpc": {"host": kserve_server.grpc_address, "total": 100, "concurrency": 4,
                 "call": "inference.GRPCInferenceService.ModelInfer", "data": IRIS_V2_GRPC_REQUEST},
        "assess": {"SLOs": {"upper": {"grpc/error-count": 0, "grpc/latency/p95": 5000}}},
    })
    insights = exp.result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert scalar_value(insights, 0, "grpc/request-count").value == 100
    assert exp.slos()


def test_grpc_wrong_model_name_is_explained(tmp_path: Path, kserve_server: KServeServer) -> None:
    wrong = {**IRIS_V2_GRPC_REQUEST, "model_name": "sklearn-irs"}
    (tmp_path / "values.yaml").write_text(yaml.safe_dump({
        "tasks": ["grpc", "assess"],
        "grpc": {"host": kserve_server.grpc_address, "total": 50, "concurrency": 4,
                 "call": "inference.GRPCInferenceService.ModelInfer", "data": wrong},
        "assess": {"SLOs": {"upper": {"grpc/latency/p95": 5000}}},
    }))
    done = subprocess.run([*CANARIST, "launch", "-f", "values.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    # KServe's own words for the status, in the log, the result and every report
    lines = [line for line in done.stderr.splitlines() if "level=warning" in line]
    assert len(lines) == 1, done.stderr
    assert lines[0].endswith('msg=task 1: grpc: 50 of 50 calls failed: NOT_FOUND ×50: '
                             '"Model with name sklearn-irs does not exist."'), lines[0]
    exp = parse_experiment(yaml.safe_load((tmp_path / "experiment.yaml").read_text()), source="x")
    insights = exp.result.insights  # type: ignore[union-attr]
    assert insights is not None
    [entry] = insights.errors[0]["grpc"]
    assert (entry.code, entry.count) == ("NOT_FOUND", 50) and "sklearn-irs" in entry.message
    assert scalar_value(insights, 0, "grpc/latency/p95").reason == "all 50 calls failed: NOT_FOUND ×50"
    assert not exp.slos()
    asserted = subprocess.run([*CANARIST, "assert", "-c", "slos"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)
    assert asserted.returncode != 0
    for fmt in ("text", "html", "json"):
        report = subprocess.run([*CANARIST, "report", "-o", fmt], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60, check=True).stdout
        assert "NOT_FOUND" in report and "sklearn-irs does not exist" in report, fmt


def test_http_wrong_model_is_explained(tmp_path: Path, kserve_server: KServeServer) -> None:
    done = subprocess.run(
        [*CANARIST, "launch", "--set", "tasks={http}", "--set", "http.numRequests=10",
         "--set", f"http.url={kserve_server.http_url}/v1/models/nope:predict",
         "--set", "http.contentType=application/json",
         "--set", 'http.payloadStr=\\{"instances": [[1\\, 2\\, 3\\, 4]]\\}'],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert ('level=warning msg=task 1: http: 10 of 10 requests failed: 404 ×10: '
            '"{"error":"Model with name nope does not exist."}"\n') in done.stderr
