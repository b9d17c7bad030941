"""The expr-lang subset that Iter8 0.13 accepts in task `if` conditions.

The text is tokenized and parsed once into a small tree, and evaluation walks that tree
over a mapping of names. User text never reaches Python's eval, compile or ast; only
callables found in the environment (and the builtins len, abs, int, float) can be
called; names starting with "_" are refused, so an expression cannot reach Python
internals.

Semantics follow antonmedv/expr v1.12: its operator precedence, int/float mixing,
`/` and `**` always giving a float, `%` on integers only and truncated like Go.
Iter8 type-checks an expression against a typed Go struct, so operations on mismatched
types (`"1" == 1`, `"a" < 1`, `1 and true`) are errors here too. Where Go would
silently give Inf or wrap around, this raises ExpressionError instead: division or
modulo by zero, int64 overflow, and `**` overflow. A member or key that does not exist
is an error rather than nil. `matches` uses Python's `re`, which agrees with Go's RE2 on
ordinary patterns; strings are measured and sliced in characters, not UTF-8 bytes.
"""

from __future__ import annotations

import inspect
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any, Final, TypeGuard

from canarist.core.errors import ExpressionError
from canarist.core.goregexp import GoRegexpError, compile_go
from canarist.core.validation import show_value

__all__ = ["MAX_DEPTH", "MAX_NODES", "Expression", "compile_expression"]

MAX_DEPTH: Final = 100
"""Deepest nesting of an expression tree; deeper ones are rejected when compiled."""
MAX_NODES: Final = 10_000
"""Largest number of nodes in an expression tree."""

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63 - 1


class _Fail(Exception):
    """An error at an offset of the text; becomes ExpressionError at the public boundary."""

    def __init__(self, message: str, pos: int | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.hint = hint


class _OpError(Exception):
    """An operation failed; the node that ran it adds its position."""


def _quote(text: str) -> str:
    """`text` in double quotes, shortened when long (an expression is echoed in messages)."""
    return show_value(text, limit=160)


def _shown_name(name: str) -> str:
    return name if len(name) <= 60 else name[:59] + "…"


def _location(text: str, pos: int) -> str:
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    if "\n" not in text:
        return f"column {column}"
    return f"line {text.count(chr(10), 0, pos) + 1}, column {column}"


def _error(text: str, fail: _Fail) -> ExpressionError:
    message = fail.message
    if fail.pos is not None:
        message += f" at {_location(text, fail.pos)}"
    if fail.hint:
        message += f": {fail.hint}"
    return ExpressionError(f"if {_quote(text)}: {message}")


# --------------------------------------------------------------------------- types


def _kind(value: object) -> str:
    """The name of a value's type in messages."""
    if value is None:
        return "nil"
    for cls, name in _KINDS:
        if isinstance(value, cls):
            return name
    return "func" if callable(value) else type(value).__name__


_KINDS: Final[tuple[tuple[type | tuple[type, ...], str], ...]] = (
    (bool, "bool"),
    (int, "int"),
    (float, "float"),
    (str, "string"),
    ((list, tuple), "array"),
    (Mapping, "map"),
    (datetime, "time"),
    (timedelta, "duration"),
)
_PRIMITIVES: Final = (bool, int, float, str, bytes, list, tuple, datetime, timedelta, ModuleType)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _int64(value: int) -> int:
    if not _INT_MIN <= value <= _INT_MAX:
        raise _OpError("integer overflow")
    return value


def _mismatch(op: str, left: object, right: object) -> _OpError:
    return _OpError(f"invalid operation: {op} (mismatched types {_kind(left)} and {_kind(right)})")


# --------------------------------------------------------------------------- lexer

_KEYWORD_OPS: Final = frozenset({"and", "or", "in", "matches", "contains", "startsWith", "endsWith"})
_NEGATABLE: Final = frozenset({"in", "matches", "contains", "startsWith", "endsWith"})
_TWO_CHAR_OPS: Final = frozenset({"**", "==", "!=", "<=", ">=", "&&", "||", "?.", "??", ".."})
_ONE_CHAR_OPS: Final = frozenset("+-*/%^<>!?:.,;=&|#()[]{}")
_ASCII_DIGITS: Final = frozenset("0123456789")
_DEC_DIGITS: Final = frozenset("0123456789_")
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF_")
_SIMPLE_ESCAPES: Final = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "'": "'", '"': '"', "`": "`", "?": "?",
}  # fmt: skip
_HEX_ESCAPES: Final = {"x": 2, "X": 2, "u": 4, "U": 8}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num", "str", "name", "op" or "eof"
    value: str
    pos: int
    end: int
    literal: object = None


