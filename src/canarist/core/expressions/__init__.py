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

from collections.abc import Mapping

from canarist.core.expressions.errors import Fail, expression_error
from canarist.core.expressions.lexer import Lexer
from canarist.core.expressions.nodes import Node
from canarist.core.expressions.parser import MAX_DEPTH, MAX_NODES, Parser, check_size
from canarist.core.expressions.values import kind_of

__all__ = ["MAX_DEPTH", "MAX_NODES", "Expression", "compile_expression"]


class Expression:
    """A compiled `if` expression; evaluate it as often as needed."""

    __slots__ = ("_root", "text")

    def __init__(self, text: str, root: Node) -> None:
        self.text = text
        self._root = root

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def evaluate(self, env: Mapping[str, object]) -> object:
        """The value of the expression; names are looked up in `env`."""
        try:
            return self._root.eval(env)
        except Fail as exc:
            raise expression_error(self.text, exc) from None
        except (OverflowError, ZeroDivisionError) as exc:
            raise expression_error(self.text, Fail(f"arithmetic error: {exc}")) from exc
        except (RecursionError, MemoryError):
            raise expression_error(self.text, Fail("expression is too complex to evaluate")) from None

    def evaluate_bool(self, env: Mapping[str, object]) -> bool:
        """The value of a condition; anything but a boolean is an error."""
        value = self.evaluate(env)
        if not isinstance(value, bool):
            raise expression_error(self.text, Fail(f"expected a boolean, got {kind_of(value)}"))
        return value


def compile_expression(text: str) -> Expression:
    """Parse `text` once; raise ExpressionError (with the column) if it is not valid."""
    try:
        tokens = Lexer(text).run()
        root = Parser(text, tokens).parse()
        check_size(root)
    except Fail as exc:
        raise expression_error(text, exc) from None
    except RecursionError:
        raise expression_error(text, Fail("expression is nested too deeply")) from None
    return Expression(text, root)
