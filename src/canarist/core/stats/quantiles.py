"""Quantile confidence sequences from exact samples or from histogram buckets.

For the p-quantile q of a continuous distribution, the number of samples at or below q after t
samples is Binomial(t, p). `count_region` bounds that count at every t at once, which bounds q
by the samples around it (Howard & Ramdas, "Sequential estimation of quantiles with
applications to A/B-testing and best-arm identification", Bernoulli 2022, section 3, with a
beta-binomial mixture boundary):

- a bucket boundary b with fewer than `low` samples at or below it lies below q;
- a bucket boundary b with more than `high` samples at or below it lies at or above q.

Exact samples are the finest histogram (a boundary at every sample), so both kinds of data go
through one path, and a coarse histogram gives a wide interval rather than a wrong one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from canarist.core.stats.sequences import count_region


@dataclass(frozen=True)
class CumulativeCounts:
    """Counts at or below each boundary (ascending; the last may be +Inf), Prometheus-style."""

    bounds: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64]
    exact: bool = False
    """Whether every bound is an observed value (exact samples) rather than a bucket's edge."""

    @property
    def total(self) -> int:
        return int(self.counts[-1]) if len(self.counts) else 0

    @classmethod
    def from_samples(cls, samples: npt.ArrayLike) -> CumulativeCounts:
        values, counts = np.unique(np.asarray(samples, dtype=float), return_counts=True)
        return cls(values, np.cumsum(counts), exact=True)

    @classmethod
    def from_buckets(cls, buckets: Iterable[tuple[float, float]]) -> CumulativeCounts:
        """From (upper bound, cumulative count) pairs such as `le` buckets; order is free."""
        ordered = sorted(buckets)
        counts = np.array([round(c) for _, c in ordered], dtype=np.int64)
        if np.any(np.diff(counts) < 0):
            raise ValueError("cumulative bucket counts must not decrease")
        return cls(np.array([b for b, _ in ordered], dtype=float), counts)


def quantile_interval(data: CumulativeCounts, p: float, alpha: float,
                      floor: float = 0.0) -> tuple[float, float]:
    """A (1 - alpha) confidence sequence for the p-quantile.

    The low end is `floor` (the least possible value, 0 for latencies) when the data cannot
    place the quantile above any boundary; the high end is +inf when it cannot place it below.
    """
    low_count, high_count = count_region(data.total, p, alpha)
    below = int(np.searchsorted(data.counts, low_count, side="left"))  # counts < low_count
    above = int(np.searchsorted(data.counts, high_count, side="right"))  # first count > high
    low = max(floor, float(data.bounds[below - 1])) if below > 0 else floor
    high = float(data.bounds[above]) if above < len(data.bounds) else math.inf
    return low, high


def quantile_estimate(data: CumulativeCounts, p: float, floor: float = 0.0) -> float | None:
    """The p-quantile, interpolated linearly inside its bucket as Prometheus'
    `histogram_quantile` does; None without data, the last finite bound if it falls in +Inf."""
    if data.total == 0:
        return None
    rank = p * data.total
    index = int(np.searchsorted(data.counts, rank, side="left"))
    previous_bound = float(data.bounds[index - 1]) if index > 0 else floor
    previous_count = int(data.counts[index - 1]) if index > 0 else 0
    bound, count = float(data.bounds[index]), int(data.counts[index])
    if math.isinf(bound):
        return previous_bound
    return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
        count - previous_count)
