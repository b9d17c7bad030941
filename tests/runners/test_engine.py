"""The engine: order, conditions, failure, loops, timeouts, and persistence after every step."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import MemoryStore

from canarist.core.errors import SpecError, TaskError, UnavailableError
from canarist.core.experiment import Experiment, MetricMeta, MetricType, TaskEntry
from canarist.core.insights import add_value, ensure_insights, register_metric
from canarist.core.metrics import MetricCatalog
from canarist.runners.engine import RunSettings, prepare, run_experiment
from canarist.tasks.base import TaskCheck, TaskContext, TaskDefinition, TaskInputs
from canarist.tasks.registry import TASKS


class NoteInputs(TaskInputs):
    label: str = ""
    fail: str = ""
    unavailable: bool = False
    sleep: float = 0.0
    crash: bool = False
    value: float | None = None


ran: list[str] = []


async def _note(inputs: NoteInputs, ctx: TaskContext) -> None:
    ran.append(inputs.label)
    if inputs.sleep:
        await asyncio.sleep(inputs.sleep)
    if inputs.crash:
        raise ZeroDivisionError("boom")
    if inputs.unavailable:
        raise UnavailableError("backend unreachable")
    if inputs.fail:
        raise TaskError(inputs.fail)
    if inputs.value is not None:
        insights = ensure_insights(ctx.result, 1)
        register_metric(insights, "t/value", MetricMeta(type=MetricType.GAUGE))
        add_value(insights, 0, "t/value", inputs.value)


def _note_records(inputs: NoteInputs, base_dir: Path) -> TaskCheck:
    return TaskCheck(MetricCatalog(frozenset({"t/value"} if inputs.value is not None else set())))


REGISTRY: dict[str, TaskDefinition[Any]] = {
    **TASKS, "note": TaskDefinition(name="note", inputs=NoteInputs, run=_note, check=_note_records)
}


def experiment(*entries: dict[str, Any]) -> Experiment:
    return Experiment.model_validate({"spec": list(entries)})


def run(exp: Experiment, store: MemoryStore | None = None, **kwargs: Any) -> Experiment:
    ran.clear()
    return asyncio.run(run_experiment(exp, store or MemoryStore(), REGISTRY,
                                      RunSettings(run_dir=Path(".")), **kwargs))


def test_tasks_run_in_order_and_every_step_is_written() -> None:
    store = MemoryStore()
    exp = run(experiment({"task": "note", "with": {"label": "a"}},
                         {"task": "note", "with": {"label": "b"}}), store)
    assert ran == ["a", "b"]
    assert store.progress() == [(1, 0, False), (1, 1, False), (1, 2, False)]
    assert exp.completed() and exp.no_failure()


def test_false_condition_skips_but_counts_as_completed() -> None:
    exp = run(experiment({"task": "note", "with": {"label": "a"}, "if": "Result.NumLoops > 1"},
                         {"task": "note", "with": {"label": "b"}, "if": "Result.NumLoops == 1"}))
    assert ran == ["b"]
    assert exp.completed()


def test_conditions_see_slos() -> None:
    exp = run(experiment(
        {"task": "note", "with": {"label": "measure", "value": 5}},
        {"task": "assess", "with": {"SLOs": {"upper": [{"metric": "t/value", "limit": 4}]}}},
        {"task": "note", "with": {"label": "good"}, "if": "SLOs()"},
        {"task": "note", "with": {"label": "bad"}, "if": "not SLOs()"},
    ))
    assert ran == ["measure", "bad"]
    assert exp.completed()


def test_first_failure_stops_the_run_and_is_recorded() -> None:
    store = MemoryStore()
    with pytest.raises(TaskError) as caught:
        run(experiment({"task": "note", "with": {"label": "a"}},
                       {"task": "note", "with": {"label": "b", "fail": "target said no"}},
                       {"task": "note", "with": {"label": "c"}}), store)
    assert caught.value.exit_code == 1
    assert str(caught.value) == "task 2: note: target said no"
    assert ran == ["a", "b"]
    assert store.progress()[-1] == (1, 1, True)


def test_an_unreachable_backend_is_exit_code_3() -> None:
    exp = experiment({"task": "note", "with": {"unavailable": True}})
    with pytest.raises(TaskError) as caught:
        run(exp)
    assert caught.value.exit_code == 3
    assert exp.result is not None and exp.result.failed_task is not None
    assert exp.result.failed_task.reason == "backend unreachable"


def test_a_crashing_task_still_leaves_a_failed_result() -> None:
    exp = experiment({"task": "note", "with": {"crash": True}})
    with pytest.raises(TaskError, match="internal error: ZeroDivisionError: boom"):
        run(exp)
    assert exp.result is not None and exp.result.failure


def test_per_task_timeout() -> None:
    exp = experiment({"task": "note", "with": {"sleep": 5}, "timeout": "1s"})
    with pytest.raises(TaskError, match="timed out after 1s"):
        run(exp)


@pytest.mark.parametrize("timeout", ["0", "0s", "-5s", "1ns", "999ms"])
def test_a_task_timeout_below_a_second_is_refused_before_anything_runs(timeout: str) -> None:
    spec = [TaskEntry.model_validate({"task": "note", "timeout": timeout})]
    with pytest.raises(SpecError) as caught:
        prepare(spec, REGISTRY)
    assert caught.value.problems == [
        f'spec[0].timeout: expected a task timeout of at least 1s (the whole task must fit in '
        f'it), got "{timeout}"']


def test_loops_accumulate_with_reuse_result() -> None:
    exp = experiment({"task": "note", "with": {"value": 1}})
    run(exp)
    assert exp.result is not None
    start = exp.result.start_time
    exp.spec[0].with_["value"] = 2
    run(exp, reuse_result=True)
    assert exp.result.num_loops == 2
    assert exp.result.start_time == start
    assert exp.result.insights is not None
    assert exp.result.insights.non_hist_metric_values[0]["t/value"] == [1.0, 2.0]


def test_without_reuse_result_the_result_is_fresh() -> None:
    exp = experiment({"task": "note", "with": {"value": 1}})
    run(exp, now=lambda: datetime(2024, 1, 1, tzinfo=UTC))
    run(exp, now=lambda: datetime(2024, 1, 2, tzinfo=UTC))
    assert exp.result is not None
    assert exp.result.num_loops == 1
    assert exp.result.start_time == datetime(2024, 1, 2, tzinfo=UTC)
    assert exp.result.insights is not None
    assert exp.result.insights.non_hist_metric_values[0]["t/value"] == [1.0]


def test_a_later_loop_clears_an_earlier_failure() -> None:
    exp = experiment({"task": "note", "with": {"fail": "once"}})
    with pytest.raises(TaskError):
        run(exp)
    exp.spec[0].with_["fail"] = ""
    run(exp, reuse_result=True)
    assert exp.result is not None and exp.no_failure() and exp.result.failed_task is None


def test_all_spec_problems_are_reported_at_once() -> None:
    spec = [
        TaskEntry.model_validate({"task": "nope"}),
        TaskEntry.model_validate({"task": "note", "with": {"lable": "typo"}}),
        TaskEntry.model_validate({"task": "note", "if": "Result.NumLoops =="}),
        TaskEntry.model_validate({"task": "note", "timeout": "soon"}),
        TaskEntry.model_validate({"task": "assess", "with": {"SLOs": {"upper": [
            {"metric": "latency", "limit": 1}]}}}),
    ]
    with pytest.raises(SpecError) as caught:
        prepare(spec, REGISTRY)
    problems = caught.value.problems
    assert len(problems) == 5
    assert problems[0] == 'spec[0].task: unknown task "nope"; did you mean note?'
    assert problems[1] == 'spec[1].with.lable: unknown key "lable"; did you mean label?'
    assert problems[2].startswith("spec[2].if: ")
    assert problems[3] == ('spec[3].timeout: expected a Go duration such as 30s, 1m30s or 500ms, '
                           'got "soon"')
    assert problems[4].startswith("spec[4].with.SLOs.upper[0].metric: invalid metric name")


def test_iter8_chart_keys_are_tolerated_and_keys_match_case_insensitively() -> None:
    spec = [TaskEntry.model_validate({"task": "note", "with": {"LABEL": "x", "payloadURL": "u"}})]
    [prepared] = prepare(spec, REGISTRY)
    assert prepared.inputs.label == "x"  # type: ignore[attr-defined]


def test_run_task_runs_bash_in_the_run_dir(tmp_path: Path) -> None:
    exp = experiment({"run": 'echo "$TEMP_DIR" > where.txt; pwd >> where.txt'},
                     {"run": "exit 3"})
    with pytest.raises(TaskError, match="task 2: run: script exited with status 3"):
        ran.clear()
        asyncio.run(run_experiment(exp, MemoryStore(), REGISTRY, RunSettings(run_dir=tmp_path)))
    lines = (tmp_path / "where.txt").read_text().splitlines()
    assert lines[0]
    assert Path(lines[1]).resolve() == tmp_path.resolve()
