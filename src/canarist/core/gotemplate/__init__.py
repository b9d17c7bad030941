"""Go text/template with the Sprig functions Iter8 templates use, in pure Python.

    parse(text, name=...) -> Template      syntax errors raise TemplateError
    Template.execute(data, strict=False)   execution errors raise TemplateError
    render(text, data, name=...)           parse + execute

Data: dict is map[string]interface{} (ranged in sorted key order), list/tuple a slice,
str, int, float, bool, and None for nil. Errors carry `name:line:col: message`; the
exact Go wording is kept in `GoTemplateError.go_message`.
"""

from __future__ import annotations

from collections.abc import Mapping

from canarist.core.gotemplate.builtins import BUILTINS
from canarist.core.gotemplate.errors import GoTemplateError
from canarist.core.gotemplate.executor import MAX_DEPTH, Executor
from canarist.core.gotemplate.funcspec import FuncSpec
from canarist.core.gotemplate.nodes import ListNode
from canarist.core.gotemplate.parser import parse_templates
from canarist.core.gotemplate.sprig import SPRIG

__all__ = ["FUNCTIONS", "MAX_DEPTH", "GoTemplateError", "Template", "parse", "render"]

FUNCTIONS: Mapping[str, FuncSpec] = {**BUILTINS, **SPRIG}
"""Every function a template may call (Sprig's `slice` replaces the builtin, as in Go)."""


class Template:
    """A parsed template and the templates it defines."""

    __slots__ = ("name", "text", "trees")

    def __init__(self, name: str, text: str, trees: Mapping[str, ListNode]) -> None:
        self.name = name
        self.text = text
        self.trees = trees

    def execute(self, data: object, *, strict: bool = False) -> str:
        """Render with `data` as dot. `strict` is Go's missingkey=error."""
        ex = Executor(
            parse_name=self.name, text=self.text, trees=self.trees, funcs=FUNCTIONS,
            strict=strict,
        )
        return ex.run(self.name, data)

    def __repr__(self) -> str:
        return f"Template({self.name!r})"


def parse(text: str, *, name: str = "template") -> Template:
    """Parse `text`; unknown functions and syntax errors raise TemplateError."""
    return Template(name, text, parse_templates(name, text, FUNCTIONS))


def render(text: str, data: object, *, name: str = "template", strict: bool = False) -> str:
    """Parse and execute in one step."""
    return parse(text, name=name).execute(data, strict=strict)
