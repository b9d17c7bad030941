"""The bounds in core.limits, at the unit level: YAML shape, template functions, line numbers."""

from __future__ import annotations

import math
import time

import pytest
import yaml

from canarist.core.errors import SpecError
from canarist.core.gofmt import sprintf
from canarist.core.gotemplate.parser import _Parser
from canarist.core.limits import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_TEMPLATE_ITEMS,
    MAX_TEMPLATE_OUTPUT,
    LimitError,
)
from canarist.core.yamltext import dump_yaml, load_yaml


@pytest.mark.parametrize("text", [
    "a: 1", "a: [1, 2.5, -3, +4, 0x1f, 0o7, 017, 1_000, 1:30, .inf, -.inf, yes, No, on, ~, null]",
    "a: ['', '1', \"yes\", !!str 1, !!float 1, 2001-12-14t21:59:43.10-05:00, 2002-12-14, 1., -.5]",
    "x: &a {b: 1}\ny: *a\nz: {<<: *a, c: 2}", "!!set {a, b}", "- !!binary aGVsbG8=", "",
    "# only a comment\n", "a:\n  - b\n  -\n", "[1, [2, [3]]]", "0b101", "+0", "-0", "00", "12e3",
])
def test_load_yaml_gives_what_safe_load_gives(text: str) -> None:
    assert repr(load_yaml(text, source="s")) == repr(yaml.safe_load(text))


def test_load_yaml_nan_and_shared_nodes() -> None:
    assert math.isnan(load_yaml("a: .nan", source="s")["a"])
    data = load_yaml("a: &x [1]\nb: [*x, *x]", source="s")
    assert data["b"][0] is data["a"]


def test_load_yaml_errors_name_the_source_line_and_column() -> None:
    with pytest.raises(SpecError, match=r"^p:3:1: invalid YAML: expected the node content"):
        load_yaml("url: x\nmetrics: [\n", source="p")
    with pytest.raises(SpecError, match=r"^p:1:1: invalid YAML: could not determine a constructor"):
        load_yaml("=", source="p")


def test_nesting_up_to_the_limit_loads_and_beyond_is_refused() -> None:
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_yaml(ok, source="s") is not None
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(SpecError, match=f"s:1:{MAX_DEPTH + 1}: .*deeper than {MAX_DEPTH}"):
        load_yaml(deep, source="s")


def test_nesting_through_aliases_counts() -> None:
    half = MAX_DEPTH // 2 + 1
    text = f"a: &a {'[' * half}{']' * half}\nb: {'[' * half}*a{']' * half}\n"
    with pytest.raises(SpecError, match=f"deeper than {MAX_DEPTH} levels"):
        load_yaml(text, source="s")
    # the aliased part is first reached at a shallow depth, then repeated deep inside b
    text = f"b: {'[' * half}*a{']' * half}\n"
    with pytest.raises(SpecError, match="undefined alias"):
        load_yaml(text, source="s")
    text = f"a: &a {'[' * half}{']' * half}\nb: [{'[' * half}*a{']' * half}, *a]\n"
    with pytest.raises(SpecError, match=f"deeper than {MAX_DEPTH} levels"):
        load_yaml(text, source="s")


def test_aliases_may_add_up_to_the_limit() -> None:
    fan = 1000
    # b repeats a (1,001 nodes) 999 times: 999,999 extra nodes, inside the limit
    items = ", ".join(["x"] * fan)
    text = f"a: &a [{items}]\nb: [{', '.join(['*a'] * (MAX_ALIAS_NODES // (fan + 1)))}]\n"
    assert len(load_yaml(text, source="s")["b"]) == MAX_ALIAS_NODES // (fan + 1)
    text += "c: [*a, *a]\n"
    with pytest.raises(SpecError, match="aliases expand to more than 1,000,000 extra nodes"):
        load_yaml(text, source="s")


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 30)]
    started = time.monotonic()
    with pytest.raises(SpecError, match="aliases expand"):
        load_yaml("\n".join(lines), source="s")
    assert time.monotonic() - started < 10  # 9**30 nodes if expanded: never, were it not refused


def test_dump_yaml_layout() -> None:
    assert dump_yaml({"b": "x\ny", "a": [1, 2.5]}) == "a:\n- 1\n- 2.5\nb: |-\n  x\n  y\n"


@pytest.mark.parametrize("text", ["", "a", "a\n", "\n", "ab\ncd\n\nef", "\n\n\n", "x" * 50])
def test_line_of_counts_newlines_before_the_offset(text: str) -> None:
    parser = _Parser("t", text, set())
    for pos in range(len(text) + 2):
        assert parser.line_of(pos) == text.count("\n", 0, pos) + 1


def test_line_of_is_fast_on_a_large_template() -> None:
    text = "line {{ .a }}\n" * 200_000
    parser = _Parser("t", text, set())
    started = time.monotonic()
    total = sum(parser.line_of(pos) for pos in range(0, len(text), 7))
    assert total > 0
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("fmt", "args", "want"), [
    ("%0999999999d", (1,), "%!(NOVERB)%!(EXTRA int=1)"),
    ("%.99999999d", (1,), "%!(NOVERB)%!(EXTRA int=1)"),
    ("%*d", (1_000_001, 5), "%!(BADWIDTH)5"),
    ("%*d", (-1_000_001, 5), "%!(BADWIDTH)5"),
    ("%.*d", (1_000_001, 5), "%!(BADPREC)5"),
    ("%*d|", (-3, 5), "5  |"),
    ("%05d", (42,), "00042"),
])
def test_printf_widths_follow_go(fmt: str, args: tuple[object, ...], want: str) -> None:
    assert sprintf(fmt, *args) == want


def test_printf_width_of_a_million_is_allowed() -> None:
    assert len(sprintf("%1000000d", 1)) == 1_000_000


def test_printf_output_is_bounded() -> None:
    with pytest.raises(LimitError, match="64 MiB"):
        sprintf("%9999999d" * 8, *range(8))


@pytest.mark.parametrize(("call", "limit"), [
    (f"until {MAX_TEMPLATE_ITEMS + 1}", "1,000,000"),
    (f"seq {MAX_TEMPLATE_ITEMS + 1}", "1,000,000"),
    (f'indent {MAX_TEMPLATE_OUTPUT} "a"', "64 MiB"),
])
def test_sprig_functions_check_before_building(call: str, limit: str) -> None:
    from canarist.core.gotemplate.sprig import SPRIG

    name, *raw = call.split(" ", 1)[0], call.split(" ", 1)[1]
    args: list[object] = [int(a) if a.isdigit() else a.strip('"') for a in raw[0].split(" ")]
    with pytest.raises(LimitError, match=limit):
        SPRIG[name].impl(*args)


def test_sprig_functions_up_to_the_limit() -> None:
    from canarist.core.gotemplate.sprig import SPRIG

    assert len(SPRIG["until"].impl(MAX_TEMPLATE_ITEMS)) == MAX_TEMPLATE_ITEMS  # type: ignore[arg-type]
    with pytest.raises(LimitError, match="64 MiB"):
        SPRIG["replace"].impl("", "x" * 1000, "y" * 100_000)
    with pytest.raises(LimitError, match="64 MiB"):
        SPRIG["join"].impl(",", ["x" * 1_000_000] * 100)
    assert SPRIG["replace"].impl("a", "bb", "aa") == "bbbb"
    assert SPRIG["join"].impl(",", ["a", "b"]) == "a,b"