def _is_word_char(char: str) -> bool:
    return char == "_" or char.isalpha() or char.isdecimal()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[_Token] = []

    def run(self) -> list[_Token]:
        text = self.text
        while True:
            self._skip_blanks()
            if self.pos >= len(text):
                self.tokens.append(_Token("eof", "", len(text), len(text)))
                return self.tokens
            char = text[self.pos]
            if char in "'\"":
                self._string(char)
            elif char in _ASCII_DIGITS or (
                char == "." and text[self.pos + 1 : self.pos + 2] in _ASCII_DIGITS
            ):
                self._number()
            elif _is_word_char(char):
                self._word()
            else:
                self._operator()

    def _emit(self, kind: str, value: str, start: int, literal: object = None) -> None:
        self.tokens.append(_Token(kind, value, start, self.pos, literal))

    def _skip_blanks(self) -> None:
        text = self.text
        while self.pos < len(text):
            if text[self.pos].isspace():
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise _Fail("unclosed comment", self.pos)
                self.pos = end + 2
            else:
                return

    def _string(self, quote: str) -> None:
        text, start = self.text, self.pos
        pos = start + 1
        while True:
            if pos >= len(text) or text[pos] == "\n":
                raise _Fail("string literal not terminated", start)
            if text[pos] == "\\":
                pos += 2
            elif text[pos] == quote:
                break
            else:
                pos += 1
        self.pos = pos + 1
        self._emit("str", text[start : self.pos], start, _unescape(text[start + 1 : pos], start))

    def _run(self, pos: int, chars: frozenset[str]) -> int:
        while pos < len(self.text) and self.text[pos] in chars:
            pos += 1
        return pos

    def _number(self) -> None:
        text, start = self.text, self.pos
        digits = _DEC_DIGITS
        pos = start
        if text.startswith(("0x", "0X"), pos):
            digits, pos = _HEX_DIGITS, pos + 2
        pos = self._run(pos, digits)
        if text.startswith(".", pos) and not text.startswith("..", pos):
            pos = self._run(pos + 1, digits)
        if text[pos : pos + 1] in ("e", "E") and digits is _DEC_DIGITS:
            pos += 1
            if text[pos : pos + 1] in ("+", "-"):
                pos += 1
            pos = self._run(pos, digits)
        if pos < len(text) and _is_word_char(text[pos]):
            raise _Fail(f"bad number syntax: {_quote(text[start : pos + 1])}", start)
        self.pos = pos
        word = text[start:pos]
        self._emit("num", word, start, _number_value(word, start))

    def _word(self) -> None:
        text, start = self.text, self.pos
        pos = start
        while pos < len(text) and _is_word_char(text[pos]):
            pos += 1
        word = text[start:pos]
        self.pos = pos
        if word == "not":
            self._not(start)
        elif word in _KEYWORD_OPS:
            self._emit("op", word, start)
        else:
            self._emit("name", word, start)

    def _not(self, start: int) -> None:
        """`not` directly followed by in/matches/contains/... is one operator."""
        text = self.text
        pos = self.pos
        while pos < len(text) and text[pos].isspace():
            pos += 1
        end = pos
        while end < len(text) and _is_word_char(text[end]):
            end += 1
        if text[pos:end] in _NEGATABLE:
            self.pos = end
            self._emit("op", f"not {text[pos:end]}", start)
        else:
            self._emit("op", "not", start)

    def _operator(self) -> None:
        text, start = self.text, self.pos
        two = text[start : start + 2]
        if two in _TWO_CHAR_OPS:
            self.pos += 2
            self._emit("op", two, start)
        elif text[start] in _ONE_CHAR_OPS:
            self.pos += 1
            self._emit("op", text[start], start)
        else:
            char = text[start]
            raise _Fail(f"unrecognized character: U+{ord(char):04X} {char!r}", start)


