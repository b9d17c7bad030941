"""Numbers and histogram buckets out of JSON answers, with jq."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from canarist.backends.providers.extract import MetricUnavailable, extract_buckets, extract_value


def test_extract_value_takes_the_first_output_like_iter8() -> None:
    assert extract_value({"a": [1, 2]}, ".a[]") == 1.0
    assert extract_value({"v": "1e3"}, ".v") == 1000.0
    assert extract_value({"v": "-2.5"}, "def f: .v; f") == -2.5
    for text in ("1_000", " 5", "0x10", ""):
        with pytest.raises(Exception, match="value is not a number"):
            extract_value({"v": text}, ".v")


def test_histogram_buckets_from_prometheus_pairs() -> None:
    payload = {"data": {"result": [
        {"metric": {"le": "+Inf"}, "value": [0, "12.4"]},
        {"metric": {"le": "10"}, "value": [0, "3.2"]},
        {"metric": {"le": "5"}, "value": [0, "1"]}]}}
    buckets = extract_buckets(payload, "[.data.result[] | [.metric.le, .value[1]]]")
    assert [(b.lower, b.upper, b.count) for b in buckets] == [
        (0, 5, 1), (5, 10, 2), (10, math.inf, 9)]
    quiet = {"data": {"result": [{"metric": {"le": "+Inf"}, "value": [0, "0"]},
                                 {"metric": {"le": "5"}, "value": [0, "0"]}]}}
    assert [(b.upper, b.count) for b in extract_buckets(
        quiet, "[.data.result[] | [.metric.le, .value[1]]]")] == [(5, 0)]


def test_a_cumulative_count_that_dips_counts_as_no_change() -> None:
    """`increase` extrapolates each bucket's series apart, so a count may dip a little below
    the bucket before it; as Prometheus' histogram_quantile does, it is read as no change."""
    buckets = extract_buckets({"v": [[1, 5], [2, 4.6], [4, 9], ["+Inf", 9]]}, ".v")
    assert [(b.lower, b.upper, b.count) for b in buckets] == [(0, 1, 5), (1, 2, 0), (2, 4, 4)]


@pytest.mark.parametrize(("payload", "expression", "message"), [
    ({"v": 3}, ".v", "must yield a list of [upper bound, cumulative count] pairs, got 3"),
    ({"v": [[1, 2, 3]]}, ".v", "must yield a list of [upper bound, cumulative count] pairs"),
    ({"v": [["x", 1]]}, ".v", 'bucket upper bound is not a number: "x"'),
    ({"v": [[1, True]]}, ".v", "bucket count is not a number: true"),
    ({"v": [[1, "NaN"]]}, ".v", "is not a number"),
])
def test_histogram_buckets_that_are_not_a_histogram_are_unavailable(
        payload: Any, expression: str, message: str) -> None:
    with pytest.raises(MetricUnavailable, match=re.escape(message)):
        extract_buckets(payload, expression)
