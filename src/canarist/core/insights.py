"""Recording metric values into a result's insights (the only way tasks write metrics)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from canarist.core.errors import TaskError
from canarist.core.experiment import (
    ErrorCount,
    HistBucket,
    Insights,
    MetricMeta,
    MetricType,
    Result,
    SLOLimits,
    apply_version_names,
)
from canarist.core.limits import MAX_VERSIONS
from canarist.core.redact import redact_text

ERROR_MESSAGE_CHARS = 200
"""Longest error message stored in a result (after redaction)."""


def ensure_insights(result: Result, num_versions: int) -> Insights:
    """The result's insights, created for `num_versions` versions on first use."""
    if result.insights is None:
        if num_versions > MAX_VERSIONS:
            raise TaskError(f"{num_versions} versions; at most {MAX_VERSIONS} can be compared")
        result.insights = Insights.model_validate({"numVersions": num_versions})
        apply_version_names(result.insights, result.version_names)
    elif result.insights.num_versions != num_versions:
        raise TaskError(
            "inconsistent number for app versions; "
            f"old ({result.insights.num_versions}); new ({num_versions})"
        )
    return result.insights


def register_metric(insights: Insights, name: str, meta: MetricMeta) -> None:
    """Declare a metric; declaring it again with different metadata is an error."""
    known = insights.metrics_info.get(name)
    if known is None:
        insights.metrics_info[name] = meta
    elif known.type != meta.type or known.units != meta.units:
        raise TaskError(f"metric {name} registered twice with different type or units")


def add_value(insights: Insights, version: int, name: str, value: float) -> None:
    """Append the latest value of a counter or gauge; NaN and Inf become `unavailable`."""
    if not math.isfinite(value):
        mark_unavailable(insights, version, name, f"value is {value}")
        return
    insights.non_hist_metric_values[version].setdefault(name, []).append(float(value))
    insights.unavailable[version].pop(name, None)


def add_sample(insights: Insights, version: int, name: str, values: Iterable[float]) -> None:
    """Append observations to a Sample metric (non-finite observations are dropped)."""
    kept = [float(v) for v in values if math.isfinite(v)]
    insights.non_hist_metric_values[version].setdefault(name, []).extend(kept)
    insights.unavailable[version].pop(name, None)


def add_histogram(
    insights: Insights, version: int, name: str, buckets: Iterable[HistBucket]
) -> None:
    """Add one measurement's buckets to a histogram that accumulates over loops (a load
    test's). Its buckets have fixed edges, except the first, which starts at the fastest
    request, and the last, which ends at the slowest; a bucket that overlaps one already kept
    is the same bucket, and the two become one spanning both, with both counts. So the
    histogram holds at most one bucket per pair of edges however many loops run."""
    kept = insights.hist_metric_values[version].get(name, [])
    insights.hist_metric_values[version][name] = merge_buckets([*kept, *buckets])
    insights.unavailable[version].pop(name, None)


def merge_buckets(buckets: Iterable[HistBucket]) -> list[HistBucket]:
    """`buckets` ordered by their edges, overlapping ones joined (edges spanning both, counts
    summed). Buckets that only touch stay apart; one of zero width at the edge of another
    joins it."""
    merged: list[HistBucket] = []
    for bucket in sorted(buckets, key=lambda b: (b.lower, b.upper)):
        last = merged[-1] if merged else None
        if last is not None and (bucket.lower < last.upper or (
                bucket.lower == last.upper and (bucket.lower == bucket.upper
                                                or last.lower == last.upper))):
            merged[-1] = HistBucket(lower=min(last.lower, bucket.lower),
                                    upper=max(last.upper, bucket.upper),
                                    count=last.count + bucket.count)
        else:
            merged.append(bucket.model_copy())
    return merged


def set_histogram(
    insights: Insights, version: int, name: str, buckets: Iterable[HistBucket]
) -> None:
    """Replace a histogram: for one measured over a window, each loop sees all the data."""
    insights.hist_metric_values[version][name] = list(buckets)
    insights.unavailable[version].pop(name, None)


def mark_unavailable(insights: Insights, version: int, name: str, reason: str) -> None:
    """Record why `name` has no value for `version` in this loop (shown by reports, used by
    assess), redacted: a server's answer quoted in it may echo the request's credentials."""
    insights.unavailable[version][name] = redact_text(reason)


def record_errors(
    insights: Insights, version: int, provider: str, kinds: Iterable[tuple[str, int, str]]
) -> list[ErrorCount]:
    """Store the failed requests of `provider`'s latest load test for `version`.

    `kinds` are `(code, count, first message)`; they replace what an earlier loop stored, so
    reports show the latest run (none: the provider's entry is removed). Messages are
    redacted, then shortened to `ERROR_MESSAGE_CHARS`. Returns what was stored, most
    frequent first.
    """
    entries = sorted(
        (ErrorCount(code=code, count=count, message=short_message(message))
         for code, count, message in kinds if count > 0),
        key=lambda e: (-e.count, e.code),
    )
    if entries:
        insights.errors[version][provider] = entries
    else:
        insights.errors[version].pop(provider, None)
    return entries


def short_message(text: str) -> str:
    """`text` on one line, secrets redacted, at most ERROR_MESSAGE_CHARS (cut at a word)."""
    flat = " ".join(redact_text(text).split())
    if len(flat) <= ERROR_MESSAGE_CHARS:
        return flat
    cut = flat[: ERROR_MESSAGE_CHARS - 1]
    if " " in cut[ERROR_MESSAGE_CHARS // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut + "…"


def describe_errors(entries: Iterable[ErrorCount]) -> str:
    """`NOT_FOUND ×30, UNAVAILABLE ×20`."""
    return ", ".join(f"{e.code} ×{e.count}" for e in entries)


def set_slos(insights: Insights, slos: SLOLimits) -> None:
    """Store the SLOs; a later loop or task must use the same ones."""
    if insights.slos is None or insights.slos.is_empty():
        insights.slos = slos
    elif insights.slos != slos:
        raise TaskError("old and new value of slos conflict")


__all__ = [
    "MetricType",
    "add_histogram",
    "add_sample",
    "add_value",
    "describe_errors",
    "ensure_insights",
    "mark_unavailable",
    "merge_buckets",
    "record_errors",
    "register_metric",
    "set_slos",
    "short_message",
]
