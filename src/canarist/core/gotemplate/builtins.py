"""The functions text/template predefines (eq, index, printf, …) with Go's semantics."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote_plus

from canarist.core.gofmt import format_value, format_verb, go_kind, go_type_name, sprint, sprintf, sprintln
from canarist.core.gotemplate.funcspec import FuncError, FuncSpec
from canarist.core.gotemplate.values import MISSING, Box, elem_is_interface, is_true

__all__ = ["BUILTINS"]


def _indirect(v: object) -> object:
    """indirectInterface: unwrap a Box; a boxed nil becomes MISSING."""
    if isinstance(v, Box):
        return MISSING if v.v is None else v.v
    return v


def _kind(v: object) -> str:
    """Go's basicKind for comparisons: bool, int, float, string, or invalid."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "invalid"


_BAD_COMPARISON = "incompatible types for comparison"
_BAD_COMPARISON_TYPE = "invalid type for comparison"


def _pct_s(v: object) -> str:
    return format_verb(v, "s")


def _is_nil(v: object) -> bool:
    return v is MISSING or v is None


def _comparable(v: object) -> bool:
    return not isinstance(v, Mapping | list | tuple)


def eq(arg1: object, *args: object) -> bool:
    a = _indirect(arg1)
    if not args:
        raise FuncError("missing argument for comparison")
    k1 = _kind(a)
    for raw in args:
        b = _indirect(raw)
        k2 = _kind(b)
        if k1 != k2:
            if a is not MISSING and b is not MISSING:
                raise FuncError(_BAD_COMPARISON)
            continue
        if k1 != "invalid":
            if a == b:
                return True
            continue
        if not _is_nil(a) and not _is_nil(b) and go_kind(a) != go_kind(b):
            # Go 1.19 (text/template's canCompare): different kinds, e.g. a map and a slice.
            raise FuncError(f"non-comparable types {_pct_s(a)}: {go_type_name(a)}, "
                            f"{go_type_name(b)}: {format_value(b)}")
        if _is_nil(a) or _is_nil(b):
            if _is_nil(a) == _is_nil(b):
                return True
            continue
        if not _comparable(b):
            raise FuncError(f"non-comparable type {_pct_s(b)}: {go_type_name(b)}")
        if a is b:
            return True
    return False


def ne(a: object, b: object) -> bool:
    return not eq(a, b)


def lt(arg1: object, arg2: object) -> bool:
    a, b = _indirect(arg1), _indirect(arg2)
    k1, k2 = _kind(a), _kind(b)
    if k1 == "invalid" or k2 == "invalid":
        raise FuncError(_BAD_COMPARISON_TYPE)
    if k1 != k2:
        raise FuncError(_BAD_COMPARISON)
    if k1 == "bool":
        raise FuncError(_BAD_COMPARISON_TYPE)
    return bool(a < b)  # type: ignore[operator]


def le(a: object, b: object) -> bool:
    return lt(a, b) or eq(a, b)


def gt(a: object, b: object) -> bool:
    return not le(a, b)


def ge(a: object, b: object) -> bool:
    return not lt(a, b)


def not_(v: object) -> bool:
    return not is_true(_indirect(v))[0]


def length(v: object) -> int:
    if isinstance(v, Box) and v.v is None:
        raise FuncError("len of nil pointer")
    item = _indirect(v)
    if item is MISSING:
        raise FuncError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, Mapping | list | tuple):
        return len(item)
    raise FuncError(f"len of type {go_type_name(item)}")


def _index_arg(index: object, cap: int) -> int:
    index = _indirect(index)
    if index is MISSING:
        raise FuncError("cannot index slice/array with nil")
    if not isinstance(index, int) or isinstance(index, bool):
        raise FuncError(f"cannot index slice/array with type {go_type_name(index)}")
    if index < 0 or index > cap:
        raise FuncError(f"index out of range: {index}")
    return index


class Byte(int):
    """An element of a Go string: `index "abc" 0` is the uint8 97, not an int."""

    go_type = "uint8"


def index(item: object, *indexes: object) -> object:
    cur = _indirect(item)
    if cur is MISSING:
        raise FuncError("index of untyped nil")
    for raw in indexes:
        cur = _indirect(cur)
        if cur is MISSING:
            raise FuncError("index of nil pointer")
        if isinstance(cur, str | list | tuple):
            seq = cur.encode() if isinstance(cur, str) else cur
            x = _index_arg(raw, len(seq))
            if x == len(seq):
                raise FuncError(
                    "reflect: string index out of range"
                    if isinstance(cur, str) else "reflect: slice index out of range"
                )
            elem = Byte(seq[x]) if isinstance(seq, bytes) else seq[x]
            cur = Box(elem) if elem_is_interface(cur) else elem
        elif isinstance(cur, Mapping):
            key = _indirect(raw)
            if key is MISSING:
                raise FuncError("value is nil; should be of type string")
            if not isinstance(key, str):
                raise FuncError(f"value has type {go_type_name(key)}; should be string")
            interface = elem_is_interface(cur)
            found = cur.get(key, None if interface else "")
            cur = Box(found) if interface else found
        else:
            raise FuncError(f"can't index item of type {go_type_name(cur)}")
    return cur


def _eval_args(args: tuple[object, ...]) -> str:
    """text/template's evalArgs: one string as is, else Sprint with nil as <no value>."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(*("<no value>" if a is None else a for a in args))


def html_escape(*args: object) -> str:
    s = _eval_args(args)
    out = []
    for ch in s:
        out.append(_HTML.get(ch, ch))
    return "".join(out)


_HTML = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\x00": "\ufffd"}

_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
       "=": "\\u003D"}


def js_escape(*args: object) -> str:
    s = _eval_args(args)
    out = []
    for ch in s:
        if ch in _JS:
            out.append(_JS[ch])
        elif ch < " ":
            out.append(f"\\u00{ord(ch):02X}")
        elif ord(ch) >= 0x80 and not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def urlquery(*args: object) -> str:
    return quote_plus(_eval_args(args), safe="-_.~")


def call(fn: object, *args: object) -> object:
    f = _indirect(fn)
    if f is MISSING:
        raise FuncError("call of nil")
    raise FuncError(f"non-function of type {go_type_name(f)}")


def _and_or(*args: object) -> object:
    raise AssertionError("and/or are evaluated by the executor")


def _spec(name: str, params: tuple[str, ...], impl: object, variadic: str | None = None
          ) -> FuncSpec:
    return FuncSpec(name, params, impl, variadic)  # type: ignore[arg-type]


BUILTINS: dict[str, FuncSpec] = {
    s.name: s
    for s in [
        _spec("and", ("value",), _and_or, "value"),
        _spec("or", ("value",), _and_or, "value"),
        _spec("not", ("value",), not_),
        _spec("call", ("value",), call, "value"),
        _spec("html", (), html_escape, "any"),
        _spec("index", ("value",), index, "value"),
        _spec("js", (), js_escape, "any"),
        _spec("len", ("value",), length),
        _spec("print", (), sprint, "any"),
        _spec("printf", ("string",), sprintf, "any"),
        _spec("println", (), sprintln, "any"),
        _spec("urlquery", (), urlquery, "any"),
        _spec("eq", ("value",), eq, "value"),
        _spec("ge", ("value", "value"), ge),
        _spec("gt", ("value", "value"), gt),
        _spec("le", ("value", "value"), le),
        _spec("lt", ("value", "value"), lt),
        _spec("ne", ("value", "value"), ne),
    ]
}
