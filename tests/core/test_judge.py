"""Relative objectives judged on the data behind the numbers (histograms and counts)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from canarist.core.experiment import HistBucket, Insights, MetricMeta, MetricType
from canarist.core.judge import (
    Evidence,
    RelativeObjective,
    compare,
    evidence,
    histogram_counts,
    histogram_moments,
    judgeable,
)
from canarist.core.stats.compare import Allowance
from canarist.core.stats.quantiles import CumulativeCounts

FINE = [float(e) for e in range(201)] + [500.0, 1000.0]
COARSE = [0.0, 10.0, 50.0, 100.0, 1000.0]


def buckets(latencies_ms: np.ndarray, edges: list[float]) -> list[HistBucket]:
    counts, _ = np.histogram(latencies_ms, bins=edges)
    return [HistBucket(lower=lo, upper=hi, count=int(n))
            for lo, hi, n in zip(edges, edges[1:], counts, strict=False) if n]


def two_versions(canary_ms: np.ndarray, baseline_ms: np.ndarray, errors: tuple[int, int] = (0, 0),
                 edges: list[float] = FINE) -> Insights:
    insights = Insights(numVersions=2, metricsInfo={
        "http/latency": MetricMeta(type=MetricType.HISTOGRAM, units="msec"),
        "http/error-count": MetricMeta(type=MetricType.COUNTER),
        "http/request-count": MetricMeta(type=MetricType.COUNTER)})
    for version, latencies in enumerate((canary_ms, baseline_ms)):
        if len(latencies):
            insights.hist_metric_values[version]["http/latency"] = buckets(latencies, edges)
        insights.non_hist_metric_values[version]["http/request-count"] = [float(len(latencies))]
        insights.non_hist_metric_values[version]["http/error-count"] = [float(errors[version])]
    return insights


def judge(insights: Insights, metric: str, allowance: str) -> tuple[str, str]:
    objective = RelativeObjective(metric, "upper", Allowance.parse(allowance))
    found = compare(objective, (0, evidence(insights, 0, metric)),
                    (1, evidence(insights, 1, metric)), confidence=0.95)
    return found.verdict, found.reason


RNG = np.random.default_rng(5)
BASELINE = RNG.lognormal(np.log(20), 0.4, 6000)


def test_a_slow_canary_fails_on_p90_and_mean() -> None:
    insights = two_versions(RNG.lognormal(np.log(40), 0.4, 700), BASELINE)
    verdict, reason = judge(insights, "http/latency-p90", "20%")
    assert verdict == "fail", reason
    assert reason.startswith("+") and "beyond the allowance +20% at 95 % confidence" in reason
    assert judge(insights, "http/latency-mean", "5")[0] == "fail"


def test_an_unchanged_canary_passes_with_enough_data() -> None:
    insights = two_versions(RNG.lognormal(np.log(20), 0.4, 3000), BASELINE)
    for metric in ("http/latency-p90", "http/latency-mean", "http/latency-p50"):
        verdict, reason = judge(insights, metric, "30%")
        assert verdict == "pass", (metric, reason)
        assert "within the allowance +30%" in reason


def test_thin_data_is_inconclusive_and_says_how_much_more_is_needed() -> None:
    insights = two_versions(RNG.lognormal(np.log(40), 0.4, 17), BASELINE)
    verdict, reason = judge(insights, "http/latency-p90", "20%")
    assert verdict == "inconclusive"
    assert "17 candidate and 6000 baseline samples" in reason


def test_buckets_too_coarse_for_the_allowance_are_named() -> None:
    insights = two_versions(RNG.lognormal(np.log(20), 0.4, 5000), BASELINE, edges=COARSE)
    verdict, reason = judge(insights, "http/latency-p90", "5%")
    assert verdict == "inconclusive"
    assert reason == ("the histogram buckets around the estimates (10-50 for the candidate, "
                      "10-50 for the baseline) are too coarse to tell a change of 5%; "
                      "more requests will not decide it")


def test_a_version_without_traffic_is_inconclusive() -> None:
    insights = two_versions(np.array([]), BASELINE)
    verdict, reason = judge(insights, "http/latency-p90", "20%")
    assert verdict == "inconclusive"
    assert reason == "version 0: no latency histogram http/latency was recorded"
    assert judge(insights, "http/error-rate", "0.01") == (
        "inconclusive", "version 0 received no requests")


def test_error_rates_with_and_without_errors() -> None:
    same = two_versions(RNG.lognormal(3, 0.4, 3000), BASELINE, errors=(0, 0))
    assert judge(same, "http/error-rate", "0.01")[0] == "pass"
    worse = two_versions(RNG.lognormal(3, 0.4, 3000), BASELINE, errors=(150, 60))
    assert judge(worse, "http/error-rate", "0.01")[0] == "fail"


def test_missing_counts_say_why() -> None:
    insights = two_versions(RNG.lognormal(3, 0.4, 100), BASELINE)
    insights.unavailable[1]["http/request-count"] = "query failed: HTTP 503"
    assert judge(insights, "http/error-rate", "0.01") == (
        "inconclusive", "version 1: query failed: HTTP 503")


def test_histogram_helpers() -> None:
    counts = histogram_counts([HistBucket(lower=0, upper=10, count=2),
                               HistBucket(lower=10, upper=20, count=2),
                               HistBucket(lower=0, upper=10, count=1)])
    assert counts.bounds.tolist() == [0, 10, 20] and counts.counts.tolist() == [0, 3, 5]
    mean, sd = histogram_moments(counts)
    assert sd == pytest.approx(math.sqrt((3 * 16 + 2 * 36) / 4))
    assert mean == pytest.approx((3 * 5 + 2 * 15) / 5)
    exact = CumulativeCounts.from_samples([1.0, 2.0, 2.0, 3.0])
    assert histogram_moments(exact) == pytest.approx((2.0, math.sqrt(2 / 3)))


@pytest.mark.parametrize(("metric", "ok"), [
    ("http/latency-p90", True), ("grpc/latency/p99.9", True), ("kserve-prometheus/latency-mean", True),
    ("kserve-prometheus/error-rate", True), ("http/latency-stddev", False), ("http/request-count", False)])
def test_judgeable(metric: str, ok: bool) -> None:
    assert judgeable(metric) is ok


def test_evidence_sizes() -> None:
    assert Evidence(errors=1, requests=10).size == 10
    assert Evidence().size == 0


def test_the_recorded_mean_is_used_when_it_describes_the_same_requests() -> None:
    insights = two_versions(RNG.lognormal(np.log(20), 0.4, 500), BASELINE, edges=COARSE)
    insights.metrics_info["http/latency-mean"] = MetricMeta(type=MetricType.GAUGE)
    insights.non_hist_metric_values[0]["http/latency-mean"] = [21.5]
    assert evidence(insights, 0, "http/latency-mean").mean == 21.5
    # a second loop's buckets: the latest mean no longer describes the whole histogram
    insights.hist_metric_values[0]["http/latency"] += buckets(RNG.lognormal(3, 0.4, 500), COARSE)
    assert evidence(insights, 0, "http/latency-mean").mean is None


def test_quantiles_beyond_the_last_bucket_cannot_be_decided_by_more_requests() -> None:
    bounds = np.array([5.0, 10.0, 100000.0, math.inf])

    def beyond(n: int) -> Evidence:
        return Evidence(histogram=CumulativeCounts(bounds, np.array([0, 0, 0, n])))

    found = compare(RelativeObjective("http/latency-p90", "upper", Allowance.parse("150%")),
                    (1, beyond(100_000)), (0, beyond(900_000)), 0.95)
    assert found.verdict == "inconclusive" and found.estimate is None
    assert found.reason == ("the histogram buckets around the estimates (100000-+Inf for the "
                            "candidate, 100000-+Inf for the baseline) are too coarse to tell a "
                            "change of 150%; more requests will not decide it")


def test_a_first_bucket_starting_above_zero_bounds_the_data() -> None:
    """A load test's first bucket starts at its fastest request: nothing lies below it."""
    counts = histogram_counts([HistBucket(lower=25.5, upper=30, count=9),
                               HistBucket(lower=30, upper=31.4, count=1)])
    assert counts.bounds.tolist() == [25.5, 30, 31.4] and counts.counts.tolist() == [0, 9, 10]
