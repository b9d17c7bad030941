"""pytest fixtures: a real Prometheus server (the Debian `prometheus` binary) on 127.0.0.1.

Each server gets a free loopback port and its own temporary TSDB, accepts remote write
(`--web.enable-remote-write-receiver`, with a 6 h out-of-order window so backdated samples
are kept), has the admin API on, scrapes nothing, and is waited for until `/-/ready`
answers (30 s at most). It is stopped at teardown, whatever happened: SIGTERM, then SIGKILL
after 10 s. Its log goes to a file whose tail is shown when it fails to start.

    def test_x(prometheus: PrometheusServer) -> None:
        prometheus.write([Series({...}, [(value, ts_ms), ...])])
        prometheus.query("up")

Without the binary (`apt-get install -y prometheus`) the tests that use the fixtures are
skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import require
from tests.servers.remote_write import Series, push

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 10.0
CONFIG = """\
global:
  scrape_interval: 1m
  evaluation_interval: 1m
storage:
  tsdb:
    out_of_order_time_window: 6h
scrape_configs: []
"""


def prometheus_binary() -> str | None:
    return os.environ.get("CANARIST_PROMETHEUS") or shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PrometheusServer:
    port: int
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def query_url(self) -> str:
        return f"{self.url}/api/v1/query"

    def write(self, series: Iterable[Series]) -> None:
        status = push(self.url, series, timeout_s=REQUEST_TIMEOUT_S)
        assert status == 204, f"remote write answered {status}"

    def query(self, expr: str, at: float | None = None) -> Any:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = self.query_url + "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT_S) as response:
            return json.load(response)

    def delete_series(self, match: str) -> None:
        """Delete every series matching `match` (admin API) and clean the tombstones."""
        base = self.url + "/api/v1/admin/tsdb"
        for path in ("/delete_series?" + urllib.parse.urlencode({"match[]": match}),
                     "/clean_tombstones"):
            request = urllib.request.Request(base + path, method="POST", data=b"")
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                assert response.status == 204

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within STOP_TIMEOUT_S."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)


def _log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _wait_ready(server: PrometheusServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {server.process.returncode}:\n"
                               + _log_tail(server.log_path))
        with contextlib.suppress(OSError, urllib.error.URLError), urllib.request.urlopen(
            server.url + "/-/ready", timeout=1.0
        ) as response:
            if response.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"prometheus not ready after {START_TIMEOUT_S}s:\n" + _log_tail(server.log_path))


@contextlib.contextmanager
def run_prometheus(workdir: Path) -> Iterator[PrometheusServer]:
    """Start a Prometheus with its config, data and log under `workdir`; always stop it."""
    binary = prometheus_binary()
    require(binary is not None, "the Prometheus server is not installed: apt-get install -y prometheus")
    assert binary is not None
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(CONFIG)
    data_dir = workdir / "data"
    log_path = workdir / "prometheus.log"
    port = _free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
             f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver",
             "--web.enable-admin-api", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
            start_new_session=True,
        )
    server = PrometheusServer(port=port, process=process, data_dir=data_dir, log_path=log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """One server shared by a test module."""
    with run_prometheus(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@pytest.fixture
def own_prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A server for one test (which may stop it)."""
    with run_prometheus(tmp_path / "prometheus") as server:
        yield server
