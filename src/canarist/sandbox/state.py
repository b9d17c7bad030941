"""The sandbox's state directory (default `~/.canarist/sandbox`).

    lock                  held (flock) by the running supervisor: one sandbox per directory
    state.json            written by the supervisor: phase, endpoints, processes, services
    token                 the API's bearer token (mode 0600)
    kubeconfig            a kubeconfig for the API (mode 0600)
    prometheus.yml        Prometheus' configuration; prometheus-data/ its TSDB
    logs/                 supervisor.log, prometheus.log, <namespace>_<revision>.log
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

DEFAULT_DIR = Path("~/.canarist/sandbox")
STATE = "state.json"
LOCK = "lock"
TOKEN = "token"
KUBECONFIG = "kubeconfig"
LOGS = "logs"


@dataclass(frozen=True)
class StateDir:
    path: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str] | None) -> StateDir:
        return cls(Path(path if path is not None else DEFAULT_DIR).expanduser().resolve())

    @property
    def state_file(self) -> Path:
        return self.path / STATE

    @property
    def logs(self) -> Path:
        return self.path / LOGS

    @property
    def kubeconfig(self) -> Path:
        return self.path / KUBECONFIG

    @property
    def supervisor_log(self) -> Path:
        return self.logs / "supervisor.log"

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)

    def read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write(self, data: dict[str, Any]) -> None:
        temp = self.state_file.with_name(f".{STATE}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(temp, self.state_file)

    def token(self) -> str:
        """The API token, created (mode 0600) on first use."""
        path = self.path / TOKEN
        with contextlib.suppress(OSError):
            text = path.read_text().strip()
            if text:
                return text
        value = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        os.chmod(path, 0o600)
        return value

    def lock(self) -> IO[str] | None:
        """Take the directory's lock (kept while the returned file stays open); None if held."""
        self.create()
        handle = (self.path / LOCK).open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle

    def locked(self) -> bool:
        """Whether a supervisor holds the lock."""
        if not (self.path / LOCK).exists():
            return False
        handle = self.lock()
        if handle is None:
            return True
        handle.close()
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
