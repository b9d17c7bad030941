"""Model-server processes: one per running revision, started, probed and stopped here."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from canarist.backends.clock import poll_async
from canarist.sandbox.isvc_manifest import MODEL_URIS, Faults
from canarist.sandbox.processes import stop

SCRIPT = Path(__file__).resolve().with_name("modelserver.py")
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0
PROBE_INTERVAL_S = 0.25
PROBE_TIMEOUT_S = 1.0
LOG_TAIL_LINES = 8


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


@dataclass
class RevisionProcess:
    revision: str
    namespace: str
    model_name: str
    storage_uri: str
    http_port: int
    grpc_port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    ready: bool = False

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def failure(self) -> str:
        """Why the process is not serving, with the last lines of its log."""
        code = self.process.poll()
        what = f"the model server exited with code {code}" if code is not None else (
            f"the model server was not ready within {START_TIMEOUT_S:g}s")
        lines = tail(self.log_path)
        return f"{what}; last log lines: {lines}" if lines else what


class RevisionRunner:
    """Starts model servers with the kserve interpreter; logs go to `logs_dir`."""

    def __init__(self, python: str, logs_dir: Path) -> None:
        self.python = python
        self.logs_dir = logs_dir
        self._session: aiohttp.ClientSession | None = None

    def start(self, namespace: str, revision: str, model_name: str, storage_uri: str,
              faults: Faults | None = None) -> RevisionProcess:
        """Start the model server of one revision, with the faults it injects (if any)."""
        http_port, grpc_port = free_port(), free_port()
        while grpc_port == http_port:
            grpc_port = free_port()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{namespace}_{revision}.log"
        faults = faults or Faults()
        injected = []
        if faults.added_latency_ms:
            injected += ["--added-latency-ms", repr(faults.added_latency_ms)]
        if faults.error_rate:
            injected += ["--error-rate", repr(faults.error_rate)]
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [self.python, str(SCRIPT), "--name", model_name, "--model", MODEL_URIS[storage_uri],
                 "--http-port", str(http_port), "--grpc-port", str(grpc_port), *injected],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.logs_dir, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return RevisionProcess(revision, namespace, model_name, storage_uri, http_port, grpc_port,
                               log_path, process)

    async def probe(self, proc: RevisionProcess) -> bool:
        """True once V2 model readiness answers and the gRPC port accepts connections."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S))
        url = f"http://127.0.0.1:{proc.http_port}/v2/models/{proc.model_name}/ready"
        try:
            async with self._session.get(url) as response:
                if response.status != 200 or not (await response.json()).get("ready"):
                    return False
            _, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", proc.grpc_port), PROBE_TIMEOUT_S)
            writer.close()
            await writer.wait_closed()
        except (OSError, TimeoutError, aiohttp.ClientError, ValueError):
            return False
        return True

    async def wait_ready(self, proc: RevisionProcess) -> bool:
        """Probe until ready (True), or until the process dies or the start timeout passes."""
        async def attempt() -> bool | None:  # None: not yet
            if not proc.alive():
                return False
            return True if await self.probe(proc) else None

        ready = await poll_async(attempt, done=lambda found: found is not None,
                                 timeout_s=START_TIMEOUT_S - (time.monotonic() - proc.started),
                                 interval_s=PROBE_INTERVAL_S)
        if ready is True:
            proc.ready = True
        return ready is True

    async def stop(self, proc: RevisionProcess) -> None:
        await stop_process(proc.process)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def stop_process(process: subprocess.Popen[bytes], grace_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; reaps the process (in a thread: the event loop
    runs meanwhile)."""
    await asyncio.to_thread(stop, process.pid, exited=lambda: process.poll() is not None,
                            grace_s=grace_s)
