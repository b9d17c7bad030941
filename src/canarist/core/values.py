"""Helm values: `--set`, `--set-string`, `--set-file` (strvals) and values-file merging.

The parser follows Helm 3.11's `pkg/strvals` rule for rule, including its quirks, so a
command line written for `iter8 k launch` yields the same values here:

* `a.b=1,c=x` - comma-separated pairs, dotted keys, later pairs win.
* `a[0].b=1`, `a[2]=x` - list indexes; a list grows to fit and gaps are `None`.
  Indexes above 65536 are refused. `a[0][1]=x` nests lists.
* `a={x,y}` - a list value. `a={}` gives `[""]` (one empty string), as in Helm.
* `\\.`, `\\,`, `\\=`, `\\[` ... - a backslash takes the next character literally.
* `--set-json` (Helm 3.10+): the same keys, but each value is one JSON document
  (`a.b={"x":[1,2]},c=null`); an empty value is `null`. An expression that starts with
  `{` is a whole JSON object merged into the values, as newer Helm releases accept.
* Typing (`--set` only): `true`/`false` (any case) become bools, `null` becomes `None`,
  and a decimal integer that fits in int64 and does not start with `0` (or is exactly
  `0`) becomes an int. **Floats stay strings**: Helm's `typedVal` parses only int64,
  so `--set x=0.5` gives the string `"0.5"`; so do `007` and `1e3`.
* An empty key is silently ignored (`=1`, `.a=1`), and a trailing `a.` or `a[0]` with no
  value is accepted without setting anything, exactly as Helm does.
* A key whose existing value has the wrong kind (`a=1,a.b=2`, or `a[0]` when `a` is a
  map) is an error, as it is in Helm.

Helm applies the layers in a fixed order: values files (deep-merged), then every
`--set-json`, then every `--set`, then every `--set-string`, then every `--set-file`
(`build_values`). Unlike Helm, key
nesting is also capped overall (200 levels) so no input can exhaust the stack.

Every problem raises `ValuesError` with one line naming the flag, the expression and what
was expected; nothing else escapes.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from canarist.core.errors import CanaristError, ValuesError
from canarist.core.limits import MAX_DEPTH

__all__ = [
    "MAX_INDEX",
    "MAX_NESTED_NAME_LEVEL",
    "build_values",
    "merge_patch",
    "merge_values",
    "parse_set",
    "parse_set_file",
    "parse_set_json",
    "parse_set_string",
    "quote",
]

MAX_INDEX = 65536
"""Largest list index Helm accepts in `a[i]`."""

MAX_NESTED_NAME_LEVEL = 30
"""Deepest `a.b.c...` nesting Helm accepts."""

_MAX_DEPTH = 200
_SHOWN = 160  # longest expression quoted in a message
_INT_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_KEY_STOP = frozenset("=[,.")
_ITEM_STOP = frozenset("[.=")
_INDEX_STOP = frozenset("]")
_LIST_STOP = frozenset(",}")
_VALUE_STOP = frozenset(",")

Reader = Callable[[str], Any]
_JSON = json.JSONDecoder()


def quote(text: str) -> str:
    """Double-quote `text` for a one-line message (quotes and invisible characters escaped;
    at most _SHOWN characters of it, then "...")."""
    shown, more = text[:_SHOWN], len(text) > _SHOWN
    out = ['"']
    for ch in shown:
        if ch == '"':
            out.append('\\"')
        elif ch != " " and unicodedata.category(ch)[0] in "CZ":
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('..."' if more else '"')
    return "".join(out)


class _Fail(Exception):
    """A parse error; turned into a ValuesError naming the flag and expression."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _fold_equal(value: str, word: str) -> bool:
    """Go's strings.EqualFold against a lower-case ASCII word."""
    if len(value) != len(word):
        return False
    for got, want in zip(value, word, strict=True):
        if got in (want, want.upper()):
            continue
        if want == "s" and got == "\u017f":  # LATIN SMALL LETTER LONG S folds to s
            continue
        if want == "k" and got == "\u212a":  # KELVIN SIGN folds to k
            continue
        return False
    return True


def _typed(value: str) -> Any:
    """Helm's typedVal: bool, null and int64 only; everything else stays a string."""
    if _fold_equal(value, "true"):
        return True
    if _fold_equal(value, "false"):
        return False
    if _fold_equal(value, "null"):
        return None
    if value == "0":
        return 0
    if value and value[0] != "0" and len(value) <= 20 and _INT_RE.fullmatch(value):
        number = int(value)  # int64 has at most 19 digits and a sign; longer stays text
        if _INT64_MIN <= number <= _INT64_MAX:
            return number
    return value


