"""Parser for Go text/template, following Go's text/template/parse rules and messages."""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Container

from canarist.core.gotemplate import nodes as n
from canarist.core.gotemplate.errors import GoTemplateError, parse_error
from canarist.core.gotemplate.lexer import Item, T, lex

__all__ = ["parse_templates"]

_NEWLINE = re.compile("\n")

_OPERAND_START = {
    T.BOOL, T.CHAR_CONSTANT, T.COMPLEX, T.DOT, T.FIELD, T.IDENTIFIER, T.NUMBER, T.NIL,
    T.RAW_STRING, T.STRING, T.VARIABLE, T.LEFT_PAREN,
}


class _Stop(Exception):
    """Raised with the finished error; converts into GoTemplateError at the top."""

    def __init__(self, err: GoTemplateError) -> None:
        super().__init__(str(err))
        self.err = err


class _Parser:
    def __init__(self, name: str, text: str, funcs: Container[str]) -> None:
        self.name = name
        self.text = text
        self.funcs = funcs
        self.items = lex(text)
        self.i = 0
        self.last: Item = self.items[0]
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.trees: dict[str, n.ListNode] = {}
        self._newlines: list[int] | None = None

    # -- token stream
    def next(self) -> Item:
        it = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        self.last = it
        return it

    def backup(self, k: int = 1) -> None:
        self.i -= k

    def peek(self) -> Item:
        return self.items[min(self.i, len(self.items) - 1)]

    def next_non_space(self) -> Item:
        it = self.next()
        while it.typ == T.SPACE:
            it = self.next()
        return it

    def peek_non_space(self) -> Item:
        it = self.next_non_space()
        self.backup()
        return it

    # -- errors
    def line_of(self, pos: int) -> int:
        """1-based line of character offset `pos`: a binary search in the offsets of the
        text's newlines, found once (an action asks for its line; a template may have
        hundreds of thousands of actions)."""
        if self._newlines is None:
            self._newlines = [m.start() for m in _NEWLINE.finditer(self.text)]
        return bisect.bisect_left(self._newlines, pos) + 1

    def errorf(self, msg: str, item: Item | None = None) -> _Stop:
        it = item or self.last
        return _Stop(parse_error(self.name, self.text, it.pos, self.line_of(it.pos), msg))

    def unexpected(self, item: Item, context: str) -> _Stop:
        if item.typ == T.ERROR:
            extra = ""
            line = self.line_of(item.pos)
            if self.action_line and self.action_line != line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if item.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.errorf(f"{item}{extra}", item)
        return self.errorf(f"unexpected {item} in {context}", item)

    def expect(self, typ: T, context: str) -> Item:
        it = self.next_non_space()
        if it.typ != typ:
            raise self.unexpected(it, context)
        return it

    # -- top level
    def parse(self) -> dict[str, n.ListNode]:
        root = n.ListNode(self.peek().pos)
        while self.peek().typ != T.EOF:
            if self.peek().typ == T.LEFT_DELIM:
                mark = self.i
                self.next()
                if self.next_non_space().typ == T.DEFINE:
                    self.parse_definition()
                    continue
                self.i = mark
            node = self.text_or_action()
            if isinstance(node, n.EndNode | n.ElseNode):
                raise self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        self.add(self.name, root)
        return self.trees

    def add(self, name: str, root: n.ListNode) -> None:
        old = self.trees.get(name)
        if old is None or _is_empty(old):
            self.trees[name] = root
        elif not _is_empty(root):
            raise self.errorf(f"template: multiple definition of template {_quote(name)}")

    def parse_definition(self) -> None:
        context = "define clause"
        it = self.next_non_space()
        if it.typ not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(it, context)
        name = self.unquote(it)
        self.expect(T.RIGHT_DELIM, context)
        saved_vars, self.vars = self.vars, ["$"]
        root, end = self.item_list()
        self.vars = saved_vars
        if not isinstance(end, n.EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add(name, root)

    def item_list(self) -> tuple[n.ListNode, n.Node]:
        lst = n.ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ != T.EOF:
            node = self.text_or_action()
            if isinstance(node, n.EndNode | n.ElseNode):
                return lst, node
            lst.nodes.append(node)
        raise self.errorf("unexpected EOF", self.peek())

    def text_or_action(self) -> n.Node:
        it = self.next_non_space()
        if it.typ == T.TEXT:
            return n.TextNode(it.pos, it.val)
        if it.typ == T.LEFT_DELIM:
            saved = self.action_line
            self.action_line = self.line_of(it.pos)
            try:
                return self.action()
            finally:
                self.action_line = saved
        raise self.unexpected(it, "input")

    def action(self) -> n.Node:
        it = self.next_non_space()
        t = it.typ
        if t == T.BLOCK:
            return self.block_control()
        if t in (T.BREAK, T.CONTINUE):
            return self.loop_control(it)
        if t == T.ELSE:
            return self.else_control()
        if t == T.END:
            return n.EndNode(self.expect(T.RIGHT_DELIM, "end").pos)
        if t == T.IF:
            return n.IfNode(*self.parse_control("if"))
        if t == T.RANGE:
            return n.RangeNode(*self.parse_control("range"))
        if t == T.TEMPLATE:
            return self.template_control()
        if t == T.WITH:
            return n.WithNode(*self.parse_control("with"))
        self.backup()
        first = self.peek()
        return n.ActionNode(first.pos, self.pipeline("command", T.RIGHT_DELIM))

    def loop_control(self, it: Item) -> n.Node:
        tok = self.next_non_space()
        if tok.typ != T.RIGHT_DELIM:
            raise self.unexpected(tok, "{{" + it.val + "}}")
        if self.range_depth == 0:
            raise self.errorf("{{" + it.val + "}} outside {{range}}")
        return n.BreakNode(it.pos) if it.typ == T.BREAK else n.ContinueNode(it.pos)

    def parse_control(self, context: str) -> tuple[int, n.PipeNode, n.ListNode, n.ListNode | None]:
        nvars = len(self.vars)
        try:
            pipe = self.pipeline(context, T.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list: n.ListNode | None = None
            if isinstance(nxt, n.ElseNode):
                chained = {"if": T.IF, "with": T.WITH}.get(context)
                if chained is not None and self.peek().typ == chained:
                    self.next()
                    else_list = n.ListNode(nxt.pos)
                    sub = self.parse_control(context)
                    else_list.nodes.append(
                        n.IfNode(*sub) if context == "if" else n.WithNode(*sub)
                    )
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, n.EndNode):
                        raise self.errorf(f"expected end; found {nxt}")
            return pipe.pos, pipe, lst, else_list
        finally:
            del self.vars[nvars:]

    def else_control(self) -> n.Node:
        pk = self.peek_non_space()
        if pk.typ in (T.IF, T.WITH):
            return n.ElseNode(pk.pos)
        return n.ElseNode(self.expect(T.RIGHT_DELIM, "else").pos)

    def template_name(self, it: Item, context: str) -> str:
        if it.typ not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(it, context)
        return self.unquote(it)

    def template_control(self) -> n.Node:
        context = "template clause"
        it = self.next_non_space()
        name = self.template_name(it, context)
        pipe = None
        if self.next_non_space().typ != T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return n.TemplateNode(it.pos, name, pipe)

    def block_control(self) -> n.Node:
        context = "block clause"
        it = self.next_non_space()
        name = self.template_name(it, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        saved_vars, saved_depth = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        root, end = self.item_list()
        self.vars, self.range_depth = saved_vars, saved_depth
        if not isinstance(end, n.EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add(name, root)
        return n.TemplateNode(it.pos, name, pipe)

    # -- pipelines
    def pipeline(self, context: str, end: T) -> n.PipeNode:
        start = self.peek_non_space()
        pipe = n.PipeNode(start.pos)
        while True:  # declarations
            v = self.peek_non_space()
            if v.typ != T.VARIABLE:
                break
            vi = self.i
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = nxt.typ == T.ASSIGN
                self.next_non_space()
                pipe.decl.append(n.VariableNode(v.pos, v.val.split(".")))
                self.vars.append(v.val)
            elif nxt.typ == T.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(n.VariableNode(v.pos, v.val.split(".")))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue
                    raise self.errorf("range can only initialize variables")
                raise self.errorf(f"too many declarations in {context}")
            else:
                self.i = vi
            break
        while True:
            it = self.next_non_space()
            if it.typ == end:
                self.check_pipeline(pipe, context, it)
                return pipe
            if it.typ in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(it, context)

    def check_pipeline(self, pipe: n.PipeNode, context: str, it: Item) -> None:
        if not pipe.cmds:
            raise self.errorf(f"missing value for {context}", it)
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], n.BoolNode | n.DotNode | n.NilNode | n.NumberNode
                          | n.StringNode):
                raise self.errorf(f"non executable command in pipeline stage {i + 2}", it)

    def command(self) -> n.CommandNode:
        cmd = n.CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            it = self.next()
            if it.typ == T.SPACE:
                continue
            if it.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif it.typ != T.PIPE:
                raise self.unexpected(it, "operand")
            break
        if not cmd.args:
            raise self.errorf("empty command")
        return cmd

    def operand(self) -> n.Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == T.FIELD:
            chain = n.ChainNode(self.peek().pos, node)
            while self.peek().typ == T.FIELD:
                chain.fields.append(self.next().val[1:])
            if isinstance(node, n.FieldNode):
                return n.FieldNode(chain.pos, str(chain)[1:].split("."))
            if isinstance(node, n.VariableNode):
                return n.VariableNode(chain.pos, str(chain).split("."))
            if isinstance(node, n.BoolNode | n.StringNode | n.NumberNode | n.NilNode | n.DotNode):
                raise self.errorf(f"unexpected . after term {_quote(str(node))}")
            return chain
        return node

    def term(self) -> n.Node | None:
        it = self.next_non_space()
        t = it.typ
        if t == T.IDENTIFIER:
            if it.val not in self.funcs:
                name = it.val if len(it.val) <= 200 else it.val[:200] + "..."
                raise self.errorf(f"function {_quote(name)} not defined", it)
            return n.IdentifierNode(it.pos, it.val)
        if t == T.DOT:
            return n.DotNode(it.pos)
        if t == T.NIL:
            return n.NilNode(it.pos)
        if t == T.VARIABLE:
            v = n.VariableNode(it.pos, it.val.split("."))
            if v.ident[0] not in self.vars:
                raise self.errorf(f"undefined variable {_quote(v.ident[0])}", it)
            return v
        if t == T.FIELD:
            return n.FieldNode(it.pos, it.val[1:].split("."))
        if t == T.BOOL:
            return n.BoolNode(it.pos, it.val == "true")
        if t in (T.CHAR_CONSTANT, T.COMPLEX, T.NUMBER):
            return self.number(it)
        if t == T.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
        if t in (T.STRING, T.RAW_STRING):
            return n.StringNode(it.pos, it.val, self.unquote(it))
        self.backup()
        return None

    # -- literals
    def unquote(self, it: Item) -> str:
        try:
            return unquote(it.val)
        except ValueError as e:
            raise self.errorf(str(e), it) from None

    def number(self, it: Item) -> n.NumberNode:
        try:
            return parse_number(it.pos, it.val, it.typ)
        except ValueError as e:
            raise self.errorf(str(e), it) from None


def _quote(s: str) -> str:
    from canarist.core.gofmt import go_quote

    return go_quote(s)


def _is_empty(lst: n.ListNode) -> bool:
    for node in lst.nodes:
        if isinstance(node, n.TextNode):
            if node.text.strip(" \t\r\n"):
                return False
        elif not isinstance(node, n.ListNode) or not _is_empty(node):
            return False
    return True


# ------------------------------------------------------------------ literal decoding

_SIMPLE_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
               "\\": "\\", "'": "'", '"': '"'}


