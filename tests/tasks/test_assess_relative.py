"""`assess` with relative objectives: values to experiment, the judge over loops, bad input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.fakes import MemoryStore

from canarist.core.errors import CanaristError, SpecError
from canarist.core.experiment import Experiment, HistBucket, MetricMeta, MetricType
from canarist.core.insights import add_histogram, add_value, ensure_insights, register_metric
from canarist.core.metrics import MetricCatalog
from canarist.runners.engine import RunSettings, experiment_from_values, run_experiment
from canarist.tasks.base import TaskCheck, TaskContext, TaskDefinition, TaskInputs
from canarist.tasks.registry import TASKS

EDGES = [float(e) for e in range(201)]


class FeedInputs(TaskInputs):
    """Two versions' requests: version 0 is the candidate, slowed by `slowdown`."""

    requests: int
    slowdown: float = 1.0
    seed: int = 0
    errors: tuple[int, int] = (0, 0)


async def _feed(inputs: FeedInputs, ctx: TaskContext) -> None:
    insights = ensure_insights(ctx.result, 2)
    register_metric(insights, "load/latency", MetricMeta(type=MetricType.HISTOGRAM, units="msec"))
    for name in ("load/request-count", "load/error-count"):
        register_metric(insights, name, MetricMeta(type=MetricType.COUNTER))
    rng = np.random.default_rng(inputs.seed + ctx.result.num_loops)
    for version, (share, slowdown) in enumerate(((1, inputs.slowdown), (9, 1.0))):
        latencies = rng.lognormal(np.log(20), 0.4, share * inputs.requests) * slowdown
        counts, _ = np.histogram(latencies, bins=EDGES)
        add_histogram(insights, version, "load/latency", [
            HistBucket(lower=lo, upper=hi, count=int(n))
            for lo, hi, n in zip(EDGES, EDGES[1:], counts, strict=False) if n])
        add_value(insights, version, "load/request-count", float(share * inputs.requests))
        add_value(insights, version, "load/error-count", float(inputs.errors[version]))


def _feed_records(inputs: FeedInputs, base_dir: Path) -> TaskCheck:
    return TaskCheck(MetricCatalog(frozenset(
        {"load/latency", "load/request-count", "load/error-count", "load/error-rate"}),
        frozenset({"load/latency-p"})))


REGISTRY: dict[str, TaskDefinition[Any]] = {
    **TASKS, "feed": TaskDefinition(name="feed", inputs=FeedInputs, run=_feed, check=_feed_records)}


def experiment(feed: dict[str, Any], assess: dict[str, Any]) -> Experiment:
    return Experiment.model_validate({"spec": [{"task": "feed", "with": feed},
                                               {"task": "assess", "with": assess}]})


def run(exp: Experiment, loops: int = 1) -> Experiment:
    for loop in range(loops):
        asyncio.run(run_experiment(exp, MemoryStore(), REGISTRY, RunSettings(run_dir=Path(".")),
                                   reuse_result=loop > 0))
    return exp


RELATIVE = {"relative": {"upper": [{"metric": "load/latency-p90", "allowance": "20%"},
                                   {"metric": "load/latency-mean", "allowance": "20%"}]},
            "baseline": 1}


def comparisons(exp: Experiment) -> list[tuple[str, str]]:
    assert exp.result is not None and exp.result.insights is not None
    return [(c.metric, c.verdict) for c in exp.result.insights.comparisons]


def test_a_slow_candidate_fails_and_an_unchanged_one_passes() -> None:
    slow = run(experiment({"requests": 800, "slowdown": 1.6}, RELATIVE))
    assert comparisons(slow) == [("load/latency-p90", "fail"), ("load/latency-mean", "fail")]
    same = run(experiment({"requests": 3000}, RELATIVE))
    assert comparisons(same) == [("load/latency-p90", "pass"), ("load/latency-mean", "pass")]
    assert same.result is not None and same.result.insights is not None
    record = same.result.insights.comparisons[0]
    assert (record.candidate, record.baseline, record.direction, record.allowance) == (
        0, 1, "upper", "20%")
    assert record.samples == {"candidate": 3000, "baseline": 27000}
    assert record.interval is not None and record.interval[0] is not None
    assert record.interval[0] < 0 < record.interval[1]  # type: ignore[operator]


