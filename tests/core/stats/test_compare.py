"""Verdicts on the candidate's change: error rates by simulation, edge cases by example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from canarist.core.stats.compare import Allowance, Interval, change
from canarist.core.stats.quantiles import CumulativeCounts, quantile_estimate, quantile_interval
from canarist.core.stats.sequences import proportion_interval

ALPHA = 0.05
RUNS = 300
LIMIT = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)  # 0.088


def p90_verdicts(rng: np.random.Generator, slowdown: float, allowance: str, n_candidate: int,
                 looks: int = 10) -> list[str]:
    """The verdict at each of `looks` looks of a canary taking 10 % of the traffic."""
    candidate = rng.lognormal(0, 0.5, n_candidate) * slowdown
    baseline = rng.lognormal(0, 0.5, 9 * n_candidate)
    verdicts = []
    for look in range(1, looks + 1):
        c = CumulativeCounts.from_samples(candidate[: n_candidate * look // looks])
        b = CumulativeCounts.from_samples(baseline[: 9 * n_candidate * look // looks])
        verdicts.append(change(
            quantile_estimate(c, 0.9), quantile_estimate(b, 0.9),
            Interval(*quantile_interval(c, 0.9, ALPHA / 2)),
            Interval(*quantile_interval(b, 0.9, ALPHA / 2)),
            Allowance.parse(allowance), "upper").outcome)
    return verdicts


def test_no_change_rarely_fails_however_often_one_looks() -> None:
    """A/A, p90 with a 0 % allowance, 600 candidate requests seen over 10 looks: some look
    failed in none of 300 runs (alpha = 5 %)."""
    rng = np.random.default_rng(21)
    fails = sum("fail" in p90_verdicts(rng, 1.0, "0%", 600) for _ in range(RUNS))
    assert fails / RUNS <= LIMIT, fails


def test_a_candidate_worse_than_allowed_rarely_passes() -> None:
    """p90 30 % slower against a 20 % allowance: some look passed in none of 300 runs."""
    rng = np.random.default_rng(22)
    passes = sum("pass" in p90_verdicts(rng, 1.3, "20%", 600) for _ in range(RUNS))
    assert passes / RUNS <= LIMIT, passes


def test_a_large_regression_is_found_and_no_change_passes() -> None:
    """At 600 candidate requests: a +50 % p90 fails against a 20 % allowance in 98 of 100 runs;
    no change passes against a 30 % allowance in 98 of 100."""
    rng = np.random.default_rng(23)
    detected = sum(p90_verdicts(rng, 1.5, "20%", 600, looks=1)[-1] == "fail" for _ in range(100))
    passed = sum(p90_verdicts(rng, 1.0, "30%", 600, looks=1)[-1] == "pass" for _ in range(100))
    assert detected >= 85 and passed >= 80, (detected, passed)


def test_thin_data_is_never_a_pass() -> None:
    rng = np.random.default_rng(24)
    assert set(p90_verdicts(rng, 1.0, "50%", 20, looks=1)) == {"inconclusive"}


def test_error_rate_zero_errors_passes_an_absolute_allowance_only_with_enough_requests() -> None:
    def verdict(requests: int) -> str:
        c = Interval(*proportion_interval(0, requests, ALPHA / 2))
        b = Interval(*proportion_interval(0, 9 * requests, ALPHA / 2))
        return change(0.0, 0.0, c, b, Allowance.parse("0.01"), "upper").outcome
    assert verdict(30) == "inconclusive"
    assert verdict(2000) == "pass"


@pytest.mark.parametrize(("text", "amount", "relative"), [
    ("20%", 0.2, True), (" 5 ", 5.0, False), ("0.01", 0.01, False), (".5%", 0.005, True),
    (3, 3.0, False), (0, 0.0, False)])
def test_allowance_parse(text: str | int, amount: float, relative: bool) -> None:
    allowance = Allowance.parse(text)
    assert allowance.amount == pytest.approx(amount) and allowance.relative is relative


@pytest.mark.parametrize("text", ["-5", "20 %%", "twenty", "", "5ms", -1, math.nan, True])
def test_allowance_rejects(text: str | float) -> None:
    with pytest.raises(ValueError, match="expected"):
        Allowance.parse(text)


def test_change_directions_and_unbounded_baselines() -> None:
    ten_percent = Allowance.parse("10%")
    # higher is worse: candidate 20-30 against baseline 10-11 is at least +82 %: fail
    worse = change(25, 10.5, Interval(20, 30), Interval(10, 11), ten_percent, "upper")
    assert worse.outcome == "fail" and worse.interval.low == pytest.approx(20 / 11 - 1)
    # lower is worse (throughput): the same numbers are an improvement: pass
    assert change(25, 10.5, Interval(20, 30), Interval(10, 11), ten_percent, "lower").outcome \
        == "pass"
    # a baseline that may be 0 cannot bound a ratio from above
    unbounded = change(1, 0, Interval(0.5, 2), Interval(0, 0.1), ten_percent, "upper")
    assert unbounded.interval.high == math.inf and unbounded.outcome == "fail"
    assert change(0, 0, Interval(0, 0.2), Interval(0, 0.3), ten_percent, "upper").outcome \
        == "inconclusive"
    absolute = change(3, 2, Interval(2.5, 3.5), Interval(1.5, 2.5), Allowance.parse(2), "upper")
    assert absolute.outcome == "pass" and absolute.estimate == 1
