"""Hypothesis strategies that build templates from a small grammar of text/template."""

from __future__ import annotations

from hypothesis import strategies as st

FIELDS = [".a", ".f", ".s", ".b", ".n", ".z", ".es", ".m", ".m.b", ".m.c.d", ".l", ".nums",
          ".strs", ".e", ".em", ".missing", ".m.missing", ".big", ".neg", ".labels", ".unicode",
          "$", "$.a", "$.m.b", "."]
LITERALS = ["1", "0", "-3", "2.5", "1e6", "0.5", '"x"', '"hello world"', '""', "true", "false",
            "'a'", "0x1F", "`raw`"]
FUNCS1 = ["len", "not", "upper", "lower", "quote", "squote", "toJson", "toYaml", "kindOf",
          "typeOf", "empty", "toString", "int", "float64", "add1", "first", "last", "title",
          "trim", "b64enc", "print", "println", "html", "js", "urlquery", "uniq"]
# Not generated: `keys`, whose order Go leaves random (canarist sorts; see the table cases).
FUNCS2 = ["eq", "ne", "lt", "le", "gt", "ge", "and", "or", "default", "index", "add", "sub",
          "mul", "max", "min", "hasKey", "has", "contains", "hasPrefix", "join", "split",
          "splitList", "printf", "print", "list", "dict", "coalesce", "append", "kindIs",
          "indent", "nindent", "trimPrefix", "replace", "regexMatch", "div", "mod", "until",
          "slice", "round"]


def operand(depth: int) -> st.SearchStrategy[str]:
    base = st.sampled_from(FIELDS + LITERALS)
    if depth <= 0:
        return base
    return st.one_of(base, command(depth - 1).map(lambda c: f"({c})"))


def command(depth: int) -> st.SearchStrategy[str]:
    return st.one_of(
        operand(depth),
        st.tuples(st.sampled_from(FUNCS1), operand(depth)).map(" ".join),
        st.tuples(st.sampled_from(FUNCS2), operand(depth), operand(depth)).map(" ".join),
        st.tuples(st.sampled_from(["printf", "print", "list", "eq", "and", "or", "coalesce"]),
                  st.lists(operand(depth), min_size=1, max_size=3)).map(
            lambda t: t[0] + " " + " ".join(t[1])),
    )


def pipeline(depth: int) -> st.SearchStrategy[str]:
    return st.one_of(
        command(depth),
        st.tuples(command(depth), st.sampled_from([*FUNCS1, 'printf "%v"', "default 3",
                                                   "quote", "len"])).map(" | ".join),
    )


def _action(body: str, left: bool, right: bool) -> str:
    return "{{" + ("- " if left else " ") + body + (" -" if right else " ") + "}}"


TEXT = st.sampled_from(["", "x", " ", "\n", "a b", "  \n  ", ":", "k=", ",", "\t"])


def node(depth: int) -> st.SearchStrategy[str]:
    trims = st.booleans()
    action = st.tuples(pipeline(1), trims, trims).map(lambda t: _action(*t))
    leaves = st.one_of(TEXT, action, st.just("{{/* c */}}"))
    if depth <= 0:
        return leaves
    body = st.lists(node(depth - 1), max_size=3).map("".join)
    return st.one_of(
        leaves,
        st.tuples(pipeline(1), body, st.one_of(st.none(), body)).map(
            lambda t: "{{ if " + t[0] + " }}" + t[1]
            + ("" if t[2] is None else "{{ else }}" + t[2]) + "{{ end }}"),
        st.tuples(st.sampled_from([".nums", ".strs", ".m", ".l", ".e", ".labels", ".missing",
                                   ".em", "until 3", "list 1 2"]),
                  st.sampled_from(["", "$v := ", "$i, $v := "]), body,
                  st.one_of(st.none(), body), st.sampled_from(["", "{{ $.a }}", "{{ . }}",
                                                               "{{ break }}",
                                                               "{{ continue }}"])).map(
            lambda t: "{{ range " + t[1] + t[0] + " }}" + t[4] + t[2]
            + ("" if t[3] is None else "{{ else }}" + t[3]) + "{{ end }}"),
        st.tuples(pipeline(1), body, st.one_of(st.none(), body)).map(
            lambda t: "{{ with " + t[0] + " }}" + t[1]
            + ("" if t[2] is None else "{{ else }}" + t[2]) + "{{ end }}"),
    )


def templates() -> st.SearchStrategy[str]:
    """Whole templates, sometimes with a define/template pair."""
    body = st.lists(node(2), min_size=1, max_size=4).map("".join)
    return st.one_of(
        body,
        st.tuples(body, body, st.sampled_from([".", ".m", ".a", ".l", "$"])).map(
            lambda t: '{{ define "d" }}' + t[0] + "{{ end }}" + t[1]
            + '{{ template "d" ' + t[2] + " }}"),
    )
