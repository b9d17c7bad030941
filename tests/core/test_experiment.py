"""Reading Iter8's files leniently, writing our own safely."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
import yaml
from tests.helpers import load_fixture_experiment

from canarist.core.errors import SpecError, TaskError
from canarist.core.experiment import (
    Experiment,
    HistBucket,
    MetricMeta,
    MetricType,
    experiment_to_data,
    format_time,
    new_result,
    parse_experiment,
)
from canarist.core.insights import add_value, ensure_insights, mark_unavailable, register_metric
from canarist.core.metrics import scalar_value


def test_iter8_file_reads_with_any_key_case_and_unknown_keys() -> None:
    exp = parse_experiment({
        "Spec": [{"Task": "assess", "With": {"SLOs": {"Upper": []}}, "Unknown": 1}],
        "Result": {"StartTime": "2023-01-01T00:00:00Z", "NumLoops": 2, "Failure": True,
                   "extra": {"x": 1}},
    }, source="x")
    assert exp.spec[0].task == "assess"
    assert exp.result is not None and exp.result.num_loops == 2 and exp.result.failure


def test_fixture_round_trips_through_our_writer() -> None:
    exp = load_fixture_experiment("kserve-two-versions.yaml")
    data = experiment_to_data(exp)
    again = parse_experiment(yaml.safe_load(yaml.safe_dump(data)), source="again")
    assert again == exp
    assert data["result"]["startTime"] == "2023-03-01T12:00:03.123456Z"
    assert data["result"]["insights"]["versionNames"] is None


def test_entry_needs_a_task_or_a_run() -> None:
    with pytest.raises(SpecError, match=r"spec\[0\].*without a task name or a run command"):
        parse_experiment({"spec": [{"if": "true"}]}, source="f.yaml")


def test_all_problems_are_reported() -> None:
    with pytest.raises(SpecError) as caught:
        parse_experiment({"spec": [{}, {"task": "x", "with": 3}],
                          "result": {"numLoops": "many"}}, source="f.yaml")
    assert len(caught.value.problems) >= 3
    assert all(p.startswith("f.yaml: ") for p in caught.value.problems)


def test_nan_never_reaches_the_file() -> None:
    result = new_result(now=datetime(2024, 1, 1, tzinfo=UTC))
    insights = ensure_insights(result, 1)
    register_metric(insights, "p/m", MetricMeta(type=MetricType.GAUGE))
    add_value(insights, 0, "p/m", 1.0)
    add_value(insights, 0, "p/m", math.nan)
    exp = Experiment(spec=[], result=result)
    data = experiment_to_data(exp)
    assert data["result"]["insights"]["nonHistMetricValues"] == [{"p/m": [1.0]}]
    assert data["result"]["insights"]["unavailable"] == [{"p/m": "value is nan"}]
    assert scalar_value(insights, 0, "p/m").value is None


def test_an_open_ended_last_bucket_is_written_as_prometheus_writes_it() -> None:
    """Latencies beyond a Prometheus histogram's highest bound land in its +Inf bucket; the
    file keeps that bucket (JSON and Iter8 have no infinity) and reads it back unchanged."""
    result = new_result(now=datetime(2024, 1, 1, tzinfo=UTC))
    insights = ensure_insights(result, 1)
    register_metric(insights, "p/latency", MetricMeta(type=MetricType.HISTOGRAM, units="ms"))
    insights.hist_metric_values[0]["p/latency"] = [
        HistBucket(lower=0, upper=100, count=7), HistBucket(lower=100, upper=math.inf, count=3)]
    exp = Experiment(spec=[], result=result)
    data = experiment_to_data(exp)
    written = data["result"]["insights"]["histMetricValues"][0]["p/latency"]
    assert written[1] == {"lower": 100.0, "upper": "+Inf", "count": 3}
    again = parse_experiment(yaml.safe_load(yaml.safe_dump(data)), source="again")
    assert again == exp
    assert again.result is not None and again.result.insights is not None
    assert math.isinf(again.result.insights.hist_metric_values[0]["p/latency"][1].upper)


def test_a_failed_latest_attempt_hides_the_stale_value() -> None:
    result = new_result(now=datetime(2024, 1, 1, tzinfo=UTC))
    insights = ensure_insights(result, 1)
    register_metric(insights, "p/m", MetricMeta(type=MetricType.GAUGE))
    add_value(insights, 0, "p/m", 1.0)
    mark_unavailable(insights, 0, "p/m", "HTTP 500 from Prometheus")
    assert scalar_value(insights, 0, "p/m").reason == "HTTP 500 from Prometheus"
    add_value(insights, 0, "p/m", 2.0)
    assert scalar_value(insights, 0, "p/m").value == 2.0


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2023, 3, 1, 12, 0, 3, 123450, tzinfo=UTC), "2023-03-01T12:00:03.12345Z"),
        (datetime(2023, 3, 1, 12, 0, 3, tzinfo=UTC), "2023-03-01T12:00:03Z"),
    ],
)
def test_times_are_rfc3339nano(moment: datetime, text: str) -> None:
    assert format_time(moment) == text


def test_inconsistent_version_counts_fail() -> None:
    result = new_result(now=datetime(2024, 1, 1, tzinfo=UTC))
    ensure_insights(result, 2)
    with pytest.raises(TaskError) as caught:
        ensure_insights(result, 1)
    assert (caught.value.message, caught.value.exit_code) == (
        "inconsistent number for app versions; old (2); new (1)", 1)
    assert result.insights is not None and result.insights.num_versions == 2  # left as it was


def test_errors_are_recorded_per_version_and_provider_redacted_and_short() -> None:
    from canarist.core.insights import ERROR_MESSAGE_CHARS, record_errors

    result = new_result(now=datetime(2024, 1, 1, tzinfo=UTC))
    insights = ensure_insights(result, 2)
    assert insights.errors == [{}, {}]
    stored = record_errors(insights, 1, "http-v1", [
        ("503", 2, "upstream failed"),
        ("404", 7, "GET https://user:hunter2@example.com/x?token=abc not found " + "y " * 300),
        ("timeout", 0, "never happened"),
    ])
    assert [(e.code, e.count) for e in stored] == [("404", 7), ("503", 2)]
    message = stored[0].message
    assert "hunter2" not in message and "abc" not in message and "[redacted]" in message
    assert len(message) <= ERROR_MESSAGE_CHARS and message.endswith("…")
    assert insights.errors[0] == {} and list(insights.errors[1]) == ["http-v1"]
    data = experiment_to_data(Experiment(spec=[], result=result))
    assert data["result"]["insights"]["errors"] == [
        {}, {"http-v1": [e.model_dump() for e in stored]}]
    again = parse_experiment(yaml.safe_load(yaml.safe_dump(data)), source="again")
    assert again.result is not None and again.result.insights == insights
    # the latest run replaces the earlier one; no errors remove the provider and the key
    record_errors(insights, 1, "http-v1", [])
    assert "errors" not in experiment_to_data(Experiment(spec=[], result=result))["result"]["insights"]


def test_iter8_files_have_no_errors_and_keep_their_shape() -> None:
    exp = load_fixture_experiment("kserve-two-versions.yaml")
    assert exp.result is not None and exp.result.insights is not None
    assert exp.result.insights.errors == [{}, {}]
    assert "errors" not in experiment_to_data(exp)["result"]["insights"]
