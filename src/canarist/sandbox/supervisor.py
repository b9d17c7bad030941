"""The sandbox supervisor: one process hosting the store, the Kubernetes API, the controller,
the ingress and its metrics, and Prometheus; it owns every model-server process.

`run(config)` blocks until SIGTERM or SIGINT, then stops everything it started and removes
its state. Progress and failures are written to `state.json` so the CLI can follow a
detached supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from canarist.core.errors import CanaristError, UnavailableError
from canarist.sandbox import prometheus
from canarist.sandbox.controller import ISVC_KEY, Controller, now
from canarist.sandbox.ingress import GrpcIngress, HttpIngress, MetricsServer, gather_stop
from canarist.sandbox.jobs import JobController
from canarist.sandbox.kubeapi import KubeApiServer
from canarist.sandbox.kubeconfig import write_kubeconfig
from canarist.sandbox.metrics import RequestMetrics
from canarist.sandbox.revisions import RevisionRunner, free_port
from canarist.sandbox.routes import RouteTable
from canarist.sandbox.state import StateDir
from canarist.sandbox.store import ObjectStore

log = logging.getLogger("canarist.sandbox")

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    """The port of each part on 127.0.0.1; 0 means a free port picked at start-up."""

    http: int = 8080
    grpc: int = 8081
    metrics: int = 9091
    prometheus: int = 9090
    api: int = 6443

    def parts(self) -> dict[str, int]:
        """Part name -> port: `http`, `grpc`, `metrics`, `prometheus`, `api`."""
        return {"http": self.http, "grpc": self.grpc, "metrics": self.metrics,
                "prometheus": self.prometheus, "api": self.api}

    def named(self) -> dict[str, int]:
        """Command-line flag -> port (`--http-port` ...)."""
        return {f"--{part}-port": port for part, port in self.parts().items()}


@dataclass(frozen=True)
class Config:
    state: StateDir
    ports: Ports
    kserve_python: str
    prometheus_binary: str


def check_ports(ports: Ports) -> None:
    """UnavailableError naming the first port that is taken on 127.0.0.1."""
    seen: dict[int, str] = {}
    for flag, port in ports.named().items():
        if port in seen and port != 0:
            raise UnavailableError(f"{flag} {port}: the same port as {seen[port]}")
        seen[port] = flag
        if port != 0 and not port_free(port):
            raise UnavailableError(f"port {port} on {HOST} ({flag}) is already in use; "
                                   f"choose another with {flag}")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.state = config.state
        self.store = ObjectStore()
        self.routes = RouteTable()
        self.metrics = RequestMetrics()
        self.http = HttpIngress(self.routes, self.metrics)
        self.grpc = GrpcIngress(self.routes, self.metrics)
        self.metrics_server = MetricsServer(self.metrics)
        self.api: KubeApiServer | None = None
        self.jobs: JobController | None = None
        self.prometheus: prometheus.Prometheus | None = None
        self.runner = RevisionRunner(config.kserve_python, self.state.logs)
        self.controller = Controller(self.store, self.runner, self.routes, self.snapshot)
        self.phase = "starting"
        self.error = ""
        self.started = now()

    async def start(self) -> None:
        ports = self.config.ports
        await self.http.start(HOST, ports.http)
        await self.grpc.start(HOST, ports.grpc)
        await self.metrics_server.start(HOST, ports.metrics)
        token = self.state.token()
        self.api = KubeApiServer(self.store, token)
        await self.api.start(HOST, ports.api)
        write_kubeconfig(self.state.kubeconfig, self.api.url, token)
        # Jobs and CronJobs (`canarist k launch`) run as local processes against this API.
        self.jobs = JobController(self.store, api_url=self.api.url, admin_token=token,
                                  state_dir=self.state.path, pod_logs=self.api.pod_logs,
                                  issue_token=self.api.issue_token,
                                  revoke_token=self.api.revoke_token)
        self.jobs.start()
        # The sandbox's own servers bind port 0 themselves; Prometheus needs a number.
        self.prometheus = await prometheus.start(
            self.config.prometheus_binary, self.state.path, ports.prometheus or free_port(HOST),
            f"{HOST}:{self.metrics_server.port}")
        # Experiments the sandbox runs (Jobs, CronJobs) query this Prometheus by default, so
        # the tutorial's values work here unchanged.
        os.environ["CANARIST_PROMETHEUS_URL"] = f"{self.prometheus.url}/api/v1/query"
        self.controller.start()
        self.phase = "ready"
        self.snapshot()

    async def stop(self) -> None:
        self.phase = "stopping"
        self.snapshot()
        started = time.monotonic()
        if self.jobs is not None:
            await asyncio.to_thread(self.jobs.stop)
        stops = [self.controller.stop()]
        if self.prometheus is not None:
            stops.append(self.prometheus.stop())
        await asyncio.gather(*stops, return_exceptions=True)
        await gather_stop(*(p for p in (self.api, self.http, self.grpc, self.metrics_server)
                            if p is not None))
        log.info("sandbox stopped in %.1fs", time.monotonic() - started)

    def ports(self) -> dict[str, int]:
        """The ports in use, by part (those not listening yet are left out)."""
        bound = {"http": self.http.port, "grpc": self.grpc.port,
                 "metrics": self.metrics_server.port,
                 "prometheus": self.prometheus.port if self.prometheus is not None else 0,
                 "api": self.api.port if self.api is not None else 0}
        return {part: port for part, port in bound.items() if port}

    def endpoints(self) -> dict[str, str]:
        out = {"http": f"{HOST}:{self.http.port}", "grpc": f"{HOST}:{self.grpc.port}",
               "metrics": f"http://{HOST}:{self.metrics_server.port}/metrics"}
        if self.api is not None and self.api.port:
            out["api"] = self.api.url
        if self.prometheus is not None:
            out["prometheus"] = self.prometheus.url
        return out

    def snapshot(self) -> None:
        """Write state.json: what `canarist sandbox status` shows."""
        processes: list[dict[str, Any]] = [
            {"role": "supervisor", "pid": os.getpid()}]
        if self.prometheus is not None:
            processes.append({"role": "prometheus", "pid": self.prometheus.pid,
                              "port": self.prometheus.port, "log": str(self.prometheus.log_path)})
        for info in self.controller.process_table():
            processes.append({"role": "model-server", **asdict(info)})
        services = []
        for obj in self.store.list(ISVC_KEY):
            status = obj.get("status") or {}
            ready: dict[str, Any] = next(
                (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
            predictor = (status.get("components") or {}).get("predictor") or {}
            known = self.controller.services.get((obj["metadata"]["namespace"],
                                                  obj["metadata"]["name"]))
            services.append({
                "namespace": obj["metadata"]["namespace"], "name": obj["metadata"]["name"],
                "url": status.get("url", ""), "ready": ready.get("status", "Unknown"),
                "reason": ready.get("reason", ""), "message": ready.get("message", ""),
                "traffic": predictor.get("traffic") or [],
                "latestRolledoutRevision": predictor.get("latestRolledoutRevision", ""),
                "revisions": [{"name": r.name, "state": r.state, "storageUri": r.model.storage_uri,
                               "reason": r.reason, "message": r.message,
                               "faults": {"addedLatencyMs": r.faults.added_latency_ms,
                                          "errorRate": r.faults.error_rate}}
                              for r in (known.revisions if known else [])],
            })
        self.state.write({
            "pid": os.getpid(), "phase": self.phase, "error": self.error, "started": self.started,
            "dir": str(self.state.path), "endpoints": self.endpoints(), "ports": self.ports(),
            "kubeconfig": str(self.state.kubeconfig), "processes": processes, "services": services,
        })


async def _serve(config: Config, on_ready: Callable[[dict[str, Any]], None] | None) -> int:
    supervisor = Supervisor(config)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    code = 0
    try:
        try:
            await supervisor.start()
        except CanaristError as exc:
            supervisor.phase, supervisor.error, code = "failed", exc.message, 3
        except OSError as exc:
            supervisor.phase, supervisor.error, code = "failed", f"cannot start: {exc}", 3
        log.info("sandbox %s in %s", supervisor.phase, config.state.path)
        supervisor.snapshot()
        if code == 0:
            if on_ready is not None:
                on_ready(config.state.read() or {})
            await stopping.wait()
    finally:
        await supervisor.stop()
        if code == 0:
            with contextlib.suppress(OSError):
                config.state.state_file.unlink()
        else:
            supervisor.phase = "failed"
            supervisor.snapshot()
    return code


def run(config: Config, on_ready: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Run the sandbox until SIGTERM/SIGINT; the caller must hold the state directory's lock.

    `on_ready` gets the state (endpoints, processes) once everything answers. Returns 0, or
    3 when the sandbox could not start (the reason is in state.json's `error`).
    """
    config.state.create()
    return asyncio.run(_serve(config, on_ready))
