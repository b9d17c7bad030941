"""The fault matrix: every backend fault gives its documented reason and exit code.

Each cell runs the real command (`canarist launch`, `k report`, `run --reuse-result`, forked
from one process that imported canarist once: see forkcli.py) against real local servers
on 127.0.0.1, and checks the exit code, the one-line reason, and that the experiment can
still be read and reported afterwards.

Cells already covered elsewhere, not repeated here:

* Prometheus client level: 500 with a text body and with Prometheus' error text, a body
  that is not JSON, a slow server timing out, connection refused, an oversized answer,
  no redirects with credentials: tests/backends/test_metrics_http.py
  (test_http_500_with_a_text_body, test_a_body_that_is_not_json,
  test_a_slow_server_times_out_on_time, test_nothing_listening_is_connection_refused,
  test_an_oversized_answer_is_refused, test_basic_auth_and_no_redirects_with_credentials).
* Prometheus empty results and their explanation: tests/tasks/test_custommetrics.py
  (test_an_empty_result_costs_one_lookup_per_series_and_window).
* Load targets at the load-generator level: resets, hangs, timeouts, 5xx, chunked and
  large bodies: tests/backends/loadgen/test_http_loadgen.py (test_resets_are_connection_
  errors_and_reconnect, test_duration_is_honoured_against_a_hanging_server,
  test_request_timeout_is_a_timeout_error, test_status_classification,
  test_error_messages_from_bodies); gRPC hangs: tests/backends/loadgen/test_grpc.py; first
  request 404/503 and unreachable URLs at the task level: tests/tasks/test_http_task.py.
* Kubernetes API 403 (forbidden vs unauthorized) and unreachable server:
  tests/backends/test_kube_client.py (test_forbidden_and_unauthorized_stay_distinct,
  test_unreachable_server_names_it); 403 retries and 409 conflicts (optimistic
  concurrency, merged writes) on the Secret store: tests/stores/test_secret.py.
* SIGKILL of a single `run` (12 kills, file store): tests/cli/test_cli.py
  (test_sigkill_never_leaves_a_torn_experiment_file); the cells below kill looping runs
  100+ times on each store.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.robustness.forkcli import run_commands

from canarist.core.yamltext import dump_yaml
from canarist.sandbox.kubeapi import RunningApi, serve_api
from canarist.sandbox.kubeconfig import write_kubeconfig
from canarist.sandbox.store import ObjectStore, ResourceKey

SECRETS = ResourceKey("", "v1", "secrets")
HUGE_BYTES = 40 * 1024 * 1024


# -- a server that misbehaves on demand ------------------------------------------------------


def _prometheus(value: object) -> bytes:
    result = [] if value is None else [{"metric": {}, "value": [1714564800.0, value]}]
    return json.dumps({"status": "success",
                       "data": {"resultType": "vector", "result": result}}).encode()


class FaultServer:
    """HTTP/1.1 on 127.0.0.1, one thread a connection; the path picks the fault."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(120)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                path = data.split(b" ", 2)[1].decode().split("?")[0]
                self._answer(conn, path)
            except OSError:
                pass

    def _send(self, conn: socket.socket, status: str, body: bytes,
              headers: dict[str, str] | None = None) -> None:
        head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}",
                "Content-Type: application/json", "Connection: close"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def _answer(self, conn: socket.socket, path: str) -> None:
        kind = path.strip("/").split("/")[0]
        if kind == "ok":
            self._send(conn, "200 OK", _prometheus("3"))
        elif kind == "status500":
            self._send(conn, "500 Internal Server Error",
                       json.dumps({"status": "error", "error": "boom"}).encode())
        elif kind == "badjson":
            self._send(conn, "200 OK", b"<html>please log in</html>")
        elif kind == "nan":
            self._send(conn, "200 OK", _prometheus("NaN"))
        elif kind == "empty":
            self._send(conn, "200 OK", _prometheus(None))
        elif kind == "huge":
            head = b'{"status":"success","data":{"resultType":"vector","result":[],"pad":"'
            tail = b'"}}'
            size = len(head) + HUGE_BYTES + len(tail)
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: "
                         "application/json\r\nConnection: close\r\n\r\n".encode() + head)
            block = b"x" * (1 << 20)
            for _ in range(HUGE_BYTES >> 20):
                conn.sendall(block)
            conn.sendall(tail)
        elif kind == "redirect":
            self._send(conn, "302 Found", b"", {"Location": f"{self.url}/ok/api/v1/query"})
        elif kind in ("hang", "k8shang"):
            self.stop.wait(120)
        elif kind == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        elif kind == "status503":
            self._send(conn, "503 Service Unavailable", b"overloaded")
        elif kind == "midbody":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"
                         b"Content-Type: application/json\r\n\r\n{\"predictions\":")
        elif kind in ("k8s500", "k8s404"):
            code = "500 Internal Server Error" if kind == "k8s500" else "404 Not Found"
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "message": "etcdserver: request timed out" if kind == "k8s500"
                      else "the server could not find the requested resource",
                      "reason": "InternalError" if kind == "k8s500" else "NotFound",
                      "code": int(code[:3])}
            self._send(conn, code, json.dumps(status).encode())
        else:
            self._send(conn, "404 Not Found", b"{}")

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    server = FaultServer()
    try:
        yield server
    finally:
        server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- Prometheus ----------------------------------------------------------------------------

