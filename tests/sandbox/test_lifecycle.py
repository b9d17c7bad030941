"""The sandbox with its real parts: supervisor, KServe model servers, ingress, Prometheus, API.

One sandbox serves the whole module. It is started with `--ports auto` (and one explicit
port), loaded with the tutorial's two manifests and queried by running the shell examples of
docs/sandbox.md (the ports it picked and the state directory swapped in for the doc's); the
last tests delete the InferenceService, stop the sandbox and check that no process is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import yaml
from google.protobuf import json_format
from tests.helpers import require

from canarist.backends.loadgen.grpc_schema import SHIPPED_INFERENCE_PROTO, load_method_from_proto
from canarist.sandbox.client import SandboxApi
from canarist.sandbox.interpreter import can_serve

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "sandbox.md"
HOST = "sklearn-iris.default.example.com"
REV1 = "sklearn-iris-predictor-default-00001"
REV2 = "sklearn-iris-predictor-default-00002"
COMPONENT = "sklearn-iris-predictor-default"
ROWS = [[6.8, 2.8, 4.8, 1.4], [5.9, 3.2, 4.8, 1.8]]  # the second row tells model-2 apart
REQUESTS = 1000
DOC_PORTS = {"http": 8080, "grpc": 8081, "metrics": 9091, "prometheus": 9090, "api": 6443}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kserve_python() -> str | None:
    for candidate in (os.environ.get("CANARIST_KSERVE_PYTHON"), str(REPO / ".venv-kserve/bin/python"),
                      sys.executable):
        if candidate and Path(candidate).exists() and can_serve(candidate):
            return candidate
    return None


def sandbox_cli(*args: str, input_text: str | None = None, timeout: float = 180,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canarist.cli.sandbox", *args], input=input_text,
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})}, cwd=REPO)


def doc_blocks() -> dict[str, str]:
    """The marked shell examples of docs/sandbox.md: `# sandbox: <step>` -> commands."""
    found = {}
    for body in re.findall(r"^```shell\n(.*?)^```", DOC.read_text(), re.M | re.S):
        first, _, rest = body.partition("\n")
        if first.startswith("# sandbox: "):
            found[first.removeprefix("# sandbox: ").strip()] = rest
    return found


@dataclass
class Sandbox:
    dir: Path
    python: str
    http_port: int  # given explicitly beside --ports auto; the sandbox picks the others
    ports: dict[str, int] = field(default_factory=dict)  # every port in use, once up
    up_output: str = ""

    def run_doc(self, step: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        block = doc_blocks()[step]
        for name, port in self.ports.items():
            block = re.sub(rf"\b{DOC_PORTS[name]}\b", str(port), block)
        flags = f"--ports auto --http-port {self.http_port}"
        prelude = (
            'canarist() { local group="$1"; shift; local cmd="$1"; shift;\n'
            f'  if [ "$cmd" = up ]; then set -- "$@" {flags} --kserve-python {self.python}; fi\n'
            f'  {sys.executable} -m canarist.cli.$group "$cmd" "$@"; }}\n')
        return subprocess.run(["bash", "-euo", "pipefail", "-c", prelude + block], capture_output=True,
                              text=True, timeout=timeout, check=False, cwd=REPO,
                              env={**os.environ, "CANARIST_SANDBOX_DIR": str(self.dir)})

    def state(self) -> dict[str, Any]:
        done = sandbox_cli("status", "-o", "json", "--dir", str(self.dir))
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def service(self, name: str = "sklearn-iris") -> dict[str, Any]:
        return next(s for s in self.state()["services"] if s["name"] == name)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.ports['metrics']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())

    def counts(self) -> dict[tuple[str, str], float]:
        """(revision, response code) -> revision_app_request_count."""
        out = {}
        for line in self.metrics().splitlines():
            if line.startswith("revision_app_request_count{"):
                labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
                out[(labels["revision_name"], labels["response_code"])] = float(line.rsplit(" ", 1)[1])
        return out

    def isvc(self, name: str) -> dict[str, Any]:
        with SandboxApi(self.dir / "kubeconfig") as api:
            return api.get("default", name)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed: apt-get install prometheus")
    python = kserve_python()
    if python is None:
        pytest.fail("kserve is not installed: run ./scripts/setup or set CANARIST_KSERVE_PYTHON")
    handle = Sandbox(tmp_path_factory.mktemp("sandbox"), python, free_port())
    try:
        done = handle.run_doc("up")
        assert done.returncode == 0, f"up: {done.stdout}\n{done.stderr}"
        handle.up_output = done.stdout
        handle.ports = handle.state()["ports"]
        for step in ("deploy", "canary"):
            done = handle.run_doc(step)
            assert done.returncode == 0, f"{step}: {done.stdout}\n{done.stderr}"
        yield handle
    finally:
        sandbox_cli("down", "--dir", str(handle.dir), timeout=120)


def test_up_printed_endpoints_and_wrote_a_private_kubeconfig(sandbox: Sandbox) -> None:
    state = sandbox.state()
    assert state["phase"] == "ready"
    assert state["endpoints"]["http"] == f"127.0.0.1:{sandbox.ports['http']}"
    assert state["endpoints"]["api"] == f"http://127.0.0.1:{sandbox.ports['api']}"
    for name in ("kubeconfig", "token"):
        assert (sandbox.dir / name).stat().st_mode & 0o777 == 0o600


def test_ports_auto_picked_free_ports_and_every_part_uses_them(sandbox: Sandbox) -> None:
    ports = sandbox.ports
    assert set(ports) == set(DOC_PORTS)
    assert ports["http"] == sandbox.http_port  # the explicit flag wins over --ports auto
    picked = {name: ports[name] for name in DOC_PORTS if name != "http"}
    assert not set(picked.values()) & set(DOC_PORTS.values())
    assert len(set(ports.values())) == 5
    assert "  ports picked    " + "  ".join(f"{name} {port}" for name, port in picked.items()) \
        in sandbox.up_output.splitlines()
    state = sandbox.state()
    for endpoint in state["endpoints"].values():
        assert endpoint in sandbox.up_output
    assert state["endpoints"] == {
        "http": f"127.0.0.1:{ports['http']}", "grpc": f"127.0.0.1:{ports['grpc']}",
        "metrics": f"http://127.0.0.1:{ports['metrics']}/metrics",
        "prometheus": f"http://127.0.0.1:{ports['prometheus']}",
        "api": f"http://127.0.0.1:{ports['api']}"}
    kubeconfig = yaml.safe_load((sandbox.dir / "kubeconfig").read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{ports['api']}"
    scrape = yaml.safe_load((sandbox.dir / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{ports['metrics']}"]
    prometheus = next(p for p in state["processes"] if p["role"] == "prometheus")
    assert prometheus["port"] == ports["prometheus"]
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['prometheus']}/-/ready",
                                timeout=10) as response:
        assert response.status == 200


def test_jobs_get_the_prometheus_url_of_the_picked_port(sandbox: Sandbox) -> None:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(sandbox.dir / "kubeconfig"),
                            client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        batch.create_namespaced_job("default", {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "prometheus-url"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "c", "image": "canarist",
                "command": ["sh", "-c", "echo $CANARIST_PROMETHEUS_URL"]}]}}}},
            _request_timeout=10)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                job = batch.read_namespaced_job("prometheus-url", "default", _request_timeout=10)
                if job.status is not None and (job.status.succeeded or job.status.failed):
                    break  # a Job just created may have no status yet
                time.sleep(0.2)
            assert job.status is not None and job.status.succeeded == 1
            # Read raw: the client's models want containerStatuses[].imageID, which the
            # sandbox's pods do not carry.
            pods = json.loads(core.list_namespaced_pod(
                "default", _request_timeout=10, _preload_content=False).data)["items"]
            pod = next(p for p in pods
                       if p["metadata"]["ownerReferences"][0]["name"] == "prometheus-url")
            log = core.read_namespaced_pod_log(pod["metadata"]["name"], "default",
                                               _request_timeout=10)
        finally:
            batch.delete_namespaced_job("prometheus-url", "default",
                                        propagation_policy="Background", _request_timeout=10)
    assert log == f"http://127.0.0.1:{sandbox.ports['prometheus']}/api/v1/query\n"


def test_status_through_the_kubernetes_api(sandbox: Sandbox) -> None:
    obj = sandbox.isvc("sklearn-iris")
    status = obj["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert {"Ready", "PredictorReady", "IngressReady", "LatestDeploymentReady"} <= set(conditions)
    assert all(c["status"] == "True" and c["lastTransitionTime"] for c in conditions.values())
    assert status["url"] == "http://sklearn-iris.default.example.com"
    predictor = status["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == REV2
    assert predictor["latestReadyRevision"] == REV2
    assert predictor["latestRolledoutRevision"] == REV1
    assert [(t["revisionName"], t["percent"], t["tag"], t["latestRevision"])
            for t in predictor["traffic"]] == [(REV2, 10, "latest", True), (REV1, 90, "prev", False)]


def test_status_command_shows_revisions_split_and_processes(sandbox: Sandbox) -> None:
    done = sandbox.run_doc("status")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(rf"{REV1}\s+Ready\s+90%\s+prev\s+gs://kfserving-examples/models/sklearn/1.0/model\n",
                     out)
    assert re.search(rf"{REV2}\s+Ready\s+10%\s+latest\s+gs://.*/model-2", out)
    assert re.search(r"prometheus\s+\d+\s+yes\s+" + str(sandbox.ports["prometheus"]), out)
    assert len(re.findall(r"model-server\s+\d+\s+yes\s+http \d+\s+grpc \d+", out)) == 2


def test_tutorial_curl_loop_and_form_content_type(sandbox: Sandbox) -> None:
    before = sandbox.counts()
    done = sandbox.run_doc("load")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('{"predictions":[1,1]}') == 100, done.stdout
    after = sandbox.counts()
    served = sum(after.get(k, 0) - before.get(k, 0) for k in after if k[1] == "200")
    assert served == 100


async def _load(port: int, n: int) -> list[int]:
    body = json.dumps({"instances": ROWS})
    statuses: list[int] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                async with session.post(
                        f"http://127.0.0.1:{port}/v1/models/sklearn-iris:predict", data=body,
                        headers={"Host": HOST, "Content-Type": "application/x-www-form-urlencoded"},
                ) as response:
                    await response.read()
                    statuses.append(response.status)
        await asyncio.gather(*(worker() for _ in range(8)))
    return statuses


def test_traffic_split_and_queue_proxy_metrics(sandbox: Sandbox) -> None:
    before = sandbox.counts()
    statuses = asyncio.run(_load(sandbox.ports["http"], REQUESTS))
    assert statuses == [200] * REQUESTS
    after = sandbox.counts()
    per_revision = {rev: after.get((rev, "200"), 0) - before.get((rev, "200"), 0) for rev in (REV1, REV2)}
    assert sum(per_revision.values()) == REQUESTS
    canary_share = per_revision[REV2] / REQUESTS
    print(f"measured split over {REQUESTS} requests: {REV1} {1 - canary_share:.1%}, "
          f"{REV2} {canary_share:.1%}")
    assert 0.06 <= canary_share <= 0.14, per_revision
    text = sandbox.metrics()
    assert "# TYPE revision_app_request_count counter" in text
    assert "# TYPE revision_app_request_latencies histogram" in text
    line = next(line for line in text.splitlines()
                if line.startswith("revision_app_request_latencies_count{") and REV2 in line)
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    assert labels == {"configuration_name": COMPONENT, "namespace_name": "default",
                      "response_code": "200", "response_code_class": "2xx", "revision_name": REV2,
                      "service_name": COMPONENT}
    assert re.search(r'revision_app_request_latencies_bucket\{.*le="\+Inf".*' + REV2, text)


def test_prometheus_scraped_the_counts(sandbox: Sandbox) -> None:
    expected = {rev: sandbox.counts().get((rev, "200"), 0) for rev in (REV1, REV2)}
    query = 'sum by (revision_name) (revision_app_request_count)'
    url = (f"http://127.0.0.1:{sandbox.ports['prometheus']}/api/v1/query?"
           + urllib.parse.urlencode({"query": query}))
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=10) as response:
            result = json.loads(response.read())["data"]["result"]
        seen = {r["metric"]["revision_name"]: float(r["value"][1]) for r in result}
        if all(seen.get(rev, 0) >= count for rev, count in expected.items()):
            break
        time.sleep(1)
    assert all(seen.get(rev, 0) >= count > 0 for rev, count in expected.items()), (seen, expected)
    done = sandbox.run_doc("prometheus")
    assert done.returncode == 0 and '"status":"success"' in done.stdout
    assert REV1 in done.stdout and REV2 in done.stdout


def _predict(port: int, host: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Host": host, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.parametrize(("tag", "expected"), [("prev", [1, 2]), ("latest", [1, 1])])
def test_each_revision_answers_v1_and_v2_rest(sandbox: Sandbox, tag: str, expected: list[int]) -> None:
    host = f"{tag}-{COMPONENT}.default.example.com"
    v1 = _predict(sandbox.ports["http"], host, "/v1/models/sklearn-iris:predict", {"instances": ROWS})
    assert v1 == {"predictions": expected}
    v2 = _predict(sandbox.ports["http"], host, "/v2/models/sklearn-iris/infer", {"inputs": [
        {"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": ROWS}]})
    assert v2["model_name"] == "sklearn-iris"
    assert v2["outputs"][0]["data"] == expected


async def _grpc_infer(port: int, metadata: tuple[tuple[str, str], ...]) -> list[int]:
    method = load_method_from_proto(SHIPPED_INFERENCE_PROTO, "inference.GRPCInferenceService.ModelInfer")
    request = json_format.ParseDict({"model_name": "sklearn-iris", "inputs": [
        {"name": "input-0", "shape": [2, 4], "datatype": "FP32",
         "contents": {"fp32_contents": [x for row in ROWS for x in row]}}]}, method.new_request())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method.path, request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=method.response_class.FromString)
        response = await call(request, metadata=metadata, timeout=30)
    return list(response.outputs[0].contents.int64_contents)


@pytest.mark.parametrize(("tag", "expected"), [("prev", [1, 2]), ("latest", [1, 1])])
def test_each_revision_answers_grpc(sandbox: Sandbox, tag: str, expected: list[int]) -> None:
    host = f"{tag}-{COMPONENT}.default.example.com"
    assert asyncio.run(_grpc_infer(sandbox.ports["grpc"], (("host", host),))) == expected


def _timed_predictions(port: int, host: str, n: int) -> list[float]:
    """Seconds per V1 prediction through the ingress, one request at a time."""
    body = json.dumps({"instances": ROWS}).encode()
    seconds = []
    for _ in range(n):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models/sklearn-iris:predict", data=body,
            headers={"Host": host, "Content-Type": "application/json"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        seconds.append(time.perf_counter() - started)
    return seconds


def _bucket(text: str, revision: str, le: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("revision_app_request_latencies_bucket{")
               and f'revision_name="{revision}"' in line and f'le="{le}"' in line)


def test_model_2_adds_its_documented_latency(sandbox: Sandbox) -> None:
    """docs/sandbox.md: model-2's server adds a fixed 15 ms to every prediction."""
    added_s = 0.015
    assert "adds a fixed 15 ms to every prediction" in " ".join(DOC.read_text().split())
    port, n = sandbox.ports["http"], 40
    _timed_predictions(port, f"latest-{COMPONENT}.default.example.com", 3)  # warm up
    before = sandbox.metrics()
    canary = _timed_predictions(port, f"latest-{COMPONENT}.default.example.com", n)
    current = _timed_predictions(port, f"prev-{COMPONENT}.default.example.com", n)
    after = sandbox.metrics()
    gap = statistics.median(canary) - statistics.median(current)
    print(f"median latency through the ingress over {n} requests: model-2 "
          f"{statistics.median(canary) * 1000:.1f} ms, model {statistics.median(current) * 1000:.1f} ms")
    # Load only ever adds time: the lower bound is firm, the gap gets a wide margin.
    assert min(canary) >= added_s, canary
    assert gap >= added_s / 2, (canary, current)
    # What Prometheus sees: none of the canary's requests fit Knative's 10 ms bucket.
    assert _bucket(after, REV2, "+Inf") - _bucket(before, REV2, "+Inf") == n
    assert _bucket(after, REV2, "10") - _bucket(before, REV2, "10") == 0


