"""How template functions declare their Go signature, so arguments are checked like Go does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FuncError", "FuncSpec", "ParamType"]

# Parameter types: "value" (reflect.Value: gets the raw executor value), "any"
# (interface {}), "string", "int", "float64", "bool", "map" (map[string]interface {}),
# "time" (time.Time).
ParamType = str

GO_TYPE_NAMES: dict[ParamType, str] = {
    "value": "reflect.Value",
    "any": "interface {}",
    "string": "string",
    "int": "int",
    "float64": "float64",
    "bool": "bool",
    "map": "map[string]interface {}",
    "time": "time.Time",
}


class FuncError(Exception):
    """Raised by a function: reported as `error calling NAME: message`."""


@dataclass(frozen=True, slots=True)
class FuncSpec:
    """A function callable from templates.

    `params` are the fixed parameter types, `variadic` the element type of a trailing
    `...T` parameter. `impl` receives converted arguments positionally.
    """

    name: str
    params: tuple[ParamType, ...]
    impl: Callable[..., object]
    variadic: ParamType | None = None