def _number_value(word: str, pos: int) -> int | float:
    """The value of a number token, as expr's parser reads it (Go's strconv rules)."""
    value = word.replace("_", "")
    try:
        if value[:2] in ("0x", "0X"):
            number: int | float = int(value[2:], 16)
        elif any(c in value for c in ".eE"):
            number = float(value)
            if math.isinf(number):
                raise ValueError(value)
            return number
        else:
            number = int(value, 10)
    except ValueError:
        raise _Fail(f"invalid number {_quote(word)}", pos) from None
    if number > _INT_MAX:
        raise _Fail(f"integer literal {word} out of range", pos)
    return number


def _unescape(body: str, pos: int) -> str:
    """Decode the escapes of a quoted string as expr does (Go's strconv escapes)."""
    if "\\" not in body:
        return body.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        code = body[i + 1]
        if code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
            i += 2
        elif code in _HEX_ESCAPES:
            size = _HEX_ESCAPES[code]
            out.append(_code_point(body[i + 2 : i + 2 + size], 16, size, pos))
            i += 2 + size
        elif code in "0123":
            out.append(_code_point(body[i + 1 : i + 4], 8, 3, pos))
            i += 4
        else:
            raise _Fail(f"invalid escape sequence \\{code} in string", pos)
    return "".join(out).replace("\r\n", "\n").replace("\r", "\n")


def _code_point(digits: str, base: int, size: int, pos: int) -> str:
    allowed = "0123456789abcdefABCDEF" if base == 16 else "01234567"
    if len(digits) != size or any(d not in allowed for d in digits):
        raise _Fail("invalid escape sequence in string", pos)
    value = int(digits, base)
    if value > 0x10FFFF:
        raise _Fail("invalid escape sequence in string", pos)
    if 0xD800 <= value <= 0xDFFF:
        return "\ufffd"
    return chr(value)


# --------------------------------------------------------------------------- nodes

_Env = Mapping[str, object]


class _Node:
    __slots__ = ()
    pos: int

    def eval(self, env: _Env) -> object:
        raise NotImplementedError

    def children(self) -> tuple[_Node, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class _Literal(_Node):
    pos: int
    value: object

    def eval(self, env: _Env) -> object:
        return self.value


@dataclass(frozen=True, slots=True)
class _Name(_Node):
    pos: int
    name: str

    def eval(self, env: _Env) -> object:
        if self.name not in env:
            raise _Fail(f"unknown name {_shown_name(self.name)}", self.pos)
        return env[self.name]


@dataclass(frozen=True, slots=True)
class _Member(_Node):
    pos: int
    obj: _Node
    name: str
    path: str

    def eval(self, env: _Env) -> object:
        try:
            return _fetch(self.obj.eval(env), self.name, self.path)
        except _OpError as exc:
            raise _Fail(str(exc), self.pos) from None

    def children(self) -> tuple[_Node, ...]:
        return (self.obj,)


@dataclass(frozen=True, slots=True)
class _Index(_Node):
    pos: int
    obj: _Node
    index: _Node
    path: str

    def eval(self, env: _Env) -> object:
        container = self.obj.eval(env)
        key = self.index.eval(env)
        try:
            return _fetch(container, key, self.path)
        except _OpError as exc:
            raise _Fail(str(exc), self.pos) from None

    def children(self) -> tuple[_Node, ...]:
        return (self.obj, self.index)


@dataclass(frozen=True, slots=True)
class _Slice(_Node):
    pos: int
    obj: _Node
    lower: _Node | None
    upper: _Node | None

    def eval(self, env: _Env) -> object:
        container = self.obj.eval(env)
        lower, upper = self._bound(self.lower, env), self._bound(self.upper, env)
        if isinstance(container, str):
            return container[lower:upper]
        if isinstance(container, list | tuple):
            return list(container[lower:upper])
        raise _Fail(f"cannot slice {_kind(container)}", self.pos)

    def _bound(self, node: _Node | None, env: _Env) -> int | None:
        if node is None:
            return None
        value = node.eval(env)
        if not _is_int(value):
            raise _Fail(f"slice bounds must be integers, got {_kind(value)}", self.pos)
        return value

    def children(self) -> tuple[_Node, ...]:
        return tuple(b for b in (self.obj, self.lower, self.upper) if b is not None)


@dataclass(frozen=True, slots=True)
class _Call(_Node):
    """A call of a function found in the environment."""

    pos: int
    name: str
    args: tuple[_Node, ...]

    def eval(self, env: _Env) -> object:
        if self.name not in env:
            raise _Fail(f"unknown name {_shown_name(self.name)}", self.pos)
        function = env[self.name]
        if not callable(function) or isinstance(function, type):
            raise _Fail(f"{self.name} is not a function (it is {_kind(function)})", self.pos)
        args = [arg.eval(env) for arg in self.args]
        _check_arity(self.name, function, args, self.pos)
        return function(*args)

    def children(self) -> tuple[_Node, ...]:
        return self.args


def _check_arity(name: str, function: Callable[..., object], args: list[object], pos: int) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args)
    except TypeError:
        raise _Fail(f"wrong number of arguments in call to {name}(): got {len(args)}", pos) from None


