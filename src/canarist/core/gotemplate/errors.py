"""Template errors with Go's message text and a position."""

from __future__ import annotations

from canarist.core.errors import TemplateError

__all__ = ["GoTemplateError", "location", "parse_error"]


class GoTemplateError(TemplateError):
    """A TemplateError that also carries the message Go's text/template would give.

    `go_message` is the exact text of Go's error; `fail_message` is set when the
    template called `fail`.
    """

    def __init__(
        self,
        message: str,
        *,
        go_message: str,
        line: int,
        col: int,
        fail_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.go_message = go_message
        self.line = line
        self.col = col
        self.fail_message = fail_message


def location(text: str, pos: int) -> tuple[int, int]:
    """1-based line and Go's 0-based byte column of character offset `pos` in `text`."""
    pos = max(0, min(pos, len(text)))
    start = text.rfind("\n", 0, pos) + 1
    line = text.count("\n", 0, pos) + 1
    col = len(text[start:pos].encode("utf-8", "surrogatepass"))
    return line, col


def parse_error(name: str, text: str, pos: int, line: int, msg: str) -> GoTemplateError:
    """A parse error: Go reports `name:line: msg`; ours adds the column."""
    _, col = location(text, pos)
    return GoTemplateError(
        f"{name}:{line}:{col}: {msg}",
        go_message=f"template: {name}:{line}: {msg}",
        line=line,
        col=col,
    )
