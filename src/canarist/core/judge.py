"""Relative objectives: is a candidate worse than its baseline by more than the allowance?

A metric name says what is compared: `<provider>/latency-pNN` (or `latency/pNN`) a quantile of
the latency distribution, `<provider>/latency-mean` the mean, `<provider>/error-rate` the share
of failed requests, `agreement/rate` (and `agreement/within-tolerance`) the share of predictions
that agree with the baseline's. The judge reads the data behind the number - histograms and
counts - and states pass, fail or inconclusive with the estimate, its interval and the sample
sizes; see `canarist.core.stats.compare` for the guarantee.

Absolute SLOs on those proportions (`assess.SLOs.lower.agreement/rate=0.95`) are judged on
their counts too (`judge_slo`): a rate whose interval lies wholly on the right side of the limit
passes, wholly on the wrong side fails, and otherwise the data cannot tell yet, so a handful of
requests that all agree is inconclusive, never a pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from canarist.core.experiment import ComparisonRecord, HistBucket, Insights
from canarist.core.gofmt import format_value
from canarist.core.metrics import scalar_value
from canarist.core.stats.compare import (
    Allowance,
    Change,
    Direction,
    Interval,
    Outcome,
    change,
    verdict,
)
from canarist.core.stats.quantiles import CumulativeCounts, quantile_estimate, quantile_interval
from canarist.core.stats.sequences import mean_radius, proportion_interval

_QUANTILE = re.compile(r"^(?P<base>[^/]+/latency)[-/]p(?P<percent>\d+(?:\.\d+)?)$")
_MEAN = re.compile(r"^(?P<base>[^/]+/latency)[-/]mean$")
_ERROR_RATE = re.compile(r"^(?P<provider>[^/]+)/error-rate$")
PROPORTIONS: dict[str, tuple[str, str]] = {
    "agreement/rate": ("agreement/agreed", "agreement/compared"),
    "agreement/within-tolerance": ("agreement/within-count", "agreement/compared"),
}
"""Proportions judged on their counts: metric -> (successes, trials), as recorded."""


@dataclass(frozen=True)
class RelativeObjective:
    metric: str
    direction: Direction
    allowance: Allowance


@dataclass(frozen=True)
class Evidence:
    """What one version supplies for one objective: a distribution, or counts."""

    histogram: CumulativeCounts | None = None
    errors: int | None = None
    """The successes of a proportion: failed requests of an error rate, agreeing
    predictions of an agreement rate."""
    requests: int | None = None
    """The trials of a proportion: requests, or compared predictions."""
    mean: float | None = None
    """The exact mean when a metric records it (a histogram's sum over its count); the
    histogram's bucket midpoints give it otherwise."""
    missing: str = ""
    """Why the data is not there, when it is not."""

    @property
    def size(self) -> int:
        if self.histogram is not None:
            return self.histogram.total
        return self.requests or 0


@dataclass(frozen=True)
class Comparison:
    """The verdict on one objective for one candidate against the baseline."""

    metric: str
    candidate: int
    baseline: int
    direction: Direction
    allowance: str
    verdict: Outcome
    estimate: float | None
    interval: tuple[float, float] | None
    samples: tuple[int, int]
    """(candidate, baseline) sample sizes: requests, or observations in the histogram."""
    reason: str


def judgeable(metric: str) -> bool:
    """Whether a relative objective can be judged on `metric`."""
    return metric in PROPORTIONS or any(p.match(metric) for p in (_QUANTILE, _MEAN, _ERROR_RATE))


def evidence_needed(metric: str) -> tuple[str, ...]:
    """The recorded metrics a relative objective on `metric` reads."""
    if metric in PROPORTIONS:
        return PROPORTIONS[metric]
    if match := _QUANTILE.match(metric) or _MEAN.match(metric):
        return (match.group("base"),)
    if match := _ERROR_RATE.match(metric):
        provider = match.group("provider")
        return (f"{provider}/error-count", f"{provider}/request-count")
    raise ValueError(f"{metric}: relative objectives take latency-pNN, latency-mean, error-rate "
                     "or agreement/rate")


def compare(objective: RelativeObjective, candidate: tuple[int, Evidence],
            baseline: tuple[int, Evidence], confidence: float) -> Comparison:
    """Judge one candidate against the baseline on one objective.

    Each version's interval is built at level 1 - alpha/2 (alpha = 1 - confidence) so that both
    hold together with probability at least `confidence`, at every look.
    """
    (c_index, c_data), (b_index, b_data) = candidate, baseline
    alpha = (1 - confidence) / 2
    samples = (c_data.size, b_data.size)

    def judged(outcome: Outcome, reason: str, found: Change | None = None) -> Comparison:
        return Comparison(
            metric=objective.metric, candidate=c_index, baseline=b_index,
            direction=objective.direction, allowance=objective.allowance.text, verdict=outcome,
            estimate=found.estimate if found else None,
            interval=(found.interval.low, found.interval.high) if found else None,
            samples=samples, reason=reason)

    for index, data in ((c_index, c_data), (b_index, b_data)):
        if data.missing:
            return judged("inconclusive", f"version {index}: {data.missing}")
        if data.size == 0:
            return judged("inconclusive", f"version {index} received no requests")
    c_est, b_est = (_estimate(objective.metric, data, alpha) for data in (c_data, b_data))
    found = change(c_est.value, b_est.value, c_est.interval, b_est.interval,
                   objective.allowance, objective.direction)
    if found.outcome == "inconclusive" and c_est.resolution and b_est.resolution:
        finest = change(c_est.value, b_est.value, c_est.resolution, b_est.resolution,
                        objective.allowance, objective.direction)
        if finest.outcome == "inconclusive":
            return judged("inconclusive", _coarse_reason(objective, c_est, b_est), found)
    return judged(found.outcome, _reason(objective, found, samples, confidence), found)


@dataclass(frozen=True)
class _Estimate:
    value: float | None
    interval: Interval
    resolution: Interval | None = None
    """The narrowest interval the histogram's buckets allow, however much data there is."""


def _estimate(metric: str, data: Evidence, alpha: float) -> _Estimate:
    if match := _QUANTILE.match(metric):
        if data.histogram is None:
            raise ValueError(f"{metric}: no latency histogram")
        p = float(match.group("percent")) / 100
        interval = Interval(*quantile_interval(data.histogram, p, alpha))
        if _beyond_last_bucket(data.histogram, p):
            # no finite bound above it: neither an estimate nor more requests can place it
            last = float(data.histogram.bounds[-2]) if len(data.histogram.bounds) > 1 else 0.0
            return _Estimate(None, interval, Interval(last, math.inf))
        value = quantile_estimate(data.histogram, p)
        resolution = None
        if value is not None and not data.histogram.exact:
            resolution = _bucket_around(data.histogram, value)
        return _Estimate(value, interval, resolution)
    if _MEAN.match(metric):
        if data.histogram is None:
            raise ValueError(f"{metric}: no latency histogram")
        mean, sd = histogram_moments(data.histogram)
        if data.mean is not None:
            mean = data.mean
        radius = mean_radius(sd, data.histogram.total, alpha)
        return _Estimate(mean, Interval(max(0.0, mean - radius), mean + radius))
    if data.errors is None or data.requests is None:
        raise ValueError(f"{metric}: no error and request counts")
    errors = min(data.errors, data.requests)
    return _Estimate(errors / data.requests,
                     Interval(*proportion_interval(errors, data.requests, alpha)))


def _beyond_last_bucket(data: CumulativeCounts, p: float) -> bool:
    """Whether the p-quantile lies in a final +Inf bucket."""
    if data.total == 0 or not math.isinf(data.bounds[-1]):
        return False
    below_inf = int(data.counts[-2]) if len(data.counts) > 1 else 0
    return below_inf < p * data.total


def _bucket_around(data: CumulativeCounts, value: float) -> Interval:
    """The edges of the bucket `value` falls in (the first bucket starts at 0)."""
    index = int(np.searchsorted(data.bounds, value, side="left"))
    upper = float(data.bounds[index]) if index < len(data.bounds) else math.inf
    lower = float(data.bounds[index - 1]) if index > 0 else 0.0
    return Interval(min(lower, value), max(upper, value))


def _coarse_reason(objective: RelativeObjective, candidate: _Estimate, baseline: _Estimate) -> str:
    assert candidate.resolution is not None and baseline.resolution is not None
    return (f"the histogram buckets around the estimates ({_edges(candidate.resolution)} for the "
            f"candidate, {_edges(baseline.resolution)} for the baseline) are too coarse to tell "
            f"a change of {objective.allowance.text}; more requests will not decide it")


def _edges(interval: Interval) -> str:
    return f"{format_value(interval.low)}-{format_value(interval.high)}"


def evidence(insights: Insights, version: int, metric: str) -> Evidence:
    """The data a relative objective on `metric` reads for one version."""
    if metric not in PROPORTIONS and (match := _QUANTILE.match(metric) or _MEAN.match(metric)):
        base = match.group("base")
        buckets = insights.hist_metric_values[version].get(base)
        if not buckets:
            reason = insights.unavailable[version].get(metric) or insights.unavailable[
                version].get(base) or f"no latency histogram {base} was recorded"
            return Evidence(missing=reason)
        # The recorded mean describes the same requests as the histogram only when the
        # histogram holds one measurement (a load test's buckets accumulate over loops).
        one_measurement = (len({b.upper for b in buckets}) == len(buckets)
                           and _describes_latest_load(insights, version, base, buckets))
        exact = (scalar_value(insights, version, metric).value
                 if _MEAN.match(metric) and one_measurement else None)
        return Evidence(histogram=histogram_counts(buckets), mean=exact)
    errors_name, requests_name = evidence_needed(metric)
    errors, requests = (scalar_value(insights, version, errors_name),
                        scalar_value(insights, version, requests_name))
    if errors.value is None:
        return Evidence(missing=errors.reason)
    if requests.value is None:
        return Evidence(missing=requests.reason)
    if metric in PROPORTIONS and not requests.value:  # say why nothing was compared
        return Evidence(missing=insights.unavailable[version].get(metric)
                        or f"nothing was compared ({requests_name} is 0)")
    return Evidence(errors=round(errors.value), requests=round(requests.value))


def _describes_latest_load(insights: Insights, version: int, base: str,
                           buckets: Sequence[HistBucket]) -> bool:
    """Whether a load test's histogram holds its latest loop's requests only: a load test
    (its provider records late sends) adds each loop's buckets to the earlier loops', so its
    total is the latest loop's successful requests only in its first loop. Other histograms
    (custommetrics') are replaced by every loop."""
    provider = base.split("/")[0]
    if not insights.non_hist_metric_values[version].get(f"{provider}/late-sends"):
        return True
    requests = scalar_value(insights, version, f"{provider}/request-count").value
    errors = scalar_value(insights, version, f"{provider}/error-count").value
    if requests is None or errors is None:
        return False
    return sum(b.count for b in buckets) == round(requests - errors)


def histogram_counts(buckets: Sequence[HistBucket]) -> CumulativeCounts:
    """Cumulative counts at each bucket's edges; buckets with the same edges add up. A lower
    edge that is no other bucket's upper one (a load test's first bucket starts at its
    fastest request) bounds the data too: nothing lies below it."""
    counts: dict[float, int] = {}
    for bucket in buckets:
        counts.setdefault(bucket.lower, 0)
    for bucket in buckets:
        counts[bucket.upper] = counts.get(bucket.upper, 0) + bucket.count
    uppers = sorted(counts)
    return CumulativeCounts(np.array(uppers, dtype=float),
                            np.cumsum([counts[u] for u in uppers], dtype=np.int64))


def histogram_moments(data: CumulativeCounts) -> tuple[float, float]:
    """Mean and standard deviation of a histogram, each observation at its bucket's middle
    (exact for exact samples); the +Inf bucket counts at the last finite bound."""
    bounds = np.asarray(data.bounds, dtype=float)
    finite = bounds[np.isfinite(bounds)]
    uppers = np.where(np.isfinite(bounds), bounds, finite[-1] if len(finite) else 0.0)
    lowers = np.concatenate(([min(0.0, uppers[0])], uppers[:-1]))
    points = uppers if data.exact else (lowers + uppers) / 2
    weights = np.diff(np.concatenate(([0], np.asarray(data.counts))))
    mean = float(np.average(points, weights=weights))
    variance = float(np.average((points - mean) ** 2, weights=weights))
    n = data.total
    return mean, math.sqrt(variance * n / (n - 1)) if n > 1 else math.inf


def _reason(objective: RelativeObjective, found: Change, samples: tuple[int, int],
            confidence: float) -> str:
    allowance = objective.allowance
    show = _percent if allowance.relative else _number
    span = f"between {show(found.interval.low)} and {show(found.interval.high)}"
    limit = f"+{allowance.text}" if objective.direction == "upper" else f"-{allowance.text}"
    level = f"{format_value(round(confidence * 100, 6))} %"
    estimate = "" if found.estimate is None else f"{show(found.estimate)}, "
    if found.outcome == "pass":
        return f"{estimate}{span}: within the allowance {limit} at {level} confidence"
    if found.outcome == "fail":
        return f"{estimate}{span}: beyond the allowance {limit} at {level} confidence"
    more = _more_needed(objective, found, samples[0])
    return (f"{estimate}{span}: the data cannot yet tell whether it is within {limit} "
            f"({samples[0]} candidate and {samples[1]} baseline samples{more})")


def _more_needed(objective: RelativeObjective, found: Change, size: int) -> str:
    """Roughly how many more candidate samples would decide, if the estimate held: interval
    widths shrink about as 1/sqrt(n)."""
    if math.isinf(found.interval.high - found.interval.low):
        return "; too few to bound the change on both sides"
    if found.estimate is None or size == 0:
        return ""
    edge = objective.allowance.amount if objective.direction == "upper" else -objective.allowance.amount
    gap = abs(found.estimate - edge)
    half = (found.interval.high - found.interval.low) / 2
    if gap <= half / 100:
        return "; the estimate sits on the allowance"
    needed = math.ceil(size * (half / gap) ** 2)
    return f"; about {needed - size} more candidate samples would likely decide" if needed > size else ""


def _percent(value: float) -> str:
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value * 100:+.1f} %"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.4g}"


