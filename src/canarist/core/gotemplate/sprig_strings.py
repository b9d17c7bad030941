"""Sprig's string and regular-expression functions, with Sprig v3 semantics: Go's notion of
letters and spaces, RE2 regular expressions (linear time) with Go's error words, and results
bounded in size.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Callable
from typing import Any

from canarist.core.goregexp import (
    GoRegexpError,
    compile_go,
    find_all,
    quote_meta,
    replace_all,
    split,
)
from canarist.core.gotemplate.funcspec import FuncError
from canarist.core.gotemplate.values import GoStrList, GoStrMap
from canarist.core.limits import check_template_string

__all__ = ["STRINGS"]


# ------------------------------------------------------------------ strings

_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
            "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _upper(s: str) -> str:
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in s)


def _lower(s: str) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in s)


def _is_separator(c: str) -> bool:
    if c.isascii():
        return not (c.isalnum() or c == "_")
    if c.isalpha() or c.isdigit():
        return False
    return c in _GO_SPACE


def _title(s: str) -> str:
    out = []
    prev = " "
    for c in s:
        if _is_separator(prev):
            t = c.title()
            out.append(t if len(t) == 1 else c)
        else:
            out.append(c)
        prev = c
    return "".join(out)


def _split_go(orig: str, sep: str) -> list[str]:
    if sep == "":
        return list(orig)
    return orig.split(sep)


def _split(sep: str, orig: str) -> GoStrMap:
    return GoStrMap({f"_{i}": p for i, p in enumerate(_split_go(orig, sep))})


def _split_list(sep: str, orig: str) -> GoStrList:
    return GoStrList(_split_go(orig, sep))


def _replace(old: str, new: str, s: str) -> str:
    if len(new) > len(old):
        check_template_string(len(s) + s.count(old) * (len(new) - len(old)), "replace's result")
    return s.replace(old, new)


def _indent(n: int, s: str) -> str:
    if n < 0:  # Go's strings.Repeat panics, and text/template reports the panic
        raise FuncError("strings: negative Repeat count")
    check_template_string(len(s) + n * (s.count("\n") + 1), "indent's result")
    pad = " " * n
    return pad + s.replace("\n", "\n" + pad)


def _nindent(n: int, s: str) -> str:
    return "\n" + _indent(n, s)


def _b64dec(s: str) -> str:
    try:
        if len(s) % 4:
            raise binascii.Error
        data = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return f"illegal base64 data at input byte {_b64_error_at(s)}"
    return data.decode("utf-8", "replace")


def _b64_error_at(s: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, c in enumerate(s):
        if c == "=":
            return i
        if c not in alphabet and c not in "\r\n":
            return i
    return len(s) - len(s) % 4 if len(s) % 4 else len(s)


# ------------------------------------------------------------------ regex


def _go_regex(pattern: str) -> Any:
    """Sprig's regexp.MustCompile: RE2 (linear time), panicking with Go's words."""
    try:
        return compile_go(pattern)
    except GoRegexpError as e:
        raise FuncError(f"regexp: Compile({_backquote(pattern)}): {e}") from None


def _must_regex(pattern: str) -> Any:
    """The `mustRegex*` functions' regexp.Compile: the error itself is returned."""
    try:
        return compile_go(pattern)
    except GoRegexpError as e:
        raise FuncError(str(e)) from None


def _backquote(s: str) -> str:
    return "`" + s + "`" if "`" not in s else '"' + s + '"'


def _regex_match(pattern: str, s: str) -> bool:
    try:
        return _go_regex(pattern).search(s) is not None
    except FuncError:
        return False


def _regex_find(pattern: str, s: str, *, must: bool = False) -> str:
    m = (_must_regex if must else _go_regex)(pattern).search(s)
    return m.group() if m else ""


def _regex_find_all(pattern: str, s: str, n: int, *, must: bool = False) -> GoStrList:
    return GoStrList(find_all((_must_regex if must else _go_regex)(pattern), s, n))


