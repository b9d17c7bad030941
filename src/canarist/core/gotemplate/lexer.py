"""Tokenizer for Go text/template, following the rules of Go's text/template/parse lexer."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Item", "T", "lex"]

LEFT = "{{"
RIGHT = "}}"
_SPACE = " \t\r\n"


class T(enum.IntEnum):
    """Item types; keywords sort after KEYWORD like Go's itemKeyword."""

    ERROR = enum.auto()
    BOOL = enum.auto()
    CHAR = enum.auto()
    CHAR_CONSTANT = enum.auto()
    COMMENT = enum.auto()
    COMPLEX = enum.auto()
    ASSIGN = enum.auto()
    DECLARE = enum.auto()
    EOF = enum.auto()
    FIELD = enum.auto()
    IDENTIFIER = enum.auto()
    LEFT_DELIM = enum.auto()
    LEFT_PAREN = enum.auto()
    NUMBER = enum.auto()
    PIPE = enum.auto()
    RAW_STRING = enum.auto()
    RIGHT_DELIM = enum.auto()
    RIGHT_PAREN = enum.auto()
    SPACE = enum.auto()
    STRING = enum.auto()
    TEXT = enum.auto()
    VARIABLE = enum.auto()
    KEYWORD = enum.auto()
    BLOCK = enum.auto()
    BREAK = enum.auto()
    CONTINUE = enum.auto()
    DOT = enum.auto()
    DEFINE = enum.auto()
    ELSE = enum.auto()
    END = enum.auto()
    IF = enum.auto()
    NIL = enum.auto()
    RANGE = enum.auto()
    TEMPLATE = enum.auto()
    WITH = enum.auto()


KEYWORDS = {
    ".": T.DOT,
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "range": T.RANGE,
    "nil": T.NIL,
    "template": T.TEMPLATE,
    "with": T.WITH,
}


@dataclass(frozen=True, slots=True)
class Item:
    """A token: type, start offset (characters) and text."""

    typ: T
    pos: int
    val: str

    def __str__(self) -> str:
        """Go's item.String(), used in "unexpected X" messages."""
        if self.typ == T.EOF:
            return "EOF"
        if self.typ == T.ERROR:
            return self.val
        if self.typ > T.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            from canarist.core.gofmt import go_quote

            return go_quote(self.val[:10]) + "..."
        from canarist.core.gofmt import go_quote

        return go_quote(self.val)


def _left_trim(s: str, p: int) -> bool:
    """A `- ` trim marker right after a left delimiter at `p`."""
    return s[p : p + 1] == "-" and s[p + 1 : p + 2] != "" and s[p + 1] in _SPACE


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or (ch.isdigit() and ch.isdecimal())


def _urune(ch: str) -> str:
    """Go's %#U of a rune."""
    if ch.isprintable():
        return f"U+{ord(ch):04X} '{ch}'"
    return f"U+{ord(ch):04X}"


class _LexError(Exception):
    pass


