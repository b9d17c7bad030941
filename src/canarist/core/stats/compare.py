"""Candidate against baseline: is the candidate worse than the allowance, and how sure are we?

Each version's parameter (a quantile, a mean, an error rate) gets its own confidence sequence
at level 1 - alpha/2; together they cover both true values at every look with probability at
least 1 - alpha, and so does the interval for the change derived from them. The verdict is

- pass: the whole interval is within the allowance (the candidate is not worse than allowed);
- fail: the whole interval is beyond the allowance (the candidate is worse than allowed);
- inconclusive: the interval straddles the allowance.

Hence P(fail when the candidate is within the allowance) <= alpha and P(pass when it is worse)
<= alpha, at every look (the construction of Lindon, Sanden & Shirikian, "Rapid regression
detection in software deployments through sequential testing", KDD 2022, on per-version bands).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

Direction = Literal["upper", "lower"]
Outcome = Literal["pass", "fail", "inconclusive"]

_ALLOWANCE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class Allowance:
    """How much worse than the baseline a candidate may be: relative (`20%`) or absolute (`5`)."""

    amount: float
    relative: bool
    text: str

    @classmethod
    def parse(cls, text: str | float) -> Allowance:
        """`20%` (relative to the baseline) or a plain non-negative number (the metric's units)."""
        if isinstance(text, bool):
            raise ValueError("expected a percentage such as 20% or a number such as 5")
        if isinstance(text, int | float):
            if not math.isfinite(text) or text < 0:
                raise ValueError(f"expected a non-negative number, got {text}")
            return cls(float(text), relative=False, text=str(text))
        match = _ALLOWANCE.match(text)
        if match is None:
            raise ValueError(f"expected a percentage such as 20% or a number such as 5, got {text!r}")
        amount = float(match.group(1))
        if match.group(2):
            return cls(amount / 100, relative=True, text=text.strip())
        return cls(amount, relative=False, text=text.strip())


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"interval low {self.low} is above high {self.high}")


@dataclass(frozen=True)
class Change:
    """The candidate's change against the baseline: a difference, or a ratio minus one."""

    estimate: float | None
    interval: Interval
    outcome: Outcome


def change(candidate: float | None, baseline: float | None, candidate_interval: Interval,
           baseline_interval: Interval, allowance: Allowance, direction: Direction) -> Change:
    """The change, its interval and the verdict against `allowance`.

    `direction` is `upper` when a higher value is worse (latency, errors) and `lower` when a
    lower value is worse (throughput, accuracy). Relative changes need positive values.
    """
    c, b = candidate_interval, baseline_interval
    if allowance.relative:
        low = _least_ratio(c.low, b.high) - 1
        high = _greatest_ratio(c.high, b.low) - 1
        estimate = (None if candidate is None or baseline is None or baseline <= 0
                    else candidate / baseline - 1)
    else:
        low, high = c.low - b.high, c.high - b.low
        estimate = None if candidate is None or baseline is None else candidate - baseline
    interval = Interval(low, high)
    return Change(estimate, interval, verdict(interval, allowance, direction))


def verdict(interval: Interval, allowance: Allowance, direction: Direction) -> Outcome:
    """pass, fail or inconclusive for the interval of a change against the allowance."""
    if direction == "upper":
        return ("pass" if interval.high <= allowance.amount
                else "fail" if interval.low > allowance.amount else "inconclusive")
    return ("pass" if interval.low >= -allowance.amount
            else "fail" if interval.high < -allowance.amount else "inconclusive")


def _least_ratio(candidate_low: float, baseline_high: float) -> float:
    if math.isinf(baseline_high) or candidate_low <= 0:
        return 0.0
    return math.inf if baseline_high <= 0 else candidate_low / baseline_high


def _greatest_ratio(candidate_high: float, baseline_low: float) -> float:
    if candidate_high <= 0:
        return 0.0
    return math.inf if baseline_low <= 0 else candidate_high / baseline_low