@dataclass(frozen=True, slots=True)
class _Builtin(_Node):
    pos: int
    name: str
    arg: _Node

    def eval(self, env: _Env) -> object:
        value = self.arg.eval(env)
        try:
            return _BUILTINS[self.name](value)
        except _OpError as exc:
            raise _Fail(str(exc), self.pos) from None

    def children(self) -> tuple[_Node, ...]:
        return (self.arg,)


@dataclass(frozen=True, slots=True)
class _Unary(_Node):
    pos: int
    op: str
    operand: _Node

    def eval(self, env: _Env) -> object:
        value = self.operand.eval(env)
        if self.op in ("not", "!") and isinstance(value, bool):
            return not value
        if self.op == "-" and _is_int(value):
            if value == _INT_MIN:
                raise _Fail("integer overflow", self.pos)
            return -value
        if self.op == "-" and isinstance(value, float):
            return -value
        if self.op == "+" and _is_number(value):
            return value
        raise _Fail(f"invalid operation: {self.op} (mismatched type {_kind(value)})", self.pos)

    def children(self) -> tuple[_Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class _Binary(_Node):
    pos: int
    op: str
    left: _Node
    right: _Node

    def eval(self, env: _Env) -> object:
        left = self.left.eval(env)
        right = self.right.eval(env)
        negate = self.op.startswith("not ")
        name = self.op[4:] if negate else self.op
        try:
            result = _OPERATIONS[name](name, left, right)
        except _OpError as exc:
            raise _Fail(str(exc), self.pos) from None
        except OverflowError:
            raise _Fail("numeric overflow", self.pos) from None
        return not result if negate else result

    def children(self) -> tuple[_Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class _Logical(_Node):
    """`and`/`or` (and `&&`/`||`), evaluating the right side only when needed."""

    pos: int
    op: str
    left: _Node
    right: _Node

    def eval(self, env: _Env) -> object:
        stop = self.op in ("or", "||")
        left = self._operand(self.left, env)
        if left is stop:
            return stop
        return self._operand(self.right, env)

    def _operand(self, node: _Node, env: _Env) -> bool:
        value = node.eval(env)
        if not isinstance(value, bool):
            raise _Fail(
                f"invalid operation: {self.op} (operand of type {_kind(value)}, expected bool)",
                self.pos,
            )
        return value

    def children(self) -> tuple[_Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class _Conditional(_Node):
    pos: int
    cond: _Node
    then: _Node
    other: _Node

    def eval(self, env: _Env) -> object:
        cond = self.cond.eval(env)
        if not isinstance(cond, bool):
            raise _Fail(f"non-bool expression (type {_kind(cond)}) used as condition", self.pos)
        return self.then.eval(env) if cond else self.other.eval(env)

    def children(self) -> tuple[_Node, ...]:
        return (self.cond, self.then, self.other)


@dataclass(frozen=True, slots=True)
class _Array(_Node):
    pos: int
    items: tuple[_Node, ...]

    def eval(self, env: _Env) -> object:
        return [item.eval(env) for item in self.items]

    def children(self) -> tuple[_Node, ...]:
        return self.items


@dataclass(frozen=True, slots=True)
class _Map(_Node):
    pos: int
    keys: tuple[str, ...]
    values: tuple[_Node, ...]

    def eval(self, env: _Env) -> object:
        return {key: value.eval(env) for key, value in zip(self.keys, self.values, strict=True)}

    def children(self) -> tuple[_Node, ...]:
        return self.values


# --------------------------------------------------------------------------- member access


def _fetch(container: object, key: object, path: str) -> object:
    """`container.key` or `container[key]`: a map key, an array element or a data attribute."""
    if isinstance(container, Mapping):
        try:
            found = key in container
        except TypeError:
            raise _OpError(f"cannot use {_kind(key)} as a key of {path}") from None
        if not found:
            raise _OpError(f"{path} has no member {_member_name(key)}")
        return container[key]
    if isinstance(container, list | tuple):
        if not _is_int(key):
            raise _OpError(f"array index must be an integer, got {_kind(key)}")
        index = key + len(container) if key < 0 else key
        if not 0 <= index < len(container):
            raise _OpError(f"index out of range: {key} (array length {len(container)})")
        return container[index]
    if container is None:
        raise _OpError(f"cannot fetch {_member_name(key)} from nil ({path})")
    if isinstance(container, _PRIMITIVES) or callable(container) or not isinstance(key, str):
        raise _OpError(f"cannot fetch {_member_name(key)} from {_kind(container)} ({path})")
    return _attribute(container, key, path)


def _member_name(key: object) -> str:
    return _quote(key) if isinstance(key, str) else repr(key)


_MISSING: Final = object()


def _attribute(obj: object, name: str, path: str) -> object:
    """A data attribute of a plain object; private names and methods stay out of reach."""
    value = _MISSING if name.startswith("_") else getattr(obj, name, _MISSING)
    if value is _MISSING or callable(value):
        raise _OpError(f"{path} has no member {_quote(name)}")
    return value


# --------------------------------------------------------------------------- operations


def _numeric(op: str, left: object, right: object, function: Callable[[Any, Any], Any]) -> object:
    if not (_is_number(left) and _is_number(right)):
        raise _mismatch(op, left, right)
    if isinstance(left, int) and isinstance(right, int):
        return _int64(function(left, right))
    return function(float(left), float(right))


def _add(op: str, left: object, right: object) -> object:
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    return _numeric(op, left, right, operator.add)


def _sub(op: str, left: object, right: object) -> object:
    return _numeric(op, left, right, operator.sub)


def _mul(op: str, left: object, right: object) -> object:
    return _numeric(op, left, right, operator.mul)


def _div(op: str, left: object, right: object) -> object:
    if not (_is_number(left) and _is_number(right)):
        raise _mismatch(op, left, right)
    if right == 0:
        raise _OpError("division by zero")
    return float(left) / float(right)


def _mod(op: str, left: object, right: object) -> object:
    if not (_is_int(left) and _is_int(right)):
        raise _mismatch(op, left, right)
    if right == 0:
        raise _OpError("division by zero")
    remainder = abs(left) % abs(right)
    return _int64(-remainder if left < 0 else remainder)


def _pow(op: str, left: object, right: object) -> object:
    """Always a float, as in expr (math.Pow); float operands keep the size bounded."""
    if not (_is_number(left) and _is_number(right)):
        raise _mismatch(op, left, right)
    base, exponent = float(left), float(right)
    try:
        return math.pow(base, exponent)
    except OverflowError:
        raise _OpError("numeric overflow") from None
    except ValueError:
        if base == 0:
            raise _OpError("division by zero") from None
        return math.nan  # a negative base with a fractional exponent, as Go's math.Pow


def _numbers_equal(left: int | float, right: int | float) -> bool:
    if isinstance(left, int) and isinstance(right, int):
        return left == right
    return float(left) == float(right)


def _deep_equal(left: object, right: object) -> bool:
    """Go's reflect.DeepEqual on decoded values: the kinds must match exactly."""
    if _kind(left) != _kind(right):
        return False
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_deep_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(_deep_equal, left, right))
    return bool(left == right)


def _loose_equal(left: object, right: object) -> bool:
    if _is_number(left) and _is_number(right):
        return _numbers_equal(left, right)
    return _deep_equal(left, right)


def _strict_equal(op: str, left: object, right: object) -> bool:
    if _is_number(left) and _is_number(right):
        return _numbers_equal(left, right)
    if left is None or right is None:
        return left is None and right is None
    if _kind(left) != _kind(right):
        raise _mismatch(op, left, right)
    return _deep_equal(left, right)


def _eq(op: str, left: object, right: object) -> object:
    return _strict_equal(op, left, right)


def _ne(op: str, left: object, right: object) -> object:
    return not _strict_equal(op, left, right)


_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ORDERED: Final = (str, datetime, timedelta)


def _compare(op: str, left: object, right: object) -> object:
    if _is_number(left) and _is_number(right):
        if not (isinstance(left, int) and isinstance(right, int)):
            left, right = float(left), float(right)
    elif not any(isinstance(left, cls) and isinstance(right, cls) for cls in _ORDERED):
        raise _mismatch(op, left, right)
    try:
        return _ORDER[op](left, right)
    except TypeError:  # naive and aware datetimes
        raise _mismatch(op, left, right) from None


def _in(op: str, left: object, right: object) -> object:
    if right is None:
        return False
    if isinstance(right, list | tuple):
        return any(_loose_equal(left, item) for item in right)
    if isinstance(right, Mapping):
        try:
            return left in right
        except TypeError:
            return False
    if isinstance(left, str) and not (isinstance(right, _PRIMITIVES) or callable(right)):
        return not left.startswith("_") and _attribute_exists(right, left)
    raise _mismatch(op, left, right)


def _attribute_exists(obj: object, name: str) -> bool:
    value = getattr(obj, name, _MISSING)
    return value is not _MISSING and not callable(value)


def _regex(pattern: str) -> Any:
    """Go's regexp, as expr's `matches` compiles it: RE2, linear time, Go's error words."""
    try:
        return compile_go(pattern)
    except GoRegexpError as exc:
        message = str(exc).removeprefix("error parsing regexp: ")
        raise _OpError(f"invalid regular expression {_quote(pattern)}: {message}") from None


def _string_op(op: str, left: object, right: object) -> object:
    if not (isinstance(left, str) and isinstance(right, str)):
        raise _mismatch(op, left, right)
    if op == "contains":
        return right in left
    if op == "startsWith":
        return left.startswith(right)
    if op == "endsWith":
        return left.endswith(right)
    return _regex(right).search(left) is not None


_OPERATIONS: Final[dict[str, Callable[[str, object, object], object]]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _mod,
    "**": _pow,
    "^": _pow,
    "==": _eq,
    "!=": _ne,
    "<": _compare,
    "<=": _compare,
    ">": _compare,
    ">=": _compare,
    "in": _in,
    "contains": _string_op,
    "startsWith": _string_op,
    "endsWith": _string_op,
    "matches": _string_op,
}


# --------------------------------------------------------------------------- builtins


def _len(value: object) -> object:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise _OpError(f"invalid argument for len (type {_kind(value)})")


def _abs(value: object) -> object:
    if _is_int(value):
        return _int64(abs(value))
    if isinstance(value, float):
        return abs(value)
    raise _OpError(f"invalid argument for abs (type {_kind(value)})")


_INT_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT: Final = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?i:inf|infinity|nan)"
)


