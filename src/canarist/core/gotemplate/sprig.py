"""The Sprig functions Iter8 templates use, with Sprig v3 semantics.

Functions that would reach outside the template (env, expandenv, getHostByName, …) are
deliberately absent, so templates naming them fail to parse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from canarist.core.gofmt import format_value, go_kind, go_type_name, sprintf
from canarist.core.gotemplate.encoders import UnsupportedValue, to_json, to_yaml
from canarist.core.gotemplate.funcspec import FuncError, FuncSpec
from canarist.core.gotemplate.gotime import (
    GoTime,
    LayoutError,
    format_layout,
    load_location,
    local_zone,
    parse_layout,
)
from canarist.core.gotemplate.sprig_strings import STRINGS
from canarist.core.gotemplate.values import GoIntList, GoStrList, Int64
from canarist.core.limits import check_template_items, check_template_string

__all__ = ["SPRIG"]

_I64 = 1 << 64


def _wrap64(v: int) -> Int64:
    v = (v + (1 << 63)) % _I64 - (1 << 63)
    return Int64(v)


# ------------------------------------------------------------------ conversions


def _trim_zero_decimal(s: str) -> str:
    found_zero = False
    for i in range(len(s), 0, -1):
        c = s[i - 1]
        if c == ".":
            if found_zero:
                return s[: i - 1]
        elif c == "0":
            found_zero = True
        else:
            return s
    return s


_PARSE_INT = re.compile(r"[+-]?(0[xX](_?[0-9a-fA-F])+|0[bB](_?[01])+|0[oO](_?[0-7])+"
                        r"|0(_?[0-7])*|[1-9](_?[0-9])*)")


def _parse_int0(s: str) -> int | None:
    """strconv.ParseInt(s, 0, 64)."""
    if not _PARSE_INT.fullmatch(s):
        return None
    sign = -1 if s[0] == "-" else 1
    body = s.lstrip("+-").replace("_", "")
    if body[:2].lower() in ("0x", "0b", "0o"):
        v = int(body, 0)
    elif len(body) > 1 and body[0] == "0":
        v = int(body, 8)
    else:
        v = int(body)
    v *= sign
    return v if -(1 << 63) <= v < (1 << 63) else None


def _parse_float(s: str) -> float | None:
    """strconv.ParseFloat(s, 64) for decimal, hex, inf and nan forms."""
    low = s.lower().lstrip("+-")
    if low in ("inf", "infinity", "nan"):
        return float(s.lower().replace("infinity", "inf"))
    if not re.fullmatch(r"[+-]?(\d[\d_]*\.?[\d_]*|\.[\d_]+)([eE][+-]?\d+)?"
                        r"|[+-]?0[xX][0-9a-fA-F_.]+[pP][+-]?\d+", s):
        return None
    try:
        if "x" in s.lower():
            return float.fromhex(s.replace("_", ""))
        f = float(s.replace("_", ""))
    except ValueError:
        return None
    return None if math.isinf(f) else f


def to_int64(v: object) -> int:
    """cast.ToInt64 (errors give 0)."""
    if v is None:
        return 0
    if isinstance(v, bool):
        return 1 if v else 0
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return -(1 << 63)
        return int(v) if abs(v) < 2**63 else -(1 << 63)
    if isinstance(v, str):
        r = _parse_int0(_trim_zero_decimal(v))
        return 0 if r is None else r
    return 0


def to_float64(v: object) -> float:
    """cast.ToFloat64 (errors give 0)."""
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        f = _parse_float(v)
        return 0.0 if f is None else f
    return 0.0


def strval(v: object) -> str:
    """Sprig's strval: strings as is, everything else with %v."""
    if isinstance(v, str):
        return v
    return format_value(v)


def _empty(v: object) -> bool:
    if v is None:
        return True
    if isinstance(v, bool):
        return not v
    if isinstance(v, int | float):
        return v == 0
    if isinstance(v, str | Mapping | list | tuple):
        return len(v) == 0
    return False


def _strslice(v: object) -> list[str]:
    if isinstance(v, GoStrList):
        return list(v)
    if isinstance(v, list | tuple):
        return [strval(x) for x in v if x is not None]
    if v is None:
        return []
    return [strval(v)]


# ------------------------------------------------------------------ general


def _default(d: object, *given: object) -> object:
    if not given or _empty(given[0]):
        return d
    return given[0]


def _coalesce(*vs: object) -> object:
    for v in vs:
        if not _empty(v):
            return v
    return None


def _ternary(vt: object, vf: object, cond: bool) -> object:
    return vt if cond else vf


def _fail(msg: str) -> str:
    raise FuncError(msg)


def _to_json(v: object) -> str:
    try:
        return to_json(v)
    except UnsupportedValue:
        return ""


def _to_pretty_json(v: object) -> str:
    try:
        return to_json(v, "  ")
    except UnsupportedValue:
        return ""


def _to_yaml(v: object) -> str:
    try:
        return to_yaml(v)
    except UnsupportedValue:
        return ""


def _quote(*vs: object) -> str:
    from canarist.core.gofmt import go_quote

    return " ".join(go_quote(strval(v)) for v in vs if v is not None)