class _Parser:
    """A port of Helm's recursive strvals parser over a string."""

    def __init__(self, text: str, data: dict[str, Any], reader: Reader | None) -> None:
        """`reader` types each raw value; None reads JSON documents (`--set-json`)."""
        self.text = text
        self.pos = 0
        self.data = data
        self.reader = reader

    # -- scanning -----------------------------------------------------------------------

    def _read(self) -> str | None:
        if self.pos >= len(self.text):
            return None
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def _unread(self) -> None:
        self.pos -= 1

    def _until(self, stop: frozenset[str]) -> tuple[str, str | None]:
        """Read up to a stop character (consumed, returned) or end of input (None)."""
        out: list[str] = []
        while True:
            ch = self._read()
            if ch is None:
                return "".join(out), None
            if ch in stop:
                return "".join(out), ch
            if ch == "\\":
                nxt = self._read()
                if nxt is None:
                    return "".join(out), None
                out.append(nxt)
            else:
                out.append(ch)

    # -- grammar ------------------------------------------------------------------------

    def parse(self) -> None:
        while not self._key(self.data, 0, 0):
            pass

    def _key(self, data: dict[str, Any], level: int, depth: int) -> bool:
        """Parse one `key...=value`; True when the input is exhausted."""
        if depth > _MAX_DEPTH:
            raise _Fail(f"keys nest deeper than {_MAX_DEPTH} levels")
        key, last = self._until(_KEY_STOP)
        if last is None:
            if not key:
                return True
            raise _Fail(f"key {quote(key)} has no value, expected {quote(key + '=<value>')}")
        if last == "[":
            index = self._index()
            items: list[Any] = []
            if key in data:
                existing = data[key]
                if not isinstance(existing, list):
                    raise _Fail(f"key {quote(key)} holds {_kind(existing)}, expected a list")
                items = existing
            items, done = self._list_item(items, index, level, depth + 1)
            _put(data, key, items)
            return done
        if last == "=":
            return self._assign(lambda v: _put(data, key, v))
        if last == ",":
            if not key:
                raise _Fail('empty pair before ",", expected key=value')
            raise _Fail(f"key {quote(key)} has no value (cannot end with ,)")
        # last == "."
        level += 1
        if level > MAX_NESTED_NAME_LEVEL:
            raise _Fail(f"keys nest deeper than {MAX_NESTED_NAME_LEVEL} levels")
        inner: dict[str, Any] = {}
        if key in data:
            existing = data[key]
            if not isinstance(existing, dict):
                raise _Fail(f"key {quote(key)} holds {_kind(existing)}, expected a map")
            inner = existing
        done = self._key(inner, level, depth + 1)
        if not done and not inner:
            raise _Fail(f"key map {quote(key)} has no value")
        if inner:
            _put(data, key, inner)
        return done

    def _assign(self, store: Callable[[Any], None]) -> bool:
        """Read the value after `=` and store it; True when the input is exhausted."""
        if self.reader is None:
            self._assign_json(store)
            return False
        first = self._read()
        if first is None:
            store("")
            return True
        if first == "{":
            store(self._list_value())
            return False
        self._unread()
        raw, _ = self._until(_VALUE_STOP)
        store(self.reader(raw))
        return False

    def _assign_json(self, store: Callable[[Any], None]) -> None:
        """One JSON document, then optional blanks and a comma (Helm's `emptyVal`)."""
        if self._empty_value():
            store(None)
            return
        start = self.pos
        try:
            value, self.pos = _JSON.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            raise _Fail(f"invalid JSON value at character {exc.pos - start + 1}: {exc.msg}"
                        ) from None
        except (RecursionError, ValueError) as exc:
            raise _Fail(_json_problem(exc)) from None
        _check_json_depth(value)
        store(value)
        self._empty_value()

    def _empty_value(self) -> bool:
        """Skip blanks; True at a comma (consumed) or the end of input."""
        while True:
            ch = self._read()
            if ch is None or ch == ",":
                return True
            if not ch.isspace():
                self._unread()
                return False

    def _index(self) -> int:
        text, last = self._until(_INDEX_STOP)
        if last is None:
            raise _Fail('list index has no closing "]", expected a non-negative integer')
        if not _INT_RE.fullmatch(text) or int(text[:20]) < 0:
            raise _Fail(f"invalid list index {quote(_shown(text))}, expected a non-negative "
                        "integer")
        if len(text.lstrip("+0")) > 9:
            raise _Fail(f"list index {quote(_shown(text))} is too large, expected at most "
                        f"{MAX_INDEX}")
        return int(text)

    def _list_item(
        self, items: list[Any], index: int, level: int, depth: int
    ) -> tuple[list[Any], bool]:
        if depth > _MAX_DEPTH:
            raise _Fail(f"keys nest deeper than {_MAX_DEPTH} levels")
        rest, last = self._until(_ITEM_STOP)
        if rest:
            raise _Fail(
                f'unexpected {quote(rest)} after a list index, expected "[", "." or "="'
            )
        if last is None:
            return items, True
        if last == "=":
            box: list[Any] = []
            self._assign(box.append)  # Helm goes on after `a[0]=` even at the end of input
            return _set_index(items, index, box[0]), False
        if last == "[":
            nxt = self._index()
            current: list[Any] = []
            if len(items) > index and items[index] is not None:
                existing = items[index]
                if not isinstance(existing, list):
                    raise _Fail(f"list element {index} holds {_kind(existing)}, expected a list")
                current = existing
            nested, done = self._list_item(current, nxt, level, depth + 1)
            if done:
                return items, True
            return _set_index(items, index, nested), False
        # last == "."
        inner: dict[str, Any] = {}
        if len(items) > index:
            if isinstance(items[index], dict):
                inner = items[index]
            else:
                items[index] = inner
        if self._key(inner, level, depth + 1):
            return items, True
        return _set_index(items, index, inner), False

    def _list_value(self) -> list[Any]:
        """The items of `{a,b,...}` after the opening brace."""
        reader = self.reader
        assert reader is not None, "JSON values have no {a,b} lists"
        out: list[Any] = []
        while True:
            raw, last = self._until(_LIST_STOP)
            if last is None:
                raise _Fail('list value has no closing "}"')
            if last == "}":
                after = self._read()
                if after is not None and after != ",":
                    self._unread()
                out.append(reader(raw))
                return out
            out.append(reader(raw))