TEMPLATE = ("url: {{ .url }}\nprovider: p\nmethod: GET\nmetrics:\n- name: m\n  type: gauge\n"
            "  params: [{name: query, value: up}]\n  jqExpression: .data.result[0].value[1] | "
            "tonumber\n")


@dataclass(frozen=True)
class Cell:
    fault: str
    code: int
    """`launch`'s exit code."""
    reason: str
    """In the metric's recorded reason (or the task's failure when `failed`)."""
    failed: bool = False


PROMETHEUS_CELLS = [
    Cell("down", 3, "connection refused", failed=True),
    Cell("hang", 3, "timed out after 2s", failed=True),
    Cell("status500", 0, "HTTP 500 from"),
    Cell("badjson", 0, "response is not JSON"),
    Cell("nan", 0, "value is NaN"),
    Cell("empty", 0, "no data: the query returned an empty result"),
    Cell("huge", 0, "too large"),
    # Without credentials a redirect is followed (with them it is refused:
    # tests/backends/test_metrics_http.py); the value is read at the new place.
    Cell("redirect", 0, '"nonHistMetricValues": [{"p/m": [3.0]}]'),
]


def _metric_launch(tmp: Path, url: str) -> dict[str, Any]:
    (tmp / "t.tpl").write_text(TEMPLATE, encoding="utf-8")
    values = {"tasks": ["custommetrics"], "custommetrics": {
        "timeout": "2s", "templates": {"p": str(tmp / "t.tpl")}, "values": {"url": url}}}
    (tmp / "values.yaml").write_text(json.dumps(values), encoding="utf-8")
    return {"argv": ["launch", "--runDir", str(tmp / "run"), "-f", str(tmp / "values.yaml")],
            "cwd": str(tmp), "timeout_s": 60}


def _reasons(experiment: dict[str, Any]) -> str:
    return json.dumps(experiment.get("result", {}))


def test_prometheus_faults(tmp_path: Path, faults: FaultServer) -> None:
    commands = []
    for cell in PROMETHEUS_CELLS:
        cell_dir = tmp_path / cell.fault
        cell_dir.mkdir()
        url = (f"http://127.0.0.1:{closed_port()}/api/v1/query" if cell.fault == "down"
               else f"{faults.url}/{cell.fault}/api/v1/query")
        commands.append(_metric_launch(cell_dir, url))
        commands.append({"argv": ["report", "-o", "json", "--run-dir", str(cell_dir / "run")],
                         "cwd": str(cell_dir)})
    results = run_commands(commands)
    wrong = []
    for cell, launched, report in zip(PROMETHEUS_CELLS, results[::2], results[1::2],
                                      strict=True):
        experiment = yaml.safe_load((tmp_path / cell.fault / "run" / "experiment.yaml")
                                    .read_text(encoding="utf-8"))
        recorded = _reasons(experiment)
        errors = [line for line in launched["stderr"].splitlines() if line.startswith("Error:")]
        if launched["code"] != cell.code:
            wrong.append(f"{cell.fault}: exit {launched['code']}, expected {cell.code}: "
                         f"{launched['stderr'][-300:]!r}")
        elif cell.reason not in recorded:
            wrong.append(f"{cell.fault}: reason {cell.reason!r} not recorded: {recorded[:400]}")
        elif experiment["result"].get("failure", False) != cell.failed:
            wrong.append(f"{cell.fault}: failure={experiment['result'].get('failure')}")
        elif cell.failed and (len(errors) != 1 or cell.reason not in errors[0]):
            wrong.append(f"{cell.fault}: expected one Error: line with the reason: {errors}")
        elif "Traceback" in launched["stderr"]:
            wrong.append(f"{cell.fault}: traceback")
        elif report["code"] != 0:
            wrong.append(f"{cell.fault}: report afterwards exits {report['code']}")
    assert not wrong, "\n".join(wrong)


