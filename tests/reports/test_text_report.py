"""The text report: the verdict first, then Iter8 0.13's layout, byte for byte on Iter8-written
experiments."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import FIXTURES, load_fixture_experiment
from tests.reports.browser import load_experiment

from canarist.core.experiment import Experiment, FailedTask, MetricMeta, MetricType, TaskEntry, new_result
from canarist.core.insights import add_value, ensure_insights, mark_unavailable, register_metric
from canarist.reports.text import render_iter8_text, render_text, verdict_lines


@pytest.mark.parametrize("name", ["kserve-two-versions", "http-one-version"])
def test_iter8_experiments_render_like_iter8(name: str) -> None:
    experiment = load_fixture_experiment(f"{name}.yaml")
    expected = (FIXTURES / "iter8" / f"{name}.txt").read_text()
    assert render_iter8_text(experiment) == expected
    assert render_text(experiment) == verdict_lines(experiment) + expected


def test_the_verdict_comes_first() -> None:
    experiment = load_fixture_experiment("kserve-two-versions.yaml")
    lines = render_text(experiment).split("\n")
    assert lines[:4] == [
        "",
        "Verdict: ✖ REJECTED (fail)",
        "  2 of 3 SLOs not satisfied: kserve-prometheus/latency-mean for version 1 is 31.2, "
        "above the upper limit 25; kserve-prometheus/latency-p90 for version 1 is 48, above the "
        "upper limit 40",
        "",
    ]
    assert lines[4] == "Experiment summary:"


def test_a_failed_experiment_without_metrics_says_where_it_failed() -> None:
    from datetime import datetime

    result = new_result(now=datetime(2024, 1, 1))
    result.failure = True
    result.failed_task = FailedTask(number=1, name="http", reason="cannot connect to 127.0.0.1:9")
    text = render_text(Experiment(spec=[TaskEntry(task="http"), TaskEntry(task="assess")],
                                  result=result))
    assert "retry" not in text
    assert "  No metrics were recorded: the experiment failed at task 1 (http) before " \
        "measuring anything.\n" in text


def test_no_insights_message() -> None:
    experiment = Experiment(spec=[TaskEntry(task="assess")], result=new_result(
        now=__import__("datetime").datetime(2024, 1, 1)))
    assert render_iter8_text(experiment) == (
        "\nExperiment summary:\n*******************\n\n"
        "  Experiment completed: false\n  No task failures: true\n"
        "  Total number of tasks: 1\n  Number of completed tasks: 0\n"
        "  Number of completed loops: 0\n\n"
        "Metrics-based Insights:\n***********************\n\n"
        "  Insights not found in experiment results. You may need to retry this report at a "
        "later time.\n\n"
    )


def test_failure_and_unavailable_reasons_are_explained() -> None:
    from datetime import datetime

    result = new_result(now=datetime(2024, 1, 1))
    result.failure = True
    result.failed_task = FailedTask(number=2, name="http", reason="cannot connect to 127.0.0.1:9")
    insights = ensure_insights(result, 2)
    register_metric(insights, "p/latency", MetricMeta(type=MetricType.GAUGE, units="msec"))
    add_value(insights, 0, "p/latency", 3.0)
    mark_unavailable(insights, 1, "p/latency", "Prometheus returned no data")
    text = render_text(Experiment(spec=[TaskEntry(task="assess")] * 2, result=result))
    assert "  No task failures: false\n" in text
    assert "  Failed task: 2 (http): cannot connect to 127.0.0.1:9\n" in text
    assert "  p/latency (msec) | 3.00      | unavailable\n" in text
    assert "  p/latency (version 1): Prometheus returned no data\n" in text


def test_report_of_a_fixture_is_stable(tmp_path: Path) -> None:
    experiment = load_fixture_experiment("kserve-two-versions.yaml")
    assert render_text(experiment) == render_text(experiment)


def test_failed_requests_follow_iter8s_sections_only_when_present() -> None:
    from datetime import datetime

    from canarist.core.insights import record_errors

    result = new_result(now=datetime(2024, 1, 1))
    insights = ensure_insights(result, 2)
    register_metric(insights, "grpc/request-count", MetricMeta(type=MetricType.COUNTER))
    add_value(insights, 1, "grpc/request-count", 50.0)
    experiment = Experiment(spec=[TaskEntry(task="grpc")], result=result)
    before = render_text(experiment)
    assert "Failed requests" not in before
    record_errors(insights, 1, "grpc", [("UNAVAILABLE", 20, "connection refused"),
                                        ("NOT_FOUND", 30, "Model with name x does not exist.")])
    record_errors(insights, 0, "http-a", [("timeout", 2, "")])
    text = render_text(experiment)
    assert text.startswith(before.removesuffix("\n\n"))
    assert text.endswith(
        "\n\nFailed requests:\n****************\n\n"
        "  http-a (version 0): 2 requests failed\n"
        "    timeout ×2\n"
        "  grpc (version 1): 50 of 50 calls failed\n"
        '    NOT_FOUND ×30: "Model with name x does not exist."\n'
        '    UNAVAILABLE ×20: "connection refused"\n\n\n')


def test_comparisons_with_the_baseline_have_their_own_section() -> None:
    text = render_text(load_experiment("canary-vs-baseline"))
    assert text.startswith("\nVerdict: ✖ REJECTED (fail)\n  2 comparisons with the baseline failed: ")
    section = text.split("Candidates against the baseline (95 % confidence, valid at every look):\n")[1]
    lines = [line.split("|") for line in section.split("\n\n")[1].splitlines()]
    assert [cell.strip() for cell in lines[0]] == [
        "Objective", "Candidate", "Baseline", "Change", "Interval", "Samples", "Verdict"]
    rows = {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in lines[2:]}
    assert rows["kserve-prometheus/latency-mean <= +20%"] == [
        "sklearn-iris-predictor-default-00002", "sklearn-iris-predictor-default-00001",
        "+522.4 %", "+458.7 % .. +594.1 %", "159 / 1351", "fail"]
    assert rows["kserve-prometheus/error-rate <= +0.01"][-1] == "inconclusive"