def _unquote_char(s: str, i: int, quote: str) -> tuple[str, int]:
    """Decode one (possibly escaped) character of a Go literal at s[i]."""
    ch = s[i]
    if ch == quote and quote in "'\"":
        raise ValueError("invalid syntax")
    if ch != "\\":
        return ch, i + 1
    if i + 1 >= len(s):
        raise ValueError("invalid syntax")
    c = s[i + 1]
    if c in _SIMPLE_ESC:
        if (c == "'" and quote != "'") or (c == '"' and quote != '"'):
            raise ValueError("invalid syntax")
        return _SIMPLE_ESC[c], i + 2
    size = {"x": 2, "u": 4, "U": 8}.get(c)
    if size is not None:
        digits = s[i + 2 : i + 2 + size]
        if len(digits) != size or not all(d in "0123456789abcdefABCDEF" for d in digits):
            raise ValueError("invalid syntax")
        v = int(digits, 16)
        if c == "x":
            if quote == "'":
                return chr(v), i + 2 + size
            return chr(v) if v < 0x80 else bytes([v]).decode("latin-1"), i + 2 + size
        if v > 0x10FFFF or 0xD800 <= v < 0xE000:
            raise ValueError("invalid syntax")
        return chr(v), i + 2 + size
    if c in "01234567":
        digits = s[i + 1 : i + 4]
        if len(digits) != 3 or not all(d in "01234567" for d in digits) or int(digits, 8) > 255:
            raise ValueError("invalid syntax")
        return chr(int(digits, 8)), i + 4
    raise ValueError("invalid syntax")


