"""Go's `regexp` for templates and `if` expressions: RE2, so matching takes linear time.

Python's `re` backtracks: `^(a+)+$` against "aaaa…ab" takes exponential time, where Go
answers at once. Patterns are compiled by RE2 (the `google-re2` package), which has Go's
syntax (no backreferences or lookaround; `(?P<name>…)`, `\\z`, `(?i)` and Unicode classes
as in Go) and Go's leftmost-first semantics. The "all matches" operations follow Go's
rules for empty matches, which differ from Python's: an empty match right after a match is
not one (`a*` in "baaac" matches "", "aaa" and "" at the end, and replaces to "-b-c-").

A pattern RE2 rejects raises `GoRegexpError`, worded as Go's `regexp/syntax` error:
"error parsing regexp: missing closing ): `(`".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, Final

import re2

__all__ = ["GoRegexpError", "compile_go", "find_all", "quote_meta", "replace_all", "split"]

_OPTIONS: Final = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print each rejected pattern on stderr

# RE2's words for a syntax error -> Go's (regexp/syntax ErrorCode)
_GO_WORDS: Final = {
    "unexpected error": "regexp/syntax: internal error",
    "invalid escape sequence": "invalid escape sequence",
    "invalid character class": "invalid character class",
    "invalid character class range": "invalid character class range",
    "missing ]": "missing closing ]",
    "missing )": "missing closing )",
    "unexpected )": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid UTF-8": "invalid UTF-8",
    "invalid named capture group": "invalid named capture",
    "pattern too large - compile failed": "expression too large",
    "pattern too large - reverse compile failed": "expression too large",
}


class GoRegexpError(ValueError):
    """A pattern Go's regexp would reject; `str()` is Go's `err.Error()`."""


def _go_error(pattern: str, error: Exception) -> GoRegexpError:
    raw = error.args[0] if error.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for words in sorted(_GO_WORDS, key=len, reverse=True):
        if text == words or text.startswith(words + ": "):
            culprit = text[len(words) + 2:] if text != words else pattern
            return GoRegexpError(f"error parsing regexp: {_GO_WORDS[words]}: `{culprit}`")
    return GoRegexpError(f"error parsing regexp: {text}: `{pattern}`")


@functools.lru_cache(maxsize=256)
def compile_go(pattern: str) -> Any:
    """The compiled pattern (`search`, `match`, `fullmatch` as in `re`); GoRegexpError if
    Go's regexp would not compile it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise _go_error(pattern, exc) from None


def _matches(pattern: Any, text: str, limit: int = -1) -> Iterator[Any]:
    """Successive matches as Go's FindAll finds them (an empty match abutting the previous
    match is skipped); at most `limit` when it is not negative."""
    pos, found, previous_end = 0, 0, -1
    while (limit < 0 or found < limit) and pos <= len(text):
        match = pattern.search(text, pos)
        if match is None:
            break
        start, end = match.span()
        accept = True
        if end == start:
            accept = start != previous_end
            pos = end + 1
        else:
            pos = end
        previous_end = end
        if accept:
            found += 1
            yield match


def find_all(pattern: Any, text: str, limit: int) -> list[str]:
    """Go's FindAllString: the text of each match, at most `limit` unless it is negative."""
    return [match.group() for match in _matches(pattern, text, limit)]


def replace_all(pattern: Any, text: str, replacement: Callable[[Any], str]) -> str:
    """Go's ReplaceAllString with `replacement(match)` for each match, Go's empty-match rule
    included (no replacement for an empty match right after a match)."""
    out: list[str] = []
    last_end, search = 0, 0
    while search <= len(text):
        match = pattern.search(text, search)
        if match is None:
            break
        start, end = match.span()
        out.append(text[last_end:start])
        if end > last_end or start == 0:
            out.append(replacement(match))
        last_end = end
        search = max(search + 1, end)
    out.append(text[last_end:])
    return "".join(out)


def split(pattern: Any, text: str, limit: int) -> list[str]:
    """Go's Regexp.Split: at most `limit` pieces unless it is negative; none for 0."""
    if limit == 0:
        return []
    if pattern.pattern and not text:
        return [""]
    pieces: list[str] = []
    begin = end = 0
    for match in _matches(pattern, text, limit):
        if limit > 0 and len(pieces) == limit - 1:
            break
        end = match.start()
        if match.end() != 0:
            pieces.append(text[begin:end])
        begin = match.end()
    if end != len(text):
        pieces.append(text[begin:])
    return pieces


_SPECIAL: Final = frozenset("\\.+*?()|[]{}^$")


def quote_meta(text: str) -> str:
    """Go's QuoteMeta: every metacharacter escaped."""
    return "".join("\\" + c if c in _SPECIAL else c for c in text)