def _regex_split(pattern: str, s: str, n: int, *, must: bool = False) -> GoStrList:
    return GoStrList(split((_must_regex if must else _go_regex)(pattern), s, n))


_EXPAND = re.compile(r"\$(\$|\{([A-Za-z0-9_]*)\}|([A-Za-z0-9_]+))")


def _regex_replace_all(pattern: str, s: str, repl: str, *, must: bool = False) -> str:
    rx = (_must_regex if must else _go_regex)(pattern)

    def expand(m: Any) -> str:
        def sub(e: re.Match[str]) -> str:
            if e.group(1) == "$":
                return "$"
            name = e.group(2) if e.group(2) is not None else e.group(3)
            if not name:
                return ""
            try:
                g = m.group(int(name)) if name.isdigit() else m.group(name)
            except (IndexError, KeyError):
                return ""
            return g or ""

        return _EXPAND.sub(sub, repl)

    return replace_all(rx, s, expand)


def _regex_replace_all_literal(pattern: str, s: str, repl: str, *, must: bool = False) -> str:
    return replace_all((_must_regex if must else _go_regex)(pattern), s, lambda m: repl)


STRINGS: list[tuple[str, tuple[str, ...], Callable[..., object], str | None]] = [
    ("upper", ("string",), _upper, None),
    ("lower", ("string",), _lower, None),
    ("title", ("string",), _title, None),
    ("trim", ("string",), lambda s: s.strip(_GO_SPACE), None),
    ("trimAll", ("string", "string"), lambda cut, s: s.strip(cut) if cut else s, None),
    ("trimPrefix", ("string", "string"), lambda p, s: s.removeprefix(p), None),
    ("trimSuffix", ("string", "string"), lambda p, s: s.removesuffix(p), None),
    ("replace", ("string", "string", "string"), lambda o, n, s: _replace(o, n, s), None),
    ("contains", ("string", "string"), lambda sub, s: sub in s, None),
    ("hasPrefix", ("string", "string"), lambda p, s: s.startswith(p), None),
    ("hasSuffix", ("string", "string"), lambda p, s: s.endswith(p), None),
    ("split", ("string", "string"), _split, None),
    ("splitList", ("string", "string"), _split_list, None),
    ("regexMatch", ("string", "string"), _regex_match, None),
    ("mustRegexMatch", ("string", "string"),
     lambda p, s: _must_regex(p).search(s) is not None, None),
    ("regexReplaceAll", ("string", "string", "string"), _regex_replace_all, None),
    ("mustRegexReplaceAll", ("string", "string", "string"),
     functools.partial(_regex_replace_all, must=True), None),
    ("regexReplaceAllLiteral", ("string", "string", "string"), _regex_replace_all_literal, None),
    ("mustRegexReplaceAllLiteral", ("string", "string", "string"),
     functools.partial(_regex_replace_all_literal, must=True), None),
    ("regexFind", ("string", "string"), _regex_find, None),
    ("mustRegexFind", ("string", "string"), functools.partial(_regex_find, must=True), None),
    ("regexFindAll", ("string", "string", "int"), _regex_find_all, None),
    ("mustRegexFindAll", ("string", "string", "int"),
     functools.partial(_regex_find_all, must=True), None),
    ("regexSplit", ("string", "string", "int"), _regex_split, None),
    ("mustRegexSplit", ("string", "string", "int"), functools.partial(_regex_split, must=True),
     None),
    ("regexQuoteMeta", ("string",), quote_meta, None),
    ("nindent", ("int", "string"), _nindent, None),
    ("indent", ("int", "string"), _indent, None),
    ("b64enc", ("string",), lambda s: base64.b64encode(s.encode()).decode(), None),
    ("b64dec", ("string",), _b64dec, None),
    ("sha256sum", ("string",), lambda s: hashlib.sha256(s.encode()).hexdigest(), None),
]
