"""The agreement rate's interval keeps its promise, checked by simulation (seeded, so the figures
in the docstrings repeat exactly).

A payload's rows stand for the inputs a model sees; each compared prediction agrees or not, and
the rate's interval (`canarist.core.agreement.rate_interval`, the judge's confidence sequence
for a proportion) must hold the true agreement rate in at least 95 % of runs, at any sample
size and at every look. Thin data must never pass an SLO the true rate does not meet.
"""

from __future__ import annotations

import numpy as np
import pytest

from canarist.core.agreement import rate_interval
from canarist.core.experiment import Insights, MetricMeta, MetricType
from canarist.core.judge import judge_slo

CONFIDENCE = 0.95
RUNS = 2000


@pytest.mark.parametrize(("rate", "size", "covered"), [
    (0.9, 50, 1.0), (0.9, 150, 0.9995), (0.9, 1000, 1.0),
    (0.973, 50, 0.9995), (0.973, 150, 1.0), (0.973, 1000, 0.9995),
    (0.995, 50, 1.0), (0.995, 150, 1.0), (0.995, 1000, 1.0),
])
def test_the_interval_covers_the_true_rate(rate: float, size: int, covered: float) -> None:
    """2,000 runs of `size` compared predictions, each agreeing with probability `rate`: the
    interval held the true rate in 99.95 % to 100 % of runs (the `covered` column), against the
    95 % promised: conservative at one look, the price of holding at every look."""
    rng = np.random.default_rng(int(rate * 1000) + size)
    agreed = rng.binomial(size, rate, RUNS)
    hits = 0
    for count in agreed.tolist():
        low, high = rate_interval(count, size, CONFIDENCE)
        hits += low <= rate <= high
    assert hits / RUNS >= CONFIDENCE
    assert hits / RUNS == pytest.approx(covered, abs=1e-9)


def test_the_interval_covers_at_every_look() -> None:
    """400 streams of 2,000 predictions agreeing with probability 0.97, the interval looked at
    after every 50: it missed the true rate at some look in 0.5 % of streams (2 of 400)."""
    rng = np.random.default_rng(31)
    missed = 0
    for _ in range(400):
        counts = np.cumsum(rng.random(2000) < 0.97)
        missed += any(not rate_interval(int(counts[t - 1]), t, CONFIDENCE)[0] <= 0.97
                      <= rate_interval(int(counts[t - 1]), t, CONFIDENCE)[1]
                      for t in range(50, 2001, 50))
    assert missed / 400 <= 1 - CONFIDENCE
    assert missed == 2


def test_a_sample_of_a_payload_covers_the_rate_on_the_inputs_it_stands_for() -> None:
    """A population of 10,000 inputs on which two models disagree on 3 %; 2,000 payloads of 150
    rows drawn from it without replacement, as `numRequests` with a seed draws them: the
    interval held the population's rate in all of them."""
    rng = np.random.default_rng(32)
    population = np.ones(10_000, dtype=bool)
    population[rng.choice(10_000, 300, replace=False)] = False
    truth = float(population.mean())
    hits = 0
    for _ in range(RUNS):
        rows = rng.choice(10_000, 150, replace=False)
        low, high = rate_interval(int(population[rows].sum()), 150, CONFIDENCE)
        hits += low <= truth <= high
    assert hits / RUNS >= CONFIDENCE
    assert hits / RUNS == 1.0


def insights_with(agreed: int, compared: int) -> Insights:
    insights = Insights(numVersions=1, metricsInfo={
        name: MetricMeta(type=MetricType.COUNTER) for name in ("agreement/agreed",
                                                                "agreement/compared")})
    insights.non_hist_metric_values[0]["agreement/agreed"] = [float(agreed)]
    insights.non_hist_metric_values[0]["agreement/compared"] = [float(compared)]
    return insights


def test_few_predictions_that_all_agree_are_inconclusive_not_a_pass() -> None:
    for size in (1, 5, 10, 30, 60):
        found = judge_slo(insights_with(size, size), 0, "agreement/rate", "lower", 0.95, 0.95)
        assert found is not None and found.verdict == "inconclusive", (size, found)
    enough = judge_slo(insights_with(150, 150), 0, "agreement/rate", "lower", 0.95, 0.95)
    assert enough is not None and enough.verdict == "pass"
    assert enough.reason == ("150 of 150 (1), between 0.9603 and 1: at least 0.95 at 95 % "
                             "confidence")
    worse = judge_slo(insights_with(70, 100), 0, "agreement/rate", "lower", 0.95, 0.95)
    assert worse is not None and worse.verdict == "fail"


def test_an_slo_the_true_rate_misses_passes_rarely_whatever_the_size() -> None:
    """True rate 0.93 against an SLO of at least 0.95, 2,000 runs at each size from 10 to 1,000
    predictions: it passed in none of them (the promise: at most 5 %)."""
    rng = np.random.default_rng(33)
    passed = 0
    for size in (10, 30, 100, 300, 1000):
        for count in rng.binomial(size, 0.93, RUNS).tolist():
            found = judge_slo(insights_with(count, size), 0, "agreement/rate", "lower", 0.95,
                              CONFIDENCE)
            assert found is not None
            passed += found.verdict == "pass"
    assert passed / (5 * RUNS) <= 1 - CONFIDENCE
    assert passed == 0
