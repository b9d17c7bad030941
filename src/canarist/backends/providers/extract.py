"""A number (or histogram buckets) out of a provider's JSON answer, with the metric's jq expression.

Expressions run in a bounded child (see canarist.backends.bounded), wrapped so that NaN and
infinities come out recognisable, with no environment and no module directives. When an
expression finds no number, the reason says why; an empty Prometheus result is named as such
(`EmptyResult`), whatever the expression made of it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

import jq

from canarist.backends.bounded import Mark, Overrun, evaluate, limit_for
from canarist.core.errors import InputError
from canarist.core.experiment import HistBucket

__all__ = [
    "EMPTY_RESULT",
    "EmptyResult",
    "JqOutput",
    "MetricUnavailable",
    "excerpt",
    "extract_buckets",
    "extract_value",
    "jq_output",
    "jq_outputs",
    "read_output",
    "to_buckets",
    "to_float",
]

_NONFINITE_KEY: Final = "__canarist_nonfinite__"
_WRAPPER: Final = (
    # `env` and `$ENV` shadowed: an expression sees no environment (the child has none either)
    'def env: {{}}; {{}} as $ENV | (\n{expr}\n) | if type == "number" then '
    '(if isnan then {{"{key}": "NaN"}} '
    'elif isinfinite then {{"{key}": (if . > 0 then "+Inf" else "-Inf" end)}} '
    "else . end) else . end"
)
# Module directives come first in a program; `import`/`include` would read local files.
_MODULE_DIRECTIVE: Final = re.compile(r"\A(?:\s|#[^\n]*(?:\n|\Z))*(?:module|import|include)\b")
_GO_FLOAT: Final = re.compile(
    r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)$", re.IGNORECASE
)


class MetricUnavailable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EmptyResult(MetricUnavailable):
    """A Prometheus answer without any series, so the expression found no number."""


EMPTY_RESULT: Final = ("no data: the query returned an empty result (no series matched, or "
                       "the window holds fewer than two samples of each)")


JqOutput = tuple[str, Any]
"""What a jq expression gave: ("out", first output), ("none", None) when it gave nothing,
("fail", message) for a jq error, ("invalid", message) when it does not compile."""


@functools.lru_cache(maxsize=256)
def _compile(expression: str) -> Any:
    """The user's expression, wrapped so NaN and infinities come out recognisable.

    Compiled only in the bounded child: compiling reads the environment into `$ENV`.
    """
    try:
        return jq.compile(_WRAPPER.format(expr=expression, key=_NONFINITE_KEY))
    except ValueError:
        jq.compile(expression)  # its own syntax errors, in its own words
        raise


def jq_output(payload: Any, expression: str) -> JqOutput:
    if _MODULE_DIRECTIVE.match(expression):
        return ("invalid", "import, include and module directives are not allowed "
                           "(modules would be read from local files)")
    try:
        program = _compile(expression)
    except ValueError as exc:
        return ("invalid", _jq_message(exc))
    try:
        return ("out", program.input_value(payload).first())
    except StopIteration:
        return ("none", None)
    except ValueError as exc:
        return ("fail", _jq_message(exc))


def jq_outputs(jobs: list[tuple[Any, str]], mark: Mark) -> list[JqOutput]:
    """In the bounded child: each (answer, expression)'s output, marking progress."""
    outputs: list[JqOutput] = []
    for index, (payload, expression) in enumerate(jobs):
        mark(index)
        outputs.append(jq_output(payload, expression))
    return outputs


def read_output(payload: Any, expression: str, output: JqOutput) -> Any:
    """The first output, else MetricUnavailable saying why there is none."""
    kind, value = output
    if kind == "out":
        return value
    shown = excerpt(expression, 160, json_text=False)
    if kind == "invalid":
        raise MetricUnavailable(f"invalid jqExpression {shown}: {_cut(str(value))}")
    if kind == "none":
        raise _explain(payload, f"jqExpression {shown} produced no output")
    raise _explain(payload, f"jqExpression {shown} failed: {_cut(str(value))}")


def _first_output(payload: Any, expression: str) -> Any:
    """`expression`'s first output on `payload`, evaluated in a bounded child."""
    try:
        output = evaluate(functools.partial(jq_outputs, [(payload, expression)]),
                          limit_for(None))[0]
    except Overrun as exc:
        raise InputError(f"jqExpression {excerpt(expression, 80, json_text=False)} "
                         f"{exc}") from None
    return read_output(payload, expression, output)