def test_thin_data_is_inconclusive_and_looks_narrow_the_interval() -> None:
    exp = run(experiment({"requests": 15, "slowdown": 1.6}, RELATIVE))
    assert comparisons(exp) == [("load/latency-p90", "inconclusive"),
                                ("load/latency-mean", "inconclusive")]
    widths = []
    for _ in range(3):
        run(exp, loops=1 if not widths else 2)
        assert exp.result is not None and exp.result.insights is not None
        low, high = exp.result.insights.comparisons[1].interval or (None, None)
        assert low is not None and high is not None
        widths.append(high - low)
    assert exp.result.insights.comparisons[1].looks > 1
    assert widths == sorted(widths, reverse=True)


def test_error_rates_and_a_baseline_that_does_not_exist() -> None:
    exp = run(experiment({"requests": 3000, "errors": [150, 30]}, {
        "relative": {"upper": [{"metric": "load/error-rate", "allowance": 0.01}]},
        "baseline": 1}))
    assert comparisons(exp) == [("load/error-rate", "fail")]
    missing = experiment({"requests": 30}, {**RELATIVE, "baseline": 2})
    with pytest.raises(CanaristError) as caught:
        run(missing)
    assert caught.value.exit_code == 2
    assert "assess.baseline: there is no version 2; the experiment has 2 version(s)" in str(
        caught.value)


NOW = datetime(2026, 12, 3, tzinfo=UTC)
BASE = {"tasks": ["http", "assess"], "http": {"url": "http://127.0.0.1:1/x"}}


def launch(assess: dict[str, Any]) -> Experiment:
    return experiment_from_values({**BASE, "assess": assess}, TASKS, now=NOW, base_dir=Path("."))


def test_values_render_relative_objectives_in_metric_order() -> None:
    exp = launch({"relative": {"upper": {"http/latency-p90": "20%", "http/error-rate": 0.01},
                               "lower": {"http/latency-mean": 5}},
                  "baseline": 0, "confidence": 0.99})
    assess = exp.spec[1].with_
    assert assess == {"relative": {
        "upper": [{"metric": "http/error-rate", "allowance": 0.01},
                  {"metric": "http/latency-p90", "allowance": "20%"}],
        "lower": [{"metric": "http/latency-mean", "allowance": 5}]},
        "baseline": 0, "confidence": 0.99}


@pytest.mark.parametrize(("assess", "message"), [
    ({"relative": {"upper": {"http/latency-p90": "20%"}}},
     "assess.baseline: relative objectives compare candidates with a baseline"),
    ({"relative": {"upper": {"http/latency-p90": "20x"}}, "baseline": 0},
     "assess.relative.upper.http/latency-p90: expected a percentage such as 20% or a number "
     "such as 5, got '20x'"),
    ({"relative": {"upper": {"http/latency-stddev": "20%"}}, "baseline": 0},
     "assess.relative.upper.http/latency-stddev: http/latency-stddev cannot be judged against "
     "a baseline; relative objectives take http/latency-pNN (e.g. http/latency-p90)"),
    ({"relative": {"upper": {"grpc/latency/p90": "20%"}}, "baseline": 0},
     "assess.relative.upper.grpc/latency/p90: no task in this experiment records grpc/latency/p90"),
    ({"relative": {"uper": {"http/latency-p90": "20%"}}, "baseline": 0},
     'assess.relative.uper: unknown key "uper"; did you mean upper?'),
    ({"relative": {"upper": {"http/latency-p90": "20%"}}, "baseline": -1},
     "assess.baseline: expected a number of at least 0, got -1"),
    ({"relative": {"upper": {"http/latency-p90": "20%"}}, "baseline": 0, "confidence": 1},
     "assess.confidence: expected a confidence level of at least 0.5 and below 1"),
    ({"baselin": 0}, 'assess.baselin: unknown key "baselin"; did you mean baseline?'),
])
def test_bad_relative_objectives_are_named_by_the_key_typed(assess: dict[str, Any],
                                                             message: str) -> None:
    with pytest.raises(SpecError) as caught:
        launch(assess)
    assert message in str(caught.value)
