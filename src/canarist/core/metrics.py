"""Metric names (`provider[-endpoint]/metric[/aggregation]`), normalisation and value lookup."""

from __future__ import annotations

import difflib
import math
import re
import statistics
from dataclasses import dataclass

from canarist.core.experiment import Insights, MetricMeta, MetricType
from canarist.core.gofmt import format_value

NAME_RULE = (
    "metric names must be of the form a/b or a/b/c, where a is the id of the metrics backend, "
    "b is the id of a metric name, and c is a valid aggregation function"
)
_AGGREGATIONS = ("count", "mean", "stddev", "min", "max")
_ESCAPED_DOT = "\\."
_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
# Built-in percentile metrics whose percent is normalised (`p50.0` -> `p50`). Unlike Iter8,
# endpoint providers (`http-<id>`, `grpc-<id>`) are normalised too.
_PERCENTILE_PREFIX = re.compile(r"^((?:http(?:-[^/]+)?)/latency-p|(?:grpc(?:-[^/]+)?)/latency/p)(.*)$")


def is_valid_name(name: str) -> bool:
    parts = name.split("/")
    return len(parts) in (2, 3) and all(parts)


def normalize_name(name: str) -> str:
    """Print the percent of a built-in percentile metric as Go's `%v` would (`p99.90` -> `p99.9`)."""
    match = _PERCENTILE_PREFIX.match(name)
    if not match:
        return name
    try:
        percent = float(match.group(2))
    except ValueError:
        return name
    if not math.isfinite(percent):
        return name
    return match.group(1) + format_value(percent)


def metric_meta(insights: Insights, name: str) -> MetricMeta | None:
    """Metadata of a metric; aggregations of Sample/Summary metrics get synthesised metadata."""
    name = normalize_name(name)
    parts = name.split("/")
    if len(parts) == 2 or name in insights.metrics_info:
        return insights.metrics_info.get(name)
    if len(parts) != 3:
        return None
    base = f"{parts[0]}/{parts[1]}"
    base_meta = insights.metrics_info.get(base)
    if base_meta is None:
        return None
    agg = parts[2]
    text = f"{agg[1:]}-th percentile value" if agg.startswith("p") else f"{agg} value"
    return MetricMeta(
        description=f"{text} of {base}",
        type=MetricType.COUNTER if agg == "count" else MetricType.GAUGE,
        units=base_meta.units,
    )


@dataclass(frozen=True)
class Lookup:
    """A metric value for one version, or why there is none."""

    value: float | None
    reason: str = ""


def scalar_value(insights: Insights, version: int, name: str) -> Lookup:
    """The latest value of a scalar metric (or an aggregation) for a version."""
    if not is_valid_name(name):
        return Lookup(None, f"invalid metric name {name}; {NAME_RULE}")
    name = normalize_name(name)
    if version >= insights.num_versions:
        return Lookup(None, f"no version {version}")
    latest_failure = insights.unavailable[version].get(name)
    if latest_failure is not None:
        # The most recent attempt failed: an older loop's value would be stale.
        return Lookup(None, latest_failure)
    parts = name.split("/")
    if len(parts) == 3 and name not in insights.metrics_info:
        # An aggregation of a Sample or Summary metric, unless it was recorded as such.
        return _aggregate(insights, version, f"{parts[0]}/{parts[1]}", parts[2])
    meta = insights.metrics_info.get(name)
    if meta is None:
        return Lookup(None, _missing_reason(insights, version, name))
    if meta.type not in (MetricType.COUNTER, MetricType.GAUGE):
        return Lookup(None, f"metric {name} is a {meta.type.value}, not a counter or gauge")
    values = insights.non_hist_metric_values[version].get(name) or []
    if not values:
        return Lookup(None, _missing_reason(insights, version, name))
    return Lookup(values[-1])


def _missing_reason(insights: Insights, version: int, name: str) -> str:
    reason = insights.unavailable[version].get(name) if version < len(insights.unavailable) else None
    return reason or f"no value was recorded for {name}"


def _aggregate(insights: Insights, version: int, base: str, agg: str) -> Lookup:
    meta = insights.metrics_info.get(base)
    if meta is None:
        return Lookup(None, _missing_reason(insights, version, base))
    if meta.type == MetricType.SAMPLE:
        values = insights.non_hist_metric_values[version].get(base) or []
        return aggregate_sample(values, agg, base)
    if meta.type == MetricType.SUMMARY:
        summary = insights.summary_metric_values[version].get(base)
        if not summary or len(summary) != 5:
            return Lookup(None, _missing_reason(insights, version, base))
        return aggregate_summary(summary, agg)
    return Lookup(None, f"metric {base} is a {meta.type.value}; only Sample and Summary metrics "
                        "can be aggregated")


