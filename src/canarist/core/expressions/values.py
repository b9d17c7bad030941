"""The values expressions work on: their kinds as expr names them, int64 bounds, and
member and key access on the environment."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import ModuleType
from typing import Final, TypeGuard

from canarist.core.expressions.errors import OpError, quoted

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1


def kind_of(value: object) -> str:
    """The name of a value's type in messages."""
    if value is None:
        return "nil"
    for cls, name in _KINDS:
        if isinstance(value, cls):
            return name
    return "func" if callable(value) else type(value).__name__


_KINDS: Final[tuple[tuple[type | tuple[type, ...], str], ...]] = (
    (bool, "bool"),
    (int, "int"),
    (float, "float"),
    (str, "string"),
    ((list, tuple), "array"),
    (Mapping, "map"),
    (datetime, "time"),
    (timedelta, "duration"),
)
PRIMITIVES: Final = (bool, int, float, str, bytes, list, tuple, datetime, timedelta, ModuleType)


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def int64(value: int) -> int:
    if not INT_MIN <= value <= INT_MAX:
        raise OpError("integer overflow")
    return value


def mismatch(op: str, left: object, right: object) -> OpError:
    return OpError(f"invalid operation: {op} (mismatched types {kind_of(left)} and {kind_of(right)})")


def fetch(container: object, key: object, path: str) -> object:
    """`container.key` or `container[key]`: a map key, an array element or a data attribute."""
    if isinstance(container, Mapping):
        try:
            found = key in container
        except TypeError:
            raise OpError(f"cannot use {kind_of(key)} as a key of {path}") from None
        if not found:
            raise OpError(f"{path} has no member {_member_name(key)}")
        return container[key]
    if isinstance(container, list | tuple):
        if not is_int(key):
            raise OpError(f"array index must be an integer, got {kind_of(key)}")
        index = key + len(container) if key < 0 else key
        if not 0 <= index < len(container):
            raise OpError(f"index out of range: {key} (array length {len(container)})")
        return container[index]
    if container is None:
        raise OpError(f"cannot fetch {_member_name(key)} from nil ({path})")
    if isinstance(container, PRIMITIVES) or callable(container) or not isinstance(key, str):
        raise OpError(f"cannot fetch {_member_name(key)} from {kind_of(container)} ({path})")
    return _attribute(container, key, path)


def _member_name(key: object) -> str:
    return quoted(key) if isinstance(key, str) else repr(key)


MISSING: Final = object()


def _attribute(obj: object, name: str, path: str) -> object:
    """A data attribute of a plain object; private names and methods stay out of reach."""
    value = MISSING if name.startswith("_") else getattr(obj, name, MISSING)
    if value is MISSING or callable(value):
        raise OpError(f"{path} has no member {quoted(name)}")
    return value