def test_grpc_without_host_routes_by_model_name(sandbox: Sandbox) -> None:
    results = [asyncio.run(_grpc_infer(sandbox.ports["grpc"], ())) for _ in range(3)]
    assert all(r in ([1, 2], [1, 1]) for r in results)


def test_unknown_host_is_404(sandbox: Sandbox) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{sandbox.ports['http']}/v1/models/x:predict",
                                     data=b"{}", headers={"Host": "nope.default.example.com"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    info.value.close()
    assert info.value.code == 404


def test_unknown_storage_uri_fails_with_a_reason(sandbox: Sandbox) -> None:
    manifest = ('apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n'
                'metadata: {name: broken}\nspec:\n  predictor:\n    model:\n'
                '      modelFormat: {name: sklearn}\n      storageUri: gs://nowhere/model\n')
    done = sandbox_cli("apply", "--dir", str(sandbox.dir), "--wait", "--timeout", "30", "-f", "-",
                       input_text=manifest)
    assert done.returncode == 3
    assert "ModelLoadFailed" in done.stderr and "gs://nowhere/model" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    conditions = {c["type"]: c for c in sandbox.isvc("broken")["status"]["conditions"]}
    assert conditions["PredictorReady"]["status"] == "False"
    assert conditions["PredictorReady"]["reason"] == "ModelLoadFailed"
    assert conditions["Ready"]["status"] == "False"
    assert "model-server" not in json.dumps(
        [p for p in sandbox.state()["processes"] if p.get("isvc") == "broken"])


def test_bad_manifest_is_one_line_naming_the_field(sandbox: Sandbox) -> None:
    manifest = ('apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n'
                'metadata: {name: bad}\nspec:\n  predictor:\n    model:\n'
                '      modelFormat: {name: sklearn}\n')
    done = sandbox_cli("apply", "--dir", str(sandbox.dir), "-f", "-", input_text=manifest)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "Error: <stdin>: InferenceService bad: spec.predictor.model.storageUri: required field is missing"]
    wrong = manifest.replace("InferenceService", "Deployment")
    done = sandbox_cli("apply", "--dir", str(sandbox.dir), "-f", "-", input_text=wrong)
    assert done.returncode == 2 and "kind" in done.stderr and "Traceback" not in done.stderr


