"""Local experiments: render values into `experiment.yaml` in a run directory, and run it."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from canarist.core.experiment import Experiment
from canarist.runners.conditions import assert_conditions
from canarist.runners.engine import RunSettings, experiment_from_values, run_experiment
from canarist.stores.file import FileStore
from canarist.tasks.registry import TASKS

log = logging.getLogger("canarist")


def launch(values: dict[str, Any], run_dir: Path, *, dry: bool, settings: RunSettings) -> Experiment:
    """Render and check the experiment (nothing is written if any part is invalid), write
    it into `run_dir`, and run it unless `dry`."""
    experiment = experiment_from_values(values, TASKS, now=datetime.now(UTC), base_dir=run_dir)
    store = FileStore(run_dir)
    # Held from the write to the end of the run: a run already going in this directory
    # would otherwise overwrite the new experiment with its own.
    with store.lock(create=True):
        store.write(experiment)
        log.info("created experiment.yaml file")
        if dry:
            log.info("dry run complete")
            return experiment
        log.info("starting local experiment")
        return _run_locked(store, reuse_result=False, settings=settings)


def run(run_dir: Path, *, reuse_result: bool, settings: RunSettings) -> Experiment:
    """One loop of the experiment in `run_dir`, holding the directory's lock throughout:
    a second run at the same time is refused (exit 3), so no loop's result is lost."""
    store = FileStore(run_dir)
    with store.lock():
        return _run_locked(store, reuse_result=reuse_result, settings=settings)


def _run_locked(store: FileStore, *, reuse_result: bool, settings: RunSettings) -> Experiment:
    experiment = store.read()
    return asyncio.run(run_experiment(experiment, store, TASKS, settings, reuse_result=reuse_result))


__all__ = ["assert_conditions", "launch", "run"]
