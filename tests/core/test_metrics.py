"""Metric names, normalisation and aggregation, as Iter8 computed them."""

from __future__ import annotations

import pytest

from canarist.core.experiment import Insights
from canarist.core.metrics import (
    aggregate_sample,
    aggregate_summary,
    metric_meta,
    normalize_name,
    scalar_metric_names,
    scalar_value,
)


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("http/latency-p50.0", "http/latency-p50"),
        ("http/latency-p99.90", "http/latency-p99.9"),
        ("grpc/latency/p95.00", "grpc/latency/p95"),
        ("http-get/latency-p50.0", "http-get/latency-p50"),
        ("grpc-infer/latency/p9", "grpc-infer/latency/p9"),
        ("kserve-prometheus/latency-p90", "kserve-prometheus/latency-p90"),
        ("http/latency-pxyz", "http/latency-pxyz"),
    ],
)
def test_normalisation(name: str, normal: str) -> None:
    assert normalize_name(name) == normal


def test_sample_aggregations_follow_montanaflynn_stats() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert aggregate_sample(values, "mean").value == 2.5
    assert aggregate_sample(values, "stddev").value == pytest.approx(1.118033988749895)
    assert aggregate_sample(values, "min").value == 1.0
    assert aggregate_sample(values, "max").value == 4.0
    assert aggregate_sample(values, "p50").value == 2.0       # index 2 is whole: sorted[1]
    assert aggregate_sample(values, "p60").value == 2.5       # index 2.4: mean of sorted[1:3]
    assert aggregate_sample(values, "p10").value is None      # index 0.4: out of bounds
    assert aggregate_sample(values, "p100").value == 4.0
    assert aggregate_sample([7.0], "p10").value == 7.0        # a sample of one is its value
    assert aggregate_sample([], "mean").value is None
    assert aggregate_sample(values, "median").value is None


def test_summary_aggregations() -> None:
    summary = [4.0, 10.0, 1.0, 4.0, 30.0]  # values 1, 2, 3, 4
    assert aggregate_summary(summary, "count").value == 4
    assert aggregate_summary(summary, "mean").value == 2.5
    assert aggregate_summary(summary, "stddev").value == pytest.approx(1.2909944487358056)
    assert aggregate_summary(summary, "min").value == 1.0


def test_lookup_through_aggregation_and_synthesised_meta() -> None:
    insights = Insights.model_validate({
        "numVersions": 1,
        "metricsInfo": {"grpc/latency": {"type": "Sample", "units": "msec"},
                        "grpc/request-count": {"type": "Counter"}},
        "nonHistMetricValues": [{"grpc/latency": [1.5, 2.5], "grpc/request-count": [2]}],
        "SLOs": {"upper": [{"metric": "grpc/latency/p50.0", "limit": 3}]},
    })
    assert scalar_value(insights, 0, "grpc/latency/mean").value == 2.0
    meta = metric_meta(insights, "grpc/latency/p50")
    assert meta is not None and meta.description == "50-th percentile value of grpc/latency"
    assert meta.units == "msec"
    assert scalar_metric_names(insights) == ["grpc/latency/p50", "grpc/request-count"]
    assert scalar_value(insights, 0, "grpc/latency").value is None
    assert "invalid metric name" in scalar_value(insights, 0, "a/b/c/d").reason
