"""Tokens into a tree, with expr's operator precedence; the tree's size is bounded."""

from __future__ import annotations

from typing import Final

from canarist.core.expressions.builtins import BUILTINS, UNSUPPORTED_BUILTINS
from canarist.core.expressions.errors import Fail, OpError, quoted
from canarist.core.expressions.lexer import NEGATABLE, Token
from canarist.core.expressions.nodes import (
    Array,
    Binary,
    Builtin,
    Call,
    Conditional,
    Index,
    Literal,
    Logical,
    Map,
    Member,
    Name,
    Node,
    Slice,
    Unary,
)
from canarist.core.expressions.operations import regex

MAX_DEPTH: Final = 100
"""Deepest nesting of an expression tree; deeper ones are rejected when compiled."""
MAX_NODES: Final = 10_000
"""Largest number of nodes in an expression tree."""


# expr v1.12's precedence table: (precedence, right associative)
_BINARY: Final[dict[str, tuple[int, bool]]] = {
    "or": (10, False),
    "||": (10, False),
    "and": (15, False),
    "&&": (15, False),
    **{op: (20, False) for op in ("==", "!=", "<", ">", "<=", ">=")},
    **{op: (20, False) for op in NEGATABLE},
    **{f"not {op}": (20, False) for op in NEGATABLE},
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


class Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def _advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def _at(self, value: str) -> bool:
        return self.current.kind == "op" and self.current.value == value

    def _unexpected(self, expected: str = "") -> Fail:
        token = self.current
        hint = f"expected {expected}" if expected else ""
        if token.kind == "eof":
            last = self.tokens[self.index - 1].pos if self.index else 0
            return Fail("unexpected end of expression", last, hint)
        if token.kind == "op" and token.value in _UNSUPPORTED_OPS:
            return Fail(f"{_UNSUPPORTED_OPS[token.value]} is not supported", token.pos)
        return Fail(f"unexpected {quoted(self.text[token.pos : token.end])}", token.pos, hint)

    def _expect(self, value: str) -> None:
        if not self._at(value):
            raise self._unexpected(quoted(value))
        self._advance()

    def _separator(self, closing: str) -> None:
        """After an item of a list: a comma, or the closing bracket (left for the caller)."""
        if self._at(","):
            self._advance()
        elif not self._at(closing):
            raise self._unexpected(f'"," or "{closing}"')

    def parse(self) -> Node:
        if self.current.kind == "eof":
            raise Fail("empty expression")
        node = self._expression(0)
        if self.current.kind != "eof":
            raise self._unexpected()
        return node

    def _expression(self, precedence: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Fail(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", self.current.pos)
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

    def _binary(self, token: Token, left: Node, right: Node) -> Node:
        if token.value in _LOGICAL:
            return Logical(token.pos, token.value, left, right)
        if token.value.endswith("matches") and isinstance(right, Literal) and isinstance(right.value, str):
            try:
                regex(right.value)
            except OpError as exc:
                raise Fail(str(exc), right.pos) from None
        return Binary(token.pos, token.value, left, right)

    def _conditional(self, cond: Node) -> Node:
        token = self._advance()
        if self._at(":"):
            raise Fail('the "?:" shorthand is not supported', token.pos)
        then = self._expression(0)
        self._expect(":")
        other = self._expression(0)
        return Conditional(token.pos, cond, then, other)

    def _unary(self) -> Node:
        token = self.current
        if token.kind == "op" and token.value in _UNARY:
            self._advance()
            operand = self._expression(_UNARY[token.value])
            return Unary(token.pos, token.value, operand)
        start = token.pos
        return self._postfix(self._primary(), start)

    def _primary(self) -> Node:
        token = self.current
        if token.kind in ("num", "str"):
            self._advance()
            return Literal(token.pos, token.literal)
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

    def _check_name(self, token: Token) -> None:
        if token.value.startswith("_"):
            raise Fail(f'names starting with "_" are not allowed: {token.value}', token.pos)

    def _name(self, token: Token) -> Node:
        self._check_name(token)
        constants: dict[str, object] = {"true": True, "false": False, "nil": None}
        if token.value in constants:
            return Literal(token.pos, constants[token.value])
        if not self._at("("):
            return Name(token.pos, token.value)
        if token.value in UNSUPPORTED_BUILTINS:
            raise Fail(f"the builtin {token.value}() is not supported", token.pos)
        args = self._arguments()
        if token.value in BUILTINS:
            if len(args) != 1:
                raise Fail(
                    f"invalid number of arguments for {token.value} (expected 1, got {len(args)})",
                    token.pos,
                )
            return Builtin(token.pos, token.value, args[0])
        return Call(token.pos, token.value, args)

    def _arguments(self) -> tuple[Node, ...]:
        self._expect("(")
        args: list[Node] = []
        while not self._at(")"):
            args.append(self._expression(0))
            self._separator(")")
        self._advance()
        return tuple(args)

    def _postfix(self, node: Node, start: int) -> Node:
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

    def _member(self, node: Node, path: str, dot: Token) -> Node:
        name = self.current
        if name.kind != "name":
            raise self._unexpected("a member name")
        self._check_name(name)
        self._advance()
        if self._at("("):
            raise Fail(f"method calls are not supported: {path}.{name.value}()", name.pos)
        return Member(name.pos, node, name.value, path)

    def _subscript(self, node: Node, path: str, bracket: Token) -> Node:
        lower = None if self._at(":") else self._expression(0)
        if self._at(":"):
            self._advance()
            upper = None if self._at("]") else self._expression(0)
            self._expect("]")
            return Slice(bracket.pos, node, lower, upper)
        self._expect("]")
        assert lower is not None
        return Index(bracket.pos, node, lower, path)

    def _array(self) -> Node:
        token = self._advance()
        items: list[Node] = []
        while not self._at("]"):
            items.append(self._expression(0))
            self._separator("]")
        self._advance()
        return Array(token.pos, tuple(items))

    def _map(self) -> Node:
        token = self._advance()
        keys: list[str] = []
        values: list[Node] = []
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
        return Map(token.pos, tuple(keys), tuple(values))


def check_size(root: Node) -> None:
    """Bound the tree so that evaluation can neither recurse too deep nor run too long."""
    stack = [(root, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise Fail(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", node.pos)
        if count > MAX_NODES:
            raise Fail(f"expression is too large (more than {MAX_NODES} nodes)")
        stack.extend((child, depth + 1) for child in node.children())
