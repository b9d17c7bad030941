"""The engine: runs an experiment's tasks in order and persists after every step.

It owns ordering, `if` conditions, per-task timeouts, failure and loops; tasks own nothing
but their work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from canarist.core.durations import parse_duration
from canarist.core.errors import (
    CanaristError,
    ExperimentFailed,
    InputError,
    SpecError,
    TaskError,
    UnavailableError,
)
from canarist.core.experiment import Experiment, FailedTask, TaskEntry, new_result
from canarist.core.expressions import Expression, compile_expression
from canarist.tasks.base import ProgressSink, TaskContext, TaskDefinition, TaskInputs

log = logging.getLogger("canarist")


class ExperimentStore(Protocol):
    def read(self) -> Experiment: ...

    def write(self, experiment: Experiment) -> None: ...


@dataclass(frozen=True)
class PreparedTask:
    number: int
    entry: TaskEntry
    definition: TaskDefinition[Any]
    inputs: TaskInputs
    condition: Expression | None
    timeout_s: float | None


@dataclass(frozen=True)
class RunSettings:
    run_dir: Path
    namespace: str = "default"
    kubeconfig: str | None = None
    kube_context: str | None = None
    progress: Callable[[], ProgressSink] | None = None
    """Makes a progress sink per task (a terminal status line); None: throttled log lines."""


def prepare(spec: list[TaskEntry], tasks: Mapping[str, TaskDefinition[Any]]) -> list[PreparedTask]:
    """Validate every task's inputs, condition and timeout; report all problems at once."""
    problems: list[str] = []
    prepared: list[PreparedTask] = []
    for index, entry in enumerate(spec):
        where = f"spec[{index}]"
        definition = tasks.get("run" if entry.run is not None else str(entry.task))
        if definition is None:
            problems.append(f"{where}.task: unknown task: {entry.task}; expected one of "
                            + ", ".join(sorted(n for n in tasks if n != "run")))
            continue
        raw = {"script": entry.run} if entry.run is not None else entry.with_
        try:
            inputs = definition.inputs.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_validation_lines(exc, f"{where}.with" if entry.run is None else where))
            continue
        condition = None
        timeout_s = None
        try:
            if entry.if_ is not None:
                condition = compile_expression(entry.if_)
            if entry.timeout is not None:
                timeout_s = parse_duration(entry.timeout, field=f"{where}.timeout")
        except InputError as exc:
            problems.append(f"{where}: {exc.message}" if not exc.message.startswith(where)
                            else exc.message)
            continue
        prepared.append(PreparedTask(index + 1, entry, definition, inputs, condition, timeout_s))
    if problems:
        raise SpecError(problems[0] if len(problems) == 1 else
                        f"{len(problems)} problems in the experiment: " + "; ".join(problems),
                        problems)
    return prepared


def _validation_lines(exc: ValidationError, where: str) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif message.startswith("Value error, "):
            message = message[len("Value error, "):]
        lines.append(f"{where}{loc}: {message}")
    return lines


def condition_env(experiment: Experiment) -> dict[str, object]:
    """The names `if` expressions can use, spelled as in Go (Iter8's expr environment)."""
    result = experiment.result
    insights = result.insights if result else None
    result_env: dict[str, object] = {}
    if result is not None:
        result_env = {
            "StartTime": result.start_time.isoformat(),
            "NumLoops": result.num_loops,
            "NumCompletedTasks": result.num_completed_tasks,
            "Failure": result.failure,
            "Iter8Version": result.iter8_version,
            "Revision": result.revision or 0,
            "Insights": None if insights is None else {
                "NumVersions": insights.num_versions,
                "MetricsInfo": {k: v.model_dump(by_alias=True) for k, v in
                                insights.metrics_info.items()},
                "NonHistMetricValues": insights.non_hist_metric_values,
            },
        }
    return {
        "Result": result_env,
        "Spec": [entry.model_dump(by_alias=True, exclude_none=True) for entry in experiment.spec],
        "SLOs": experiment.slos,
        "Completed": experiment.completed,
        "NoFailure": experiment.no_failure,
    }


async def run_experiment(
    experiment: Experiment,
    store: ExperimentStore,
    tasks: Mapping[str, TaskDefinition[Any]],
    settings: RunSettings,
    *,
    reuse_result: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Experiment:
    """Run one loop of the experiment. Raises ExperimentFailed (or a subclass) if a task fails."""
    prepared = prepare(experiment.spec, tasks)
    if not reuse_result or experiment.result is None:
        previous = experiment.result
        experiment.result = new_result(
            now=now(), iter8_version=previous.iter8_version if previous else "v0.13"
        )
    result = experiment.result
    result.num_loops += 1
    result.num_completed_tasks = 0
    # Each loop reports its own outcome: a failure in an earlier loop does not stick.
    result.failure = False
    result.failed_task = None
    store.write(experiment)

    for task in prepared:
        prefix = f"task {task.number}: {task.entry.name}"
        log.info("%s: started", prefix)
        if task.condition is not None:
            try:
                should_run = task.condition.evaluate_bool(condition_env(experiment))
            except CanaristError as exc:
                _fail(experiment, store, task, exc.message)
                raise ExperimentFailed(f"{prefix}: {exc.message}") from None
            if not should_run:
                log.info("%s: skipped (false condition: %s)", prefix, task.entry.if_)
                result.num_completed_tasks += 1
                store.write(experiment)
                continue
        ctx = TaskContext(experiment=experiment, number=task.number, name=task.entry.name,
                          run_dir=settings.run_dir, namespace=settings.namespace,
                          kubeconfig=settings.kubeconfig, kube_context=settings.kube_context)
        if settings.progress is not None:
            ctx.progress = settings.progress()
        try:
            try:
                await _run_with_timeout(task, ctx)
            finally:
                ctx.progress.close()
        except CanaristError as exc:
            _fail(experiment, store, task, exc.message)
            failure = TaskError(f"{prefix}: {exc.message}")
            # A task that could not reach what it needs is "could not evaluate" (exit 3).
            failure.exit_code = 3 if isinstance(exc, UnavailableError) else 1
            raise failure from None
        except Exception as exc:  # a bug in a task must still leave a readable, failed result
            log.debug("%s: internal error", prefix, exc_info=True)
            _fail(experiment, store, task, f"internal error: {type(exc).__name__}: {exc}")
            raise TaskError(f"{prefix}: internal error: {type(exc).__name__}: {exc}") from None
        log.info("%s: completed", prefix)
        result.num_completed_tasks += 1
        store.write(experiment)
    return experiment


async def _run_with_timeout(task: PreparedTask, ctx: TaskContext) -> None:
    if task.timeout_s is None:
        await task.definition.run(task.inputs, ctx)
        return
    try:
        async with asyncio.timeout(task.timeout_s):
            await task.definition.run(task.inputs, ctx)
    except TimeoutError:
        raise TaskError(f"timed out after {task.entry.timeout}") from None


def _fail(experiment: Experiment, store: ExperimentStore, task: PreparedTask, reason: str) -> None:
    log.error("task %d: %s: failure: %s", task.number, task.entry.name, reason)
    assert experiment.result is not None
    experiment.result.failure = True
    experiment.result.failed_task = FailedTask(number=task.number, name=task.entry.name,
                                               reason=reason)
    store.write(experiment)
