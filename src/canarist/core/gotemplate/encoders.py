"""toJson / toPrettyJson (Go encoding/json) and toYaml (sigs.k8s.io/yaml on yaml.v2)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from canarist.core.gofmt import format_float
from canarist.core.gotemplate.gotime import GoTime

__all__ = ["UnsupportedValue", "to_json", "to_yaml"]


class UnsupportedValue(ValueError):
    """json.Marshal would fail (NaN/Inf floats, unsupported types)."""


# ------------------------------------------------------------------ JSON

_JSON_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
             "\u2029": "\\u2029"}


def _json_str(s: str) -> str:
    out = ['"']
    for ch in s:
        esc = _JSON_ESC.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " ":
            out.append(f"\\u00{ord(ch):02x}")
        elif "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise UnsupportedValue(f"json: unsupported value: {format_float(f)}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        s = format_float(f, "e")
        return re.sub(r"e([+-])0(\d)$", r"e\1\2", s)
    return format_float(f, "f")


def _json(v: object, indent: str | None, level: int) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _json_float(v)
    if isinstance(v, str):
        return _json_str(v)
    if isinstance(v, GoTime):
        return _json_str(v.rfc3339nano())
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        items = [(str(k), v[k]) for k in v]
        items.sort(key=lambda kv: kv[0].encode())
        if indent is None:
            return "{" + ",".join(f"{_json_str(k)}:{_json(x, None, 0)}" for k, x in items) + "}"
        pad = "\n" + indent * (level + 1)
        body = ",".join(f"{pad}{_json_str(k)}: {_json(x, indent, level + 1)}" for k, x in items)
        return "{" + body + "\n" + indent * level + "}"
    if isinstance(v, Sequence):
        if not v:
            return "[]"
        if indent is None:
            return "[" + ",".join(_json(x, None, 0) for x in v) + "]"
        pad = "\n" + indent * (level + 1)
        body = ",".join(pad + _json(x, indent, level + 1) for x in v)
        return "[" + body + "\n" + indent * level + "]"
    raise UnsupportedValue(f"json: unsupported type: {type(v).__name__}")


def to_json(v: object, indent: str | None = None) -> str:
    """json.Marshal (indent None) or json.MarshalIndent(v, "", indent)."""
    return _json(v, indent, 0)


# ------------------------------------------------------------------ YAML via JSON


def _json_roundtrip(v: object) -> object:
    """What yaml.v2 decodes from json.Marshal(v): integral floats below 1e21 become ints."""
    if v is None or isinstance(v, bool | str | int):
        return v
    if isinstance(v, float):
        text = _json_float(v)
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        return float(text)
    if isinstance(v, GoTime):
        return v.rfc3339nano()
    if isinstance(v, Mapping):
        return {str(k): _json_roundtrip(x) for k, x in v.items()}
    if isinstance(v, Sequence):
        return [_json_roundtrip(x) for x in v]
    raise UnsupportedValue(f"json: unsupported type: {type(v).__name__}")


_BREAKS = "\r\n\x85\u2028\u2029"
_BOOL_NULL = {
    "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
    "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
    "", "~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF",
    "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "<<",
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}"
    r"(?:[Tt ]\d{1,2}:\d{1,2}:\d{1,2}(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?)?"
)
_GO_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]*|[1-9][0-9]*)")


def _resolves_to_string(s: str) -> bool:
    """Whether yaml.v2 would read `s` back, unquoted, as a string."""
    if s in _BOOL_NULL:
        return False
    c = s[0]
    if c == ".":
        try:
            float(s)
            return False
        except ValueError:
            return True
    if c in "+-0123456789":
        if c.isdigit() and _TIMESTAMP.fullmatch(s) and _valid_timestamp(s):
            return False
        plain = s.replace("_", "")
        if _GO_INT.fullmatch(plain) or _YAML_FLOAT.fullmatch(plain):
            return False
        if re.fullmatch(r"-0[bB][01]+", plain):
            return False
    return True


def _valid_timestamp(s: str) -> bool:
    m = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2})", s)
    assert m
    y, mo, d = (int(x) for x in m.groups())
    import calendar

    if not 1 <= mo <= 12 or not 1 <= d <= calendar.monthrange(y or 2000, mo)[1]:
        return False
    t = re.search(r"[Tt ](\d{1,2}):(\d{1,2}):(\d{1,2})", s)
    return t is None or (int(t[1]) < 24 and int(t[2]) < 60 and int(t[3]) < 60)


def _printable(ch: str) -> bool:
    o = ord(ch)
    return (o == 0x0A or 0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF
            or (0xE000 <= o <= 0xFFFD and o != 0xFEFF))


class _Analysis:
    __slots__ = ("block", "block_plain", "flow_plain", "multiline", "single")

    def __init__(self, s: str) -> None:  # noqa: C901
        if not s:
            self.multiline, self.flow_plain, self.block_plain = False, False, True
            self.single, self.block = True, False
            return
        block_ind = flow_ind = line_breaks = special = False
        lead_sp = lead_br = trail_sp = trail_br = break_sp = sp_break = False
        prev_sp = prev_br = False
        if s.startswith(("---", "...")):
            block_ind = flow_ind = True
        preceded = True
        n = len(s)
        for i, ch in enumerate(s):
            followed = i + 1 >= n or s[i + 1] in " \t"
            if i == 0:
                if ch in "#,[]{}&*!|>'\"%@`":
                    flow_ind = block_ind = True
                elif ch in "?:":
                    flow_ind = True
                    block_ind = block_ind or followed
                elif ch == "-" and followed:
                    flow_ind = block_ind = True
            elif ch in ",?[]{}":
                flow_ind = True
            elif ch == ":":
                flow_ind = True
                block_ind = block_ind or followed
            elif ch == "#" and preceded:
                flow_ind = block_ind = True
            if not _printable(ch):
                special = True
            if ch == " ":
                lead_sp = lead_sp or i == 0
                trail_sp = trail_sp or i == n - 1
                break_sp = break_sp or prev_br
                prev_sp, prev_br = True, False
            elif ch in _BREAKS:
                line_breaks = True
                lead_br = lead_br or i == 0
                trail_br = trail_br or i == n - 1
                sp_break = sp_break or prev_sp
                prev_sp, prev_br = False, True
            else:
                prev_sp = prev_br = False
            preceded = ch in " \t" or ch in _BREAKS
        self.multiline = line_breaks
        fp = bp = sq = blk = True
        if lead_sp or lead_br or trail_sp or trail_br:
            fp = bp = False
        if trail_sp:
            blk = False
        if break_sp:
            fp = bp = sq = False
        if sp_break or special:
            fp = bp = sq = blk = False
        if line_breaks:
            fp = bp = False
        if flow_ind:
            fp = False
        if block_ind:
            bp = False
        self.flow_plain, self.block_plain, self.single, self.block = fp, bp, sq, blk


_DQ_ESC = {"\x00": "0", "\x07": "a", "\x08": "b", "\t": "t", "\n": "n", "\x0b": "v",
           "\x0c": "f", "\r": "r", "\x1b": "e", '"': '"', "\\": "\\", "\x85": "N",
           "\xa0": "_", "\u2028": "L", "\u2029": "P"}

_WIDTH = 80


class _Emitter:
    """A block-style YAML writer reproducing yaml.v2's layout and line folding."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True

    def put(self, s: str) -> None:
        self.out.append(s)
        self.column += len(s)
        self.whitespace = False

    def newline(self) -> None:
        self.out.append("\n")
        self.column = 0
        self.whitespace = True
        self.indention = True

    def write_break(self, ch: str) -> None:
        """A line break from the value: newline as is, other breaks copied verbatim."""
        self.out.append(ch)
        self.column = 0
        self.whitespace = True
        self.indention = True

    def write_indent(self, indent: int) -> None:
        indent = max(indent, 0)
        if not self.indention or self.column > indent or (
            self.column == indent and not self.whitespace
        ):
            self.newline()
        if self.column < indent:
            self.out.append(" " * (indent - self.column))
            self.column = indent
        self.whitespace = True
        self.indention = True

    def indicator(self, s: str, need_ws: bool, is_ws: bool, is_indention: bool) -> None:
        if need_ws and not self.whitespace:
            self.out.append(" ")
            self.column += 1
        self.out.append(s)
        self.column += len(s)
        self.whitespace = is_ws
        self.indention = self.indention and is_indention

    # -- scalars
    def scalar(self, s: str, indent: int, simple_key: bool, plain_ok: bool) -> None:
        """Write a string scalar; `plain_ok` is False when plain would change its type."""
        a = _Analysis(s)
        style = "literal" if "\n" in s else "plain" if plain_ok else "double"
        if simple_key and a.multiline:
            style = "double"
        if style == "plain" and (not a.block_plain or (not s and simple_key)):
            style = "single"
        if style == "single" and not a.single:
            style = "double"
        if style == "literal" and (not a.block or simple_key):
            style = "double"
        if style == "plain":
            self.plain(s, indent, not simple_key)
        elif style == "single":
            self.single(s, indent, not simple_key)
        elif style == "double":
            self.double(s, indent, not simple_key)
        else:
            self.literal(s, indent)

    def plain(self, s: str, indent: int, allow_breaks: bool) -> None:
        if not self.whitespace:
            self.put(" ")
        spaces = False
        for i, ch in enumerate(s):
            if ch == " ":
                nxt = s[i + 1] if i + 1 < len(s) else ""
                if allow_breaks and not spaces and self.column > _WIDTH and nxt != " ":
                    self.write_indent(indent)
                else:
                    self.put(ch)
                spaces = True
            else:
                self.put(ch)
                self.indention = False
                spaces = False
        self.whitespace = False
        self.indention = False

    def single(self, s: str, indent: int, allow_breaks: bool) -> None:
        self.indicator("'", True, False, False)
        spaces = breaks = False
        n = len(s)
        for i, ch in enumerate(s):
            if ch == " ":
                nxt = s[i + 1] if i + 1 < n else ""
                if (allow_breaks and not spaces and self.column > _WIDTH and 0 < i < n - 1
                        and nxt != " "):
                    self.write_indent(indent)
                else:
                    self.put(ch)
                spaces = True
            elif ch in _BREAKS:
                if not breaks and ch == "\n":
                    self.newline()
                self.write_break(ch)
                breaks = True
            else:
                if breaks:
                    self.write_indent(indent)
                self.put("''" if ch == "'" else ch)
                self.indention = False
                spaces = breaks = False
        self.indicator("'", False, False, False)
        self.whitespace = False
        self.indention = False

    def double(self, s: str, indent: int, allow_breaks: bool) -> None:
        self.indicator('"', True, False, False)
        spaces = False
        n = len(s)
        for i, ch in enumerate(s):
            o = ord(ch)
            if (not _printable(ch) or ch == "\ufeff" or ch in _BREAKS or ch in '"\\'):
                esc = _DQ_ESC.get(ch)
                if esc is None:
                    esc = f"x{o:02X}" if o <= 0xFF else f"u{o:04X}" if o <= 0xFFFF else f"U{o:08X}"
                self.put("\\" + esc)
                spaces = False
            elif ch == " ":
                if allow_breaks and not spaces and self.column > _WIDTH and 0 < i < n - 1:
                    self.write_indent(indent)
                    if i + 1 < n and s[i + 1] == " ":
                        self.put("\\")
                else:
                    self.put(ch)
                spaces = True
            else:
                self.put(ch)
                spaces = False
        self.indicator('"', False, False, False)
        self.whitespace = False
        self.indention = False

    def literal(self, s: str, indent: int) -> None:
        self.indicator("|", True, False, False)
        if s[:1] == " " or s[:1] in _BREAKS:
            self.indicator("2", False, False, False)
        if s[-1] not in _BREAKS:
            self.indicator("-", False, False, False)
        elif len(s) == 1 or s[-2] in _BREAKS:
            self.indicator("+", False, False, False)
        self.newline()
        breaks = True
        for ch in s:
            if ch in _BREAKS:
                self.write_break(ch)
                breaks = True
            else:
                if breaks:
                    self.write_indent(indent)
                self.put(ch)
                self.indention = False
                breaks = False

    def atom(self, v: object, indent: int, simple_key: bool = False) -> None:
        """A non-string scalar or a string; `indent` is the scalar's own indent."""
        if isinstance(v, str):
            ok = _resolves_to_string(v) and not (
                v and v[0] in "+-0123456789" and ":" in v and _BASE60.fullmatch(v)
            )
            self.scalar(v, indent, simple_key, ok)
            return
        if v is None:
            text = "null"
        elif isinstance(v, bool):
            text = "true" if v else "false"
        elif isinstance(v, int):
            text = str(v)
        else:
            assert isinstance(v, float)
            text = format_float(v, "g")
            text = {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}.get(text, text)
        self.plain(text, indent, not simple_key)

    # -- collections
    def node(self, v: object, indent: int, mapping_ctx: bool) -> None:
        """Emit `v` whose parent collection is at `indent` (-1 at the root)."""
        if isinstance(v, Mapping) and v:
            self.mapping(v, indent + 2 if indent >= 0 else 0)
        elif isinstance(v, list) and v:
            seq_indent = indent if (mapping_ctx and indent >= 0) else (
                indent + 2 if indent >= 0 else 0)
            self.sequence(v, seq_indent)
        elif isinstance(v, Mapping):
            self.indicator("{}", True, False, False)
        elif isinstance(v, list):
            self.indicator("[]", True, False, False)
        else:
            self.atom(v, indent + 2 if indent >= 0 else 2)

    def mapping(self, m: Mapping[str, object], indent: int) -> None:
        for k in sorted(m, key=_KeyOrder):
            self.write_indent(indent)
            self.atom(k, indent + 2, simple_key=True)
            self.indicator(":", False, False, False)
            self.node(m[k], indent, mapping_ctx=True)

    def sequence(self, seq: list[object], indent: int) -> None:
        for x in seq:
            self.write_indent(indent)
            self.indicator("-", True, False, True)
            self.node(x, indent, mapping_ctx=False)


