"""How Go values are represented while a template executes.

Plain Python values stand for Go values (see canarist.core.gofmt). Two markers add what
reflection distinguishes in Go:

* `MISSING` is the invalid reflect.Value: a missing map key, or nil after a pipeline.
  It prints as `<no value>`.
* `Box(v)` is a value still wrapped in `interface {}` because it was read out of a
  map or slice of interfaces (range elements, the receiver in `.a.b`). It matters for
  messages such as "can't evaluate field b in type interface {}" and for nil handling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from canarist.core.gofmt import go_type_name

__all__ = [
    "MISSING",
    "Box",
    "GoIntList",
    "GoStrList",
    "GoStrMap",
    "Int64",
    "Missing",
    "elem_is_interface",
    "is_true",
    "unbox",
]


class Missing:
    """The invalid reflect.Value."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = Missing()


class Box:
    """A value held in an `interface {}` (see the module docstring)."""

    __slots__ = ("v",)

    def __init__(self, v: object) -> None:
        self.v = v

    def __repr__(self) -> str:
        return f"Box({self.v!r})"


def unbox(v: object) -> object:
    """What a pipeline stage yields: the value inside a Box; nil becomes MISSING."""
    if isinstance(v, Box):
        v = v.v
    return MISSING if v is None else v


def to_arg(v: object) -> object:
    """An executor value passed to an `interface {}` parameter (nil for MISSING)."""
    if isinstance(v, Box):
        return v.v
    return None if v is MISSING else v


class Int64(int):
    """A Go int64 (Sprig arithmetic returns these)."""

    go_type = "int64"


class GoStrList(list[str]):
    """A Go []string."""

    go_type = "[]string"


class GoIntList(list[int]):
    """A Go []int."""

    go_type = "[]int"


class GoStrMap(dict[str, str]):
    """A Go map[string]string."""

    go_type = "map[string]string"


def elem_is_interface(container: object) -> bool:
    """Whether elements of a slice or map are `interface {}` values."""
    return go_type_name(container).endswith("interface {}")


def is_true(v: object) -> tuple[bool, bool]:
    """Go's template truth (truth, ok) of an unboxed value."""
    if isinstance(v, Box):
        v = v.v
        if v is None:
            return False, True
    if v is MISSING or v is None:
        return False, True
    if isinstance(v, bool):
        return v, True
    if isinstance(v, int | float):
        return v != 0, True
    if isinstance(v, str | Mapping | Sequence):
        return len(v) > 0, True
    return True, True