def record(found: Comparison, earlier: ComparisonRecord | None,
           objective: RelativeObjective, confidence: float) -> ComparisonRecord:
    """The comparison as stored in the result, its interval intersected with the earlier
    looks' when there are any: every look's interval holds the true change at every look at
    once (with the stated confidence), so their intersection does too and can only narrow."""
    stored = ComparisonRecord(
        metric=found.metric, candidate=found.candidate, baseline=found.baseline,
        direction=found.direction, allowance=found.allowance, verdict=found.verdict,
        estimate=found.estimate, interval=_bounded(found.interval),
        samples={"candidate": found.samples[0], "baseline": found.samples[1]},
        reason=found.reason, confidence=confidence)
    if earlier is None:
        return stored
    looks = earlier.looks + 1
    if earlier.interval is None or found.interval is None:
        return stored.model_copy(update={"looks": looks})
    low = max(found.interval[0], _unbounded(earlier.interval[0], -math.inf))
    high = min(found.interval[1], _unbounded(earlier.interval[1], math.inf))
    if low > high:  # disjoint only if a version changed between looks: trust the latest
        return stored.model_copy(update={"looks": looks})
    narrowed = Interval(low, high)
    outcome = verdict(narrowed, objective.allowance, objective.direction)
    reason = found.reason
    if (low, high) != found.interval:
        show = _percent if objective.allowance.relative else _number
        reason = (f"{reason}; with the {looks - 1} earlier look(s), between {show(low)} and "
                  f"{show(high)}: {outcome}")
    return stored.model_copy(update={"interval": _bounded((low, high)), "verdict": outcome,
                                     "reason": reason, "looks": looks})