def _squote(*vs: object) -> str:
    return " ".join(f"'{format_value(v)}'" for v in vs if v is not None)


def _dict(*vs: object) -> dict[str, object]:
    out: dict[str, object] = {}
    for i in range(0, len(vs), 2):
        out[strval(vs[i])] = vs[i + 1] if i + 1 < len(vs) else ""
    return out


def _keys(*dicts: object) -> GoStrList:
    out = GoStrList()
    for d in dicts:
        if isinstance(d, Mapping):
            out.extend(sorted(d))
    return out


def _has_key(d: object, key: str) -> bool:
    return isinstance(d, Mapping) and key in d


def _kind_of(v: object) -> str:
    return go_kind(v)


def _kind_is(target: str, v: object) -> bool:
    return target == go_kind(v)


def _type_of(v: object) -> str:
    return go_type_name(v)


def _join(sep: str, items: list[str]) -> str:
    check_template_string(sum(map(len, items)) + len(sep) * max(len(items) - 1, 0),
                          "join's result")
    return sep.join(items)


# ------------------------------------------------------------------ numbers


def _add(*vs: object) -> Int64:
    return _wrap64(sum(to_int64(v) for v in vs))


def _add1(v: object) -> Int64:
    return _wrap64(to_int64(v) + 1)


def _sub(a: object, b: object) -> Int64:
    return _wrap64(to_int64(a) - to_int64(b))


def _mul(a: object, *vs: object) -> Int64:
    r = to_int64(a)
    for v in vs:
        r = _wrap64(r * to_int64(v))
    return _wrap64(r)


