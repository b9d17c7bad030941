"""The release verdict: computed once, in core; never a pass on no evidence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from canarist.core.chart import render_experiment
from canarist.core.errors import SpecError
from canarist.core.experiment import (
    SLO,
    ComparisonRecord,
    Experiment,
    FailedTask,
    MetricMeta,
    MetricType,
    SLOLimits,
    SLOsSatisfied,
    TaskEntry,
    VersionName,
    experiment_to_data,
    new_result,
    parse_experiment,
)
from canarist.core.insights import (
    add_value,
    ensure_insights,
    mark_unavailable,
    record_errors,
    register_metric,
)
from canarist.core.verdict import judge

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _grpc_all_failed(slos: SLOLimits, satisfied: SLOsSatisfied) -> Experiment:
    """50 of 50 gRPC calls failed: the error rate is 1, latencies are unavailable."""
    result = new_result(now=NOW)
    result.num_completed_tasks = 2
    insights = ensure_insights(result, 1)
    for name, kind in (("grpc/error-rate", MetricType.GAUGE),
                       ("grpc/error-count", MetricType.COUNTER),
                       ("grpc/latency/p95", MetricType.GAUGE)):
        register_metric(insights, name, MetricMeta(type=kind))
    add_value(insights, 0, "grpc/error-rate", 1.0)
    add_value(insights, 0, "grpc/error-count", 50.0)
    mark_unavailable(insights, 0, "grpc/latency/p95", "all 50 calls failed: NOT_FOUND ×50")
    record_errors(insights, 0, "grpc", [("NOT_FOUND", 50, "no such model")])
    insights.slos = slos
    insights.slos_satisfied = satisfied
    return Experiment(spec=[TaskEntry(task="grpc"), TaskEntry(task="assess")], result=result)


def test_every_error_with_an_error_rate_slo_fails() -> None:
    experiment = _grpc_all_failed(
        SLOLimits(upper=[SLO(metric="grpc/error-rate", limit=0),
                         SLO(metric="grpc/latency/p95", limit=20)]),
        SLOsSatisfied(upper=[[False], [False]]))
    verdict = judge(experiment)
    assert verdict.outcome == "fail"
    assert verdict.reason == (
        "1 of 2 SLOs not satisfied: grpc/error-rate for version 0 is 1, above the upper limit 0; "
        "grpc/latency/p95 for version 0 is unavailable (all 50 calls failed: NOT_FOUND ×50)")
    assert verdict.summary == "1 of 2 SLOs not satisfied by version 0"


def test_a_latency_slo_over_no_successful_request_cannot_decide() -> None:
    experiment = _grpc_all_failed(SLOLimits(upper=[SLO(metric="grpc/latency/p95", limit=20)]),
                                  SLOsSatisfied(upper=[[False]]))
    verdict = judge(experiment)
    assert verdict.outcome == "inconclusive"
    assert verdict.reason == ("1 of 1 SLO could not be checked: grpc/latency/p95 for version 0 "
                              "is unavailable (all 50 calls failed: NOT_FOUND ×50)")


def test_no_slos_is_never_a_pass() -> None:
    experiment = _grpc_all_failed(SLOLimits(), SLOsSatisfied())
    experiment.spec = [TaskEntry(task="grpc")]
    verdict = judge(experiment)
    assert verdict.outcome == "inconclusive"
    assert verdict.reason == "nothing was judged: the experiment has no SLOs (it has no assess task)"
    # Iter8's `SLOs()` is true here; the verdict is not.
    assert experiment.slos()


def test_a_failed_task_fails_the_release() -> None:
    experiment = _grpc_all_failed(SLOLimits(), SLOsSatisfied())
    assert experiment.result is not None
    experiment.result.failure = True
    experiment.result.failed_task = FailedTask(number=1, name="grpc", reason="cannot connect")
    verdict = judge(experiment)
    assert (verdict.outcome, verdict.summary, verdict.reason) == (
        "fail", "the experiment failed at task 1 (grpc)", "task 1 (grpc) failed: cannot connect")


def test_every_slo_satisfied_passes_naming_the_versions() -> None:
    result = new_result(now=NOW)
    result.version_names = ["canary", "baseline"]
    insights = ensure_insights(result, 2)
    register_metric(insights, "p/latency", MetricMeta(type=MetricType.GAUGE))
    for j in range(2):
        add_value(insights, j, "p/latency", 3.0)
    insights.slos = SLOLimits(upper=[SLO(metric="p/latency", limit=5)])
    insights.slos_satisfied = SLOsSatisfied(upper=[[True, True]])
    verdict = judge(Experiment(spec=[TaskEntry(task="assess")], result=result))
    assert (verdict.outcome, verdict.reason) == (
        "pass", "the SLO is satisfied by all 2 versions (canary, baseline)")
    insights.slos_satisfied = SLOsSatisfied(upper=[[True, False]])
    add_value(insights, 1, "p/latency", 9.0)
    verdict = judge(Experiment(spec=[TaskEntry(task="assess")], result=result))
    assert verdict.outcome == "fail"
    assert verdict.reason == "1 of 1 SLO not satisfied: p/latency for baseline is 9, above the " \
        "upper limit 5"


def test_an_slo_not_assessed_yet_cannot_decide() -> None:
    result = new_result(now=NOW)
    insights = ensure_insights(result, 1)
    register_metric(insights, "p/latency", MetricMeta(type=MetricType.GAUGE))
    add_value(insights, 0, "p/latency", 3.0)
    insights.slos = SLOLimits(upper=[SLO(metric="p/latency", limit=5)])
    verdict = judge(Experiment(spec=[TaskEntry(task="assess")], result=result))
    assert verdict.outcome == "inconclusive"
    assert "not assessed yet" in verdict.reason


def test_version_names_are_a_validated_values_key() -> None:
    values = {"tasks": ["custommetrics", "assess"],
              "custommetrics": {"templates": {"p": "kserve-prometheus"},
                                "versionValues": [{}, {}]},
              "assess": {"SLOs": {"upper": {"p/latency": 5}}},
              "versionNames": ["canary", "baseline"]}
    data = render_experiment(values, now=NOW)
    assert data["result"]["versionNames"] == ["canary", "baseline"]
    experiment = parse_experiment(data, source="experiment.yaml")
    assert experiment.result is not None
    insights = ensure_insights(experiment.result, 2)
    assert [insights.version_label(j) for j in range(2)] == ["canary", "baseline"]
    # Written and read back, the names stay.
    again = parse_experiment(experiment_to_data(experiment), source="x")
    assert again.result is not None and again.result.insights is not None
    assert again.result.insights.version_label(1) == "baseline"


@pytest.mark.parametrize(("names", "problem"), [
    (["a", "a"], "versionNames[1]: 'a' names two versions; version names must be distinct"),
    (["a", " "], 'versionNames[1]: expected a non-empty name, got " "'),
    ("canary", "versionNames: expected a list of version names"),
    (["a", "b", "c"], "versionNames: 3 names for 2 versions (at most one name per version)"),
])
def test_bad_version_names_name_the_key(names: object, problem: str) -> None:
    values = {"tasks": ["custommetrics"],
              "custommetrics": {"templates": {"p": "kserve-prometheus"},
                                "versionValues": [{}, {}]},
              "versionNames": names}
    with pytest.raises(SpecError) as caught:
        render_experiment(values, now=NOW)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("task", ["http", "grpc", "custommetrics"])
def test_each_task_with_version_values_counts_the_versions(task: str) -> None:
    values = {"tasks": [task], task: {"versionValues": [{}, {}]},
              "versionNames": ["a", "b", "c"]}
    with pytest.raises(SpecError) as caught:
        render_experiment(values, now=NOW)
    assert "versionNames: 3 names for 2 versions (at most one name per version)" in (
        caught.value.problems)


def _compared(*verdicts: str, slo_ok: bool | None = None) -> Experiment:
    """Two versions (canary, baseline) with one comparison per verdict, and optionally an SLO."""
    result = new_result(now=NOW)
    result.num_completed_tasks = 2
    insights = ensure_insights(result, 2)
    insights.version_names = [VersionName(version="canary"), VersionName(version="baseline")]
    insights.comparisons = [ComparisonRecord(
        metric=f"kserve-prometheus/latency-p{90 + i}", candidate=0, baseline=1, direction="upper",
        allowance="20%", verdict=verdict, reason=f"reason {i}")  # type: ignore[arg-type]
        for i, verdict in enumerate(verdicts)]
    if slo_ok is not None:
        register_metric(insights, "kserve-prometheus/error-count", MetricMeta(type=MetricType.COUNTER))
        for version in (0, 1):
            add_value(insights, version, "kserve-prometheus/error-count", 0.0 if slo_ok else 3.0)
        insights.slos = SLOLimits(upper=[SLO(metric="kserve-prometheus/error-count", limit=0)])
        insights.slos_satisfied = SLOsSatisfied(upper=[[slo_ok, slo_ok]])
    return Experiment(spec=[TaskEntry(task="custommetrics"), TaskEntry(task="assess")],
                      result=result)


def test_a_failed_comparison_fails_the_release_and_names_it() -> None:
    found = judge(_compared("fail", "inconclusive", slo_ok=True))
    assert found.outcome == "fail"
    assert found.summary == "1 comparison with the baseline failed by canary"
    assert found.reason == (
        "1 comparison with the baseline failed: kserve-prometheus/latency-p90 of canary against "
        "baseline: reason 0; kserve-prometheus/latency-p91 of canary against baseline: reason 1")
    both = judge(_compared("fail", slo_ok=False))
    assert both.reason.startswith("1 of 1 SLO not satisfied and 1 comparison with the baseline "
                                  "failed: kserve-prometheus/error-count for canary is 3")


def test_an_undecided_comparison_cannot_pass() -> None:
    found = judge(_compared("pass", "inconclusive", slo_ok=True))
    assert found.outcome == "inconclusive"
    assert found.summary == ("1 of 3 objectives (1 SLO and 2 comparisons with the baseline) "
                             "could not be decided for canary")
    assert found.reason.endswith("kserve-prometheus/latency-p91 of canary against baseline: "
                                 "reason 1")


def test_every_comparison_passing_passes() -> None:
    found = judge(_compared("pass", "pass"))
    assert (found.outcome, found.reason) == (
        "pass", "every candidate is within its allowance on 2 comparisons with the baseline")
    with_slo = judge(_compared("pass", slo_ok=True))
    assert with_slo.outcome == "pass"
    assert with_slo.reason == ("the SLO is satisfied by all 2 versions (canary, baseline); every "
                               "candidate is within its allowance on 1 comparison with the "
                               "baseline")


@pytest.mark.parametrize("action, verdict, expected", [
    ("promote", "pass", "pass"),
    ("rollback", "fail", "fail"),
    ("rollback", "inconclusive", "inconclusive"),  # rolled back after too many holds
])
def test_a_finished_rollout_is_the_verdict_of_loops_that_measure_nothing(
    action: str, verdict: str, expected: str
) -> None:
    from canarist.core.experiment import RolloutAction, RolloutRecord

    result = new_result(now=NOW)
    moment = datetime(2026, 12, 3, 10, 27, 53, tzinfo=UTC)
    result.rollout = RolloutRecord(
        state="promoted" if action == "promote" else "rolled-back",
        percent=100 if action == "promote" else 0, candidate="a-00002", baseline="a-00001",
        actions=[RolloutAction(time=moment, action=action, verdict=verdict,
                               reason="the judge's reason", **{"from": 50}, to=0)])
    experiment = Experiment(spec=[TaskEntry(task="kserve"), TaskEntry(task="assess"),
                                  TaskEntry(task="rollout")], result=result)
    judged = judge(experiment)
    done = "promoted" if action == "promote" else "rolled back"
    assert (judged.outcome, judged.reason) == (
        expected, f"{done} at 2026-12-03 10:27:53 UTC: the judge's reason")
    result.rollout.state = "in-progress"  # still rolling out: nothing judged is no verdict
    assert judge(experiment).outcome == "inconclusive"
    assert judge(experiment).reason.startswith("nothing was judged")
