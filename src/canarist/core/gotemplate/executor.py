"""Executes parsed templates with Go's text/template semantics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from canarist.core.gofmt import format_value, go_quote, go_type_name
from canarist.core.gotemplate import nodes as n
from canarist.core.gotemplate.errors import GoTemplateError, location
from canarist.core.gotemplate.funcspec import GO_TYPE_NAMES, FuncError, FuncSpec
from canarist.core.gotemplate.values import (
    MISSING,
    Box,
    elem_is_interface,
    is_true,
    to_arg,
    unbox,
)
from canarist.core.limits import (
    MAX_TEMPLATE_OUTPUT,
    MIB,
    check_template_items,
    check_template_string,
)

__all__ = ["MAX_DEPTH", "Executor"]

MAX_DEPTH = 100
"""Nesting limit for {{template}} calls (Go allows 100000; Python's stack does not)."""


class _ExecStop(Exception):
    def __init__(self, err: GoTemplateError) -> None:
        super().__init__(str(err))
        self.err = err


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Executor:
    """One execution: output buffer, variable stack and error location."""

    def __init__(
        self,
        *,
        parse_name: str,
        text: str,
        trees: Mapping[str, n.ListNode],
        funcs: Mapping[str, FuncSpec],
        strict: bool,
    ) -> None:
        self.parse_name = parse_name
        self.text = text
        self.trees = trees
        self.funcs = funcs
        self.strict = strict
        self.out: list[str] = []
        self.size = 0
        self.vars: list[tuple[str, object]] = []
        self.node: n.Node | None = None
        self.tmpl_name = parse_name
        self.depth = 0

    # ------------------------------------------------------------------ errors
    def error(self, msg: str, fail_message: str | None = None) -> _ExecStop:
        name = self.tmpl_name
        if self.node is None:
            text = f"{name}: {msg}"
            line = col = 0
        else:
            line, col = location(self.text, self.node.pos)
            text = (
                f"{self.parse_name}:{line}:{col}: executing {go_quote(name)} "
                f"at <{self.node}>: {msg}"
            )
        return _ExecStop(
            GoTemplateError(
                text, go_message="template: " + text, line=line, col=col,
                fail_message=fail_message,
            )
        )

    # ------------------------------------------------------------------ entry
    def run(self, name: str, data: object) -> str:
        dot = MISSING if data is None else data
        self.vars = [("$", dot)]
        self.tmpl_name = name
        try:
            self.walk(dot, self.trees[name])
        except _ExecStop as stop:
            raise stop.err from None
        except RecursionError:
            raise self.error("template nesting too deep").err from None
        return "".join(self.out)

    # ------------------------------------------------------------------ walking
    def write(self, text: str) -> None:
        """Append to the output, which may not grow past MAX_TEMPLATE_OUTPUT characters."""
        self.size += len(text)
        if self.size > MAX_TEMPLATE_OUTPUT:
            raise self.error(f"the output is longer than {MAX_TEMPLATE_OUTPUT // MIB} MiB, "
                             "the most a template may produce")
        self.out.append(text)

    def walk(self, dot: object, node: n.Node) -> None:
        self.node = node
        typ = type(node)
        if typ is n.TextNode:
            self.write(node.text)  # type: ignore[attr-defined]
        elif typ is n.ActionNode:
            pipe: n.PipeNode = node.pipe  # type: ignore[attr-defined]
            val = self.eval_pipeline(dot, pipe)
            if not pipe.decl:
                self.node = node
                t = type(val)
                if t is str:
                    self.write(val)  # type: ignore[arg-type]
                elif t is int:
                    self.write(str(val))
                else:
                    self.write("<no value>" if val is MISSING else format_value(val))
        elif typ is n.ListNode:
            for child in node.nodes:  # type: ignore[attr-defined]
                self.walk(dot, child)
        elif isinstance(node, n.IfNode | n.WithNode):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, n.RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, n.TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, n.BreakNode):
            raise _Break
        elif isinstance(node, n.ContinueNode):
            raise _Continue
        else:
            raise self.error(f"unknown node: {node}")

    def walk_if_or_with(self, dot: object, node: n.IfNode | n.WithNode) -> None:
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            truth, ok = is_true(val)
            if not ok:
                raise self.error(f"if/with can't use {format_value(val)}")
            if truth:
                self.walk(val if isinstance(node, n.WithNode) else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: object, node: n.RangeNode) -> None:
        self.node = node
        outer = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            mark = len(self.vars)
            ndecl = len(node.pipe.decl)
            items: list[tuple[object, object]]
            if isinstance(val, Mapping):
                boxed = elem_is_interface(val)
                keys = sorted(val, key=_map_key_order)
                items = [(k, Box(val[k]) if boxed else val[k]) for k in keys]
            elif isinstance(val, Sequence) and not isinstance(val, str):
                boxed = elem_is_interface(val)
                items = [(i, Box(x) if boxed else x) for i, x in enumerate(val)]
            elif val is MISSING:
                items = []
            else:
                raise self.error(f"range can't iterate over {format_value(val)}")
            for key, elem in items:
                if ndecl > 0:
                    self._set_top_var(1, elem)
                if ndecl > 1:
                    self._set_top_var(2, key)
                try:
                    self.walk(elem, node.list)
                except _Continue:
                    pass
                finally:
                    del self.vars[mark:]
            if not items and node.else_list is not None:
                self.walk(dot, node.else_list)
        except _Break:
            pass
        finally:
            del self.vars[outer:]

    def walk_template(self, dot: object, node: n.TemplateNode) -> None:
        self.node = node
        tree = self.trees.get(node.name)
        if tree is None:
            raise self.error(f"template {go_quote(node.name)} not defined")
        if self.depth >= MAX_DEPTH:
            raise self.error(f"exceeded maximum template depth ({MAX_DEPTH})")
        new_dot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else MISSING
        saved = (self.vars, self.tmpl_name)
        self.vars = [("$", new_dot)]
        self.tmpl_name = node.name
        self.depth += 1
        try:
            self.walk(new_dot, tree)
        finally:
            self.vars, self.tmpl_name = saved
            self.depth -= 1

    # ------------------------------------------------------------------ variables
    def _set_top_var(self, k: int, value: object) -> None:
        name, _ = self.vars[-k]
        self.vars[-k] = (name, value)

    def _set_var(self, name: str, value: object) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.error(f"undefined variable: {name}")

    def _var_value(self, name: str) -> object:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                return self.vars[i][1]
        raise self.error(f"undefined variable: {name}")

    # ------------------------------------------------------------------ evaluation
    def eval_pipeline(self, dot: object, pipe: n.PipeNode | None) -> object:
        if pipe is None:
            return MISSING
        self.node = pipe
        value: object = _NO_FINAL
        for cmd in pipe.cmds:
            value = unbox(self.eval_command(dot, cmd, value))
        for var in pipe.decl:
            if pipe.is_assign:
                self._set_var(var.ident[0], value)
            else:
                self.vars.append((var.ident[0], value))
        return value

    def eval_command(self, dot: object, cmd: n.CommandNode, final: object) -> object:
        first = cmd.args[0]
        typ = type(first)
        if typ is n.IdentifierNode:
            return self.eval_function(dot, first, cmd, cmd.args, final)  # type: ignore[arg-type]
        if isinstance(first, n.FieldNode):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, n.ChainNode):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, n.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, n.PipeNode):
            self._not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, n.VariableNode):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.node = first
        self._not_a_function(cmd.args, final)
        if isinstance(first, n.BoolNode):
            return first.value
        if isinstance(first, n.DotNode):
            return dot
        if isinstance(first, n.NilNode):
            raise self.error("nil is not a command")
        if isinstance(first, n.NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, n.StringNode):
            return first.text
        raise self.error(f"can't evaluate command {first}")

    def _not_a_function(self, args: Sequence[n.Node], final: object) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            raise self.error(f"can't give argument to non-function {args[0]}")

    def ideal_constant(self, c: n.NumberNode) -> object:
        self.node = c
        if c.is_float and not _is_hex_or_rune_int(c.text) and any(x in c.text for x in ".eEpP"):
            return c.float_value
        if c.is_int:
            return c.int_value
        if c.is_uint:
            raise self.error(f"{c.text} overflows int")
        return MISSING

    def eval_field_node(
        self, dot: object, field: n.FieldNode, args: Sequence[n.Node], final: object
    ) -> object:
        self.node = field
        return self.eval_field_chain(dot, dot, field.ident, args, final)

    def eval_chain_node(
        self, dot: object, chain: n.ChainNode, args: Sequence[n.Node], final: object
    ) -> object:
        self.node = chain
        if isinstance(chain.node, n.NilNode):
            raise self.error(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, pipe, chain.fields, args, final)

    def eval_variable_node(
        self, dot: object, var: n.VariableNode, args: Sequence[n.Node], final: object
    ) -> object:
        self.node = var
        value = self._var_value(var.ident[0])
        if len(var.ident) == 1:
            self._not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var.ident[1:], args, final)

    def eval_field_chain(
        self,
        dot: object,
        receiver: object,
        ident: Sequence[str],
        args: Sequence[n.Node],
        final: object,
    ) -> object:
        for name in ident[:-1]:
            receiver = self.eval_field(name, (), _NO_FINAL, receiver)
        return self.eval_field(ident[-1], args, final, receiver)

    def eval_field(
        self, name: str, args: Sequence[n.Node], final: object, receiver: object
    ) -> object:
        if receiver is MISSING:
            if self.strict:
                raise self.error(f"nil data; no entry for key {go_quote(name)}")
            return MISSING
        boxed = type(receiver) is Box
        if boxed:
            receiver = receiver.v  # type: ignore[attr-defined]
            if receiver is None:
                raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        if type(receiver) is dict:
            if len(args) > 1 or final is not _NO_FINAL:
                raise self.error(f"{name} is not a method but has arguments")
            if name in receiver:
                return Box(receiver[name])
            if self.strict:
                raise self.error(f"map has no entry for key {go_quote(name)}")
            return MISSING
        if isinstance(receiver, Mapping):
            if len(args) > 1 or final is not _NO_FINAL:
                raise self.error(f"{name} is not a method but has arguments")
            if name in receiver:
                result = receiver[name]
                return Box(result) if elem_is_interface(receiver) else result
            if self.strict:
                raise self.error(f"map has no entry for key {go_quote(name)}")
            return MISSING
        typ = "interface {}" if boxed else go_type_name(receiver)
        raise self.error(f"can't evaluate field {name} in type {typ}")

    # ------------------------------------------------------------------ calls
    def eval_function(
        self,
        dot: object,
        ident: n.IdentifierNode,
        cmd: n.Node,
        args: Sequence[n.Node],
        final: object,
    ) -> object:
        self.node = ident
        spec = self.funcs.get(ident.ident)
        if spec is None:
            raise self.error(f"{go_quote(ident.ident)} is not a defined function")
        return self.eval_call(dot, spec, cmd, args, final)

    def eval_call(  # noqa: C901
        self,
        dot: object,
        spec: FuncSpec,
        cmd: n.Node,
        args: Sequence[n.Node],
        final: object,
    ) -> object:
        name = spec.name
        argn = list(args[1:])
        num_in = len(argn) + (0 if final is _NO_FINAL else 1)
        nparams = len(spec.params) + (1 if spec.variadic else 0)
        if spec.variadic is not None:
            if num_in < len(spec.params):
                raise self.error(
                    f"wrong number of args for {name}: want at least {len(spec.params)} "
                    f"got {len(argn)}"
                )
        elif num_in != nparams:
            raise self.error(f"wrong number of args for {name}: want {nparams} got {num_in}")

        if name in ("and", "or"):
            v: object = MISSING
            for a in argn:
                v = self.eval_arg(dot, "value", a)
                if isinstance(v, Box):
                    v = v.v if v.v is not None else MISSING
                if is_true(v)[0] == (name == "or"):
                    return v
            if final is not _NO_FINAL:
                v = final
            return v

        argv: list[object] = []
        for i, a in enumerate(argn):
            typ = spec.params[i] if i < len(spec.params) else spec.variadic
            assert typ is not None
            argv.append(self.eval_arg(dot, typ, a))
        if final is not _NO_FINAL:
            if spec.variadic is not None and num_in - 1 >= len(spec.params):
                typ = spec.variadic
            else:
                typ = spec.params[num_in - 1]
            argv.append(self.validate_type(final, typ))
        try:
            result = spec.impl(*argv)
            _check_result(result)
        except FuncError as e:
            self.node = cmd
            fail = str(e) if name == "fail" else None
            raise self.error(f"error calling {name}: {e}", fail_message=fail) from None
        except _ExecStop:
            raise
        except RecursionError:
            raise
        except (ZeroDivisionError, ValueError, TypeError, OverflowError, IndexError,
                KeyError) as e:
            self.node = cmd
            raise self.error(f"error calling {name}: {_python_error_text(e)}") from None
        return MISSING if result is None else result

    def eval_arg(self, dot: object, typ: str | None, node: n.Node) -> object:  # noqa: C901
        self.node = node
        if type(node) is n.StringNode and typ in ("string", "any", "value", None):
            return node.text
        if isinstance(node, n.DotNode):
            return self.validate_type(dot, typ)
        if isinstance(node, n.NilNode):
            if typ in ("any", "value", "map"):
                return MISSING if typ == "value" else None
            raise self.error(f"cannot assign nil to {GO_TYPE_NAMES.get(typ or '', typ)}")
        if isinstance(node, n.FieldNode):
            return self.validate_type(self.eval_field_node(dot, node, [node], _NO_FINAL), typ)
        if isinstance(node, n.VariableNode):
            return self.validate_type(self.eval_variable_node(dot, node, (), _NO_FINAL), typ)
        if isinstance(node, n.PipeNode):
            return self.validate_type(self.eval_pipeline(dot, node), typ)
        if isinstance(node, n.IdentifierNode):
            spec = self.funcs.get(node.ident)
            if spec is None:
                raise self.error(f"{go_quote(node.ident)} is not a defined function")
            self.node = node
            result = self.eval_call(dot, spec, node, [node], _NO_FINAL)
            return self.validate_type(result, typ)
        if isinstance(node, n.ChainNode):
            return self.validate_type(self.eval_chain_node(dot, node, (), _NO_FINAL), typ)
        # literals
        if typ in (None, "any", "value"):
            if isinstance(node, n.BoolNode):
                return node.value
            if isinstance(node, n.NumberNode):
                return self.ideal_constant(node)
            if isinstance(node, n.StringNode):
                return node.text
        elif typ == "string":
            if isinstance(node, n.StringNode):
                return node.text
            raise self.error(f"expected string; found {node}")
        elif typ == "int":
            if isinstance(node, n.NumberNode) and node.is_int:
                return node.int_value
            raise self.error(f"expected integer; found {node}")
        elif typ == "float64":
            if isinstance(node, n.NumberNode) and node.is_float:
                return node.float_value
            raise self.error(f"expected float; found {node}")
        elif typ == "bool":
            if isinstance(node, n.BoolNode):
                return node.value
            raise self.error(f"expected bool; found {node}")
        typ_name = GO_TYPE_NAMES.get(typ or "", typ or "")
        raise self.error(f"can't handle {node} for arg of type {typ_name}")

    def validate_type(self, value: object, typ: str | None) -> object:
        """Go's validateType: check a computed value against a parameter type."""
        if typ is None or typ == "value":
            return value
        if value is MISSING:
            if typ in ("any", "map"):
                return None
            raise self.error(f"invalid value; expected {GO_TYPE_NAMES[typ]}")
        if typ == "any":
            return to_arg(value)
        inner = value.v if isinstance(value, Box) else value
        if inner is not None and _assignable(inner, typ):
            return inner
        got = "interface {}" if inner is None else go_type_name(inner)
        raise self.error(f"wrong type for value; expected {GO_TYPE_NAMES[typ]}; got {got}")


class _NoFinal:
    def __repr__(self) -> str:
        return "NO_FINAL"


_NO_FINAL = _NoFinal()


def _assignable(v: object, typ: str) -> bool:
    t = go_type_name(v)
    if typ == "map":
        return t == "map[string]interface {}"
    if typ == "time":
        return t == "time.Time"
    return t == typ


def _is_hex_or_rune_int(text: str) -> bool:
    if text.startswith("'"):
        return True
    body = text.lstrip("+-")
    return len(body) > 1 and body[0] == "0" and body[1] in "xX" and not any(
        c in body for c in "pP"
    )


def _map_key_order(k: object) -> tuple[int, object]:
    if isinstance(k, bool):
        return (0, k)
    if isinstance(k, int | float):
        return (1, k)
    return (2, str(k))


def _check_result(result: object) -> None:
    """What any function returns is bounded (those that could build more check first)."""
    if isinstance(result, str):
        check_template_string(len(result))
    elif isinstance(result, list | tuple | dict):
        check_template_items(len(result), "the result")


def _python_error_text(e: Exception) -> str:
    if isinstance(e, ZeroDivisionError):
        return "runtime error: integer divide by zero"
    return str(e)
