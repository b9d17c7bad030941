"""Validation errors in the user's words, at the key the user typed.

Every input model (task inputs, experiment files) is checked by pydantic; this module is the
one place that turns pydantic's errors into canarist's messages: one line per problem,
`<key>: <what was expected>, got <value>`, where `<key>` is spelled the way the user wrote
it (`http.duration` for a value given with `--set`, `spec[0].with.duration` in a file),
and an unknown key gets a "did you mean" suggestion from the keys that exist there.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from canarist.core.errors import SpecError

__all__ = ["FieldProblem", "Location", "ValuesKeys", "closest", "fold_keys", "problems",
           "show_value", "spell_key", "unknown_key", "validated"]

Location = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class ValuesKeys:
    """How the keys of one spec entry's `with` are spelled in the values it came from.

    `http.duration` for the http task's `duration`; `renames` map a location inside `with`
    to the key the user typed where the two differ (`name` of a `ready` task rendered from
    `ready.isvc` is `ready.isvc`). The longest matching location wins.
    """

    prefix: str
    renames: Mapping[Location, str] = field(default_factory=dict)

    def key(self, loc: Location) -> str:
        for length in range(len(loc), 0, -1):
            renamed = self.renames.get(loc[:length])
            if renamed is not None:
                return spell_key(renamed, loc[length:])
        return spell_key(self.prefix, loc)


class FieldProblem(ValueError):
    """Raised by a model-level check that concerns one field: reported at that field's key."""

    def __init__(self, path: str | Location, message: str) -> None:
        super().__init__(message)
        self.path: Location = (path,) if isinstance(path, str) else path
        self.message = message


def show_value(value: Any, limit: int = 60) -> str:
    """A user's value as it would appear in a message: `"30"` for text, `30` for a number;
    at most about `limit` characters, however long the value."""
    if isinstance(value, str):
        text = json.dumps(value[: limit + 1], ensure_ascii=False)
    elif value is None:
        return "null"
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, int) and value.bit_length() > 4 * limit:  # also past repr's 4300 digits
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    elif isinstance(value, int | float):
        return repr(value)
    elif isinstance(value, dict):
        return "a map"
    elif isinstance(value, list):
        return "a list"
    else:
        return type(value).__name__
    return text if len(text) <= limit else text[: limit - 4] + '..."'


def spell_key(prefix: str, loc: Iterable[str | int]) -> str:
    """`prefix` followed by `loc` as a values key: `http.endpoints.v1.url`, `a[0].b`.

    A dot inside a key part is escaped (`assess.SLOs.upper.http/latency-p99\\.9`), as the
    user would type it in `--set`.
    """
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if len(text) > _KEY_PART_SHOWN:  # a key is echoed in messages; keep them short
                text = text[: _KEY_PART_SHOWN - 1] + "…"
            text = text.replace(".", "\\.")
            out = f"{out}.{text}" if out else text
    return out


_KEY_PART_SHOWN = 80


def fold_keys(data: Any, model: type[BaseModel], *, drop: Iterable[str] = ()) -> Any:
    """`data` with each key that matches a field of `model` case-insensitively spelt as the
    field's alias, as Go's encoding/json matches keys; keys in `drop` (any case) left out.

    Keys are taken as text. Where two keys of `data` spell one field, the last wins, as in Go.
    Anything but a mapping is returned as it is, for the model to reject.
    """
    if not isinstance(data, dict):
        return data
    aliases = {(f.alias or n).lower(): (f.alias or n) for n, f in model.model_fields.items()}
    dropped = {key.lower() for key in drop}
    folded: dict[str, Any] = {}
    for key, value in data.items():
        lowered = str(key).lower()
        if lowered in aliases:
            folded[aliases[lowered]] = value
        elif lowered not in dropped:
            folded[str(key)] = value
    return folded


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate a misspelt `word` most likely meant (case-insensitive), if any."""
    options = list(candidates)
    by_lower = {option.lower(): option for option in options}
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[found[0]] if found else None


def unknown_key(name: str, allowed: Iterable[str]) -> str:
    """`unknown key "ur"; did you mean url?`, or the keys there are when nothing is close."""
    options = list(allowed)
    guess = closest(name, options)
    if guess:
        return f"unknown key {show_value(name)}; did you mean {guess}?"
    return f"unknown key {show_value(name)}; expected one of {', '.join(options)}"


def problems(exc: ValidationError, model: type[BaseModel],
             key: Callable[[Location], str]) -> list[str]:
    """One line per problem in `exc` (raised validating `model`), each naming `key(loc)`."""
    found: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = _field_path(model, tuple(error["loc"]), keep_last=error["type"] == "extra_forbidden")
        problem = error.get("ctx", {}).get("error")
        if isinstance(problem, FieldProblem):
            loc = (*loc, *problem.path)
        messages = found.setdefault(key(loc) or "(top level)", [])
        message = _message(error, model, loc)
        if message not in messages:
            messages.append(message)
    return [f"{where}: {_either(messages)}" for where, messages in found.items()]


def validated(model: type[ModelT], data: Any, key: Callable[[Location], str]) -> ModelT:
    """`data` checked as a `model`, or a SpecError with one line per problem, each naming
    `key(loc)`, the key where the user wrote it."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError.listing(problems(exc, model, key)) from None


