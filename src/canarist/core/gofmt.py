"""Go `fmt` formatting of Python values that stand for Go values.

Mapping: None is nil, bool, int (Go `int`), float (`float64`), str (`string`),
list/tuple (`[]interface {}`), dict (`map[string]interface {}`). A value may carry a
`go_type` class attribute to name a more specific Go type (e.g. `[]string`, `int64`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal

from canarist.core.limits import check_template_string

__all__ = [
    "format_float",
    "format_value",
    "format_verb",
    "go_kind",
    "go_quote",
    "go_type_name",
    "sprint",
    "sprintf",
    "sprintln",
]


def go_type_name(v: object) -> str:
    """The Go type name `%T` prints for a value (`<nil>` for nil)."""
    explicit = getattr(type(v), "go_type", None)
    if isinstance(explicit, str):
        return explicit
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if isinstance(v, list | tuple):
        return "[]interface {}"
    return type(v).__name__


def go_kind(v: object) -> str:
    """The reflect.Kind name of a value (`invalid` for nil)."""
    if v is None:
        return "invalid"
    t = go_type_name(v)
    if t.startswith("[]"):
        return "slice"
    if t.startswith("map["):
        return "map"
    if t == "<nil>":
        return "invalid"
    return t if t in _BASIC_KINDS else "ptr" if t.startswith("*") else "struct"


_BASIC_KINDS = frozenset(
    {"bool", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32",
     "uint64", "float32", "float64", "string", "func"}
)


# ---------------------------------------------------------------------------- floats


def _digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |f| and the decimal point position."""
    _sign, digs, exp = Decimal(repr(abs(f))).as_tuple()
    s = "".join(map(str, digs)).rstrip("0")
    assert isinstance(exp, int)
    if not s:
        return "", 0
    # value = 0.s * 10**dp
    dp = len(digs) + exp
    lead = len(s) - len(s.lstrip("0"))
    return s.lstrip("0"), dp - lead


def _fmt_e(digits: str, dp: int, upper: bool) -> str:
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = dp - 1 if digits else 0
    e = "E" if upper else "e"
    return f"{mant or '0'}{e}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _fmt_f(digits: str, dp: int) -> str:
    if not digits:
        return "0"
    if dp <= 0:
        return "0." + "0" * (-dp) + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def format_float(f: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(f, verb, prec, 64) for verbs e E f F g G."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    neg = math.copysign(1.0, f) < 0
    sign = "-" if neg else ""
    if prec >= 0:
        spec = {"F": "f"}.get(verb, verb)
        return sign + format(abs(f), f".{prec}{spec}")
    digits, dp = _digits(f)
    if verb in "eE":
        return sign + _fmt_e(digits, dp, verb == "E")
    if verb in "fF":
        return sign + _fmt_f(digits, dp)
    exp = dp - 1 if digits else -1
    if exp < -4 or exp >= 6:
        return sign + _fmt_e(digits, dp, verb == "G")
    return sign + _fmt_f(digits, dp)


# ---------------------------------------------------------------------------- quoting

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\v": "\\v", "\\": "\\\\"}


def go_quote(s: str, quote: str = '"', ascii_only: bool = False) -> str:
    """strconv.Quote (or QuoteToASCII / QuoteRune with quote="'")."""
    out = [quote]
    for ch in s:
        if ch == quote:
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable() and not (ascii_only and ord(ch) > 0x7E):
            out.append(ch)
        else:
            o = ord(ch)
            if o < 0x80:
                out.append(f"\\x{o:02x}")
            elif o < 0x10000:
                out.append(f"\\u{o:04x}")
            else:
                out.append(f"\\U{o:08x}")
    out.append(quote)
    return "".join(out)


# ---------------------------------------------------------------------------- %v


def format_value(v: object) -> str:
    """Go's `%v` of a value."""
    return _fmt(v, "v", _Flags(), top=True)


def format_verb(v: object, verb: str) -> str:
    """Go's `%<verb>` of a single value without flags, e.g. format_verb(1, "s")."""
    return _fmt(v, verb, _Flags(), top=True)


class _Flags:
    __slots__ = ("minus", "plus", "prec", "sharp", "space", "width", "zero")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.width = -1
        self.prec = -1


def _bad_verb(verb: str, v: object, fl: _Flags | None = None) -> str:
    """Go's `%!verb(type=value)`; the value is printed with %v and the same flags."""
    if v is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(v)}={_fmt(v, 'v', fl or _Flags(), top=True)})"


def _pad(s: str, fl: _Flags, zero_ok: bool = False) -> str:
    if fl.width < 0 or len(s) >= fl.width:
        return s
    n = fl.width - len(s)
    if fl.minus:
        return s + " " * n
    if fl.zero and zero_ok:
        sign = s[0] if s[:1] in ("-", "+", " ") else ""
        return sign + "0" * n + s[len(sign):]
    return " " * n + s