def test_second_up_on_the_same_dir(sandbox: Sandbox) -> None:
    done = sandbox_cli("up", "--dir", str(sandbox.dir), "--http-port", str(free_port()))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"Error: a sandbox is already running in {sandbox.dir} (pid {sandbox.state()['pid']}); "
        f"stop it with: canarist sandbox down --dir {sandbox.dir}"]


def test_a_dying_model_server_fails_its_revision(sandbox: Sandbox) -> None:
    proc = next(p for p in sandbox.state()["processes"]
                if p["role"] == "model-server" and p["revision"] == REV2)
    os.kill(proc["pid"], 9)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        revision = next(r for r in sandbox.service()["revisions"] if r["name"] == REV2)
        if revision["state"] == "Failed":
            break
        time.sleep(0.5)
    assert revision["state"] == "Failed"
    assert "exited with code -9" in revision["message"]
    conditions = {c["type"]: c for c in sandbox.isvc("sklearn-iris")["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert "exited with code -9" in conditions["PredictorReady"]["message"]
    # the failed canary gets no traffic: every request is answered by revision 1
    assert asyncio.run(_load(sandbox.ports["http"], 20)) == [200] * 20


def test_delete_stops_the_model_servers_and_frees_the_host(sandbox: Sandbox) -> None:
    servers = [p["pid"] for p in sandbox.state()["processes"]
               if p["role"] == "model-server" and p["isvc"] == "sklearn-iris"]
    assert servers
    done = sandbox.run_doc("delete", timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == 'inferenceservice.serving.kserve.io "sklearn-iris" deleted\n'
    for pid in servers:  # the command returns once they have stopped
        assert not _alive(pid), f"model server {pid} is still running"
    assert "sklearn-iris" not in [s["name"] for s in sandbox.state()["services"]]
    with SandboxApi(sandbox.dir / "kubeconfig") as api:
        assert "sklearn-iris" not in [o["metadata"]["name"] for o in api.list()]
    request = urllib.request.Request(
        f"http://127.0.0.1:{sandbox.ports['http']}/v1/models/sklearn-iris:predict",
        data=json.dumps({"instances": ROWS}).encode(), headers={"Host": HOST})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    info.value.close()
    assert info.value.code == 404
    again = sandbox.run_doc("delete")
    assert again.returncode == 2
    assert again.stderr.splitlines() == [
        'Error: inferenceservices.serving.kserve.io "sklearn-iris" not found in namespace "default"']
    elsewhere = sandbox_cli("delete", "broken", "-n", "other", "--dir", str(sandbox.dir))
    assert elsewhere.returncode == 2 and elsewhere.stderr.splitlines() == [
        'Error: inferenceservices.serving.kserve.io "broken" not found in namespace "other"']
    # The name can be used again: a new service, from its first revision.
    done = sandbox.run_doc("deploy")
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in sandbox.service()["revisions"]] == [REV1]
    assert _predict(sandbox.ports["http"], HOST, "/v1/models/sklearn-iris:predict",
                    {"instances": ROWS}) == {"predictions": [1, 2]}


def test_down_leaves_no_process(sandbox: Sandbox) -> None:
    pids = [p["pid"] for p in sandbox.state()["processes"]]
    assert len(pids) >= 3
    done = sandbox.run_doc("down", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "sandbox stopped" in done.stdout
    for pid in pids:
        assert not _alive(pid), f"process {pid} is still running"
    gone = sandbox_cli("status", "--dir", str(sandbox.dir))
    assert gone.returncode == 3 and "no sandbox is running" in gone.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


# -- failures before anything starts (no sandbox needed) -----------------------------------

def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = sandbox_cli("up", "--dir", str(tmp_path), "--http-port", str(port), timeout=60)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        f"Error: port {port} on 127.0.0.1 (--http-port) is already in use; choose another with --http-port"]


def test_prometheus_missing_is_one_line(tmp_path: Path) -> None:
    ports = [str(free_port()) for _ in range(5)]
    done = sandbox_cli("up", "--dir", str(tmp_path), "--http-port", ports[0], "--grpc-port", ports[1],
                       "--metrics-port", ports[2], "--prometheus-port", ports[3], "--api-port", ports[4],
                       env={"PATH": str(tmp_path)}, timeout=60)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "Error: prometheus is not installed: install it with: apt-get install prometheus "
        "(or put a prometheus binary on PATH)"]


def test_kserve_missing_is_one_line(tmp_path: Path) -> None:
    require(shutil.which("prometheus") is not None, "needs prometheus, checked before kserve")
    ports = [str(free_port()) for _ in range(5)]
    done = sandbox_cli("up", "--dir", str(tmp_path), "--http-port", ports[0], "--grpc-port", ports[1],
                       "--metrics-port", ports[2], "--prometheus-port", ports[3], "--api-port", ports[4],
                       "--kserve-python", "/bin/false", timeout=60)
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install kserve scikit-learn" in lines[0]


def test_the_ports_example_runs_as_typed(tmp_path: Path) -> None:
    """docs/sandbox.md's `--ports auto` example, as a user types it (mktemp under tmp_path)."""
    python = kserve_python()
    require(python is not None and shutil.which("prometheus") is not None,
            "needs kserve and prometheus")
    prelude = f'canarist() {{ {sys.executable} -m canarist "$@"; }}\n'
    env = {key: value for key, value in os.environ.items() if key != "CANARIST_SANDBOX_DIR"}
    env.update(TMPDIR=str(tmp_path), CANARIST_KSERVE_PYTHON=str(python))
    try:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", prelude + doc_blocks()["ports"]],
                              capture_output=True, text=True, timeout=180, check=False, cwd=REPO,
                              env=env)
    finally:
        for state_dir in tmp_path.iterdir():
            if (state_dir / "state.json").exists():
                sandbox_cli("down", "--dir", str(state_dir), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = re.search(r"^\{\n.*?^\}\n", done.stdout, re.M | re.S)
    assert shown is not None, done.stdout
    ports = json.loads(shown.group(0))
    assert set(ports) == set(DOC_PORTS)
    assert not set(ports.values()) & set(DOC_PORTS.values())
    assert "  ports picked    " + "  ".join(f"{name} {ports[name]}" for name in DOC_PORTS) \
        in done.stdout.splitlines()
    assert "sandbox stopped" in done.stdout
