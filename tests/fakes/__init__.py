"""Fakes shared by the tests: a Kubernetes API server in memory, and an experiment store in memory
(here); an HTTP transport that answers from a script (`tests.fakes.http`); a clock whose time
moves only when something sleeps (`tests.fakes.clock`).

`tests/conftest.py` loads this module as a plugin, so its fixtures (`kube_api`, `kubeconfig`)
are there for every test; the classes and functions are imported from here.

The Kubernetes API is the sandbox's own (`canarist.sandbox.kubeapi`): the real HTTP protocol
over an `ObjectStore` in memory, on a free port of 127.0.0.1, checked elsewhere against the
official client and kubectl (tests/sandbox/test_kubeapi.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canarist.core.experiment import Experiment, experiment_to_data, parse_experiment
from canarist.sandbox.kubeapi import RunningApi, serve_api
from canarist.sandbox.kubeconfig import write_kubeconfig
from canarist.sandbox.store import ObjectStore

KUBE_TOKEN = "fake-kube-token"


def fake_kube_api(store: ObjectStore | None = None, *, token: str = KUBE_TOKEN,
                  history: int = 10_000) -> RunningApi:
    """Serve `store` (a new empty one by default) on a free port; use the handle in a `with`.

    Every request needs `Authorization: Bearer <token>`; a watch can resume from the last
    `history` events.
    """
    return serve_api(store if store is not None else ObjectStore(), token=token, history=history)


def kubeconfig_for(api: RunningApi, path: Path, *, token: str = KUBE_TOKEN,
                   namespace: str = "default") -> Path:
    """Write a kubeconfig at `path` that reaches `api` with `token` in `namespace`."""
    return write_kubeconfig(path, api.url, token, namespace=namespace)


@pytest.fixture
def kube_api() -> Iterator[RunningApi]:
    """A fresh, empty Kubernetes API for one test (its `store` is the `ObjectStore` behind it)."""
    with fake_kube_api() as running:
        yield running


@pytest.fixture
def kubeconfig(kube_api: RunningApi, tmp_path: Path) -> Path:
    """A kubeconfig for `kube_api` as its admin, namespace `default`."""
    return kubeconfig_for(kube_api, tmp_path / "kubeconfig")


class MemoryStore:
    """An experiment store in memory (runners.engine.ExperimentStore).

    Each write is kept as the data a real store would write, so what is written must be
    writable (`experiment_to_data` refuses what YAML or Iter8 cannot hold); `read` gives the
    last write back, or the experiment the store was made with.
    """

    def __init__(self, experiment: Experiment | None = None) -> None:
        self.initial = experiment
        self.written: list[dict[str, Any]] = []

    @property
    def writes(self) -> int:
        return len(self.written)

    def read(self) -> Experiment:
        if self.written:
            return parse_experiment(self.written[-1], source="memory")
        if self.initial is None:
            raise AssertionError("read before any write from a store made without an experiment")
        return self.initial

    def write(self, experiment: Experiment) -> None:
        self.written.append(experiment_to_data(experiment))

    def progress(self) -> list[tuple[int, int, bool]]:
        """(loops, completed tasks, failure) as each write left them."""
        results = [data["result"] for data in self.written]  # a run writes its result
        return [(r["numLoops"], r["numCompletedTasks"], r["failure"]) for r in results]