def unquote(lit: str) -> str:
    """strconv.Unquote for "…" and `…` literals."""
    if len(lit) < 2 or lit[0] != lit[-1]:
        raise ValueError("invalid syntax")
    body = lit[1:-1]
    if lit[0] == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    if lit[0] != '"':
        raise ValueError("invalid syntax")
    out: list[str] = []
    i = 0
    while i < len(body):
        ch, i = _unquote_char(body, i, '"')
        out.append(ch)
    return "".join(out)


_INT_RE = re.compile(
    r"[+-]?(0[xX](_?[0-9a-fA-F])+|0[bB](_?[01])+|0[oO](_?[0-7])+|0(_?[0-7])*|[1-9](_?[0-9])*)"
)
_FLOAT_RE = re.compile(
    r"[+-]?((\d(_?\d)*)?\.?(\d(_?\d)*)?([eE][+-]?\d(_?\d)*)?"
    r"|0[xX](_?[0-9a-fA-F])*\.?([0-9a-fA-F](_?[0-9a-fA-F])*)?[pP][+-]?\d(_?\d)*)"
)


def _parse_int(text: str) -> int | None:
    if not _INT_RE.fullmatch(text):
        return None
    sign = -1 if text[0] == "-" else 1
    body = text.lstrip("+-").replace("_", "")
    low = body.lower()
    if low.startswith(("0x", "0b", "0o")):
        v = int(body, 0)
    elif len(body) > 1 and body[0] == "0":
        v = int(body, 8)
    else:
        v = int(body)
    return sign * v


