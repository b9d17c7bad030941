"""`experiment.yaml` in a run directory, written atomically so a killed run never tears it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from canarist.core.errors import InputError, SpecError, UnavailableError
from canarist.core.experiment import Experiment, experiment_to_data, parse_experiment
from canarist.core.yamltext import dump_yaml, load_yaml
from canarist.stores.files import read_text_bounded

EXPERIMENT_FILE = "experiment.yaml"


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