class _KeyOrder:
    """yaml.v2's key order: letters by code point, digit runs numerically."""

    __slots__ = ("s",)

    def __init__(self, s: str) -> None:
        self.s = s

    def __lt__(self, other: _KeyOrder) -> bool:
        ar, br = self.s, other.s
        for i in range(min(len(ar), len(br))):
            if ar[i] == br[i]:
                continue
            al, bl = ar[i].isalpha(), br[i].isalpha()
            if al and bl:
                return ar[i] < br[i]
            if al or bl:
                return bl
            an = bn = 0
            if ar[i] == "0" or br[i] == "0":
                j = i - 1
                while j >= 0 and ar[j].isdigit():
                    if ar[j] != "0":
                        an = bn = 1
                        break
                    j -= 1
            ai = i
            while ai < len(ar) and ar[ai].isdigit():
                an = an * 10 + int(ar[ai])
                ai += 1
            bi = i
            while bi < len(br) and br[bi].isdigit():
                bn = bn * 10 + int(br[bi])
                bi += 1
            if an != bn:
                return an < bn
            if ai != bi:
                return ai < bi
            return ar[i] < br[i]
        return len(ar) < len(br)


def to_yaml(v: object) -> str:
    """sigs.k8s.io/yaml Marshal with the trailing newline removed (as Helm's toYaml)."""
    data = _json_roundtrip(v)
    em = _Emitter()
    em.node(data, -1, mapping_ctx=False)
    em.write_indent(0)
    text = "".join(em.out)
    return text[:-1] if text.endswith("\n") else text
