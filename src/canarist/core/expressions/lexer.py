"""Tokens of an expression: numbers, strings (with Go's escapes), names and operators."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from canarist.core.expressions.errors import Fail, quoted
from canarist.core.expressions.values import INT_MAX

_KEYWORD_OPS: Final = frozenset({"and", "or", "in", "matches", "contains", "startsWith", "endsWith"})
NEGATABLE: Final = frozenset({"in", "matches", "contains", "startsWith", "endsWith"})
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
class Token:
    kind: str  # "num", "str", "name", "op" or "eof"
    value: str
    pos: int
    end: int
    literal: object = None


def _is_word_char(char: str) -> bool:
    return char == "_" or char.isalpha() or char.isdecimal()


class Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[Token] = []

    def run(self) -> list[Token]:
        text = self.text
        while True:
            self._skip_blanks()
            if self.pos >= len(text):
                self.tokens.append(Token("eof", "", len(text), len(text)))
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
        self.tokens.append(Token(kind, value, start, self.pos, literal))

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
                    raise Fail("unclosed comment", self.pos)
                self.pos = end + 2
            else:
                return

    def _string(self, quote: str) -> None:
        text, start = self.text, self.pos
        pos = start + 1
        while True:
            if pos >= len(text) or text[pos] == "\n":
                raise Fail("string literal not terminated", start)
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
            raise Fail(f"bad number syntax: {quoted(text[start : pos + 1])}", start)
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
        if text[pos:end] in NEGATABLE:
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
            raise Fail(f"unrecognized character: U+{ord(char):04X} {char!r}", start)


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
        raise Fail(f"invalid number {quoted(word)}", pos) from None
    if number > INT_MAX:
        raise Fail(f"integer literal {word} out of range", pos)
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
            raise Fail(f"invalid escape sequence \\{code} in string", pos)
    return "".join(out).replace("\r\n", "\n").replace("\r", "\n")


def _code_point(digits: str, base: int, size: int, pos: int) -> str:
    allowed = "0123456789abcdefABCDEF" if base == 16 else "01234567"
    if len(digits) != size or any(d not in allowed for d in digits):
        raise Fail("invalid escape sequence in string", pos)
    value = int(digits, base)
    if value > 0x10FFFF:
        raise Fail("invalid escape sequence in string", pos)
    if 0xD800 <= value <= 0xDFFF:
        return "\ufffd"
    return chr(value)
