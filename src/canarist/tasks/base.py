"""What every task gets: its validated inputs and a context to write results through."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

from canarist.backends.bounded import Deadline
from canarist.core.chart import CHART_ONLY_KEYS
from canarist.core.experiment import Experiment, Result
from canarist.core.metrics import MetricCatalog
from canarist.core.validation import Location, fold_keys

log = logging.getLogger("canarist")



class TaskInputs(BaseModel):
    """Base of task input models: unknown keys are errors (typos fail before anything runs).

    Keys match case-insensitively, as Go's JSON decoding did, and the keys Iter8's chart
    left behind are tolerated.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    tolerated_keys: ClassVar[frozenset[str]] = CHART_ONLY_KEYS

    @model_validator(mode="before")
    @classmethod
    def _fold_and_drop_chart_keys(cls, data: Any) -> Any:
        return fold_keys(data, cls, drop=cls.tolerated_keys)


class ProgressSink(Protocol):
    """Where a long task reports how it is doing, one short line at a time."""

    def __call__(self, line: str) -> None: ...

    def close(self) -> None: ...


class ThrottledProgress:
    """Progress as plain log lines, at most one every `interval_s` (for pipes and CI)."""

    def __init__(self, interval_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self._last = 0.0

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            log.info(line)

    def close(self) -> None:
        """Nothing to tidy up for log lines."""


@dataclass
class TaskContext:
    """The running experiment and the environment a task runs in."""

    experiment: Experiment
    number: int
    name: str
    run_dir: Path
    namespace: str = "default"
    kubeconfig: str | None = None
    kube_context: str | None = None
    progress: ProgressSink = field(default_factory=ThrottledProgress)
    checkpoint: Callable[[], None] = lambda: None
    """Writes the result now: a task that changes the world records its intent first."""
    deadline: Deadline | None = None
    """When the task's `timeout` passes: what bounds evaluations (jq, templates) it runs."""

    @property
    def result(self) -> Result:
        assert self.experiment.result is not None, "the engine creates the result first"
        return self.experiment.result

    def log_prefix(self) -> str:
        return f"task {self.number}: {self.name}"


InputsT = TypeVar("InputsT", bound=TaskInputs)


@dataclass(frozen=True)
class TaskCheck:
    """What a task can tell before it runs: the metrics it will record, and problems with
    its inputs that only a look at files or templates reveals (each at a location in `with`)."""

    metrics: MetricCatalog = field(default_factory=MetricCatalog)
    problems: list[tuple[Location, str]] = field(default_factory=list)


@dataclass(frozen=True)
class TaskDefinition(Generic[InputsT]):
    """A task: its name, its input model, the coroutine that runs it, and an optional check
    run before anything runs (`base_dir` is where relative paths in the inputs start)."""

    name: str
    inputs: type[InputsT]
    run: Callable[[InputsT, TaskContext], Awaitable[None]]
    check: Callable[[InputsT, Path], TaskCheck] | None = None
