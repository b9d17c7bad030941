"""Confidence sequences for a success probability and for a mean.

Both binomial sequences use Robbins' beta-binomial mixture martingale (Robbins, "Statistical
methods related to the law of the iterated logarithm", Ann. Math. Statist. 1970): for a fixed
success probability p the mixture likelihood ratio

    M_t = B(a + S_t, b + t - S_t) / B(a, b) / (p^S_t (1 - p)^(t - S_t))

is a nonnegative martingale with M_0 = 1, so by Ville's inequality it ever reaches 1/alpha with
probability at most alpha. The values of p (or of S_t) where M_t stays below 1/alpha form a
confidence sequence: valid at every t at once, with no minimum sample size.

Only the standard library is used (`math.lgamma` for log Beta, bisection for the roots), so the
judge needs no scipy; tests check both against scipy's `betaln` and `brentq`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

# Prior effective size for a known p (quantile tests): narrowest bands for a few hundred to a
# few thousand samples, the sizes of a canary (measured over k = 1..300 at p = 0.9).
KNOWN_P_PRIOR_SIZE = 10.0
# Prior for an unknown proportion (error rates): Jeffreys' Beta(1/2, 1/2), fixed in advance.
UNKNOWN_P_PRIOR = (0.5, 0.5)
# Root tolerance, as scipy's brentq: |x - root| <= XTOL + RTOL * |x|.
XTOL = 2e-12
RTOL = 4 * 2.220446049250313e-16


def _stirling_correction(x: float) -> float:
    """lgamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2), for x >= 10 (error below 1e-13)."""
    inverse, square = 1 / x, 1 / (x * x)
    return inverse * (1 / 12 - square * (1 / 360 - square * (1 / 1260 - square * (
        1 / 1680 - square / 1188))))


def betaln(a: float, b: float) -> float:
    """log B(a, b) for a, b > 0, without the cancellation of lgamma's when one is large."""
    small, large = min(a, b), max(a, b)
    if large < 10:
        return math.lgamma(small) + math.lgamma(large) - math.lgamma(small + large)
    total = small + large
    # lgamma(large) - lgamma(total) by Stirling, its large terms cancelled analytically
    difference = (-(large - 0.5) * math.log1p(small / large) - small * math.log(total) + small
                  + _stirling_correction(large) - _stirling_correction(total))
    return math.lgamma(small) + difference


def find_root(f: Callable[[float], float], low: float, high: float) -> float:
    """A root of `f` in [low, high], where f(low) and f(high) differ in sign (bisection)."""
    f_low, f_high = f(low), f(high)
    if f_low == 0:
        return low
    if f_high == 0:
        return high
    if (f_low > 0) == (f_high > 0):
        raise ValueError(f"f({low}) and f({high}) have the same sign")
    for _ in range(2000):  # each step halves the bracket: 1,100 steps reach any float
        middle = low + (high - low) / 2
        if high - low <= 2 * (XTOL + RTOL * abs(middle)) or middle in (low, high):
            return middle
        f_middle = f(middle)
        if f_middle == 0:
            return middle
        if (f_middle > 0) == (f_low > 0):
            low, f_low = middle, f_middle
        else:
            high = middle
    return low + (high - low) / 2


def _log_mixture(successes: float, trials: int, p: float, a: float, b: float) -> float:
    """log M_t for `successes` of `trials` under success probability `p` (0 < p < 1)."""
    failures = trials - successes
    return (betaln(a + successes, b + failures) - betaln(a, b)
            - successes * math.log(p) - failures * math.log1p(-p))


@lru_cache(maxsize=4096)
def count_region(trials: int, p: float, alpha: float) -> tuple[int, int]:
    """The success counts (low, high) consistent with probability `p` after `trials` draws.

    With probability at least 1 - alpha, the count of successes stays within the region at
    every number of trials at once (two-sided; the mixture prior is centred on p).
    """
    if not 0 < p < 1:
        raise ValueError(f"p must be strictly between 0 and 1, got {p}")
    if trials == 0:
        return 0, 0
    a, b = KNOWN_P_PRIOR_SIZE * p, KNOWN_P_PRIOR_SIZE * (1 - p)
    threshold = math.log(1 / alpha)

    def excess(s: float) -> float:
        return _log_mixture(s, trials, p, a, b) - threshold

    centre = trials * p  # where M_t is smallest (at most 1): always inside
    low = 0 if excess(0) < 0 else math.ceil(find_root(excess, 0, centre))
    high = trials if excess(trials) < 0 else math.floor(find_root(excess, centre, trials))
    return low, high


@lru_cache(maxsize=4096)
def proportion_interval(successes: int, trials: int, alpha: float) -> tuple[float, float]:
    """A (1 - alpha) confidence sequence for an unknown success probability.

    Valid with zero successes (the interval is then [0, upper]); with no trials it is [0, 1].
    """
    if trials == 0:
        return 0.0, 1.0
    a, b = UNKNOWN_P_PRIOR
    threshold = math.log(1 / alpha)

    def excess(p: float) -> float:
        return _log_mixture(successes, trials, p, a, b) - threshold

    estimate = min(max(successes / trials, 1e-300), 1 - 1e-16)
    tiny = 1e-15
    low = 0.0 if successes == 0 or excess(tiny) < 0 else find_root(excess, tiny, estimate)
    high = 1.0 if successes == trials or excess(1 - tiny) < 0 else find_root(excess, estimate, 1 - tiny)
    return low, high


def mean_radius(sd: float, n: int, alpha: float, optimal_n: int = 500) -> float:
    """Half-width of an asymptotic (1 - alpha) confidence sequence for a mean.

    Robbins' normal mixture with the sample standard deviation plugged in: valid as the sample
    grows, not for a handful of samples (Waudby-Smith, Arnold, Wu, Howard & Ramdas,
    "Time-uniform central limit theory and asymptotic confidence sequences", 2021, eq. 2.4).
    `optimal_n` is where the sequence is tightest.
    """
    if n < 2:
        return math.inf
    rho_sq = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / optimal_n
    scale = n * rho_sq + 1
    return sd * math.sqrt(2 * scale / (n * n * rho_sq) * math.log(math.sqrt(scale) / alpha))