def _either(messages: list[str]) -> str:
    """Problems at one key from the alternatives of a union, as one line."""
    expected = [m.partition(", got ") for m in messages]
    if len(messages) > 1 and all(m.startswith("expected ") and sep for m, sep, _ in expected):
        alternatives = " or ".join(m.removeprefix("expected ") for m, _, _ in expected)
        return f"expected {alternatives}, got {expected[0][2]}"
    return "; ".join(messages)


def _message(error: Any, model: type[BaseModel], loc: Location) -> str:
    kind: str = error["type"]
    value = error.get("input")
    ctx = error.get("ctx", {})
    got = f", got {show_value(value)}"
    if kind == "extra_forbidden":
        return unknown_key(str(loc[-1]) if loc else "", sorted(_allowed_keys(model, loc[:-1])))
    if kind == "value_error":
        cause = ctx.get("error")
        return str(cause.message if isinstance(cause, FieldProblem) else cause)
    expected = _EXPECTED.get(kind)
    text = expected(ctx) if expected is not None else str(error["msg"]).lower()
    return text if kind == "missing" else text + got


_EXPECTED: dict[str, Callable[[dict[str, Any]], str]] = {
    "missing": lambda c: "required",
    "string_type": lambda c: "expected text",
    "string_too_short": lambda c: "expected a non-empty value",
    "int_type": lambda c: "expected a whole number",
    "int_parsing": lambda c: "expected a whole number",
    "int_from_float": lambda c: "expected a whole number",
    "float_type": lambda c: "expected a number",
    "float_parsing": lambda c: "expected a number",
    "bool_type": lambda c: "expected true or false",
    "bool_parsing": lambda c: "expected true or false",
    "dict_type": lambda c: "expected a map",
    "list_type": lambda c: "expected a list",
    "model_type": lambda c: "expected a map",
    "model_attributes_type": lambda c: "expected a map",
    "greater_than_equal": lambda c: f"expected a number of at least {c.get('ge')}",
    "greater_than": lambda c: f"expected a number above {c.get('gt')}",
    "less_than_equal": lambda c: f"expected a number of at most {c.get('le')}",
    "less_than": lambda c: f"expected a number below {c.get('lt')}",
    "literal_error": lambda c: f"expected {c.get('expected')}",
    "enum": lambda c: f"expected {c.get('expected')}",
    "finite_number": lambda c: "expected a finite number",
}


# -- where an error is: pydantic's location, less its internal steps ----------------------------


def _field_path(model: type[BaseModel], loc: Location, *, keep_last: bool) -> Location:
    """`loc` without the union-member and validator steps pydantic inserts (`str`,
    `function-after[...]`, `list[...]`), which are not keys the user typed."""
    out: list[str | int] = []
    shapes: list[Any] = [model]
    for position, part in enumerate(loc):
        last = keep_last and position == len(loc) - 1
        if isinstance(part, str) and not last and _is_internal(part, shapes):
            continue
        out.append(part)
        shapes = _step(shapes, part)
    return tuple(out)


_INTERNAL_STEPS = frozenset({"str", "int", "float", "bool", "none", "list", "dict", "union"})


def _is_internal(part: str, shapes: list[Any]) -> bool:
    if any(_is_model(shape) and part in _aliases(shape) for shape in shapes):
        return False
    return "[" in part or part.startswith("function-") or part in _INTERNAL_STEPS


def _allowed_keys(model: type[BaseModel], loc: Location) -> set[str]:
    shapes: list[Any] = [model]
    for part in loc:
        shapes = _step(shapes, part)
    return {alias for shape in shapes if _is_model(shape) for alias in _aliases(shape)}


def _step(shapes: list[Any], part: str | int) -> list[Any]:
    """The types found one step down `part` from any of `shapes`."""
    found: list[Any] = []
    for shape in shapes:
        for member in _members(shape):
            origin = typing.get_origin(member)
            if _is_model(member) and isinstance(part, str):
                field = _aliases(member).get(part)
                if field is not None:
                    found.extend(_members(field))
            elif origin is list and isinstance(part, int):
                found.extend(_members(typing.get_args(member)[0]))
            elif origin is dict and isinstance(part, str):
                found.extend(_members(typing.get_args(member)[1]))
    return found


def _members(shape: Any) -> list[Any]:
    """The alternatives of a union (`X | None`, `Annotated[X, ...]` unwrapped), else [shape]."""
    origin = typing.get_origin(shape)
    if origin is typing.Annotated:
        return _members(typing.get_args(shape)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(shape) for m in _members(arg)]
    return [shape]


def _is_model(shape: Any) -> bool:
    return isinstance(shape, type) and issubclass(shape, BaseModel)


def _aliases(model: type[BaseModel]) -> dict[str, Any]:
    """Field alias (or name) -> annotation."""
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}
