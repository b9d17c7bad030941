"""A load test's latency histogram over many loops: bounded, every request counted, and judged
on what it holds."""

from __future__ import annotations

import itertools
import random

import numpy as np

from canarist.backends.loadgen.recorder import HISTOGRAM_EDGES_MS, LoadResult, Recorder
from canarist.core.experiment import HistBucket, Insights, MetricMeta, MetricType
from canarist.core.insights import add_histogram, merge_buckets
from canarist.core.judge import evidence, histogram_counts
from canarist.core.stats.quantiles import quantile_interval
from canarist.tasks.loadmetrics import DEFAULT_PERCENTILES, record_load


def load(rng: random.Random, n: int, median_ms: float, errors: int = 0) -> tuple[LoadResult,
                                                                                  list[float]]:
    recorder = Recorder()
    latencies = [rng.lognormvariate(np.log(median_ms), 0.6) for _ in range(n)]
    for ms in latencies:
        recorder.record(0, 0, round(ms * 1e6), 200)
    for _ in range(errors):
        recorder.record(0, 0, 1_000_000, 503)
    return recorder.result(1.0), latencies


def record(insights: Insights, result: LoadResult) -> None:
    record_load(insights, "http", result, DEFAULT_PERCENTILES, sep="-", histogram="http/latency")


def test_300_loops_keep_one_bucket_per_pair_of_edges_and_count_every_request() -> None:
    rng = random.Random(15)
    insights = Insights(numVersions=1)
    sizes = []
    low, high = float("inf"), 0.0
    for _ in range(300):
        result, _latencies = load(rng, 200, rng.choice((2.0, 5.0, 40.0)))
        low, high = min(low, result.latency.min_ms), max(high, result.latency.max_ms)
        record(insights, result)
        sizes.append(len(insights.hist_metric_values[0]["http/latency"]))
    kept = insights.hist_metric_values[0]["http/latency"]
    assert max(sizes) <= len(HISTOGRAM_EDGES_MS)
    assert sizes[-1] <= sizes[49] + 5  # what 50 loops saw, give or take a bucket at either end
    assert sum(b.count for b in kept) == 300 * 200
    assert kept[0].lower == low and kept[-1].upper == high
    for before, after in itertools.pairwise(kept):
        assert before.lower <= before.upper <= after.lower  # ordered, none overlapping


def test_overlapping_buckets_join_and_touching_ones_stay_apart() -> None:
    def b(lower: float, upper: float, count: int) -> HistBucket:
        return HistBucket(lower=lower, upper=upper, count=count)

    merged = merge_buckets([b(3.0, 4.0, 10), b(2.724, 3.0, 4), b(2.9, 3.0, 1), b(2.0, 3.0, 7),
                            b(4.0, 4.4, 2), b(16.0, 16.07, 1), b(16.0, 18.0, 5), b(20.0, 20.0, 3),
                            b(18.0, 20.0, 2), b(30.0, 30.0, 1), b(30.0, 35.0, 1)])
    assert [(x.lower, x.upper, x.count) for x in merged] == [
        (2.0, 3.0, 12), (3.0, 4.0, 10), (4.0, 4.4, 2), (16.0, 18.0, 6), (18.0, 20.0, 5),
        (30.0, 35.0, 2)]


def test_merged_buckets_place_the_quantiles_of_every_loop_together() -> None:
    # Appended, a later loop's first bucket (from its fastest request to the next edge) sits
    # inside an earlier loop's whole bucket: its lower edge then claims that none of the
    # earlier bucket's requests lie below it. Joined, the edges stay true.
    rng = random.Random(3)
    insights = Insights(numVersions=1)
    everything: list[float] = []
    for median in (5.0, 5.0, 9.0, 9.0, 30.0):
        result, latencies = load(rng, 400, median)
        everything += latencies
        record(insights, result)
    counts = histogram_counts(insights.hist_metric_values[0]["http/latency"])
    assert counts.total == len(everything)
    values = np.sort(everything)
    for p in (0.1, 0.5, 0.9, 0.99):
        low, high = quantile_interval(counts, p, 0.05)
        true = float(np.quantile(values, p))
        assert low <= true * 1.01 and true <= high * 1.01, (p, low, true, high)


def test_the_recorded_mean_is_exact_in_the_first_loop_only() -> None:
    rng = random.Random(4)
    insights = Insights(numVersions=1)
    first, _ = load(rng, 300, 10.0, errors=7)
    record(insights, first)
    assert evidence(insights, 0, "http/latency-mean").mean == first.latency.mean_ms
    second, _ = load(rng, 300, 20.0, errors=2)
    record(insights, second)
    found = evidence(insights, 0, "http/latency-mean")
    assert found.mean is None  # the latest loop's mean does not describe both loops' requests
    assert found.histogram is not None and found.histogram.total == 600


def test_histograms_replaced_each_loop_keep_their_recorded_mean() -> None:
    # custommetrics' histograms (no late sends recorded) describe the window each loop reads
    insights = Insights(numVersions=1)
    insights.hist_metric_values[0]["p/latency"] = [HistBucket(lower=0, upper=10, count=4),
                                                   HistBucket(lower=10, upper=50, count=6)]
    insights.metrics_info["p/latency-mean"] = MetricMeta(type=MetricType.GAUGE)
    insights.non_hist_metric_values[0]["p/latency-mean"] = [12.0, 17.5]
    assert evidence(insights, 0, "p/latency-mean").mean == 17.5


def test_add_histogram_joins_a_new_loop_into_the_kept_buckets() -> None:
    insights = Insights(numVersions=1)
    add_histogram(insights, 0, "h", [HistBucket(lower=1.5, upper=2, count=1),
                                     HistBucket(lower=2, upper=3, count=2)])
    add_histogram(insights, 0, "h", [HistBucket(lower=1.2, upper=2, count=3),
                                     HistBucket(lower=2, upper=2.5, count=1)])
    assert [(b.lower, b.upper, b.count) for b in insights.hist_metric_values[0]["h"]] == [
        (1.2, 2.0, 4), (2.0, 3.0, 3)]
