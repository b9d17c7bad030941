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