# -- load targets ----------------------------------------------------------------------------

TARGET_CELLS = [
    # fault, and the reason logged (the load test completes, each request counted as an error)
    ("reset", "connection-reset ×4"),
    ("status503", '503 ×4: "overloaded"'),
    ("hang", 'timeout ×4: "no response from 127.0.0.1'),
    ("midbody", "connection-closed ×4"),
]


def test_load_target_faults(tmp_path: Path, faults: FaultServer) -> None:
    """Failed requests are the service's fault: the load test records them as errors (the
    launch completes, exit 0, with a warning naming the cause), and an error SLO rejects
    the release (`assert`, exit 1)."""
    commands = []
    for fault, _ in TARGET_CELLS:
        cell_dir = tmp_path / fault
        cell_dir.mkdir()
        run_dir = str(cell_dir / "run")
        commands.append({"argv": [
            "launch", "--runDir", run_dir, "--set", "tasks={http,assess}",
            "--set", f"http.url={faults.url}/{fault}/predict", "--set", "http.numRequests=4",
            "--set", "http.timeout=1s", "--set", "assess.SLOs.upper.http/error-count=0"],
            "cwd": str(cell_dir), "timeout_s": 60})
        commands.append({"argv": ["assert", "-c", "completed", "-c", "nofailure", "-c", "slos",
                                  "--run-dir", run_dir], "cwd": str(cell_dir)})
    results = run_commands(commands)
    wrong = []
    for (fault, reason), launched, asserted in zip(TARGET_CELLS, results[::2], results[1::2],
                                                   strict=True):
        warnings = [line for line in launched["stderr"].splitlines() if "level=warning" in line]
        if launched["code"] != 0 or "Traceback" in launched["stderr"]:
            wrong.append(f"{fault}: launch exit {launched['code']}: "
                         f"{launched['stderr'][-300:]!r}")
        elif not any(reason in line for line in warnings):
            wrong.append(f"{fault}: no warning naming {reason!r}: {warnings!r}")
        elif asserted["code"] != 1:
            wrong.append(f"{fault}: assert exit {asserted['code']}, expected 1: "
                         f"{asserted['stdout'][-300:]!r} {asserted['stderr'][-300:]!r}")
    assert not wrong, "\n".join(wrong)


# -- Kubernetes API --------------------------------------------------------------------------


def test_kubernetes_api_faults(tmp_path: Path, faults: FaultServer) -> None:
    token = secrets.token_urlsafe(16)
    api = serve_api(ObjectStore(), token=token)
    try:
        cells = {
            # A group that does not exist is a typo: exit 2, as tests/cli/test_kube.py has it.
            "404": (write_kubeconfig(tmp_path / "real", api.url, token), 2,
                    "experiment group missing not found in namespace default"),
            "500": (write_kubeconfig(tmp_path / "k500", f"{faults.url}/k8s500", token), 3,
                    "etcdserver: request timed out"),
            "timeout": (write_kubeconfig(tmp_path / "hang", f"{faults.url}/k8shang", token),
                        3, "timed out"),
            "refused": (write_kubeconfig(tmp_path / "down", f"http://127.0.0.1:{closed_port()}",
                                         token), 3, "refused"),
        }
        commands = [{"argv": ["k", "report", "-g", "missing", "--kubeconfig", str(path)],
                     "cwd": str(tmp_path), "timeout_s": 120} for path, _, _ in cells.values()]
        results = run_commands(commands)
    finally:
        api.stop()
    wrong = []
    for (name, (_, code, reason)), done in zip(cells.items(), results, strict=True):
        lines = [line for line in done["stderr"].splitlines() if line.strip()]
        if done["code"] != code:
            wrong.append(f"{name}: exit {done['code']}, expected {code}: {done['stderr'][-300:]!r}")
        elif len(lines) != 1 or not lines[0].startswith("Error: ") or reason not in lines[0]:
            wrong.append(f"{name}: expected one Error: line naming {reason!r}: {lines!r}")
    assert not wrong, "\n".join(wrong)


# -- a full disk -----------------------------------------------------------------------------