def aggregate_sample(values: list[float], agg: str, base: str = "sample") -> Lookup:
    """Aggregate a sample as Iter8 did (montanaflynn/stats: population stddev, its percentile)."""
    if not values:
        return Lookup(None, f"metric {base} has no sample")
    if len(values) == 1:
        return Lookup(values[0])
    if agg == "mean":
        return Lookup(statistics.fmean(values))
    if agg == "stddev":
        return Lookup(statistics.pstdev(values))
    if agg == "min":
        return Lookup(min(values))
    if agg == "max":
        return Lookup(max(values))
    if agg.startswith("p") and _DECIMAL.match(agg[1:]):
        return _sample_percentile(sorted(values), float(agg[1:]))
    return Lookup(None, f"invalid aggregation {agg}; expected one of mean, stddev, min, max, p<P>")


def _sample_percentile(ordered: list[float], percent: float) -> Lookup:
    if percent <= 0 or percent > 100:
        return Lookup(None, f"percentile {format_value(percent)} is out of bounds (0, 100]")
    index = percent / 100 * len(ordered)
    if index == int(index):
        return Lookup(ordered[int(index) - 1])
    if index > 1:
        i = int(index)
        return Lookup((ordered[i - 1] + ordered[i]) / 2)
    return Lookup(None, f"sample too small for percentile {format_value(percent)}")


def aggregate_summary(summary: list[float], agg: str) -> Lookup:
    """Aggregate `[count, sum, min, max, sumSquares]` (sample stddev, Bessel's correction)."""
    count, total, low, high, squares = summary
    if agg == "count":
        return Lookup(count)
    if count <= 0:
        return Lookup(None, "summary has no observations")
    mean = total / count
    if agg == "mean":
        return Lookup(mean)
    if agg == "stddev":
        if count < 2:
            return Lookup(None, "stddev needs at least two observations")
        variance = squares / (count - 1) - mean * mean * count / (count - 1)
        return Lookup(math.sqrt(max(variance, 0.0)))
    if agg == "min":
        return Lookup(low)
    if agg == "max":
        return Lookup(high)
    return Lookup(None, f"invalid aggregation {agg} for a summary metric; expected one of "
                        + ", ".join(_AGGREGATIONS))


def scalar_metric_names(insights: Insights) -> list[str]:
    """Rows of the metrics table: counters, gauges, summary aggregations and SLO metrics, sorted."""
    names = {
        name for name, meta in insights.metrics_info.items()
        if meta.type in (MetricType.COUNTER, MetricType.GAUGE)
    }
    for name, meta in insights.metrics_info.items():
        if meta.type == MetricType.SUMMARY:
            names.update(f"{name}/{agg}" for agg in _AGGREGATIONS)
    if insights.slos is not None:
        names.update(normalize_name(slo.metric) for slo in [*insights.slos.upper,
                                                             *insights.slos.lower])
    return sorted(names, key=lambda n: n.encode())


def name_with_units(insights: Insights, name: str) -> str:
    name = normalize_name(name)
    meta = metric_meta(insights, name)
    if meta is not None and meta.units is not None:
        return f"{name} ({meta.units})"
    return name


@dataclass(frozen=True)
class MetricCatalog:
    """The metrics an experiment's tasks will record, known before anything runs.

    `names` are exact metric names; a name starting with one of `percentile_prefixes`
    followed by a percentile in (0, 100] is measured on demand (`http/latency-p97.5`);
    `open_providers` record metrics whose names are known only when they run (a template
    fetched from a URL), so any name under them may exist.
    """

    names: frozenset[str] = frozenset()
    percentile_prefixes: frozenset[str] = frozenset()
    open_providers: frozenset[str] = frozenset()

    def __or__(self, other: MetricCatalog) -> MetricCatalog:
        return MetricCatalog(self.names | other.names,
                             self.percentile_prefixes | other.percentile_prefixes,
                             self.open_providers | other.open_providers)

    def records(self, name: str) -> bool:
        """Whether a metric of this name will be recorded (or may be, for open providers)."""
        name = normalize_name(name)
        if name.split("/")[0] in self.open_providers or name in self.names:
            return True
        for prefix in self.percentile_prefixes:
            if name.startswith(prefix) and _DECIMAL.match(name[len(prefix):]):
                return 0 < float(name[len(prefix):]) <= 100
        return False

    def unknown_reason(self, name: str) -> str:
        """Why `name` will not be recorded, with the likeliest name meant."""
        reason = f"no task in this experiment records {name}"
        for prefix in self.percentile_prefixes:
            rest = name[len(prefix):]
            if name.startswith(prefix) and rest.isdigit() and float(rest) > 100:
                meant = f"{rest[:2]}.{rest[2:]}"
                escaped = meant.replace(".", _ESCAPED_DOT)
                return (f"{reason}: {rest} is not a percentile (at most 100); for the "
                        f"{meant}th percentile write {prefix}{meant} (in --set, "
                        f"{prefix}{escaped})")
        guess = difflib.get_close_matches(name, sorted(self.names), n=1, cutoff=0.75)
        if guess:
            return f"{reason}; did you mean {guess[0]}?"
        providers = sorted({n.split("/")[0] for n in self.names} | self.open_providers)
        if not providers:
            return f"{reason}: no task before it records metrics (add http, grpc or custommetrics)"
        return f"{reason}; its metrics come from {', '.join(providers)}"
