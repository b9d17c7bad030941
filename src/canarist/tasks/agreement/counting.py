"""Counting agreement: each body's answers into every version's tally, and the tallies into
the result's insights.
"""

from __future__ import annotations

import json

from canarist.backends.inference import (
    CallFailed,
)
from canarist.core.agreement import (
    NonConforming,
    OutputsMode,
    Pair,
    Prediction,
    Tally,
    Tolerance,
    compare,
    shown,
)
from canarist.core.experiment import (
    AgreementExample,
    Insights,
    MetricMeta,
    MetricType,
)
from canarist.core.insights import (
    add_value,
    mark_unavailable,
    record_errors,
    register_metric,
)
from canarist.tasks.agreement.sending import Answers
from canarist.tasks.agreement.targets import Targets

PROVIDER = "agreement"
COUNTS: dict[str, MetricMeta] = {
    "agreement/request-count": MetricMeta(
        description="requests sent to this version (the baseline: twice each with the noise "
                    "floor)", type=MetricType.COUNTER),
    "agreement/error-count": MetricMeta(
        description="requests to this version that failed or whose answer did not conform to "
                    "the protocol", type=MetricType.COUNTER),
    "agreement/compared": MetricMeta(
        description="predictions compared with the baseline's (the baseline: with its own "
                    "second answer)", type=MetricType.COUNTER),
    "agreement/agreed": MetricMeta(
        description="compared predictions that agree: the same class, or numbers within "
                    "tolerance", type=MetricType.COUNTER),
}
RATES: dict[str, MetricMeta] = {
    "agreement/rate": MetricMeta(
        description="share of compared predictions that agree with the baseline's (the "
                    "baseline: with its own second answer, its noise floor)",
        type=MetricType.GAUGE),
    "agreement/noise-floor": MetricMeta(
        description="share of the baseline's predictions that agree with its own second "
                    "answer to the same request", type=MetricType.GAUGE),
}
NUMERIC: dict[str, MetricMeta] = {
    "agreement/mean-abs-diff": MetricMeta(
        description="mean absolute difference of numeric predictions from the baseline's",
        type=MetricType.GAUGE),
    "agreement/max-abs-diff": MetricMeta(
        description="largest absolute difference of a numeric prediction from the baseline's",
        type=MetricType.GAUGE),
    "agreement/within-tolerance": MetricMeta(
        description="share of numeric predictions within agreement.tolerance of the "
                    "baseline's", type=MetricType.GAUGE),
    "agreement/within-count": MetricMeta(
        description="numeric predictions within agreement.tolerance of the baseline's",
        type=MetricType.COUNTER),
}
METRICS = frozenset({*COUNTS, *RATES, *NUMERIC})


def tally_answers(answers: Answers, tallies: list[Tally], baseline: int, mode: OutputsMode,
                  tolerance: Tolerance, examples: int) -> None:
    """Add one body's answers to every version's tally."""
    first = answers.first
    reference = first[baseline]
    for index, found in enumerate(first):
        if found is None:
            continue
        tallies[index].requests += 1
        if isinstance(found, CallFailed):
            tallies[index].error(found.code, found.message)
    if answers.second is not None:
        tallies[baseline].requests += 1
        if isinstance(answers.second, CallFailed):
            tallies[baseline].error(answers.second.code, answers.second.message)
    if not isinstance(reference, list):
        return
    for index, found in enumerate(first):
        other = answers.second if index == baseline else found
        if not isinstance(other, list):
            continue
        try:
            pairs = [compare(b, c, mode, tolerance) for b, c in zip(reference, other, strict=True)]
        except NonConforming as exc:
            tallies[index].error("invalid-response", str(exc))
            continue
        for instance, (pair, b, c) in enumerate(zip(pairs, reference, other, strict=True)):
            tallies[index].add(pair, _example(answers, instance, b, c, pair), examples)


def _example(answers: Answers, instance: int, baseline: Prediction, candidate: Prediction,
             pair: Pair) -> AgreementExample | None:
    if pair.agree:
        return None
    return AgreementExample(line=answers.row.line, instance=instance,
                            request=shown(answers.row.body), baseline=shown_prediction(baseline),
                            candidate=shown_prediction(candidate))


def shown_prediction(prediction: Prediction) -> str:
    return shown(json.loads(prediction.shown))


def record(insights: Insights, tallies: list[Tally], targets: Targets, noise_floor: bool,
           labels: list[str]) -> None:
    """Every version's metrics: its comparison with the baseline; the baseline's with itself."""
    for name, meta in (COUNTS | RATES).items():
        register_metric(insights, name, meta)
    baseline = targets.baseline
    floor = tallies[baseline]
    numeric = any(t.all_numeric for t in tallies)
    if numeric:
        for name, meta in NUMERIC.items():
            register_metric(insights, name, meta)
    for index, tally in enumerate(tallies):
        if targets.endpoints[index] is None:
            reason = "not routed: discovery found no tag host for this version"
            for name in METRICS:
                mark_unavailable(insights, index, name, reason)
            continue
        add_value(insights, index, "agreement/request-count", tally.requests)
        add_value(insights, index, "agreement/error-count", tally.error_count)
        record_errors(insights, index, PROVIDER,
                      [(code, count, message) for code, (count, message) in tally.errors.items()])
        if index == baseline and not noise_floor:
            reason = ("not measured: agreement.noiseFloor is false, so the baseline was not "
                      "compared with itself")
            for name in (*RATES, "agreement/compared", "agreement/agreed", *NUMERIC):
                mark_unavailable(insights, index, name, reason)
            continue
        add_value(insights, index, "agreement/compared", tally.compared)
        add_value(insights, index, "agreement/agreed", tally.agreed)
        reason = _nothing_compared(tally, tallies[baseline], labels[baseline], index == baseline)
        if tally.rate is None:
            mark_unavailable(insights, index, "agreement/rate", reason)
        else:
            add_value(insights, index, "agreement/rate", tally.rate)
        _record_numeric(insights, index, tally, reason)
    for index in range(len(tallies)):
        if targets.endpoints[index] is None:
            continue
        if not noise_floor:
            mark_unavailable(insights, index, "agreement/noise-floor",
                             "not measured: agreement.noiseFloor is false")
        elif floor.rate is None:
            mark_unavailable(insights, index, "agreement/noise-floor",
                             _nothing_compared(floor, floor, labels[baseline], True))
        else:
            add_value(insights, index, "agreement/noise-floor", floor.rate)


def _record_numeric(insights: Insights, index: int, tally: Tally, reason: str) -> None:
    if tally.all_numeric:
        add_value(insights, index, "agreement/mean-abs-diff",
                  tally.diff_sum / tally.diff_count if tally.diff_count else 0.0)
        add_value(insights, index, "agreement/max-abs-diff", tally.diff_max)
        add_value(insights, index, "agreement/within-tolerance", tally.within / tally.numeric)
        add_value(insights, index, "agreement/within-count", tally.within)
        return
    why = reason if not tally.compared else "the predictions are classes, not numbers"
    for name in NUMERIC:
        mark_unavailable(insights, index, name, why)


def _nothing_compared(tally: Tally, baseline: Tally, baseline_label: str, is_baseline: bool) -> str:
    if tally.compared:
        return ""
    if tally.errors:
        failures = ", ".join(f"{code} ×{count}" for code, (count, _) in tally.errors.items())
        return f"no prediction could be compared: {tally.error_count} of {tally.requests} " \
               f"requests failed ({failures})"
    if baseline.errors and not is_baseline:
        return (f"no prediction could be compared: the baseline {baseline_label} answered none "
                "of the requests")
    return "no prediction was compared"
