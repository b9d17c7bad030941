"""The engine: runs an experiment's tasks in order and persists after every step.

It owns ordering, `if` conditions, per-task timeouts, failure and loops; tasks own nothing
but their work.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from canarist.backends.bounded import Deadline
from canarist.core.chart import render_chart
from canarist.core.durations import duration_problem, parse_duration
from canarist.core.errors import (
    CanaristError,
    ExperimentFailed,
    InputError,
    SpecError,
    TaskError,
)
from canarist.core.experiment import Experiment, FailedTask, TaskEntry, new_result, parse_experiment
from canarist.core.expressions import Expression, compile_expression
from canarist.core.judge import evidence_needed
from canarist.core.limits import MAX_PROBLEMS_SHOWN
from canarist.core.metrics import MetricCatalog
from canarist.core.redact import redact_text
from canarist.core.validation import Location, ValuesKeys, closest, show_value, spell_key
from canarist.core.validation import problems as validation_problems
from canarist.tasks.base import ProgressSink, TaskCheck, TaskContext, TaskDefinition, TaskInputs

log = logging.getLogger("canarist")

MIN_TASK_TIMEOUT_S = 1.0
"""The shortest `timeout` an entry may have: every task does I/O (a load test, a query, a
script), and none completes reliably in less; a smaller value is a unit typo (ms for m)."""


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


def prepare(
    spec: list[TaskEntry],
    tasks: Mapping[str, TaskDefinition[Any]],
    *,
    keys: Sequence[ValuesKeys | None] | None = None,
    base_dir: Path | None = None,
) -> list[PreparedTask]:
    """Validate every task's inputs, condition and timeout, and check that every metric an
    SLO names will be recorded; report all problems at once.

    `keys` (one per spec entry, from `render_chart`) spell each problem at the values key
    the user typed (`http.duration`); without them, at the entry's path in the file
    (`spec[0].with.duration`). `base_dir` is where relative paths in inputs start; with
    it, tasks also look at their files and templates (`TaskDefinition.check`).
    """
    problems: list[str] = []
    prepared: list[PreparedTask] = []
    checks: list[TaskCheck] = []

    def key(index: int, loc: Location, *, in_with: bool = True) -> str:
        mapping = keys[index] if keys is not None and index < len(keys) else None
        if mapping is not None:
            return mapping.key(loc)
        return spell_key(f"spec[{index}].with" if in_with else f"spec[{index}]", loc)

    for index, entry in enumerate(spec):
        definition = tasks.get("run" if entry.run is not None else str(entry.task))
        if definition is None:
            known = sorted(n for n in tasks if n != "run")
            # a suggestion is worked out only for problems that will be shown
            guess = closest(str(entry.task), known) if len(problems) < MAX_PROBLEMS_SHOWN else None
            problems.append(f"{key(index, ('task',), in_with=False)}: unknown task "
                            f"{show_value(entry.task)}; "
                            + (f"did you mean {guess}?" if guess else
                               f"expected one of {', '.join(known)}"))
            continue
        try:
            if entry.run is not None:
                inputs = definition.inputs.model_validate({"script": entry.run})
            else:
                inputs = definition.inputs.model_validate(entry.with_)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, definition.inputs,
                                                functools.partial(key, index)))
            continue
        condition = None
        timeout_s = None
        try:
            if entry.if_ is not None:
                condition = compile_expression(entry.if_)
        except InputError as exc:
            problems.append(f"{key(index, ('if',), in_with=False)}: {exc.message}")
        if entry.timeout is not None:
            problem = duration_problem(entry.timeout)
            if problem is None and parse_duration(entry.timeout, field="") < MIN_TASK_TIMEOUT_S:
                problem = (f"expected a task timeout of at least 1s (the whole task must fit "
                           f"in it), got {show_value(entry.timeout)}")
            if problem is not None:
                problems.append(f"{key(index, ('timeout',), in_with=False)}: {problem}")
            else:
                timeout_s = parse_duration(entry.timeout, field="")
        if definition.check is not None and base_dir is not None:
            check = definition.check(inputs, base_dir)
            problems.extend(f"{key(index, loc)}: {message}" for loc, message in check.problems)
            checks.append(check)
        prepared.append(PreparedTask(index + 1, entry, definition, inputs, condition, timeout_s))
    if base_dir is not None and not problems:
        problems.extend(_unrecorded_slo_metrics(prepared, checks, key))
    if problems:
        raise SpecError.listing(problems, counted="problems in the experiment",
                                most=MAX_PROBLEMS_SHOWN)
    return prepared


def _unrecorded_slo_metrics(prepared: list[PreparedTask], checks: list[TaskCheck],
                            key: Callable[[int, Location], str]) -> list[str]:
    """An SLO on a metric that no task of the experiment records is a typo, found now rather
    than after a whole load test ends in "cannot decide"."""
    catalog = MetricCatalog()
    for check in checks:
        catalog = catalog | check.metrics
    problems: list[str] = []
    for task in prepared:
        if task.entry.task != "assess":
            continue
        for kind in ("SLOs", "relative"):
            objectives = getattr(task.inputs, "slos" if kind == "SLOs" else kind, None)
            for side in ("upper", "lower") if objectives is not None else ():
                for position, objective in enumerate(getattr(objectives, side)):
                    where = key(task.number - 1, (kind, side, position, "metric"))
                    problems.extend(f"{where}: {reason}" for reason in _unrecorded(
                        catalog, objective.metric, relative=kind == "relative"))
    return problems


def _unrecorded(catalog: MetricCatalog, metric: str, *, relative: bool) -> list[str]:
    if not catalog.records(metric):
        return [catalog.unknown_reason(metric)]
    if relative:
        return [f"no task in this experiment records {name}, the data {metric} is judged on"
                for name in evidence_needed(metric) if not catalog.records(name)]
    return []


def experiment_from_values(
    values: Mapping[str, Any],
    tasks: Mapping[str, TaskDefinition[Any]],
    *,
    now: datetime,
    base_dir: Path,
    namespace: str | None = None,
) -> Experiment:
    """Values -> a validated experiment, every problem named by the values key the user
    typed. Raises SpecError (exit 2) listing them all; nothing is written."""
    rendered = render_chart(values, now=now, namespace=namespace)
    experiment = parse_experiment(rendered.data, source="values")
    prepare(experiment.spec, tasks, keys=rendered.keys, base_dir=base_dir)
    return experiment


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
    # Files and templates were checked at launch; a problem found now is recorded as the
    # failure of the task that meets it.
    prepared = prepare(experiment.spec, tasks)
    if not reuse_result or experiment.result is None:
        previous = experiment.result
        experiment.result = new_result(
            now=now(), iter8_version=previous.iter8_version if previous else "v0.13"
        )
        # The names the user gave the versions belong to the experiment, not to one result.
        experiment.result.version_names = previous.version_names if previous else None
        # So does a rollout in progress: its state outlives every loop's measurements.
        experiment.result.rollout = previous.rollout if previous else None
        experiment.result.kserve = previous.kserve if previous else None
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
        if _rollout_ended(experiment) and task.entry.task not in ROLLOUT_TASKS:
            # the decision is made: measuring on would only judge a split nobody serves
            log.info("%s: skipped (the rollout is %s; later loops only report)", prefix,
                     result.rollout.state if result.rollout else "")
            result.num_completed_tasks += 1
            store.write(experiment)
            continue
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
                          kubeconfig=settings.kubeconfig, kube_context=settings.kube_context,
                          checkpoint=functools.partial(store.write, experiment),
                          deadline=None if task.timeout_s is None else
                          Deadline(time.monotonic() + task.timeout_s, str(task.entry.timeout)))
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
            # The cause keeps its exit code: 1 when the service is at fault, 2 for bad input
            # found only now (a kubeconfig, a file), 3 when something could not be reached.
            failure.exit_code = exc.exit_code
            raise failure from None
        except Exception as exc:  # a bug in a task must still leave a readable, failed result
            log.debug("%s: internal error", prefix, exc_info=True)
            _fail(experiment, store, task, f"internal error: {type(exc).__name__}: {exc}")
            failure = TaskError(f"{prefix}: internal error: {type(exc).__name__}: {exc}")
            failure.exit_code = 3  # a fault of canarist's says nothing about the release
            raise failure from None
        log.info("%s: completed", prefix)
        result.num_completed_tasks += 1
        store.write(experiment)
    return experiment


ROLLOUT_TASKS = frozenset({"kserve", "rollout"})


def _rollout_ended(experiment: Experiment) -> bool:
    result = experiment.result
    return bool(result and result.rollout and result.rollout.ended)


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
                                               reason=redact_text(reason))
    store.write(experiment)