def extract_value(payload: Any, expression: str) -> float:
    """The first output of `expression` on `payload` as a finite float, else MetricUnavailable."""
    return to_float(payload, _first_output(payload, expression))


def extract_buckets(payload: Any, expression: str) -> list[HistBucket]:
    """Histogram buckets from the `[upper bound, cumulative count]` pairs `expression` yields.

    Bounds may be `+Inf`; counts are rounded to whole observations (Prometheus' `increase`
    extrapolates to the window's edges). The +Inf bucket is kept only when it holds any.
    """
    return to_buckets(payload, _first_output(payload, expression))


def to_buckets(payload: Any, output: Any) -> list[HistBucket]:
    if output == []:
        raise _explain(payload, "no buckets")
    if not isinstance(output, list) or not all(
            isinstance(pair, list) and len(pair) == 2 for pair in output):
        raise MetricUnavailable("a histogram's jqExpression must yield a list of "
                                f"[upper bound, cumulative count] pairs, got {excerpt(output)}")
    pairs = sorted((_bucket_number(upper, "upper bound"), _bucket_number(count, "count"))
                   for upper, count in output)
    buckets: list[HistBucket] = []
    lower, below = 0.0, 0
    for upper, cumulative in pairs:
        if math.isnan(upper) or math.isinf(cumulative) or math.isnan(cumulative):
            raise MetricUnavailable(f"bucket [{upper}, {cumulative}] is not a number")
        # `increase` extrapolates each bucket's series on its own, so a cumulative count can
        # dip below the one before; like Prometheus' histogram_quantile, take it as no change
        count = max(0, round(cumulative) - below)
        if not (math.isinf(upper) and count == 0):
            buckets.append(HistBucket(lower=lower, upper=upper, count=count))
        lower, below = upper, max(below, round(cumulative))
    return buckets


def _bucket_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not (
            isinstance(value, int | float) or (isinstance(value, str) and _GO_FLOAT.match(value))):
        raise MetricUnavailable(f"bucket {what} is not a number: {excerpt(value)}")
    return float(value)


def to_float(payload: Any, output: Any) -> float:
    if output is None:
        raise _explain(payload, "value is null")
    if isinstance(output, dict) and set(output) == {_NONFINITE_KEY}:
        raise MetricUnavailable(f"value is {output[_NONFINITE_KEY]}")
    if isinstance(output, bool):
        raise MetricUnavailable(f"value is not a number: {json.dumps(output)}")
    if isinstance(output, int | float) or (isinstance(output, str) and _GO_FLOAT.match(output)):
        value = float(output)
    else:
        raise MetricUnavailable(f"value is not a number: {excerpt(output)}")
    if math.isnan(value):
        raise MetricUnavailable("value is NaN")
    if math.isinf(value):
        raise MetricUnavailable(f"value is {'+Inf' if value > 0 else '-Inf'}")
    return value


def _explain(payload: Any, reason: str) -> MetricUnavailable:
    """The error for an expression that found no number, saying so for an empty result.

    When the answer is a Prometheus result without any series, that is the cause, and what
    the expression made of it is noise.
    """
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if isinstance(data, Mapping) and data.get("result") == []:
        return EmptyResult(EMPTY_RESULT)
    if isinstance(payload, Mapping) and payload.get("status") == "error":
        return MetricUnavailable(
            f"Prometheus error: {payload.get('errorType', '')}: {payload.get('error', '')}")
    return MetricUnavailable(reason)


def _jq_message(exc: ValueError) -> str:
    text = " ".join(str(exc).split())
    return text.removeprefix("jq: error: ")


def _cut(text: str, limit: int = 500) -> str:
    """`text` as shown in a reason: at most `limit` characters, then "..."."""
    return text if len(text) <= limit else text[:limit] + "..."


def excerpt(value: Any, limit: int = 120, *, json_text: bool = True) -> str:
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit]  # cut before quoting: the text may be megabytes long
    try:
        if not json_text:
            text = repr(value)
        else:
            text = (json.dumps(value, ensure_ascii=False) if not isinstance(value, str)
                    else json.dumps(value))
    except (RecursionError, ValueError):
        return "(a value nested too deeply to show)"
    return text if len(text) <= limit else text[: limit - 3] + "..."
