"""`custommetrics` with the built-in `kserve-prometheus` template against a real Prometheus.

Two revisions of a KServe service are seeded by remote write with Knative queue-proxy
metrics (request counts by response code, latency histograms in ms), next to series that
must not be selected (another revision, another service with the same revision name).
Every series starts at 0 inside the experiment's window and has its last sample 100 s
before the query, 10 s apart. Prometheus' `increase()` then reports exactly
count * (300 s + 5 s) / 300 s: it extrapolates half a sample interval past the last
sample, and not before the first (a counter starting at 0). Ratios, means and quantiles
are not affected by that factor, so they come out exact.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import MemoryStore
from tests.servers.prometheus import PrometheusServer, own_prometheus, prometheus
from tests.servers.remote_write import Series

from canarist.core.durations import parse_duration
from canarist.core.errors import ExperimentFailed
from canarist.core.experiment import Experiment, MetricType, parse_experiment
from canarist.core.judge import RelativeObjective, compare, evidence
from canarist.core.metrics import scalar_value
from canarist.core.stats.compare import Allowance
from canarist.runners.engine import RunSettings, run_experiment
from canarist.tasks.registry import TASKS

__all__ = ["own_prometheus", "prometheus"]  # the fixtures, imported so that pytest finds them

SERVICE = "sklearn-iris-predictor-default"
REV_NEW = f"{SERVICE}-00002"  # version 0 in the tutorial
REV_OLD = f"{SERVICE}-00001"  # version 1
REV_IDLE = f"{SERVICE}-00009"  # has series, but no requests in the window
REV_NONE = f"{SERVICE}-00404"  # has no series at all
BOUNDS = [5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 150.0, 200.0, math.inf]
STEP_MS = 10_000
STEPS = 30
FACTOR = (STEPS * 10 + 5) / (STEPS * 10)  # increase() extrapolation, see the module docstring

# revision -> response code -> (observations per bucket, not cumulative; latency sum in ms)
TRAFFIC: dict[str, dict[str, tuple[list[int], float]]] = {
    REV_NEW: {"200": ([60, 180, 240, 90, 24, 6, 0, 0, 0, 0], 7500.0)},
    REV_OLD: {
        "200": ([0, 96, 468, 300, 120, 60, 60, 36, 12, 12], 50028.0),
        "500": ([0, 24, 0, 0, 0, 0, 0, 0, 0, 0], 192.0),
        "404": ([0, 0, 12, 0, 0, 0, 0, 0, 0, 0], 180.0),
    },
    f"{SERVICE}-00003": {"200": ([0, 0, 0, 0, 0, 0, 0, 0, 0, 5000], 9e6),
                         "503": ([0, 0, 0, 0, 0, 0, 0, 0, 0, 700], 1e6)},
}
OTHER_SERVICE = "other-predictor-default"

TUTORIAL_VALUES: dict[str, Any] = {
    "labels": {"service_name": SERVICE},
    "latencyPercentiles": [50, 75, 90, 95],
}
TUTORIAL_SLOS = {"upper": [
    {"metric": "kserve-prometheus/latency-mean", "limit": 50},
    {"metric": "kserve-prometheus/latency-p90", "limit": 75},
    {"metric": "kserve-prometheus/error-count", "limit": 0},
]}


def _labels(service: str, revision: str, code: str, name: str) -> dict[str, str]:
    return {
        "__name__": name, "service_name": service, "revision_name": revision,
        "configuration_name": service, "namespace_name": "default",
        "response_code": code, "response_code_class": code[0] + "xx",
        "container_name": "queue-proxy", "pod_name": f"{revision}-deployment-abc12",
    }


def _ramp(final: float, start_ms: int) -> list[tuple[float, int]]:
    return [(final * i / STEPS, start_ms + i * STEP_MS) for i in range(STEPS + 1)]


def _flat(value: float, start_ms: int) -> list[tuple[float, int]]:
    return [(value, start_ms + i * STEP_MS) for i in range(STEPS + 1)]


def _series_for(service: str, revision: str, code: str, counts: Sequence[int], latency_sum: float,
                start_ms: int, flat: bool = False) -> list[Series]:
    shape = _flat if flat else _ramp
    total = float(sum(counts))
    out = [Series(_labels(service, revision, code, "revision_app_request_count"), shape(total, start_ms)),
           Series(_labels(service, revision, code, "revision_app_request_latencies_count"),
                  shape(total, start_ms)),
           Series(_labels(service, revision, code, "revision_app_request_latencies_sum"),
                  shape(latency_sum, start_ms))]
    cumulative = 0
    for bound, count in zip(BOUNDS, counts, strict=True):
        cumulative += count
        labels = {**_labels(service, revision, code, "revision_app_request_latencies_bucket"),
                  "le": "+Inf" if math.isinf(bound) else f"{bound:g}"}
        out.append(Series(labels, shape(float(cumulative), start_ms)))
    return out


def seed(server: PrometheusServer, now_ms: int) -> None:
    start_ms = now_ms - 400_000
    series: list[Series] = []
    for revision, codes in TRAFFIC.items():
        for code, (counts, latency_sum) in codes.items():
            series += _series_for(SERVICE, revision, code, counts, latency_sum, start_ms)
    # the same revision name under another service, with lots of errors: must not be selected
    series += _series_for(OTHER_SERVICE, REV_NEW, "500", [0, 0, 0, 0, 0, 0, 0, 0, 0, 900], 5e6,
                          start_ms)
    # an idle revision: counters exist but do not move within the window
    series += _series_for(SERVICE, REV_IDLE, "200", [10, 10, 10, 10, 10, 0, 0, 0, 0, 0], 400.0,
                          start_ms, flat=True)
    server.write(series)


@pytest.fixture(scope="module")
def seeded(prometheus: PrometheusServer) -> tuple[PrometheusServer, datetime]:
    """The shared server with the data, and the time the experiment started."""
    now_ms = int(time.time() * 1000)
    seed(prometheus, now_ms)
    return prometheus, datetime.fromtimestamp(now_ms / 1000, UTC) - timedelta(seconds=450)


def meta_type(insights: Any, name: str) -> MetricType:
    meta_info: MetricType = insights.metrics_info[name].type
    return meta_info


def prometheus_quantile(q: float, counts: Sequence[float]) -> float:
    """histogram_quantile over non-cumulative bucket counts (Prometheus' bucketQuantile)."""
    cumulative: list[float] = []
    for count in counts:
        cumulative.append((cumulative[-1] if cumulative else 0.0) + count)
    rank = q * cumulative[-1]
    b = next(i for i, c in enumerate([*cumulative[:-1], math.inf]) if c >= rank)
    if b == len(BOUNDS) - 1:
        return BOUNDS[-2]
    start = BOUNDS[b - 1] if b > 0 else 0.0
    below = cumulative[b - 1] if b > 0 else 0.0
    return start + (BOUNDS[b] - start) * (rank - below) / (cumulative[b] - below)


def aggregate(revision: str) -> tuple[list[float], float, float, float]:
    """(bucket counts, latency sum, requests, 5xx requests) of a revision, all codes."""
    codes = TRAFFIC[revision]
    counts = [float(sum(c[0][i] for c in codes.values())) for i in range(len(BOUNDS))]
    total = sum(counts)
    errors = sum(float(sum(c)) for code, (c, _) in codes.items() if code.startswith("5"))
    return counts, sum(s for _, s in codes.values()), total, errors


def experiment(custommetrics: Mapping[str, Any], slos: Mapping[str, Any] | None = None) -> Experiment:
    spec: list[dict[str, Any]] = [{"task": "custommetrics", "with": dict(custommetrics)}]
    if slos is not None:
        spec.append({"task": "assess", "with": {"SLOs": dict(slos)}})
    return parse_experiment({"spec": spec}, source="test")


def run(exp: Experiment, tmp_path: Path, started: datetime | None = None) -> Experiment:
    start = started or datetime.now(UTC)
    store = MemoryStore()
    return asyncio.run(run_experiment(exp, store, TASKS, RunSettings(run_dir=tmp_path),
                                      now=lambda: start))


def value(exp: Experiment, version: int, name: str) -> float | None:
    assert exp.result is not None and exp.result.insights is not None
    return scalar_value(exp.result.insights, version, name).value


def reason(exp: Experiment, version: int, name: str) -> str:
    assert exp.result is not None and exp.result.insights is not None
    return exp.result.insights.unavailable[version].get(name, "")


def tutorial_inputs(url: str, revisions: Sequence[str] = (REV_NEW, REV_OLD)) -> dict[str, Any]:
    return {
        "templates": {"kserve-prometheus": "kserve-prometheus"},
        "values": {**TUTORIAL_VALUES, "prometheusURL": url},
        "versionValues": [{"labels": {"revision_name": r}} for r in revisions],
    }


def test_the_tutorial_experiment_measures_each_revision_exactly(
    seeded: tuple[PrometheusServer, datetime], tmp_path: Path
) -> None:
    server, started = seeded
    exp = run(experiment(tutorial_inputs(server.query_url), TUTORIAL_SLOS), tmp_path, started)
    assert exp.result is not None and not exp.result.failure
    insights = exp.result.insights
    assert insights is not None and insights.num_versions == 2
    assert insights.unavailable == [{}, {}]

    for version, revision in enumerate((REV_NEW, REV_OLD)):
        counts, latency_sum, total, errors = aggregate(revision)
        assert value(exp, version, "kserve-prometheus/request-count") == pytest.approx(
            total * FACTOR, rel=1e-12)
        assert value(exp, version, "kserve-prometheus/error-count") == pytest.approx(
            errors * FACTOR, rel=1e-12)
        assert value(exp, version, "kserve-prometheus/error-rate") == pytest.approx(
            errors / total, rel=1e-12)
        assert value(exp, version, "kserve-prometheus/latency-mean") == pytest.approx(
            latency_sum / total, rel=1e-12)
        for p in (50, 75, 90, 95):
            assert value(exp, version, f"kserve-prometheus/latency-p{p}") == pytest.approx(
                prometheus_quantile(p / 100, counts), rel=1e-9), p

    # the same figures, written out
    assert value(exp, 0, "kserve-prometheus/request-count") == pytest.approx(610)
    assert value(exp, 1, "kserve-prometheus/request-count") == pytest.approx(1220)
    assert value(exp, 0, "kserve-prometheus/error-count") == 0
    assert value(exp, 1, "kserve-prometheus/error-count") == pytest.approx(24.4)
    assert value(exp, 0, "kserve-prometheus/error-rate") == 0
    assert value(exp, 1, "kserve-prometheus/error-rate") == pytest.approx(0.02)
    assert value(exp, 0, "kserve-prometheus/latency-mean") == pytest.approx(12.5)
    assert value(exp, 1, "kserve-prometheus/latency-mean") == pytest.approx(42.0)
    assert [value(exp, 0, f"kserve-prometheus/latency-p{p}") for p in (50, 75, 90, 95)] == \
        pytest.approx([12.5, 18.75, 100 / 3, 40.0])
    assert [value(exp, 1, f"kserve-prometheus/latency-p{p}") for p in (50, 75, 90, 95)] == \
        pytest.approx([20.0, 40.0, 80.0, 100.0])

    meta = insights.metrics_info
    assert meta["kserve-prometheus/request-count"].type is MetricType.COUNTER
    assert meta["kserve-prometheus/error-rate"].type is MetricType.GAUGE
    assert meta["kserve-prometheus/latency-p90"].units == "msec"
    assert meta["kserve-prometheus/latency-p90"].description == "90 percentile latency"

    # the latency histogram, bucket by bucket (whole observations of the extrapolated window)
    for version, revision in enumerate((REV_NEW, REV_OLD)):
        counts = aggregate(revision)[0]
        cumulative = [round(sum(counts[: i + 1]) * FACTOR) for i in range(len(counts))]
        expected = [(lower, upper, after - before) for lower, upper, before, after in zip(
            [0.0, *BOUNDS[:-1]], BOUNDS, [0, *cumulative[:-1]], cumulative, strict=True)
            if not (math.isinf(upper) and after == before)]
        buckets = insights.hist_metric_values[version]["kserve-prometheus/latency"]
        assert [(b.lower, b.upper, b.count) for b in buckets] == expected
    assert meta_type(insights, "kserve-prometheus/latency") is MetricType.HISTOGRAM

    # judged on those buckets: the new revision's p90 is not 10 % worse than the old one's
    objective = RelativeObjective("kserve-prometheus/latency-p90", "upper", Allowance.parse("10%"))
    found = compare(objective, (0, evidence(insights, 0, objective.metric)),
                    (1, evidence(insights, 1, objective.metric)), confidence=0.95)
    assert (found.verdict, found.samples) == ("pass", (610, 1220)), found.reason
    # and the other way round, the old revision is worse than the new one by far more than 10 %
    found = compare(objective, (1, evidence(insights, 1, objective.metric)),
                    (0, evidence(insights, 0, objective.metric)), confidence=0.95)
    assert found.verdict == "fail", found.reason

    # assess: the new revision meets all three SLOs; the old one fails p90 and error-count
    satisfied = insights.slos_satisfied
    assert satisfied is not None
    assert satisfied.upper == [[True, True], [True, False], [True, False]]
    assert not exp.slos()
    assert exp.slos_satisfied_by() == [0]


def test_the_window_can_start_at_starting_time(
    seeded: tuple[PrometheusServer, datetime], tmp_path: Path
) -> None:
    server, started = seeded
    inputs = tutorial_inputs(server.query_url, (REV_OLD,))
    inputs["values"]["startingTime"] = started.isoformat().replace("+00:00", "Z")
    exp = run(experiment(inputs), tmp_path)  # the experiment itself starts now
    assert value(exp, 0, "kserve-prometheus/request-count") == pytest.approx(1200 * FACTOR)
    # a window that starts after every sample was written sees no data, and says why
    late = tutorial_inputs(server.query_url, (REV_OLD,))
    late["values"]["startingTime"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    exp = run(experiment(late), tmp_path)
    assert value(exp, 0, "kserve-prometheus/request-count") is None
    assert reason(exp, 0, "kserve-prometheus/request-count").startswith(
        "no data: window 1s is shorter than two scrape intervals of revision_app_request_count ")


def test_no_series_is_unavailable_never_a_silent_zero(
    seeded: tuple[PrometheusServer, datetime], tmp_path: Path
) -> None:
    server, started = seeded
    exp = run(experiment(tutorial_inputs(server.query_url, (REV_NEW, REV_NONE)), TUTORIAL_SLOS),
              tmp_path, started)
    assert exp.result is not None and not exp.result.failure
    matchers = f'`revision_name="{REV_NONE}", service_name="{SERVICE}"`'
    for name in ("request-count", "error-count", "error-rate", "latency-mean", "latency-p90"):
        assert value(exp, 1, f"kserve-prometheus/{name}") is None, name
        series = ("revision_app_request_latencies_count" if name.startswith("latency")
                  else "revision_app_request_count")
        assert reason(exp, 1, f"kserve-prometheus/{name}") == (
            f"no data: no series of {series} match {matchers} in the last 10m"), name
    assert value(exp, 0, "kserve-prometheus/request-count") == pytest.approx(600 * FACTOR)
    satisfied = exp.result.insights.slos_satisfied  # type: ignore[union-attr]
    assert satisfied is not None and satisfied.upper == [[True, False]] * 3


def test_a_revision_without_requests_in_the_window_has_zero_counts_and_no_ratios(
    seeded: tuple[PrometheusServer, datetime], tmp_path: Path
) -> None:
    server, started = seeded
    exp = run(experiment(tutorial_inputs(server.query_url, (REV_IDLE,))), tmp_path, started)
    assert value(exp, 0, "kserve-prometheus/request-count") == 0
    assert value(exp, 0, "kserve-prometheus/error-count") == 0
    for name in ("error-rate", "latency-mean", "latency-p50", "latency-p95"):
        assert value(exp, 0, f"kserve-prometheus/{name}") is None, name
        assert reason(exp, 0, f"kserve-prometheus/{name}") == "value is NaN", name


def test_relative_objectives_on_a_real_prometheus_pass_fail_and_cannot_decide(
    seeded: tuple[PrometheusServer, datetime], tmp_path: Path
) -> None:
    """assess against the seeded histograms: the old revision as candidate fails against the
    new one, the new one passes against the old one, and a revision without requests in the
    window cannot be decided, naming why."""
    server, started = seeded
    relative = {"relative": {"upper": [
        {"metric": "kserve-prometheus/latency-p90", "allowance": "10%"},
        {"metric": "kserve-prometheus/latency-mean", "allowance": "10%"},
        {"metric": "kserve-prometheus/error-rate", "allowance": 0.01}]}}

    def verdicts(revisions: tuple[str, str], baseline: int) -> dict[str, tuple[str, str]]:
        exp = parse_experiment({"spec": [
            {"task": "custommetrics", "with": tutorial_inputs(server.query_url, revisions)},
            {"task": "assess", "with": {**relative, "baseline": baseline}}]}, source="test")
        run(exp, tmp_path, started)
        assert exp.result is not None and exp.result.insights is not None
        return {c.metric.split("/")[1]: (c.verdict, c.reason)
                for c in exp.result.insights.comparisons}

    old_against_new = verdicts((REV_NEW, REV_OLD), baseline=0)
    # 24 errors in 1,220 requests against none in 610: too few to show more than +1 point
    assert {m: v for m, (v, _) in old_against_new.items()} == {
        "latency-p90": "fail", "latency-mean": "fail", "error-rate": "inconclusive"}
    new_against_old = verdicts((REV_NEW, REV_OLD), baseline=1)
    assert {m: v for m, (v, _) in new_against_old.items()} == {
        "latency-p90": "pass", "latency-mean": "pass", "error-rate": "pass"}
    idle = verdicts((REV_IDLE, REV_OLD), baseline=1)
    assert idle["latency-p90"] == ("inconclusive", "version 0 received no requests")
    assert idle["error-rate"][0] == "inconclusive"


def test_a_bad_query_is_unavailable_with_prometheus_own_words(
    seeded: tuple[PrometheusServer, datetime], tmp_path: Path
) -> None:
    server, started = seeded
    template = tmp_path / "broken.tpl"
    template.write_text(
        "url: {{ .prometheusURL }}\nmetrics:\n"
        "- name: broken\n  type: gauge\n  params:\n  - name: query\n    value: sum(rate(x[5m])\n"
        "  jqExpression: .data.result[0].value[1] | tonumber\n"
        "- name: first-series-count\n  type: gauge\n  params:\n  - name: query\n"
        "    value: count(revision_app_request_count)\n"
        "  jqExpression: .data.result[0].value[1]\n")
    exp = run(experiment({"templates": {"mine": str(template)},
                          "values": {"prometheusURL": server.query_url}}), tmp_path, started)
    assert value(exp, 0, "mine/broken") is None
    assert reason(exp, 0, "mine/broken").startswith(
        f"HTTP 400 from {server.query_url}: bad_data: ")
    # a string such as "21" is a number too
    assert value(exp, 0, "mine/first-series-count") == pytest.approx(
        float(server.query("count(revision_app_request_count)")["data"]["result"][0]["value"][1]))


def test_a_stopped_prometheus_cannot_evaluate_and_every_metric_says_why(
    own_prometheus: PrometheusServer, tmp_path: Path
) -> None:
    url = own_prometheus.query_url
    own_prometheus.stop()
    began = time.monotonic()
    exp = experiment(tutorial_inputs(url), TUTORIAL_SLOS)
    with pytest.raises(ExperimentFailed) as caught:
        run(exp, tmp_path)
    assert time.monotonic() - began < 10
    assert caught.value.exit_code == 3
    assert str(caught.value) == (
        f"task 1: custommetrics: templates.kserve-prometheus: cannot reach {url}: "
        "connection refused")
    assert exp.result is not None and exp.result.failure
    assert exp.result.num_completed_tasks == 0
    insights = exp.result.insights
    assert insights is not None
    names = sorted(insights.metrics_info)
    assert names == sorted(f"kserve-prometheus/{n}" for n in (
        "request-count", "error-count", "error-rate", "latency-mean", "latency",
        "latency-p50", "latency-p75", "latency-p90", "latency-p95"))
    for version in (0, 1):
        assert insights.non_hist_metric_values[version] == {}
        for name in names:
            assert insights.unavailable[version][name] == f"connection refused ({url})"


def test_a_template_that_cannot_be_fetched_fails_the_task(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    inputs = tutorial_inputs(prometheus.query_url)
    inputs["templates"] = {"kserve-prometheus": prometheus.url + "/no/such/template.tpl"}
    exp = experiment(inputs, TUTORIAL_SLOS)
    with pytest.raises(ExperimentFailed) as caught:
        run(exp, tmp_path)
    assert caught.value.exit_code == 3
    assert exp.result is not None and exp.result.failure
    assert exp.result.failed_task is not None
    assert exp.result.failed_task.reason == (
        f"templates.kserve-prometheus: cannot fetch template {prometheus.url}/no/such/template.tpl: "
        f"HTTP 404 from {prometheus.url}/no/such/template.tpl")
    assert exp.result.num_completed_tasks == 0


def test_every_builtin_query_is_valid_promql_even_with_awkward_labels(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    labels = {"service_name": 'we"ird\\name\nline é', "port": 8080}
    exp = run(experiment({
        "templates": {"kp": "kserve-prometheus", "ip": "istio-prom", "kr": "kserve-raw"},
        "values": {"labels": labels, "latencyPercentiles": [99.9, 5, 100, 0.5],
                   "prometheusURL": prometheus.query_url, "istioPromURL": prometheus.query_url},
    }), tmp_path)
    insights = exp.result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert len(insights.metrics_info) == 9 + 9 + 7
    for name, why in insights.unavailable[0].items():
        assert why.startswith("no data: no series of "), (name, why)
        assert why.endswith(' match `port="8080", service_name="we\\"ird\\\\name\\nline é"` '
                            "in the last 10m"), (name, why)


def _histogram(name: str, labels: dict[str, str], bounds: Sequence[str], counts: Sequence[int],
               total: float, start_ms: int) -> list[Series]:
    out = [Series({"__name__": f"{name}_count", **labels}, _ramp(float(sum(counts)), start_ms)),
           Series({"__name__": f"{name}_sum", **labels}, _ramp(total, start_ms))]
    cumulative = 0
    for bound, count in zip(bounds, counts, strict=True):
        cumulative += count
        out.append(Series({"__name__": f"{name}_bucket", **labels, "le": bound},
                          _ramp(float(cumulative), start_ms)))
    return out


def test_istio_prom_and_kserve_raw_on_their_own_metrics(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    now_ms = int(time.time() * 1000)
    start_ms = now_ms - 400_000
    istio = {"destination_workload": "httpbin-v2", "destination_workload_namespace": "default",
             "reporter": "destination"}
    series = [
        Series({"__name__": "istio_requests_total", **istio, "response_code": "200"},
               _ramp(570.0, start_ms)),
        Series({"__name__": "istio_requests_total", **istio, "response_code": "503"},
               _ramp(30.0, start_ms)),
        *_histogram("istio_request_duration_milliseconds", istio,
                    ["10", "25", "50", "100", "+Inf"], [300, 150, 90, 60, 0], 15000.0, start_ms),
        *_histogram("request_predict_seconds", {"model_name": "sklearn-iris", "job": "kserve"},
                    ["0.005", "0.01", "0.025", "0.05", "+Inf"], [100, 200, 100, 0, 0], 4.8,
                    start_ms),
    ]
    prometheus.write(series)
    started = datetime.fromtimestamp(now_ms / 1000, UTC) - timedelta(seconds=450)
    exp = run(experiment({
        "templates": {"istio-prom": "istio-prom"},
        "values": {"latencyPercentiles": [50, 90], "istioPromURL": prometheus.query_url,
                   "labels": {"destination_workload": "httpbin-v2"}},
    }), tmp_path, started)
    assert value(exp, 0, "istio-prom/request-count") == pytest.approx(600 * FACTOR)
    assert value(exp, 0, "istio-prom/error-count") == pytest.approx(30 * FACTOR)
    assert value(exp, 0, "istio-prom/error-rate") == pytest.approx(0.05)
    assert value(exp, 0, "istio-prom/latency-mean") == pytest.approx(25.0)
    assert value(exp, 0, "istio-prom/latency-p50") == pytest.approx(10.0)  # rank 300 of 300
    assert value(exp, 0, "istio-prom/latency-p90") == pytest.approx(50.0)  # rank 540 of 540
    assert histogram(exp, "istio-prom/latency") == [
        (0, 10, round(300 * FACTOR)), (10, 25, round(450 * FACTOR) - round(300 * FACTOR)),
        (25, 50, round(540 * FACTOR) - round(450 * FACTOR)),
        (50, 100, round(600 * FACTOR) - round(540 * FACTOR))]
    exp = run(experiment({
        "templates": {"kserve-raw": "kserve-raw"},
        "values": {"latencyPercentiles": [50, 90], "prometheusURL": prometheus.query_url,
                   "labels": {"model_name": "sklearn-iris"}},
    }), tmp_path, started)
    assert value(exp, 0, "kserve-raw/request-count") == pytest.approx(400 * FACTOR)
    assert value(exp, 0, "kserve-raw/latency-mean") == pytest.approx(12.0)  # 4.8 s / 400, in ms
    assert value(exp, 0, "kserve-raw/latency-p50") == pytest.approx(7.5)  # rank 200: 5 + 5 * 100/200 ms
    assert value(exp, 0, "kserve-raw/latency-p90") == pytest.approx(19.0)  # rank 360: 10 + 15 * 60/100 ms
    # buckets in seconds become milliseconds
    assert histogram(exp, "kserve-raw/latency") == [
        (0, 5, round(100 * FACTOR)), (5, 10, round(300 * FACTOR) - round(100 * FACTOR)),
        (10, 25, round(400 * FACTOR) - round(300 * FACTOR)), (25, 50, 0)]


def histogram(exp: Experiment, name: str) -> list[tuple[float, float, int]]:
    assert exp.result is not None and exp.result.insights is not None
    return [(b.lower, b.upper, b.count) for b in exp.result.insights.hist_metric_values[0][name]]


def _fresh(revision: str, now_ms: int, seconds: int, step_ms: int,
           counts: Sequence[int] = (20, 10, 0, 0, 0, 0, 0, 0, 0, 0)) -> list[Series]:
    """A revision that served `counts` requests (2xx) in the last `seconds`, scraped every step."""
    steps = seconds * 1000 // step_ms
    start_ms = now_ms - steps * step_ms

    def ramp(final: float) -> list[tuple[float, int]]:
        return [(final * i / steps, start_ms + i * step_ms) for i in range(steps + 1)]

    total = float(sum(counts))
    out = [Series(_labels(SERVICE, revision, "200", "revision_app_request_count"), ramp(total)),
           Series(_labels(SERVICE, revision, "200", "revision_app_request_latencies_count"),
                  ramp(total)),
           Series(_labels(SERVICE, revision, "200", "revision_app_request_latencies_sum"),
                  ramp(8.0 * total))]
    cumulative = 0
    for bound, count in zip(BOUNDS, counts, strict=True):
        cumulative += count
        labels = {**_labels(SERVICE, revision, "200", "revision_app_request_latencies_bucket"),
                  "le": "+Inf" if math.isinf(bound) else f"{bound:g}"}
        out.append(Series(labels, ramp(float(cumulative))))
    return out


def test_a_one_shot_run_measures_the_traffic_of_the_last_minutes(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """The tutorial's values, run once right after a minute of traffic: real numbers."""
    revision = f"{SERVICE}-00005"
    now_ms = int(time.time() * 1000)
    prometheus.write(_fresh(revision, now_ms, seconds=60, step_ms=2000))
    exp = run(experiment(tutorial_inputs(prometheus.query_url, (revision,)), TUTORIAL_SLOS),
              tmp_path)  # the experiment starts now: no startingTime, no earlier loop
    assert exp.result is not None and not exp.result.failure
    assert exp.result.insights is not None and exp.result.insights.unavailable == [{}]
    count = value(exp, 0, "kserve-prometheus/request-count")
    assert count is not None and 30 <= count < 30 * 1.25  # extrapolated to the query time
    assert value(exp, 0, "kserve-prometheus/error-count") == 0
    assert value(exp, 0, "kserve-prometheus/error-rate") == 0
    assert value(exp, 0, "kserve-prometheus/latency-mean") == pytest.approx(8.0)
    assert value(exp, 0, "kserve-prometheus/latency-p50") == pytest.approx(3.75)  # 5 * 15/20
    assert value(exp, 0, "kserve-prometheus/latency-p90") == pytest.approx(8.5)  # 5 + 5 * 7/10
    assert exp.slos()


@pytest.mark.parametrize("window", ["90s", "1h30m"])
def test_a_window_can_be_set(
    seeded: tuple[PrometheusServer, datetime], tmp_path: Path, window: str
) -> None:
    server, started = seeded
    inputs = tutorial_inputs(server.query_url, (REV_OLD, REV_NONE))
    inputs["values"]["window"] = window
    exp = run(experiment(inputs), tmp_path, started)
    # the last sample was 100 s old when seeded: 90 s sees none of them, 1h30m all of them
    if window == "90s":
        assert value(exp, 0, "kserve-prometheus/request-count") is None
        shown = re.fullmatch(
            r"no data: no samples of revision_app_request_count `revision_name=\"[^`]*\"` in the "
            r"last 1m30s: the latest is (\S+) old \(no longer scraped\?\)",
            reason(exp, 0, "kserve-prometheus/request-count"))
        assert shown is not None
        # older by however long the tests took since seeding (a slow machine shows more)
        since_seeding = time.time() - (started + timedelta(seconds=450)).timestamp()
        assert 100 <= parse_duration(shown.group(1), field="age") <= 101 + since_seeding
    else:
        assert value(exp, 0, "kserve-prometheus/request-count") == pytest.approx(1200, rel=0.02)
        assert value(exp, 0, "kserve-prometheus/latency-p90") == pytest.approx(80.0)
    # a label that matches nothing is named, with how far back canarist looked
    assert reason(exp, 1, "kserve-prometheus/request-count") == (
        f'no data: no series of revision_app_request_count match `revision_name="{REV_NONE}", '
        f'service_name="{SERVICE}"` in the last {"10m" if window == "90s" else "1h30m"}')


def test_a_window_shorter_than_two_scrape_intervals_is_named(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    revision = f"{SERVICE}-00006"
    now_ms = int(time.time() * 1000)
    prometheus.write(_fresh(revision, now_ms, seconds=120, step_ms=15_000))
    inputs = tutorial_inputs(prometheus.query_url, (revision,))
    inputs["values"]["window"] = "10s"  # holds one sample at most
    exp = run(experiment(inputs), tmp_path)
    matchers = f'`revision_name="{revision}", service_name="{SERVICE}"`'
    for name in ("request-count", "error-rate", "latency-mean", "latency-p90"):
        series = ("revision_app_request_latencies_count" if name.startswith("latency")
                  else "revision_app_request_count")
        assert reason(exp, 0, f"kserve-prometheus/{name}") == (
            f"no data: window 10s is shorter than two scrape intervals of {series} {matchers} "
            "(2 × 15s): increase() and rate() need two samples in the window; make it 30s or "
            "more"), name
    inputs["values"]["window"] = "45s"
    exp = run(experiment(inputs), tmp_path)
    assert value(exp, 0, "kserve-prometheus/latency-mean") == pytest.approx(8.0)


def test_a_series_with_a_single_sample_is_named(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    revision = f"{SERVICE}-00007"
    now_ms = int(time.time() * 1000)
    prometheus.write([Series(_labels(SERVICE, revision, "200", "revision_app_request_count"),
                             [(3.0, now_ms - 4000)])])
    exp = run(experiment(tutorial_inputs(prometheus.query_url, (revision,))), tmp_path)
    assert re.fullmatch(
        r"no data: only one sample of revision_app_request_count `revision_name=\"[^`]*\", "
        r"service_name=\"[^`]*\"` in the last 5m \(its first sample is \ds old\): "
        r"increase\(\) and rate\(\) need two", reason(exp, 0, "kserve-prometheus/request-count")), \
        reason(exp, 0, "kserve-prometheus/request-count")
    # the latency histogram has no series at all
    assert reason(exp, 0, "kserve-prometheus/latency-mean").startswith(
        "no data: no series of revision_app_request_latencies_count match ")


def test_a_long_window_counts_samples_instead(
    seeded: tuple[PrometheusServer, datetime], tmp_path: Path
) -> None:
    server, started = seeded
    inputs = tutorial_inputs(server.query_url, (REV_NONE,))
    exp = run(experiment(inputs), tmp_path, started - timedelta(hours=2))
    assert reason(exp, 0, "kserve-prometheus/request-count").startswith(
        f'no data: no series of revision_app_request_count match `revision_name="{REV_NONE}", '
        f'service_name="{SERVICE}"` in the last 2h7m')


def test_a_template_without_diagnose_keeps_the_plain_reason(
    seeded: tuple[PrometheusServer, datetime], tmp_path: Path
) -> None:
    server, started = seeded
    template = tmp_path / "mine.tpl"
    template.write_text(
        "url: {{ .prometheusURL }}\nmetrics:\n"
        "- name: none\n  type: gauge\n  params:\n  - name: query\n"
        "    value: sum(rate(no_such_metric[5m]))\n"
        "  jqExpression: .data.result[0].value[1] | tonumber\n"
        "- name: bad-hint\n  type: gauge\n  params:\n  - name: query\n"
        "    value: sum(rate(no_such_metric[5m]))\n"
        "  jqExpression: .data.result[0].value[1] | tonumber\n"
        "  diagnose: {series: 'no_such_metric{', window: 5m}\n")
    exp = run(experiment({"templates": {"mine": str(template)},
                          "values": {"prometheusURL": server.query_url}}), tmp_path, started)
    plain = ("no data: the query returned an empty result (no series matched, or the window "
             "holds fewer than two samples of each)")
    assert reason(exp, 0, "mine/none") == plain
    assert reason(exp, 0, "mine/bad-hint") == plain  # the lookup failed: nothing more to say


def test_one_unreachable_provider_cannot_evaluate(
    seeded: tuple[PrometheusServer, datetime], tmp_path: Path
) -> None:
    server, started = seeded
    inputs = tutorial_inputs(server.query_url, (REV_OLD,))
    inputs["templates"]["raw"] = "kserve-raw"
    inputs["values"]["prometheusURL"] = server.query_url
    (tmp_path / "other.tpl").write_text(
        "url: http://user:pw@127.0.0.1:9/api/v1/query?token=x\nmetrics:\n"
        "- name: m\n  type: gauge\n  jqExpression: .v\n")
    inputs["templates"]["other"] = "other.tpl"
    exp = experiment(inputs)
    with pytest.raises(ExperimentFailed) as caught:
        run(exp, tmp_path, started)
    assert caught.value.exit_code == 3
    assert exp.result is not None and exp.result.failed_task is not None
    assert exp.result.failed_task.reason == (
        "templates.other: cannot reach http://127.0.0.1:9/api/v1/query: connection refused")
    assert value(exp, 0, "kserve-prometheus/request-count") == pytest.approx(1200 * FACTOR)
