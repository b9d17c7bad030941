"""`experiment.yaml` in a run directory, written atomically so a killed run never tears it.

A run holds an exclusive lock on `.experiment.yaml.lock` beside it for as long as it runs (and a
launch while it writes): a second `run` or `launch` on the same directory is refused at once
(exit 3) and names the holder, instead of both writing and one losing the other's loop. The
lock is `flock(2)`: the kernel drops it when its holder ends, however it ends, so a killed
run never leaves the directory locked. The file itself stays (removing it would let two
runs hold locks on two different files); it only records the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from canarist.backends.files import read_text_bounded
from canarist.core.errors import InputError, SpecError, UnavailableError
from canarist.core.experiment import Experiment, experiment_to_data, parse_experiment
from canarist.core.yamltext import dump_yaml, load_yaml

EXPERIMENT_FILE = "experiment.yaml"
LOCK_FILE = ".experiment.yaml.lock"


class RunDirLocked(UnavailableError):
    """Another process runs the experiment in this run directory."""


class FileStore:
    """Reads and writes `<run_dir>/experiment.yaml` (mode 0600)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / EXPERIMENT_FILE

    def read(self) -> Experiment:
        try:
            text = read_text_bounded(self.path, name=str(self.path))
        except InputError as exc:  # too large, or not UTF-8
            raise SpecError(exc.message) from None
        except FileNotFoundError:
            raise UnavailableError(f"{self.path}: no experiment file; run `canarist launch` first") from None
        except OSError as exc:
            raise UnavailableError(f"{self.path}: cannot read experiment: {exc}") from None
        data = load_yaml(text, source=str(self.path))
        if data is None:
            raise SpecError(f"{self.path}: the experiment file is empty")
        return parse_experiment(data, source=str(self.path))

    def write(self, experiment: Experiment) -> None:
        write_text_atomically(self.path, dump_yaml(experiment_to_data(experiment)))

    @contextlib.contextmanager
    def lock(self, *, create: bool = False) -> Iterator[None]:
        """Hold the run directory's lock, or raise RunDirLocked naming who holds it.

        Without `create`, a missing run directory is reported as a missing experiment (and
        not created)."""
        directory = self.path.parent
        lock_path = directory / LOCK_FILE
        try:
            if create:
                directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise UnavailableError(
                f"{self.path}: no experiment file; run `canarist launch` first") from None
        except OSError as exc:
            raise UnavailableError(f"{lock_path}: cannot lock the run directory: "
                                   f"{exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                raise RunDirLocked(
                    f"{directory}: another canarist run is using this run directory "
                    f"({holder or 'a process that is starting'}); this one stops without "
                    f"changing it (wait for that run to end, or use another --run-dir)") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()} since "
                          f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}\n".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


def write_text_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    """Write to a temp file in the same directory, fsync, rename over `path`, fsync the dir."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UnavailableError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UnavailableError(f"{path}: cannot write: {exc.strerror or exc}") from None
