"""Faults on a real sandbox: revisions whose KServe model servers answer late or fail.

One sandbox (`--ports auto`) serves the module. The InferenceService `faulty` goes through
revisions that differ only in their `sandbox.canarist.dev/*` annotations, each applied with
`canarist sandbox apply --wait` and split 50/50 against the first; the tag hosts reach one
revision each, over V1 REST, V2 REST and V2 gRPC through the sandbox's ingress.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from tests.sandbox.test_lifecycle import free_port, kserve_python

from canarist.backends.loadgen.grpc_schema import SHIPPED_INFERENCE_PROTO, load_method_from_proto

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
NAME = "faulty"
COMPONENT = f"{NAME}-predictor-default"
ROWS = [[6.8, 2.8, 4.8, 1.4], [5.9, 3.2, 4.8, 1.8]]
LATENCY = "sandbox.canarist.dev/added-latency-ms"
ERRORS = "sandbox.canarist.dev/error-rate"


def revision(number: int) -> str:
    return f"{COMPONENT}-{number:05d}"


def manifest(annotations: dict[str, str], canary: int | None = None) -> str:
    lines = ["apiVersion: serving.kserve.io/v1beta1", "kind: InferenceService", "metadata:",
             f"  name: {NAME}"]
    if annotations:
        lines.append("  annotations:")
        lines += [f'    {key}: "{value}"' for key, value in annotations.items()]
    lines += ["spec:", "  predictor:"]
    if canary is not None:
        lines.append(f"    canaryTrafficPercent: {canary}")
    lines += ["    model:", "      modelFormat: {name: sklearn}",
              "      storageUri: gs://kfserving-examples/models/sklearn/1.0/model"]
    return "\n".join(lines) + "\n"


@dataclass
class Sandbox:
    dir: Path
    ports: dict[str, int] = field(default_factory=dict)

    def cli(self, *args: str, input_text: str | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "canarist.cli.sandbox", *args, "--dir", str(self.dir)],
                              input=input_text, capture_output=True, text=True, timeout=timeout,
                              check=False, cwd=REPO, env=os.environ.copy())

    def apply(self, annotations: dict[str, str], canary: int | None = None) -> str:
        done = self.cli("apply", "--wait", "--timeout", "180", "-f", "-",
                        input_text=manifest(annotations, canary))
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def state(self) -> dict[str, Any]:
        done = self.cli("status", "-o", "json")
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def revisions(self) -> dict[str, dict[str, Any]]:
        service = next(s for s in self.state()["services"] if s["name"] == NAME)
        return {r["name"]: r for r in service["revisions"]}

    def counts(self, name: str) -> dict[str, float]:
        """response code -> revision_app_request_count of one revision."""
        url = f"http://127.0.0.1:{self.ports['metrics']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("revision_app_request_count{") and f'revision_name="{name}"' in line:
                code = re.search(r'response_code="(\d+)"', line)
                assert code is not None
                out[code.group(1)] = out.get(code.group(1), 0) + float(line.rsplit(" ", 1)[1])
        return out


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed: apt-get install prometheus")
    python = kserve_python()
    if python is None:
        pytest.fail("kserve is not installed: run ./scripts/setup or set CANARIST_KSERVE_PYTHON")
    handle = Sandbox(tmp_path_factory.mktemp("faults"))
    try:
        done = handle.cli("up", "--ports", "auto", "--http-port", str(free_port()),
                          "--kserve-python", python)
        assert done.returncode == 0, done.stdout + done.stderr
        handle.ports = handle.state()["ports"]
        yield handle
    finally:
        handle.cli("down", timeout=120)


def host(tag: str) -> str:
    """A tag's host (one revision), or with no tag the service's (the split)."""
    return f"{tag}-{COMPONENT}.default.example.com" if tag else f"{NAME}.default.example.com"


def rest(sandbox: Sandbox, tag: str, version: str) -> tuple[int, Any, float]:
    """(HTTP status, body, seconds) of one prediction through the ingress."""
    if version == "v1":
        path, body = f"/v1/models/{NAME}:predict", {"instances": ROWS}
    else:
        path, body = f"/v2/models/{NAME}/infer", {"inputs": [
            {"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": ROWS}]}
    request = urllib.request.Request(
        f"http://127.0.0.1:{sandbox.ports['http']}{path}", data=json.dumps(body).encode(),
        headers={"Host": host(tag), "Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), time.perf_counter() - started
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read()), time.perf_counter() - started


async def _grpc(port: int, tag: str, n: int) -> list[tuple[grpc.StatusCode, float]]:
    method = load_method_from_proto(SHIPPED_INFERENCE_PROTO, "inference.GRPCInferenceService.ModelInfer")
    request = json_format.ParseDict({"model_name": NAME, "inputs": [
        {"name": "input-0", "shape": [2, 4], "datatype": "FP32",
         "contents": {"fp32_contents": [x for row in ROWS for x in row]}}]}, method.new_request())
    metadata = (("host", host(tag)),)
    out = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method.path, request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=method.response_class.FromString)
        for _ in range(n):
            started = time.perf_counter()
            try:
                response = await call(request, metadata=metadata, timeout=30)
                assert list(response.outputs[0].contents.int64_contents) == [1, 2]
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as error:
                code = error.code()
            out.append((code, time.perf_counter() - started))
    return out


def grpc_calls(sandbox: Sandbox, tag: str, n: int) -> list[tuple[grpc.StatusCode, float]]:
    return asyncio.run(_grpc(sandbox.ports["grpc"], tag, n))


def test_added_latency_delays_every_prediction(sandbox: Sandbox) -> None:
    out = sandbox.apply({LATENCY: "200"})
    assert out.splitlines() == [f"inferenceservice.serving.kserve.io/{NAME} created",
                                f"inferenceservice.serving.kserve.io/{NAME} ready"]
    assert list(sandbox.revisions()) == [revision(1)]
    for version in ("v1", "v2"):
        answers = [rest(sandbox, "", version) for _ in range(5)]
        assert all(status == 200 for status, _, _ in answers), answers
        # the model itself answers in a few milliseconds; the pause is the floor
        assert min(seconds for _, _, seconds in answers) >= 0.2, answers
    assert rest(sandbox, "", "v1")[1] == {"predictions": [1, 2]}
    calls = grpc_calls(sandbox, "", 5)
    assert [code for code, _ in calls] == [grpc.StatusCode.OK] * 5
    assert min(seconds for _, seconds in calls) >= 0.2, calls
    log = (sandbox.dir / "logs" / f"default_{revision(1)}.log").read_text()
    assert "; faults: added latency 200 ms" in log
    assert "Traceback" not in log


def test_an_annotation_change_is_a_new_revision_and_the_old_keeps_its_faults(sandbox: Sandbox) -> None:
    out = sandbox.apply({ERRORS: "1.0"}, canary=50)
    assert f"inferenceservice.serving.kserve.io/{NAME} configured" in out
    revisions = sandbox.revisions()
    assert list(revisions) == [revision(1), revision(2)]
    assert revisions[revision(1)]["faults"] == {"addedLatencyMs": 200.0, "errorRate": 0.0}
    assert revisions[revision(2)]["faults"] == {"addedLatencyMs": 0.0, "errorRate": 1.0}
    status = sandbox.cli("status")
    assert re.search(rf"{revision(1)}\s+Ready\s+50%\s+prev\s+gs://\S+\n    faults: added latency 200 ms\n",
                     status.stdout), status.stdout
    assert re.search(rf"{revision(2)}\s+Ready\s+50%\s+latest\s+gs://\S+\n    faults: error rate 1\n",
                     status.stdout), status.stdout

    # error rate 1: every prediction fails, on V1 and V2 REST (HTTP 500) and gRPC (INTERNAL)
    before = sandbox.counts(revision(2))
    for version in ("v1", "v2"):
        for _ in range(5):
            code, body, seconds = rest(sandbox, "latest", version)
            assert code == 500 and "injected failure" in body["error"], body
            assert seconds < 0.2  # no added latency on this revision
    assert [code for code, _ in grpc_calls(sandbox, "latest", 5)] == [grpc.StatusCode.INTERNAL] * 5
    assert sandbox.counts(revision(2)).get("500", 0) - before.get("500", 0) == 10
    # revision 1 still answers, as late as it was created to
    code, body, seconds = rest(sandbox, "prev", "v1")
    assert (code, body) == (200, {"predictions": [1, 2]}) and seconds >= 0.2
    log = (sandbox.dir / "logs" / f"default_{revision(2)}.log").read_text()
    assert "; faults: error rate 1" in log and "Traceback" not in log and "injected" not in log


def test_each_prediction_draws_its_own_outcome(sandbox: Sandbox) -> None:
    sandbox.apply({ERRORS: "0.5"}, canary=50)
    assert list(sandbox.revisions())[-1] == revision(3)
    codes = [rest(sandbox, "latest", "v1")[0] for _ in range(200)]
    failed = codes.count(500)
    print(f"error-rate 0.5: {failed} of 200 predictions failed")
    assert set(codes) == {200, 500}
    assert 60 <= failed <= 140, failed  # binomial(200, 0.5): outside this, once in 10^8 runs


def test_error_rate_0_never_fails(sandbox: Sandbox) -> None:
    sandbox.apply({ERRORS: "0"}, canary=50)
    revisions = sandbox.revisions()
    assert list(revisions)[-1] == revision(4)
    assert revisions[revision(4)]["faults"] == {"addedLatencyMs": 0.0, "errorRate": 0.0}
    assert [rest(sandbox, "latest", "v1")[0] for _ in range(100)] == [200] * 100
    assert [code for code, _ in grpc_calls(sandbox, "latest", 20)] == [grpc.StatusCode.OK] * 20


def test_bad_values_are_rejected_at_apply_time(sandbox: Sandbox) -> None:
    before = sandbox.revisions()
    for faults, line in [
        ({ERRORS: "x"}, f'metadata.annotations.{ERRORS}: expected a number between 0 and 1, got "x"'),
        ({ERRORS: "1.5"}, f'metadata.annotations.{ERRORS}: expected a number between 0 and 1, got "1.5"'),
        ({LATENCY: "-200"},
         f'metadata.annotations.{LATENCY}: expected a number of milliseconds, 0 or more, got "-200"'),
        ({LATENCY: "fast"},
         f'metadata.annotations.{LATENCY}: expected a number of milliseconds, 0 or more, got "fast"'),
    ]:
        done = sandbox.cli("apply", "-f", "-", input_text=manifest(faults))
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [f"Error: <stdin>: InferenceService {NAME}: {line}"]
    # the same check on the sandbox's Kubernetes API, for clients that do not check first
    from kubernetes import client, config

    api = config.new_client_from_config(str(sandbox.dir / "kubeconfig"))
    with api:
        custom = client.CustomObjectsApi(api)
        with pytest.raises(client.ApiException) as caught:
            custom.patch_namespaced_custom_object(
                "serving.kserve.io", "v1beta1", "default", "inferenceservices", NAME,
                {"metadata": {"annotations": {ERRORS: "x"}}}, _request_timeout=10)
    assert caught.value.status == 422
    assert json.loads(caught.value.body)["message"] == (
        f'InferenceService "{NAME}" is invalid: metadata.annotations.{ERRORS}: '
        'expected a number between 0 and 1, got "x"')
    assert sandbox.revisions() == before
