"""One type per kind of value that users give canarist, shared by every task's inputs.

Each type checks its value once and, when the value is wrong, says what was expected in
the user's terms ("a Go duration such as 30s"), never in the validation library's. The
messages carry no key: `core.validation` puts the key the user typed in front of them.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from canarist.core.durations import duration_problem, parse_duration
from canarist.core.metrics import NAME_RULE, is_valid_name
from canarist.core.stats.compare import Allowance
from canarist.core.validation import show_value

__all__ = [
    "AllowanceText",
    "Confidence",
    "Duration",
    "FiniteNumber",
    "MetricName",
    "Percentile",
    "PositiveInt",
    "RequestBody",
    "Text",
]


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]
"""Text; a number or true/false (as `--set` types them) is taken as the text it was."""


def _duration(value: Any) -> Any:
    problem = duration_problem(value)
    if problem is not None:
        raise ValueError(problem)
    if parse_duration(value, field="") <= 0:
        raise ValueError(f"expected a positive Go duration such as 30s, got {show_value(value)}")
    return value


Duration = Annotated[str, BeforeValidator(_duration)]
"""A positive Go duration (`30s`, `1m30s`, `500ms`), kept as the text the user wrote."""

PositiveInt = Annotated[int, Field(ge=1)]
"""A whole number of at least 1."""


def _percentile(value: float) -> float:
    if not 0 < value <= 100:
        raise ValueError(f"expected a percentile above 0 and at most 100, got {value:g}")
    return value


Percentile = Annotated[float, AfterValidator(_percentile)]
"""A percentile in (0, 100]."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    return value


FiniteNumber = Annotated[float, AfterValidator(_finite)]


def _metric_name(value: str) -> str:
    if not is_valid_name(value):
        raise ValueError(f"invalid metric name {show_value(value)}; {NAME_RULE}")
    return value


MetricName = Annotated[str, AfterValidator(_metric_name)]
"""`provider/metric` or `provider/metric/aggregation`."""


def _body(value: Any) -> Any:
    """Text as it is; a JSON object (from a values file or `--set-json`) serialized."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, list):
        raise ValueError(
            "expected text or a JSON object, got a list (--set reads {...} as a list): give "
            "JSON with --set-json, or put the body in a file and set payloadFile")
    raise ValueError(f"expected text or a JSON object, got {show_value(value)}")


RequestBody = Annotated[str, BeforeValidator(_body)]
"""A request body: text, or a JSON object sent serialized."""


def _allowance(value: Any) -> Any:
    try:
        return Allowance.parse(value).text
    except ValueError as exc:
        raise ValueError(str(exc)) from None


AllowanceText = Annotated[str, BeforeValidator(_allowance)]
"""How much worse a candidate may be than its baseline: `20%` or a plain number (`5`),
kept as the user wrote it."""


def _confidence(value: float) -> float:
    if not 0.5 <= value < 1:
        raise ValueError(f"expected a confidence level of at least 0.5 and below 1, such as "
                         f"0.95, got {value:g}")
    return value


Confidence = Annotated[float, AfterValidator(_confidence)]
"""A confidence level in [0.5, 1)."""
