"""The sandbox's Prometheus: the real `prometheus` binary scraping the ingress metrics.

It runs on 127.0.0.1 (default port 9090) with its configuration and TSDB in the state
directory, scrapes the queue-proxy metrics every 2 s, and has the lifecycle and admin APIs
enabled (`/-/quit`, `/api/v1/admin/...`), like the KServe monitoring sample's server that
the `kserve-prometheus` template queries.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from canarist.core.errors import UnavailableError
from canarist.sandbox.revisions import stop_process, tail

SCRAPE_INTERVAL = "2s"
JOB = "knative-queue-proxy"
START_TIMEOUT_S = 30.0
INSTALL_HINT = "install it with: apt-get install prometheus (or put a prometheus binary on PATH)"


def find_binary(explicit: str | None = None) -> str:
    """The prometheus executable, or UnavailableError saying how to install it."""
    found = shutil.which(explicit or "prometheus")
    if found is None:
        raise UnavailableError(f"prometheus is not installed: {INSTALL_HINT}")
    return found


def write_config(path: Path, metrics_target: str) -> Path:
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [{"job_name": JOB, "scrape_interval": SCRAPE_INTERVAL,
                            "scrape_timeout": SCRAPE_INTERVAL,
                            "static_configs": [{"targets": [metrics_target]}]}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Prometheus:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    async def stop(self) -> None:
        await stop_process(self.process)


def spawn(binary: str, state_dir: Path, port: int, metrics_target: str) -> Prometheus:
    """Start the process (configuration and data in `state_dir`)."""
    config = write_config(state_dir / "prometheus.yml", metrics_target)
    data = state_dir / "prometheus-data"
    data.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "logs" / "prometheus.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle",
             "--web.enable-admin-api", "--storage.tsdb.retention.time=2d"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=state_dir)
    return Prometheus(process, port, log_path)


async def start(binary: str, state_dir: Path, port: int, metrics_target: str) -> Prometheus:
    """Start Prometheus and wait for `/-/ready`; UnavailableError with its log if it fails."""
    prometheus = spawn(binary, state_dir, port, metrics_target)
    process, log_path = prometheus.process, prometheus.log_path
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise UnavailableError(f"prometheus exited with code {process.returncode}: "
                                       f"{tail(log_path, 3)}")
            try:
                async with session.get(f"{prometheus.url}/-/ready") as response:
                    if response.status == 200:
                        return prometheus
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    await prometheus.stop()
    raise UnavailableError(f"prometheus was not ready within {START_TIMEOUT_S:g}s: {tail(log_path, 3)}")