def _bounded(interval: tuple[float, float] | None) -> tuple[float | None, float | None] | None:
    """An interval as stored: None stands for an unbounded end (YAML and JSON have no inf)."""
    if interval is None:
        return None
    low, high = interval
    return (None if math.isinf(low) else low, None if math.isinf(high) else high)


def _unbounded(end: float | None, infinity: float) -> float:
    return infinity if end is None else end


@dataclass(frozen=True)
class SLOJudgement:
    """An absolute SLO on a proportion, judged on its counts for one version."""

    verdict: Outcome
    estimate: float | None
    interval: tuple[float, float] | None
    samples: int
    reason: str


def judge_slo(insights: Insights, version: int, metric: str, bound: Direction, limit: float,
              confidence: float) -> SLOJudgement | None:
    """pass, fail or inconclusive for an SLO on a proportion (None: the metric is not one, and
    its SLO compares the latest value with the limit). The interval is the proportion's
    confidence sequence at `confidence`: valid at every look, with no minimum sample size."""
    if metric not in PROPORTIONS:
        return None
    data = evidence(insights, version, metric)
    if data.missing or not data.size or data.errors is None or data.requests is None:
        why = data.missing or "nothing was compared"
        return SLOJudgement("inconclusive", None, None, data.size, why)
    successes, trials = min(data.errors, data.requests), data.requests
    low, high = proportion_interval(successes, trials, 1 - confidence)
    if bound == "lower":
        outcome: Outcome = "pass" if low >= limit else "fail" if high < limit else "inconclusive"
    else:
        outcome = "pass" if high <= limit else "fail" if low > limit else "inconclusive"
    side = "at least" if bound == "lower" else "at most"
    level = f"{format_value(round(confidence * 100, 6))} %"
    said = {"pass": f"{side} {format_value(limit)} at {level} confidence",
            "fail": f"not {side} {format_value(limit)} at {level} confidence",
            "inconclusive": f"the data cannot yet tell whether it is {side} "
                            f"{format_value(limit)} at {level} confidence"}[outcome]
    reason = (f"{successes} of {trials} ({successes / trials:.4g}), between {low:.4g} and "
              f"{high:.4g}: {said}")
    return SLOJudgement(outcome, successes / trials, (low, high), trials, reason)