def _fmt_int(n: int, verb: str, fl: _Flags) -> str:
    if verb == "c":
        return _pad(chr(n) if 0 <= n <= 0x10FFFF else "\ufffd", fl)
    if verb == "q":
        return _pad(go_quote(chr(n) if 0 <= n <= 0x10FFFF else "\ufffd", "'", fl.plus), fl)
    if verb == "U":
        return _pad(f"U+{n:04X}", fl)
    base = {"d": "d", "v": "d", "b": "b", "o": "o", "O": "o", "x": "x", "X": "X"}[verb]
    digits = format(abs(n), base)
    if fl.prec >= 0:
        digits = "" if fl.prec == 0 and n == 0 else digits.rjust(fl.prec, "0")
    prefix = ""
    if verb == "O" or (fl.sharp and verb == "o" and not digits.startswith("0")):
        prefix = "0o" if verb == "O" else "0"
    elif fl.sharp and verb in "xX":
        prefix = "0" + verb
    elif fl.sharp and verb == "b":
        prefix = "0b"
    sign = "-" if n < 0 else "+" if fl.plus else " " if fl.space else ""
    if fl.zero and not fl.minus and fl.prec < 0 and fl.width > 0:
        digits = digits.rjust(fl.width - len(sign) - len(prefix), "0")
    return _pad(sign + prefix + digits, fl)


def _fmt_float(f: float, verb: str, fl: _Flags) -> str:
    if verb == "v":
        verb = "g"
    prec = fl.prec
    if prec < 0 and verb in "eEfF":
        prec = 6
    s = format_float(f, verb, prec)
    if fl.plus and not s.startswith(("-", "+")):
        s = "+" + s
    elif fl.space and not s.startswith(("-", "+")):
        s = " " + s
    return _pad(s, fl, zero_ok=math.isfinite(f))


def _fmt_str(s: str, verb: str, fl: _Flags) -> str:
    if verb in "vs":
        if fl.prec >= 0:
            s = s[: fl.prec]
        return _pad(s, fl)
    if verb == "q":
        if fl.sharp and "`" not in s and all(c.isprintable() or c == "\t" for c in s):
            return _pad("`" + s + "`", fl)
        return _pad(go_quote(s, '"', fl.plus), fl)
    data = s.encode()
    if fl.prec >= 0:
        data = data[: fl.prec]
    hexd = data.hex() if verb == "x" else data.hex().upper()
    pairs = [hexd[i : i + 2] for i in range(0, len(hexd), 2)]
    pre = "0" + verb if fl.sharp else ""
    if fl.space:
        return _pad(" ".join(pre + p for p in pairs), fl)
    return _pad(pre + "".join(pairs), fl)


_VERBS: dict[str, str] = {
    "bool": "vt",
    "int": "vdbcoOqxXU",
    "float": "vbeEfFgGxX",
    "str": "vsqxX",
}


def _fmt(v: object, verb: str, fl: _Flags, top: bool = False) -> str:
    if verb == "T":
        return _pad(go_type_name(v), fl)
    if v is None:
        if verb == "v" or not top:
            return _pad("<nil>", fl)
        return _bad_verb(verb, v, fl)
    if isinstance(v, bool):
        if verb not in _VERBS["bool"]:
            return _bad_verb(verb, v, fl)
        return _pad("true" if v else "false", fl)
    if isinstance(v, int):
        if verb not in _VERBS["int"]:
            return _bad_verb(verb, v, fl)
        return _fmt_int(v, verb, fl)
    if isinstance(v, float):
        if verb not in _VERBS["float"] or verb in "xXb":
            return _bad_verb(verb, v, fl) if verb not in _VERBS["float"] else _pad(v.hex(), fl)
        return _fmt_float(v, verb, fl)
    if isinstance(v, str):
        if verb not in _VERBS["str"]:
            return _bad_verb(verb, v, fl)
        return _fmt_str(v, verb, fl)
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: _sort_key(kv[0]))
        body = " ".join(f"{_fmt(k, verb, fl)}:{_fmt(x, verb, fl)}" for k, x in items)
        return f"map[{body}]"
    if isinstance(v, Sequence):
        return "[" + " ".join(_fmt(x, verb, fl) for x in v) + "]"
    stringer = getattr(v, "go_string", None)
    if callable(stringer) and verb in "vs":
        return _pad(str(stringer()), fl)
    return _pad(str(v), fl)


def _sort_key(k: object) -> tuple[int, object]:
    if isinstance(k, str):
        return (1, k)
    if isinstance(k, int | float):
        return (0, k)
    return (2, str(k))