def _go_div(a: int, b: int) -> int:
    if b == 0:
        raise FuncError("runtime error: integer divide by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _div(a: object, b: object) -> Int64:
    return _wrap64(_go_div(to_int64(a), to_int64(b)))


def _mod(a: object, b: object) -> Int64:
    x, y = to_int64(a), to_int64(b)
    return _wrap64(x - _go_div(x, y) * y)


def _max(a: object, *vs: object) -> Int64:
    return Int64(max([to_int64(a), *(to_int64(v) for v in vs)]))


def _min(a: object, *vs: object) -> Int64:
    return Int64(min([to_int64(a), *(to_int64(v) for v in vs)]))


def _round(a: object, places: int, *opt: float) -> float:
    round_on = opt[0] if opt else 0.5
    val = to_float64(a)
    try:
        pow10 = math.pow(10, places)
    except OverflowError:  # Go's math.Pow10 overflows to +Inf
        pow10 = math.inf
    digit = pow10 * val
    if not math.isfinite(digit):  # Go's Floor/Ceil pass NaN and Inf through
        return digit / pow10 if math.isfinite(pow10) else math.nan
    frac = math.modf(digit)[0]
    r = math.ceil(digit) if frac >= round_on else math.floor(digit)
    return float(r) / pow10


def _floor(a: object) -> float:
    f = to_float64(a)
    return float(math.floor(f)) if math.isfinite(f) else f


def _ceil(a: object) -> float:
    f = to_float64(a)
    return float(math.ceil(f)) if math.isfinite(f) else f


def _atoi(s: str) -> int:
    if re.fullmatch(r"[+-]?\d+", s):
        v = int(s)
        if -(1 << 63) <= v < (1 << 63):
            return v
    return 0


def _to_int(v: object) -> int:
    return int(to_int64(v))


def _until_step(start: int, stop: int, step: int) -> GoIntList:
    out = GoIntList()
    if step != 0:
        check_template_items(len(range(start, stop, step)))
    if stop < start:
        if step >= 0:
            return out
        out.extend(range(start, stop, step))
        return out
    if step <= 0:
        return out
    out.extend(range(start, stop, step))
    return out


def _until(count: int) -> GoIntList:
    return _until_step(0, count, -1 if count < 0 else 1)


def _seq(*params: int) -> str:
    if len(params) == 1:
        start, end = 1, params[0]
        inc = -1 if end < start else 1
        nums = _until_step(start, end + inc, inc)
    elif len(params) == 2:
        start, end = params
        step = -1 if end < start else 1
        nums = _until_step(start, end + step, step)
    elif len(params) == 3:
        start, step, end = params
        inc = 1
        if end < start:
            inc = -1
            if step > 0:
                return ""
        nums = _until_step(start, end + inc, step)
    else:
        return ""
    return " ".join(str(x) for x in nums)


# ------------------------------------------------------------------ lists


def _kind_name_for_error(v: object) -> str:
    if v is None:
        raise FuncError("runtime error: invalid memory address or nil pointer dereference")
    return go_kind(v)


def _as_list(v: object, what: str) -> Sequence[object]:
    if isinstance(v, list | tuple):
        return v
    raise FuncError(f"Cannot {what} on type {_kind_name_for_error(v)}")


def _list(*vs: object) -> list[object]:
    return list(vs)


def _append(lst: object, v: object) -> list[object]:
    return [*_as_list(lst, "push"), v]


def _first(lst: object) -> object:
    items = _as_list(lst, "find first")
    return items[0] if items else None


def _last(lst: object) -> object:
    items = _as_list(lst, "find last")
    return items[-1] if items else None


def _deep_equal(a: object, b: object) -> bool:
    if go_type_name(a) != go_type_name(b):
        return False
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return False
    return a == b


def _uniq(lst: object) -> list[object]:
    out: list[object] = []
    for x in _as_list(lst, "find uniq"):
        if not any(_deep_equal(x, y) for y in out):
            out.append(x)
    return out


def _has(needle: object, haystack: object) -> bool:
    if haystack is None:
        return False
    return any(_deep_equal(needle, x) for x in _as_list(haystack, "find has"))


# ------------------------------------------------------------------ dates


def _now() -> GoTime:
    dt = datetime.now(local_zone())
    return GoTime(dt)


def _date_in_zone(fmt: str, date: object, zone: str) -> str:
    if isinstance(date, GoTime):
        t = date
    elif isinstance(date, int) and not isinstance(date, bool) and go_type_name(date) in (
        "int", "int64", "int32"
    ):
        t = GoTime(datetime.fromtimestamp(date, UTC))
    else:
        t = _now()
    loc = load_location(zone) or UTC
    return format_layout(t.in_zone(loc), fmt)


def _date(fmt: str, date: object) -> str:
    return _date_in_zone(fmt, date, "Local")


def _to_date(fmt: str, s: str) -> GoTime:
    try:
        return parse_layout(fmt, s, local_zone())
    except LayoutError:
        return GoTime.zero()


def _unix_epoch(t: object) -> str:
    assert isinstance(t, GoTime)
    return str(t.unix())


# ------------------------------------------------------------------ registry

_S: list[tuple[str, tuple[str, ...], Callable[..., object], str | None]] = [
    ("default", ("any",), _default, "any"),
    ("empty", ("any",), _empty, None),
    ("coalesce", (), _coalesce, "any"),
    ("ternary", ("any", "any", "bool"), _ternary, None),
    ("fail", ("string",), _fail, None),
    ("toYaml", ("any",), _to_yaml, None),
    ("toJson", ("any",), _to_json, None),
    ("toPrettyJson", ("any",), _to_pretty_json, None),
    ("quote", (), _quote, "any"),
    ("squote", (), _squote, "any"),
    ("join", ("string", "any"), lambda sep, v: _join(sep, _strslice(v)), None),
    ("list", (), _list, "any"),
    ("dict", (), _dict, "any"),
    ("keys", (), _keys, "map"),
    ("hasKey", ("map", "string"), _has_key, None),
    ("kindOf", ("any",), _kind_of, None),
    ("kindIs", ("string", "any"), _kind_is, None),
    ("typeOf", ("any",), _type_of, None),
    ("int", ("any",), _to_int, None),
    ("int64", ("any",), lambda v: Int64(to_int64(v)), None),
    ("float64", ("any",), to_float64, None),
    ("toString", ("any",), strval, None),
    ("atoi", ("string",), _atoi, None),
    ("add", (), _add, "any"),
    ("add1", ("any",), _add1, None),
    ("sub", ("any", "any"), _sub, None),
    ("mul", ("any",), _mul, "any"),
    ("div", ("any", "any"), _div, None),
    ("mod", ("any", "any"), _mod, None),
    ("max", ("any",), _max, "any"),
    ("min", ("any",), _min, "any"),
    ("round", ("any", "int"), _round, "float64"),
    ("floor", ("any",), _floor, None),
    ("ceil", ("any",), _ceil, None),
    ("now", (), _now, None),
    ("date", ("string", "any"), _date, None),
    ("dateInZone", ("string", "any", "string"), _date_in_zone, None),
    ("toDate", ("string", "string"), _to_date, None),
    ("unixEpoch", ("time",), _unix_epoch, None),
    ("uniq", ("any",), _uniq, None),
    ("has", ("any", "any"), _has, None),
    ("append", ("any", "any"), _append, None),
    ("first", ("any",), _first, None),
    ("last", ("any",), _last, None),
    ("until", ("int",), _until, None),
    ("seq", (), _seq, "int"),
    *STRINGS,
]

SPRIG: dict[str, FuncSpec] = {
    name: FuncSpec(name, params, impl, variadic) for name, params, impl, variadic in _S
}

_ = sprintf  # printf-style helpers are in the builtins


def _sprig_slice(lst: object, *indices: object) -> object:
    """Sprig's slice (it replaces the text/template builtin of the same name)."""
    if lst is None:
        raise FuncError("runtime error: invalid memory address or nil pointer dereference")
    if not isinstance(lst, list | tuple):
        raise FuncError(f"list should be type of slice or array but {go_kind(lst)}")
    if not lst:
        return None
    start = _to_int(indices[0]) if indices else 0
    end = _to_int(indices[1]) if len(indices) >= 2 else len(lst)
    if not 0 <= start <= end <= len(lst):
        raise FuncError("reflect.Value.Slice: slice index out of bounds")
    part = lst[start:end]
    return type(lst)(part) if isinstance(lst, list) else list(part)


SPRIG["slice"] = FuncSpec("slice", ("any",), _sprig_slice, "any")
