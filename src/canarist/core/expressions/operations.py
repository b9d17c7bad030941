"""Binary operators with expr v1.12's semantics: int/float mixing, `/` and `**` giving
a float, `%` on integers only, int64 overflow as an error, strict comparisons."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from canarist.core.expressions.errors import OpError, quoted
from canarist.core.expressions.values import MISSING, PRIMITIVES, int64, is_int, is_number, kind_of, mismatch
from canarist.core.goregexp import GoRegexpError, compile_go


def _numeric(op: str, left: object, right: object, function: Callable[[Any, Any], Any]) -> object:
    if not (is_number(left) and is_number(right)):
        raise mismatch(op, left, right)
    if isinstance(left, int) and isinstance(right, int):
        return int64(function(left, right))
    return function(float(left), float(right))


def _add(op: str, left: object, right: object) -> object:
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    return _numeric(op, left, right, operator.add)


def _sub(op: str, left: object, right: object) -> object:
    return _numeric(op, left, right, operator.sub)


def _mul(op: str, left: object, right: object) -> object:
    return _numeric(op, left, right, operator.mul)


def _div(op: str, left: object, right: object) -> object:
    if not (is_number(left) and is_number(right)):
        raise mismatch(op, left, right)
    if right == 0:
        raise OpError("division by zero")
    return float(left) / float(right)


def _mod(op: str, left: object, right: object) -> object:
    if not (is_int(left) and is_int(right)):
        raise mismatch(op, left, right)
    if right == 0:
        raise OpError("division by zero")
    remainder = abs(left) % abs(right)
    return int64(-remainder if left < 0 else remainder)


def _pow(op: str, left: object, right: object) -> object:
    """Always a float, as in expr (math.Pow); float operands keep the size bounded."""
    if not (is_number(left) and is_number(right)):
        raise mismatch(op, left, right)
    base, exponent = float(left), float(right)
    try:
        return math.pow(base, exponent)
    except OverflowError:
        raise OpError("numeric overflow") from None
    except ValueError:
        if base == 0:
            raise OpError("division by zero") from None
        return math.nan  # a negative base with a fractional exponent, as Go's math.Pow


def _numbers_equal(left: int | float, right: int | float) -> bool:
    if isinstance(left, int) and isinstance(right, int):
        return left == right
    return float(left) == float(right)


def _deep_equal(left: object, right: object) -> bool:
    """Go's reflect.DeepEqual on decoded values: the kinds must match exactly."""
    if kind_of(left) != kind_of(right):
        return False
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_deep_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(_deep_equal, left, right))
    return bool(left == right)


def _loose_equal(left: object, right: object) -> bool:
    if is_number(left) and is_number(right):
        return _numbers_equal(left, right)
    return _deep_equal(left, right)


def _strict_equal(op: str, left: object, right: object) -> bool:
    if is_number(left) and is_number(right):
        return _numbers_equal(left, right)
    if left is None or right is None:
        return left is None and right is None
    if kind_of(left) != kind_of(right):
        raise mismatch(op, left, right)
    return _deep_equal(left, right)


def _eq(op: str, left: object, right: object) -> object:
    return _strict_equal(op, left, right)


def _ne(op: str, left: object, right: object) -> object:
    return not _strict_equal(op, left, right)


_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ORDERED: Final = (str, datetime, timedelta)


def _compare(op: str, left: object, right: object) -> object:
    if is_number(left) and is_number(right):
        if not (isinstance(left, int) and isinstance(right, int)):
            left, right = float(left), float(right)
    elif not any(isinstance(left, cls) and isinstance(right, cls) for cls in _ORDERED):
        raise mismatch(op, left, right)
    try:
        return _ORDER[op](left, right)
    except TypeError:  # naive and aware datetimes
        raise mismatch(op, left, right) from None


def _in(op: str, left: object, right: object) -> object:
    if right is None:
        return False
    if isinstance(right, list | tuple):
        return any(_loose_equal(left, item) for item in right)
    if isinstance(right, Mapping):
        try:
            return left in right
        except TypeError:
            return False
    if isinstance(left, str) and not (isinstance(right, PRIMITIVES) or callable(right)):
        return not left.startswith("_") and _attribute_exists(right, left)
    raise mismatch(op, left, right)


def _attribute_exists(obj: object, name: str) -> bool:
    value = getattr(obj, name, MISSING)
    return value is not MISSING and not callable(value)


def regex(pattern: str) -> Any:
    """Go's regexp, as expr's `matches` compiles it: RE2, linear time, Go's error words."""
    try:
        return compile_go(pattern)
    except GoRegexpError as exc:
        message = str(exc).removeprefix("error parsing regexp: ")
        raise OpError(f"invalid regular expression {quoted(pattern)}: {message}") from None


def _string_op(op: str, left: object, right: object) -> object:
    if not (isinstance(left, str) and isinstance(right, str)):
        raise mismatch(op, left, right)
    if op == "contains":
        return right in left
    if op == "startsWith":
        return left.startswith(right)
    if op == "endsWith":
        return left.endswith(right)
    return regex(right).search(left) is not None


OPERATIONS: Final[dict[str, Callable[[str, object, object], object]]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _mod,
    "**": _pow,
    "^": _pow,
    "==": _eq,
    "!=": _ne,
    "<": _compare,
    "<=": _compare,
    ">": _compare,
    ">=": _compare,
    "in": _in,
    "contains": _string_op,
    "startsWith": _string_op,
    "endsWith": _string_op,
    "matches": _string_op,
}