def _parse_float(text: str) -> float | None:
    if not _FLOAT_RE.fullmatch(text) or not any(c.isdigit() for c in text):
        return None
    body = text.replace("_", "")
    try:
        if "x" in body.lower():
            return float.fromhex(body)
        return float(body)
    except ValueError:
        return None


def parse_number(pos: int, text: str, typ: T) -> n.NumberNode:
    """Go's parse.newNumber: decide which of int/float a numeric constant can be."""
    node = n.NumberNode(pos, text)
    if typ == T.CHAR_CONSTANT:
        body = text[1:]
        ch, i = _unquote_char(body, 0, "'")
        if body[i:] != "'":
            raise ValueError(f"malformed character constant: {text}")
        node.is_int = node.is_float = node.is_uint = True
        node.int_value = ord(ch)
        node.float_value = float(ord(ch))
        return node
    if typ == T.COMPLEX or text.endswith("i"):
        raise ValueError(f"complex constants are not supported: {_quote(text)}")
    iv = _parse_int(text)
    if iv is not None:
        if -(2**63) <= iv < 2**63:
            node.is_int = True
            node.int_value = iv
        if 0 <= iv < 2**64:
            node.is_uint = True
        if node.is_int or node.is_uint:
            node.is_float = True
            node.float_value = float(iv)
    if not (node.is_int or node.is_uint):
        f = _parse_float(text)
        if f is not None:
            if math.isinf(f):
                raise ValueError(f"illegal number syntax: {_quote(text)}")
            if not any(c in text for c in ".eEpP"):
                raise ValueError(f"integer overflow: {_quote(text)}")
            node.is_float = True
            node.float_value = f
            if f == int(f) and -(2**63) <= f < 2**63:
                node.is_int = True
                node.int_value = int(f)
            if f == int(f) and 0 <= f < 2**64:
                node.is_uint = True
    if not (node.is_int or node.is_uint or node.is_float):
        raise ValueError(f"illegal number syntax: {_quote(text)}")
    return node


def parse_templates(name: str, text: str, funcs: Container[str]) -> dict[str, n.ListNode]:
    """Parse `text`; returns the tree of every template it defines, `name` included."""
    try:
        return _Parser(name, text, funcs).parse()
    except _Stop as stop:
        raise stop.err from None
    except RecursionError:
        raise GoTemplateError(
            f"{name}:1:0: template nesting too deep",
            go_message=f"template: {name}:1: template nesting too deep",
            line=1,
            col=0,
        ) from None