def _int(value: object) -> object:
    if _is_int(value):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _OpError(f"cannot convert {value} to int")
        return _int64(int(value))
    if isinstance(value, str):
        if _INT_TEXT.fullmatch(value) is None or len(value) > 25:
            raise _OpError(f"invalid syntax for int: {_quote(value)}")
        return _int64(int(value))
    raise _OpError(f"invalid argument for int (type {_kind(value)})")


def _float(value: object) -> object:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        if _FLOAT_TEXT.fullmatch(value) is None:
            raise _OpError(f"invalid syntax for float: {_quote(value)}")
        number = float(value)
        if math.isinf(number) and "inf" not in value.lower():
            raise _OpError(f"value out of range for float: {_quote(value)}")
        return number
    raise _OpError(f"invalid argument for float (type {_kind(value)})")


_BUILTINS: Final[dict[str, Callable[[object], object]]] = {
    "len": _len,
    "abs": _abs,
    "int": _int,
    "float": _float,
}
_UNSUPPORTED_BUILTINS: Final = frozenset({"all", "any", "one", "none", "map", "filter", "count"})


# --------------------------------------------------------------------------- parser

# expr v1.12's precedence table: (precedence, right associative)
_BINARY: Final[dict[str, tuple[int, bool]]] = {
    "or": (10, False),
    "||": (10, False),
    "and": (15, False),
    "&&": (15, False),
    **{op: (20, False) for op in ("==", "!=", "<", ">", "<=", ">=")},
    **{op: (20, False) for op in _NEGATABLE},
    **{f"not {op}": (20, False) for op in _NEGATABLE},
    "..": (25, False),
    "+": (30, False),
    "-": (30, False),
    "*": (60, False),
    "/": (60, False),
    "%": (60, False),
    "**": (100, True),
    "^": (100, True),
    "??": (500, False),
}
_UNARY: Final = {"not": 50, "!": 50, "-": 90, "+": 90}
_LOGICAL: Final = frozenset({"and", "or", "&&", "||"})
_UNSUPPORTED_OPS: Final = {
    "..": "the range operator ..",
    "??": "the nil coalescing operator ??",
    "?.": "optional chaining ?.",
    "|": "the pipe operator |",
    "#": "predicates with #",
    ";": "sequences with ;",
}


