"""The expression tree: each node evaluates itself over a mapping of names."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from canarist.core.expressions.builtins import BUILTINS
from canarist.core.expressions.errors import Fail, OpError, shown_name
from canarist.core.expressions.operations import OPERATIONS
from canarist.core.expressions.values import INT_MIN, fetch, is_int, is_number, kind_of

_Env = Mapping[str, object]


class Node:
    __slots__ = ()
    pos: int

    def eval(self, env: _Env) -> object:
        raise NotImplementedError

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Literal(Node):
    pos: int
    value: object

    def eval(self, env: _Env) -> object:
        return self.value


@dataclass(frozen=True, slots=True)
class Name(Node):
    pos: int
    name: str

    def eval(self, env: _Env) -> object:
        if self.name not in env:
            raise Fail(f"unknown name {shown_name(self.name)}", self.pos)
        return env[self.name]


@dataclass(frozen=True, slots=True)
class Member(Node):
    pos: int
    obj: Node
    name: str
    path: str

    def eval(self, env: _Env) -> object:
        try:
            return fetch(self.obj.eval(env), self.name, self.path)
        except OpError as exc:
            raise Fail(str(exc), self.pos) from None

    def children(self) -> tuple[Node, ...]:
        return (self.obj,)


@dataclass(frozen=True, slots=True)
class Index(Node):
    pos: int
    obj: Node
    index: Node
    path: str

    def eval(self, env: _Env) -> object:
        container = self.obj.eval(env)
        key = self.index.eval(env)
        try:
            return fetch(container, key, self.path)
        except OpError as exc:
            raise Fail(str(exc), self.pos) from None

    def children(self) -> tuple[Node, ...]:
        return (self.obj, self.index)


@dataclass(frozen=True, slots=True)
class Slice(Node):
    pos: int
    obj: Node
    lower: Node | None
    upper: Node | None

    def eval(self, env: _Env) -> object:
        container = self.obj.eval(env)
        lower, upper = self._bound(self.lower, env), self._bound(self.upper, env)
        if isinstance(container, str):
            return container[lower:upper]
        if isinstance(container, list | tuple):
            return list(container[lower:upper])
        raise Fail(f"cannot slice {kind_of(container)}", self.pos)

    def _bound(self, node: Node | None, env: _Env) -> int | None:
        if node is None:
            return None
        value = node.eval(env)
        if not is_int(value):
            raise Fail(f"slice bounds must be integers, got {kind_of(value)}", self.pos)
        return value

    def children(self) -> tuple[Node, ...]:
        return tuple(b for b in (self.obj, self.lower, self.upper) if b is not None)


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A call of a function found in the environment."""

    pos: int
    name: str
    args: tuple[Node, ...]

    def eval(self, env: _Env) -> object:
        if self.name not in env:
            raise Fail(f"unknown name {shown_name(self.name)}", self.pos)
        function = env[self.name]
        if not callable(function) or isinstance(function, type):
            raise Fail(f"{self.name} is not a function (it is {kind_of(function)})", self.pos)
        args = [arg.eval(env) for arg in self.args]
        _check_arity(self.name, function, args, self.pos)
        return function(*args)

    def children(self) -> tuple[Node, ...]:
        return self.args


def _check_arity(name: str, function: Callable[..., object], args: list[object], pos: int) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args)
    except TypeError:
        raise Fail(f"wrong number of arguments in call to {name}(): got {len(args)}", pos) from None


@dataclass(frozen=True, slots=True)
class Builtin(Node):
    pos: int
    name: str
    arg: Node

    def eval(self, env: _Env) -> object:
        value = self.arg.eval(env)
        try:
            return BUILTINS[self.name](value)
        except OpError as exc:
            raise Fail(str(exc), self.pos) from None

    def children(self) -> tuple[Node, ...]:
        return (self.arg,)


@dataclass(frozen=True, slots=True)
class Unary(Node):
    pos: int
    op: str
    operand: Node

    def eval(self, env: _Env) -> object:
        value = self.operand.eval(env)
        if self.op in ("not", "!") and isinstance(value, bool):
            return not value
        if self.op == "-" and is_int(value):
            if value == INT_MIN:
                raise Fail("integer overflow", self.pos)
            return -value
        if self.op == "-" and isinstance(value, float):
            return -value
        if self.op == "+" and is_number(value):
            return value
        raise Fail(f"invalid operation: {self.op} (mismatched type {kind_of(value)})", self.pos)

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Binary(Node):
    pos: int
    op: str
    left: Node
    right: Node

    def eval(self, env: _Env) -> object:
        left = self.left.eval(env)
        right = self.right.eval(env)
        negate = self.op.startswith("not ")
        name = self.op[4:] if negate else self.op
        try:
            result = OPERATIONS[name](name, left, right)
        except OpError as exc:
            raise Fail(str(exc), self.pos) from None
        except OverflowError:
            raise Fail("numeric overflow", self.pos) from None
        return not result if negate else result

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Logical(Node):
    """`and`/`or` (and `&&`/`||`), evaluating the right side only when needed."""

    pos: int
    op: str
    left: Node
    right: Node

    def eval(self, env: _Env) -> object:
        stop = self.op in ("or", "||")
        left = self._operand(self.left, env)
        if left is stop:
            return stop
        return self._operand(self.right, env)

    def _operand(self, node: Node, env: _Env) -> bool:
        value = node.eval(env)
        if not isinstance(value, bool):
            raise Fail(
                f"invalid operation: {self.op} (operand of type {kind_of(value)}, expected bool)",
                self.pos,
            )
        return value

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    pos: int
    cond: Node
    then: Node
    other: Node

    def eval(self, env: _Env) -> object:
        cond = self.cond.eval(env)
        if not isinstance(cond, bool):
            raise Fail(f"non-bool expression (type {kind_of(cond)}) used as condition", self.pos)
        return self.then.eval(env) if cond else self.other.eval(env)

    def children(self) -> tuple[Node, ...]:
        return (self.cond, self.then, self.other)


@dataclass(frozen=True, slots=True)
class Array(Node):
    pos: int
    items: tuple[Node, ...]

    def eval(self, env: _Env) -> object:
        return [item.eval(env) for item in self.items]

    def children(self) -> tuple[Node, ...]:
        return self.items


@dataclass(frozen=True, slots=True)
class Map(Node):
    pos: int
    keys: tuple[str, ...]
    values: tuple[Node, ...]

    def eval(self, env: _Env) -> object:
        return {key: value.eval(env) for key, value in zip(self.keys, self.values, strict=True)}

    def children(self) -> tuple[Node, ...]:
        return self.values