class _Lexer:
    def __init__(self, text: str) -> None:
        self.s = text
        self.pos = 0
        self.start = 0
        self.items: list[Item] = []
        self.paren_depth = 0

    # -- helpers
    def emit(self, typ: T) -> None:
        self.items.append(Item(typ, self.start, self.s[self.start : self.pos]))
        self.start = self.pos

    def error(self, msg: str) -> None:
        self.items.append(Item(T.ERROR, self.start, msg))
        raise _LexError

    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def accept(self, valid: str) -> bool:
        ch = self.peek()
        if ch and ch in valid:
            self.pos += 1
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.accept(valid):
            pass

    def at_right_delim(self) -> tuple[bool, bool]:
        s, p = self.s, self.pos
        if p + 1 < len(s) and s[p] in _SPACE and s[p + 1] == "-" and s.startswith(RIGHT, p + 2):
            return True, True
        return s.startswith(RIGHT, p), False

    def at_terminator(self) -> bool:
        ch = self.peek()
        return ch == "" or ch in _SPACE or ch in ".,|:)(" or ch == RIGHT[0]

    # -- states
    def run(self) -> list[Item]:
        try:
            while self.lex_text():
                self.lex_left_delim()
        except _LexError:
            pass
        return self.items

    def lex_text(self) -> bool:
        s = self.s
        x = s.find(LEFT, self.pos)
        if x < 0:
            self.pos = len(s)
            if self.pos > self.start:
                self.emit(T.TEXT)
            self.emit(T.EOF)
            return False
        trim = 0
        if _left_trim(s, x + len(LEFT)):
            trim = len(s[self.start : x]) - len(s[self.start : x].rstrip(_SPACE))
        self.pos = x - trim
        if self.pos > self.start:
            self.emit(T.TEXT)
        self.pos = x
        self.start = x
        return True

    def lex_left_delim(self) -> None:
        s = self.s
        self.pos += len(LEFT)
        trim = _left_trim(s, self.pos)
        after = 2 if trim else 0
        if s.startswith("/*", self.pos + after):
            self.pos += after
            self.start = self.pos
            self.lex_comment()
            return
        self.emit(T.LEFT_DELIM)
        self.pos += after
        self.start = self.pos
        self.paren_depth = 0
        self.lex_inside_action()

    def lex_comment(self) -> None:
        self.pos += 2
        x = self.s.find("*/", self.pos)
        if x < 0:
            self.error("unclosed comment")
        self.pos = x + 2
        delim, trim = self.at_right_delim()
        if not delim:
            self.error("comment ends before closing delimiter")
        if trim:
            self.pos += 2
        self.pos += len(RIGHT)
        if trim:
            self.skip_space()
        self.start = self.pos

    def skip_space(self) -> None:
        while self.peek() and self.peek() in _SPACE:
            self.pos += 1

    def lex_right_delim(self) -> None:
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.start = self.pos
        self.pos += len(RIGHT)
        self.emit(T.RIGHT_DELIM)
        if trim:
            self.skip_space()
            self.start = self.pos

    def lex_inside_action(self) -> None:  # noqa: C901
        while True:
            delim, _ = self.at_right_delim()
            if delim:
                if self.paren_depth == 0:
                    self.lex_right_delim()
                    return
                self.error("unclosed left paren")
            ch = self.next()
            if ch == "":
                self.error("unclosed action")
            elif ch in _SPACE:
                self.pos -= 1
                if self.lex_space():
                    self.lex_right_delim()
                    return
            elif ch == "=":
                self.emit(T.ASSIGN)
            elif ch == ":":
                if self.next() != "=":
                    self.error("expected :=")
                self.emit(T.DECLARE)
            elif ch == "|":
                self.emit(T.PIPE)
            elif ch == '"':
                self.lex_quote('"', T.STRING, "unterminated quoted string")
            elif ch == "`":
                self.lex_raw_quote()
            elif ch == "$":
                self.lex_field_or_variable(T.VARIABLE)
            elif ch == "'":
                self.lex_quote("'", T.CHAR_CONSTANT, "unterminated character constant")
            elif ch == "." and self.peek() and not "0" <= self.peek() <= "9":
                # at the end of the text a "." starts a number, as in Go's lexer
                self.lex_field_or_variable(T.FIELD)
            elif ch in "+-." or "0" <= ch <= "9":
                self.pos -= 1
                self.lex_number()
            elif _is_alnum(ch):
                self.pos -= 1
                self.lex_identifier()
            elif ch == "(":
                self.emit(T.LEFT_PAREN)
                self.paren_depth += 1
            elif ch == ")":
                self.paren_depth -= 1
                self.emit(T.RIGHT_PAREN)
            elif ord(ch) < 0x80 and ch.isprintable():
                self.emit(T.CHAR)
            else:
                self.error(f"unrecognized character in action: {_urune(ch)}")

    def lex_space(self) -> bool:
        """Consume spaces; True if a trimmed right delimiter follows directly."""
        n = 0
        while self.peek() and self.peek() in _SPACE:
            self.pos += 1
            n += 1
        s, p = self.s, self.pos - 1
        if s[p + 1 : p + 2] == "-" and s.startswith(RIGHT, p + 2):
            self.pos -= 1
            if n == 1:
                return True
        self.emit(T.SPACE)
        return False

    def lex_quote(self, quote: str, typ: T, msg: str) -> None:
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch not in ("", "\n"):
                    continue
                self.error(msg)
            if ch in ("", "\n"):
                self.error(msg)
            if ch == quote:
                break
        self.emit(typ)

    def lex_raw_quote(self) -> None:
        x = self.s.find("`", self.pos)
        if x < 0:
            self.error("unterminated raw quoted string")
        self.pos = x + 1
        self.emit(T.RAW_STRING)

    def lex_field_or_variable(self, typ: T) -> None:
        if self.at_terminator():
            self.emit(T.VARIABLE if typ == T.VARIABLE else T.DOT)
            return
        while True:
            ch = self.next()
            if not (ch and _is_alnum(ch)):
                if ch:
                    self.pos -= 1
                break
        if not self.at_terminator():
            self.error(f"bad character {_urune(ch)}")
        self.emit(typ)

    def lex_identifier(self) -> None:
        while True:
            ch = self.next()
            if not (ch and _is_alnum(ch)):
                if ch:
                    self.pos -= 1
                break
        word = self.s[self.start : self.pos]
        if not self.at_terminator():
            self.error(f"bad character {_urune(ch)}")
        if word in KEYWORDS:
            self.emit(KEYWORDS[word])
        elif word[0] == ".":
            self.emit(T.FIELD)
        elif word in ("true", "false"):
            self.emit(T.BOOL)
        else:
            self.emit(T.IDENTIFIER)

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if self.peek() and _is_alnum(self.peek()):
            self.pos += 1
            return False
        return True

    def lex_number(self) -> None:
        if not self.scan_number():
            self.error(f"bad number syntax: {_q(self.s[self.start : self.pos])}")
        if self.peek() in ("+", "-") and self.peek():
            if not self.scan_number() or self.s[self.pos - 1] != "i":
                self.error(f"bad number syntax: {_q(self.s[self.start : self.pos])}")
            self.emit(T.COMPLEX)
        else:
            self.emit(T.NUMBER)


def _q(s: str) -> str:
    from canarist.core.gofmt import go_quote

    return go_quote(s)


def lex(text: str) -> list[Item]:
    """All items of `text`, ending with EOF or an ERROR item."""
    return _Lexer(text).run()
