"""The confidence sequences' own arithmetic (stdlib only) against scipy, the reference.

scipy is a test dependency only: the product computes log Beta with `math.lgamma` and finds
roots by bisection. These tests hold both to scipy's `betaln` and `brentq` on the sizes a
canary sees and far beyond.
"""

from __future__ import annotations

import math

import pytest
from scipy.optimize import brentq
from scipy.special import betaln as scipy_betaln

from canarist.core.stats import sequences
from canarist.core.stats.sequences import (
    KNOWN_P_PRIOR_SIZE,
    UNKNOWN_P_PRIOR,
    betaln,
    count_region,
    find_root,
    proportion_interval,
)


def _log_mixture(successes: float, trials: int, p: float, a: float, b: float) -> float:
    failures = trials - successes
    return float(scipy_betaln(a + successes, b + failures) - scipy_betaln(a, b)
                 - successes * math.log(p) - failures * math.log1p(-p))


def scipy_count_region(trials: int, p: float, alpha: float) -> tuple[int, int]:
    """`count_region` as it was written on scipy."""
    a, b = KNOWN_P_PRIOR_SIZE * p, KNOWN_P_PRIOR_SIZE * (1 - p)
    threshold = math.log(1 / alpha)

    def excess(s: float) -> float:
        return _log_mixture(s, trials, p, a, b) - threshold

    centre = trials * p
    low = 0 if excess(0) < 0 else math.ceil(brentq(excess, 0, centre))
    high = trials if excess(trials) < 0 else math.floor(brentq(excess, centre, trials))
    return low, high


def scipy_proportion_interval(successes: int, trials: int, alpha: float) -> tuple[float, float]:
    """`proportion_interval` as it was written on scipy."""
    a, b = UNKNOWN_P_PRIOR
    threshold = math.log(1 / alpha)

    def excess(p: float) -> float:
        return _log_mixture(successes, trials, p, a, b) - threshold

    estimate = min(max(successes / trials, 1e-300), 1 - 1e-16)
    tiny = 1e-15
    low = 0.0 if successes == 0 or excess(tiny) < 0 else float(brentq(excess, tiny, estimate))
    high = 1.0 if successes == trials or excess(1 - tiny) < 0 else float(brentq(excess, estimate, 1 - tiny))
    return low, high


@pytest.mark.parametrize("a", [0.5, 1.0, 3.7, 95.0, 1e4, 1e6, 1e8])
@pytest.mark.parametrize("b", [0.5, 2.0, 10.0, 5e3, 1e7])
def test_betaln_matches_scipy(a: float, b: float) -> None:
    # scipy's own error reaches 1e-11 relative where one argument dwarfs the other
    expected = float(scipy_betaln(a, b))
    assert betaln(a, b) == pytest.approx(expected, rel=5e-11, abs=1e-9)
    assert betaln(b, a) == betaln(a, b)


@pytest.mark.parametrize("a", [1, 2, 7, 95, 5000])
@pytest.mark.parametrize("b", [0.5, 3.0, 12.5, 1e4, 1e7, 1e8])
def test_betaln_is_exact_where_it_can_be_summed(a: int, b: float) -> None:
    """For integer a, B(a, b) = (a - 1)! / (b (b + 1) ... (b + a - 1)): a sum of logs."""
    exact = math.lgamma(a) - math.fsum(math.log(b + k) for k in range(a))
    rounding = 1e-15 * max(1.0, math.lgamma(a))  # of the reference's own lgamma(a)
    assert betaln(a, b) == pytest.approx(exact, rel=1e-13, abs=rounding)


def test_find_root_matches_brentq_and_checks_the_bracket() -> None:
    for f, low, high in [(lambda x: x * x - 2, 0.0, 2.0), (math.cos, 0.0, 3.0),
                         (lambda x: math.log(x) + 30, 1e-300, 1.0), (lambda x: x - 1e6, 0.0, 1e7)]:
        root = find_root(f, low, high)
        assert root == pytest.approx(float(brentq(f, low, high)), rel=1e-12, abs=4e-12)
    assert find_root(lambda x: x, 0.0, 5.0) == 0.0
    with pytest.raises(ValueError, match="same sign"):
        find_root(lambda x: x * x + 1, -1.0, 1.0)


TRIALS = [1, 2, 5, 10, 37, 100, 101, 250, 999, 1000, 4321, 10_000, 123_457, 1_000_000, 10_000_000]


@pytest.mark.parametrize("p", [0.01, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999])
@pytest.mark.parametrize("alpha", [0.1, 0.05, 0.01])
def test_count_region_equals_scipy(p: float, alpha: float) -> None:
    for trials in TRIALS:
        assert count_region(trials, p, alpha) == scipy_count_region(trials, p, alpha), trials


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_proportion_interval_equals_scipy(alpha: float) -> None:
    for trials in TRIALS:
        for successes in sorted({0, 1, 2, trials // 1000, trials // 10, trials // 2, trials - 1, trials}):
            if 0 <= successes <= trials:
                low, high = proportion_interval(successes, trials, alpha)
                want_low, want_high = scipy_proportion_interval(successes, trials, alpha)
                # both find roots to 2e-12 absolute (brentq's xtol)
                assert low == pytest.approx(want_low, rel=1e-9, abs=5e-12), (successes, trials)
                assert high == pytest.approx(want_high, rel=1e-9, abs=5e-12), (successes, trials)


def test_the_product_does_not_import_scipy() -> None:
    assert "scipy" not in sequences.__dict__
    source = sequences.__file__
    assert source is not None
    with open(source, encoding="utf-8") as handle:
        text = handle.read()
    assert "import scipy" not in text and "from scipy" not in text
