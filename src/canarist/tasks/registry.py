"""The task registry: every task canarist can run, by name. The only module naming them all.

A task's module is imported when its name is first looked up, so checking or running an
experiment loads only the tasks it uses (an http task does not bring in gRPC, Kubernetes or
the agreement task's clients).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from canarist.tasks.base import TaskDefinition

_MODULES: dict[str, str] = {
    "agreement": "canarist.tasks.agreement",
    "assess": "canarist.tasks.assess",
    "custommetrics": "canarist.tasks.custommetrics",
    "grpc": "canarist.tasks.grpc",
    "http": "canarist.tasks.http",
    "kserve": "canarist.tasks.kserve",
    "notify": "canarist.tasks.notify",
    "ready": "canarist.tasks.ready",
    "rollout": "canarist.tasks.rollout",
    "run": "canarist.tasks.run",
}


class _Registry(Mapping[str, TaskDefinition[Any]]):
    """Task name -> its definition (`TASK` of its module), imported on first lookup."""

    def __init__(self, modules: Mapping[str, str]) -> None:
        self._modules = dict(modules)
        self._loaded: dict[str, TaskDefinition[Any]] = {}

    def __getitem__(self, name: str) -> TaskDefinition[Any]:
        definition = self._loaded.get(name)
        if definition is None:
            definition = importlib.import_module(self._modules[name]).TASK
            assert isinstance(definition, TaskDefinition) and definition.name == name, name
            self._loaded[name] = definition
        return definition

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


TASKS: Mapping[str, TaskDefinition[Any]] = _Registry(_MODULES)