def test_a_full_disk_exits_3_and_keeps_the_experiment(tmp_path: Path) -> None:
    spec = [{"run": "true " + "#" * 3000} for _ in range(3)]
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump({"spec": spec}), encoding="utf-8")
    first = run_commands([{"argv": ["run", "--run-dir", str(tmp_path)], "cwd": str(tmp_path)}])
    assert first[0]["code"] == 0, first[0]["stderr"]
    before = (tmp_path / "experiment.yaml").read_bytes()
    # No file may grow past 8 KiB (the experiment is larger; the command's captured stderr
    # is not): every write of the experiment fails, as on a full disk.
    assert len(before) > 9000
    done = run_commands([{"argv": ["run", "--reuse-result", "--run-dir", str(tmp_path)],
                          "cwd": str(tmp_path), "file_size_limit": 8192}])[0]
    assert done["code"] == 3, done["stderr"]
    errors = [line for line in done["stderr"].splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "cannot write" in errors[0], done["stderr"]
    assert "Traceback" not in done["stderr"]
    assert (tmp_path / "experiment.yaml").read_bytes() == before
    # no half-written temporary file; the run lock stays, as it always does (docs/ci.md)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".experiment")
            and p.name != ".experiment.yaml.lock"] == []


# -- SIGKILL during looping runs -------------------------------------------------------------

KILLS = 100
LOOP_SPEC = [{"run": "true"} for _ in range(6)]


def _kill_runs(tmp_path: Path, spec: dict[str, Any]) -> list[dict[str, Any]]:
    import subprocess
    import sys

    from tests.robustness.forkcli import REPO
    from tests.robustness.targets import environment

    job = tmp_path / "kill.json"
    job.write_text(json.dumps(spec), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "tests.robustness.killdriver", str(job)],
                          cwd=REPO, env=environment(), capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def _check_kills(runs: list[dict[str, Any]]) -> None:
    problems = [run["problem"] for run in runs if run.get("problem")]
    killed = sum(run["killed"] for run in runs)
    finished = sum(not run["killed"] and run["exit"] == 0 for run in runs)
    assert not problems, problems[:5]
    # Kills land at every stage: many runs killed, some finished (so loops do complete).
    assert killed >= KILLS and finished >= 3, (killed, finished)
    assert runs[-1]["loops"] >= finished


def test_sigkill_during_looping_runs_on_the_file_store(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "experiment.yaml").write_text(yaml.safe_dump({"spec": LOOP_SPEC}),
                                             encoding="utf-8")
    first = run_commands([{"argv": ["run", "--run-dir", str(run_dir)], "cwd": str(tmp_path)}])
    assert first[0]["code"] == 0, first[0]["stderr"]
    runs = _kill_runs(tmp_path, {
        "store": "file", "run_dir": str(run_dir), "kills": KILLS, "seed": 11,
        "argv": ["run", "--reuse-result", "--run-dir", str(run_dir)]})
    _check_kills(runs)
    leftovers = [p.name for p in run_dir.iterdir() if p.name != "experiment.yaml"]
    assert all(name.startswith(".experiment.yaml.") for name in leftovers), leftovers


@pytest.fixture
def api(kube_api: RunningApi, kubeconfig: Path) -> tuple[RunningApi, Path, ObjectStore]:
    return kube_api, kubeconfig, kube_api.store


def test_sigkill_during_looping_runs_on_the_secret_store(
        tmp_path: Path, api: tuple[RunningApi, Path, ObjectStore]) -> None:
    _, kubeconfig, store = api
    text = dump_yaml({"spec": LOOP_SPEC}).encode()
    store.create(SECRETS, "default", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "g", "annotations": {"canarist.dev/revision": "1"},
                     "labels": {"canarist.dev/group": "g"}},
        "data": {"experiment.yaml": base64.b64encode(text).decode()}})
    argv = ["k", "run", "-g", "g", "-n", "default", "--kubeconfig", str(kubeconfig)]
    first = run_commands([{"argv": argv, "cwd": str(tmp_path)}])
    assert first[0]["code"] == 0, first[0]["stderr"]
    started = time.monotonic()
    runs = _kill_runs(tmp_path, {
        "store": "secret", "kubeconfig": str(kubeconfig), "namespace": "default", "group": "g",
        "kills": KILLS, "seed": 12, "argv": [*argv, "--reuse-result"]})
    _check_kills(runs)
    assert time.monotonic() - started < 900