# ---------------------------------------------------------------------------- Sprint*


def _is_string(v: object) -> bool:
    return isinstance(v, str)


def sprint(*args: object) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out: list[str] = []
    prev_string = False
    for i, a in enumerate(args):
        is_str = _is_string(a)
        if i > 0 and not is_str and not prev_string:
            out.append(" ")
        out.append(format_value(a))
        prev_string = is_str
    return "".join(out)


def sprintln(*args: object) -> str:
    """fmt.Sprintln: operands separated by spaces, newline appended."""
    return " ".join(format_value(a) for a in args) + "\n"


# ---------------------------------------------------------------------------- Sprintf

_NUM = re.compile(r"\d+")


def sprintf(fmt: str, *args: object) -> str:  # noqa: C901
    """fmt.Sprintf for the common verbs, flags, width, precision and `%[n]` indexes."""
    out: list[str] = []
    size = 0  # of what `out` holds in formatted verbs, so far
    argi = 0
    reordered = False
    i = 0
    n = len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        fl = _Flags()
        while i < n and fmt[i] in "#0+- ":
            c = fmt[i]
            if c == "#":
                fl.sharp = True
            elif c == "0":
                fl.zero = not fl.minus
            elif c == "+":
                fl.plus = True
            elif c == "-":
                fl.minus = True
                fl.zero = False
            else:
                fl.space = True
            i += 1
        # argument index before width
        i, argi, bad_index = _arg_index(fmt, i, argi, len(args))
        reordered = reordered or bad_index is not None
        if i < n and fmt[i] == "*":
            i += 1
            if argi < len(args) and isinstance(args[argi], int) and not isinstance(
                args[argi], bool
            ) and not _too_large(int(args[argi])):  # type: ignore[call-overload]
                w = int(args[argi])  # type: ignore[call-overload]
                argi += 1
                if w < 0:
                    fl.minus, fl.zero, w = True, False, -w
                fl.width = w
            else:
                argi += 1
                out.append("%!(BADWIDTH)")
        else:
            m = _NUM.match(fmt, i)
            if m:
                fl.width = _parsenum(m.group())
                i = m.end() if fl.width >= 0 else n
        if i < n and fmt[i] == ".":
            i += 1
            i, argi, bi = _arg_index(fmt, i, argi, len(args))
            bad_index = bad_index or bi
            if i < n and fmt[i] == "*":
                i += 1
                if argi < len(args) and isinstance(args[argi], int) and not isinstance(
                    args[argi], bool
                ) and not _too_large(int(args[argi])):  # type: ignore[call-overload]
                    p = int(args[argi])  # type: ignore[call-overload]
                    argi += 1
                    fl.prec = p if p >= 0 else -1
                    if p < 0:
                        out.append("%!(BADPREC)")
                else:
                    argi += 1
                    out.append("%!(BADPREC)")
            else:
                m = _NUM.match(fmt, i)
                fl.prec = _parsenum(m.group()) if m else 0
                if m:
                    i = m.end() if fl.prec >= 0 else n
                    fl.prec = max(fl.prec, 0)
        i, argi, bi = _arg_index(fmt, i, argi, len(args))
        bad_index = bad_index or bi
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if bad_index:
            out.append(f"%!{verb}(BADINDEX)")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        if verb == "w":
            verb = "v"
        if verb == "v" and fl.plus:
            fl.plus = False  # %+v is Go's plusV: no sign flag
        out.append(_fmt(arg, verb, fl, top=True))
        size += len(out[-1])
        check_template_string(size + n - i, "printf's result")
    if not reordered and argi < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{go_type_name(a)}={format_value(a)}" for a in args[argi:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _too_large(number: int) -> bool:
    """Go's fmt refuses widths and precisions beyond a million (tooLarge)."""
    return not -1_000_000 <= number <= 1_000_000


def _parsenum(digits: str) -> int:
    """Go's fmt.parsenum: the number, or -1 when it overflows (a digit follows a value
    above a million), where Go gives up on the rest of the format."""
    number = 0
    for digit in digits:
        if number > 1_000_000:
            return -1
        number = number * 10 + ord(digit) - 48
    return number


def _arg_index(fmt: str, i: int, argi: int, nargs: int) -> tuple[int, int, bool | None]:
    """Parse an optional `[n]`; returns (pos, argi, bad) with bad None when absent."""
    if i >= len(fmt) or fmt[i] != "[":
        return i, argi, None
    close = fmt.find("]", i)
    if close < 0:
        return i + 1, argi, True
    text = fmt[i + 1 : close]
    if not text.isdigit() or not 1 <= int(text) <= nargs:
        return close + 1, argi, True
    return close + 1, int(text) - 1, False
