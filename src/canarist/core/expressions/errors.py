"""Errors of the expression language: at an offset of the text while compiling or
evaluating, and as ExpressionError (with line and column) at the public boundary."""

from __future__ import annotations

from canarist.core.errors import ExpressionError
from canarist.core.validation import show_value


class Fail(Exception):
    """An error at an offset of the text; becomes ExpressionError at the public boundary."""

    def __init__(self, message: str, pos: int | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.hint = hint


class OpError(Exception):
    """An operation failed; the node that ran it adds its position."""


def quoted(text: str) -> str:
    """`text` in double quotes, shortened when long (an expression is echoed in messages)."""
    return show_value(text, limit=160)


def shown_name(name: str) -> str:
    return name if len(name) <= 60 else name[:59] + "…"


def _location(text: str, pos: int) -> str:
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    if "\n" not in text:
        return f"column {column}"
    return f"line {text.count(chr(10), 0, pos) + 1}, column {column}"


def expression_error(text: str, fail: Fail) -> ExpressionError:
    message = fail.message
    if fail.pos is not None:
        message += f" at {_location(text, fail.pos)}"
    if fail.hint:
        message += f": {fail.hint}"
    return ExpressionError(f"if {quoted(text)}: {message}")
