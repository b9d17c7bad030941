"""pytest fixture: a real KServe ModelServer (the sandbox's `modelserver.py`) in a child process.

kserve pins protobuf and grpcio-tools to versions other than canarist's, so it usually
lives in its own virtualenv. The interpreter is the first of

1. `$CANARIST_KSERVE_PYTHON`,
2. `<repo>/.venv-kserve/bin/python`,
3. the interpreter running the tests, if it can import kserve and sklearn;

with none of them the tests that use the fixture fail, saying how to install it.

The server gets two free loopback ports, is waited for until its V2 REST readiness
endpoint answers and its gRPC port accepts connections (60 s at most), and is terminated
(killed after 10 s) at teardown. Its output goes to a log file whose tail is shown when
it fails to start.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The sandbox's model-server program: a kserve ModelServer with a locally trained iris model.
SERVER_SCRIPT = REPO / "src" / "canarist" / "sandbox" / "modelserver.py"
MODEL_NAME = "sklearn-iris"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0

IRIS_V2_GRPC_REQUEST = {
    "model_name": MODEL_NAME,
    "inputs": [
        {
            "name": "input-0",
            "shape": [2, 4],
            "datatype": "FP32",
            "contents": {"fp32_contents": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]},
        }
    ],
}


@dataclass(frozen=True)
class KServeServer:
    http_port: int
    grpc_port: int
    model_name: str
    pid: int
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


def _can_import_kserve(python: str) -> bool:
    try:
        proc = subprocess.run(
            [
                python,
                "-c",
                "import importlib.util as u, sys; "
                "sys.exit(not (u.find_spec('kserve') and u.find_spec('sklearn')))",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def kserve_python() -> str | None:
    """The interpreter that can run the KServe server, or None."""
    candidates: list[str] = []
    env = os.environ.get("CANARIST_KSERVE_PYTHON")
    if env:
        candidates.append(env)
    venv = REPO / ".venv-kserve" / "bin" / "python"
    if venv.exists():
        candidates.append(str(venv))
    candidates.append(sys.executable)
    for python in candidates:
        if _can_import_kserve(python):
            return python
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ready(http_port: int, grpc_port: int, model: str) -> bool:
    url = f"http://127.0.0.1:{http_port}/v2/models/{model}/ready"
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:
            if resp.status != 200 or not json.loads(resp.read()).get("ready"):
                return False
    except (OSError, urllib.error.URLError, ValueError):
        return False
    try:
        with socket.create_connection(("127.0.0.1", grpc_port), timeout=1.0):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def running_kserve_server(python: str, log_dir: Path, model_name: str = MODEL_NAME,
                          model: str = "iris-logreg") -> Iterator[KServeServer]:
    """Start the server (`model`: the sandbox's iris-logreg or iris-forest), wait until it is
    ready, yield it, stop it whatever happens."""
    http_port, grpc_port = _free_port(), _free_port()
    while grpc_port == http_port:
        grpc_port = _free_port()
    log_path = log_dir / f"kserve-server-{model}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [python, str(SERVER_SCRIPT), "--name", model_name, "--model", model,
             "--http-port", str(http_port), "--grpc-port", str(grpc_port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_dir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(http_port, grpc_port, model_name):
            if proc.poll() is not None:
                raise RuntimeError(f"the KServe server exited with {proc.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the KServe server was not ready within {START_TIMEOUT_S:g}s:\n{_tail(log_path)}"
                )
            time.sleep(0.2)
        yield KServeServer(http_port, grpc_port, model_name, proc.pid, log_path)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def kserve_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KServeServer]:
    python = kserve_python()
    if python is None:
        pytest.fail(
            "kserve is not installed: run ./scripts/setup (it creates .venv-kserve with kserve "
            "and scikit-learn), or set CANARIST_KSERVE_PYTHON"
        )
    with running_kserve_server(python, tmp_path_factory.mktemp("kserve")) as server:
        yield server
