"""The task registry: every task canarist can run, by name. The only module importing them all."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from canarist.tasks import (
    agreement,
    assess,
    custommetrics,
    grpc,
    http,
    kserve,
    notify,
    ready,
    rollout,
    run,
)
from canarist.tasks.base import TaskDefinition

TASKS: Mapping[str, TaskDefinition[Any]] = MappingProxyType(
    {definition.name: definition
     for definition in (agreement.TASK, assess.TASK, custommetrics.TASK, grpc.TASK, http.TASK,
                        kserve.TASK, notify.TASK, ready.TASK, rollout.TASK, run.TASK)}
)