def _json_problem(exc: Exception) -> str:
    """A JSON document Python's decoder gives up on (not a syntax error)."""
    if isinstance(exc, RecursionError):
        return f"the JSON value nests deeper than {MAX_DEPTH} levels"
    if "digits" in str(exc):
        return "a JSON number has more than 4300 digits"
    return f"invalid JSON value: {' '.join(str(exc).split())}"


def _check_json_depth(value: Any) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH (a YAML document may not nest deeper)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise _Fail(f"the JSON value nests deeper than {MAX_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _put(data: dict[str, Any], key: str, value: Any) -> None:
    if key:
        data[key] = value


def _set_index(items: list[Any], index: int, value: Any) -> list[Any]:
    if index > MAX_INDEX:
        raise _Fail(f"list index {index} is too large, expected at most {MAX_INDEX}")
    if len(items) <= index:
        items.extend([None] * (index + 1 - len(items)))
    items[index] = value
    return items


# -- copying and merging ------------------------------------------------------------------


def _key_text(key: Any) -> str:
    """A map key as text, the way YAML keys become JSON keys in Helm."""
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _clone(value: Any, depth: int = 0) -> Any:
    """Deep copy of plain data; shared (YAML alias) parts become independent copies."""
    if depth > _MAX_DEPTH:
        raise ValuesError(
            f"values nest deeper than {_MAX_DEPTH} levels (or refer to themselves)"
        )
    if isinstance(value, Mapping):
        return {_key_text(k): _clone(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clone(v, depth + 1) for v in value]
    return value


def _merge_into(base: dict[str, Any], layer: Mapping[str, Any], depth: int,
                null_removes: bool = False) -> None:
    for key, value in layer.items():
        name = _key_text(key)
        current = base.get(name)
        if value is None and null_removes:
            base.pop(name, None)
        elif isinstance(value, Mapping) and (isinstance(current, dict) or null_removes):
            if depth > _MAX_DEPTH:
                raise ValuesError(f"values nest deeper than {_MAX_DEPTH} levels")
            if not isinstance(current, dict):
                current = base[name] = {}
            _merge_into(current, value, depth + 1, null_removes)
        else:
            base[name] = _clone(value, depth + 1)


def merge_patch(base: Mapping[str, Any], patch: Mapping[str, Any] | None) -> dict[str, Any]:
    """`patch` deep-merged over `base` as a JSON merge patch (RFC 7386), into a new dict.

    Maps merge key by key; lists and scalars replace; a `null` in `patch` removes the key
    (a map in `patch` that replaces something else is applied to an empty map, so its nulls
    go too). Keys become text as in `merge_values`; neither argument is modified.
    """
    out = _clone(base) if isinstance(base, Mapping) else {}
    _merge_into(out, patch or {}, 0, null_removes=True)
    return cast(dict[str, Any], out)


def merge_values(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge values files in order, as Helm does for `-f a.yaml -f b.yaml`.

    Later layers win; maps merge key by key; lists and scalars replace; a `null` in a later
    layer sets the key to `None` (Helm removes such keys only when it coalesces the chart's
    defaults). The result shares nothing with the inputs, which are never modified.
    """
    out: dict[str, Any] = {}
    for number, layer in enumerate(layers, start=1):
        if not isinstance(layer, Mapping):
            raise ValuesError(
                f"values layer {number}: expected a map at the top level, got {_kind(layer)}"
            )
        _merge_into(out, layer, 0)
    return out


def coalesce_defaults(values: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of a chart's defaults under user values, in place on `values`
    (which it returns).

    Unlike `merge_values`, the defaults only fill in: a key the user set keeps its value
    (a map merges with the default map under it), and a `null` the user set removes a key
    the defaults have; a `null` under a key the defaults lack stays, as in Helm.
    """
    for key, default in defaults.items():
        if key not in values:
            values[key] = _clone(default)
        elif values[key] is None:
            del values[key]
        elif isinstance(values[key], dict) and isinstance(default, Mapping):
            coalesce_defaults(values[key], default)
    return values


# -- public parsing -----------------------------------------------------------------------


def _run(
    flag: str, expr: str, base: Mapping[str, Any] | None, reader: Reader | None
) -> dict[str, Any]:
    if not isinstance(expr, str):
        raise ValuesError(f"{flag}: expected a string of key=value pairs, got {_kind(expr)}")
    data = merge_values(base) if base is not None else {}
    try:
        _Parser(expr, data, reader).parse()
    except _Fail as exc:
        raise ValuesError(f"{flag} {quote(_shown(expr))}: {exc}") from None
    return data


def _shown(expr: str) -> str:
    return expr if len(expr) <= _SHOWN else expr[: _SHOWN - 3] + "..."


def parse_set(expr: str, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Apply one `--set` expression on top of (a copy of) `base`, with Helm's typing."""
    return _run("--set", expr, base, _typed)


def parse_set_json(expr: str, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Apply one `--set-json` expression: `key=<JSON>` pairs, or one whole JSON object."""
    if isinstance(expr, str) and expr.strip().startswith("{"):
        try:
            layer = json.loads(expr)
            _check_json_depth(layer)
        except json.JSONDecodeError as exc:
            raise ValuesError(f"--set-json {quote(_shown(expr))}: invalid JSON at character "
                              f"{exc.pos + 1}: {exc.msg}") from None
        except (RecursionError, ValueError, _Fail) as exc:
            problem = str(exc) if isinstance(exc, _Fail) else _json_problem(exc)
            raise ValuesError(f"--set-json {quote(_shown(expr))}: {problem}") from None
        if not isinstance(layer, dict):
            raise ValuesError(f"--set-json {quote(_shown(expr))}: expected a JSON object")
        return merge_values(base or {}, layer)
    return _run("--set-json", expr, base, None)


def parse_set_string(expr: str, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Apply one `--set-string` expression: like `parse_set`, but every value stays a string."""
    return _run("--set-string", expr, base, str)


def parse_set_file(
    expr: str,
    read_file: Callable[[str], str],
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply one `--set-file` expression: each value is a path whose contents become the value.

    `read_file` does the I/O; whatever it raises becomes a ValuesError naming the path.
    Items of a `{p1,p2}` list are read too, as in Helm.
    """

    def reader(path: str) -> str:
        try:
            text = read_file(path)
        except ValuesError:
            raise
        except CanaristError as exc:
            raise _Fail(f"cannot read {quote(path)}: {' '.join(exc.message.split())}") from None
        except Exception as exc:
            detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise _Fail(f"cannot read {quote(path)}: {' '.join(str(detail).split())}") from None
        if not isinstance(text, str):
            raise _Fail(f"cannot read {quote(path)}: the reader returned {_kind(text)}")
        return text

    return _run("--set-file", expr, base, reader)


def build_values(
    files: Sequence[Mapping[str, Any]] = (),
    *,
    set_json_values: Sequence[str] = (),
    set_values: Sequence[str] = (),
    set_string_values: Sequence[str] = (),
    set_file_values: Sequence[str] = (),
    read_file: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The user-supplied values, in Helm's order.

    Values files are deep-merged in order (`merge_values`), then every `--set-json` is
    applied in command-line order, then every `--set`, every `--set-string` and every
    `--set-file` - the order Helm uses whatever the interleaving on the command line.
    `read_file` is required when `set_file_values` is not empty.
    """
    values = merge_values(*files)
    for expr in set_json_values:
        values = parse_set_json(expr, values)
    for expr in set_values:
        values = parse_set(expr, values)
    for expr in set_string_values:
        values = parse_set_string(expr, values)
    if set_file_values and read_file is None:
        raise ValuesError("--set-file: no file reader was given")
    for expr in set_file_values:
        assert read_file is not None
        values = parse_set_file(expr, read_file, values)
    return values