class _Parser:
    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def _advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def _at(self, value: str) -> bool:
        return self.current.kind == "op" and self.current.value == value

    def _unexpected(self, expected: str = "") -> _Fail:
        token = self.current
        hint = f"expected {expected}" if expected else ""
        if token.kind == "eof":
            last = self.tokens[self.index - 1].pos if self.index else 0
            return _Fail("unexpected end of expression", last, hint)
        if token.kind == "op" and token.value in _UNSUPPORTED_OPS:
            return _Fail(f"{_UNSUPPORTED_OPS[token.value]} is not supported", token.pos)
        return _Fail(f"unexpected {_quote(self.text[token.pos : token.end])}", token.pos, hint)

    def _expect(self, value: str) -> None:
        if not self._at(value):
            raise self._unexpected(_quote(value))
        self._advance()

    def _separator(self, closing: str) -> None:
        """After an item of a list: a comma, or the closing bracket (left for the caller)."""
        if self._at(","):
            self._advance()
        elif not self._at(closing):
            raise self._unexpected(f'"," or "{closing}"')

    def parse(self) -> _Node:
        if self.current.kind == "eof":
            raise _Fail("empty expression")
        node = self._expression(0)
        if self.current.kind != "eof":
            raise self._unexpected()
        return node

    def _expression(self, precedence: int) -> _Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Fail(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", self.current.pos)
        node = self._unary()
        while self.current.kind == "op" and self.current.value in _BINARY:
            token = self.current
            rank, right_assoc = _BINARY[token.value]
            if rank < precedence:
                break
            if token.value in _UNSUPPORTED_OPS:
                raise self._unexpected()
            self._advance()
            right = self._expression(rank if right_assoc else rank + 1)
            node = self._binary(token, node, right)
        if precedence == 0 and self._at("?"):
            node = self._conditional(node)
        self.depth -= 1
        return node

    def _binary(self, token: _Token, left: _Node, right: _Node) -> _Node:
        if token.value in _LOGICAL:
            return _Logical(token.pos, token.value, left, right)
        if token.value.endswith("matches") and isinstance(right, _Literal) and isinstance(right.value, str):
            try:
                _regex(right.value)
            except _OpError as exc:
                raise _Fail(str(exc), right.pos) from None
        return _Binary(token.pos, token.value, left, right)

    def _conditional(self, cond: _Node) -> _Node:
        token = self._advance()
        if self._at(":"):
            raise _Fail('the "?:" shorthand is not supported', token.pos)
        then = self._expression(0)
        self._expect(":")
        other = self._expression(0)
        return _Conditional(token.pos, cond, then, other)

    def _unary(self) -> _Node:
        token = self.current
        if token.kind == "op" and token.value in _UNARY:
            self._advance()
            operand = self._expression(_UNARY[token.value])
            return _Unary(token.pos, token.value, operand)
        start = token.pos
        return self._postfix(self._primary(), start)

    def _primary(self) -> _Node:
        token = self.current
        if token.kind in ("num", "str"):
            self._advance()
            return _Literal(token.pos, token.literal)
        if token.kind == "name":
            self._advance()
            return self._name(token)
        if self._at("("):
            self._advance()
            node = self._expression(0)
            self._expect(")")
            return node
        if self._at("["):
            return self._array()
        if self._at("{"):
            return self._map()
        raise self._unexpected()

    def _check_name(self, token: _Token) -> None:
        if token.value.startswith("_"):
            raise _Fail(f'names starting with "_" are not allowed: {token.value}', token.pos)

    def _name(self, token: _Token) -> _Node:
        self._check_name(token)
        constants: dict[str, object] = {"true": True, "false": False, "nil": None}
        if token.value in constants:
            return _Literal(token.pos, constants[token.value])
        if not self._at("("):
            return _Name(token.pos, token.value)
        if token.value in _UNSUPPORTED_BUILTINS:
            raise _Fail(f"the builtin {token.value}() is not supported", token.pos)
        args = self._arguments()
        if token.value in _BUILTINS:
            if len(args) != 1:
                raise _Fail(
                    f"invalid number of arguments for {token.value} (expected 1, got {len(args)})",
                    token.pos,
                )
            return _Builtin(token.pos, token.value, args[0])
        return _Call(token.pos, token.value, args)

    def _arguments(self) -> tuple[_Node, ...]:
        self._expect("(")
        args: list[_Node] = []
        while not self._at(")"):
            args.append(self._expression(0))
            self._separator(")")
        self._advance()
        return tuple(args)

    def _postfix(self, node: _Node, start: int) -> _Node:
        while True:
            token = self.current
            path = self.text[start : self.tokens[self.index - 1].end].strip()
            if self._at("."):
                self._advance()
                node = self._member(node, path, token)
            elif self._at("["):
                self._advance()
                node = self._subscript(node, path, token)
            elif self._at("?."):
                raise self._unexpected()
            else:
                return node

    def _member(self, node: _Node, path: str, dot: _Token) -> _Node:
        name = self.current
        if name.kind != "name":
            raise self._unexpected("a member name")
        self._check_name(name)
        self._advance()
        if self._at("("):
            raise _Fail(f"method calls are not supported: {path}.{name.value}()", name.pos)
        return _Member(name.pos, node, name.value, path)

    def _subscript(self, node: _Node, path: str, bracket: _Token) -> _Node:
        lower = None if self._at(":") else self._expression(0)
        if self._at(":"):
            self._advance()
            upper = None if self._at("]") else self._expression(0)
            self._expect("]")
            return _Slice(bracket.pos, node, lower, upper)
        self._expect("]")
        assert lower is not None
        return _Index(bracket.pos, node, lower, path)

    def _array(self) -> _Node:
        token = self._advance()
        items: list[_Node] = []
        while not self._at("]"):
            items.append(self._expression(0))
            self._separator("]")
        self._advance()
        return _Array(token.pos, tuple(items))

    def _map(self) -> _Node:
        token = self._advance()
        keys: list[str] = []
        values: list[_Node] = []
        while not self._at("}"):
            key = self.current
            if key.kind not in ("name", "str"):
                raise self._unexpected("a map key")
            self._advance()
            keys.append(key.value if key.kind == "name" else str(key.literal))
            self._expect(":")
            values.append(self._expression(0))
            self._separator("}")
        self._advance()
        return _Map(token.pos, tuple(keys), tuple(values))


def _check_size(root: _Node) -> None:
    """Bound the tree so that evaluation can neither recurse too deep nor run too long."""
    stack = [(root, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise _Fail(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", node.pos)
        if count > MAX_NODES:
            raise _Fail(f"expression is too large (more than {MAX_NODES} nodes)")
        stack.extend((child, depth + 1) for child in node.children())


# --------------------------------------------------------------------------- public API


class Expression:
    """A compiled `if` expression; evaluate it as often as needed."""

    __slots__ = ("_root", "text")

    def __init__(self, text: str, root: _Node) -> None:
        self.text = text
        self._root = root

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def evaluate(self, env: Mapping[str, object]) -> object:
        """The value of the expression; names are looked up in `env`."""
        try:
            return self._root.eval(env)
        except _Fail as exc:
            raise _error(self.text, exc) from None
        except (OverflowError, ZeroDivisionError) as exc:
            raise _error(self.text, _Fail(f"arithmetic error: {exc}")) from exc
        except (RecursionError, MemoryError):
            raise _error(self.text, _Fail("expression is too complex to evaluate")) from None

    def evaluate_bool(self, env: Mapping[str, object]) -> bool:
        """The value of a condition; anything but a boolean is an error."""
        value = self.evaluate(env)
        if not isinstance(value, bool):
            raise _error(self.text, _Fail(f"expected a boolean, got {_kind(value)}"))
        return value


def compile_expression(text: str) -> Expression:
    """Parse `text` once; raise ExpressionError (with the column) if it is not valid."""
    try:
        tokens = _Lexer(text).run()
        root = _Parser(text, tokens).parse()
        _check_size(root)
    except _Fail as exc:
        raise _error(text, exc) from None
    except RecursionError:
        raise _error(text, _Fail("expression is nested too deeply")) from None
    return Expression(text, root)
