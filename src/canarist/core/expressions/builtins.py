"""The builtin functions an expression may call (len, abs, int, float)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Final

from canarist.core.expressions.errors import OpError, quoted
from canarist.core.expressions.values import int64, is_int, is_number, kind_of


def _len(value: object) -> object:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise OpError(f"invalid argument for len (type {kind_of(value)})")


def _abs(value: object) -> object:
    if is_int(value):
        return int64(abs(value))
    if isinstance(value, float):
        return abs(value)
    raise OpError(f"invalid argument for abs (type {kind_of(value)})")


_INT_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT: Final = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?i:inf|infinity|nan)"
)


def _int(value: object) -> object:
    if is_int(value):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OpError(f"cannot convert {value} to int")
        return int64(int(value))
    if isinstance(value, str):
        if _INT_TEXT.fullmatch(value) is None or len(value) > 25:
            raise OpError(f"invalid syntax for int: {quoted(value)}")
        return int64(int(value))
    raise OpError(f"invalid argument for int (type {kind_of(value)})")


def _float(value: object) -> object:
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        if _FLOAT_TEXT.fullmatch(value) is None:
            raise OpError(f"invalid syntax for float: {quoted(value)}")
        number = float(value)
        if math.isinf(number) and "inf" not in value.lower():
            raise OpError(f"value out of range for float: {quoted(value)}")
        return number
    raise OpError(f"invalid argument for float (type {kind_of(value)})")


BUILTINS: Final[dict[str, Callable[[object], object]]] = {
    "len": _len,
    "abs": _abs,
    "int": _int,
    "float": _float,
}
UNSUPPORTED_BUILTINS: Final = frozenset({"all", "any", "one", "none", "map", "filter", "count"})
