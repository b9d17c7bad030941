"""Helm strvals (`--set`, `--set-string`, `--set-file`) and values merging."""

from __future__ import annotations

import contextlib
import copy
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canarist.core.errors import ValuesError
from canarist.core.values import (
    MAX_INDEX,
    build_values,
    coalesce_defaults,
    merge_patch,
    merge_values,
    parse_set,
    parse_set_file,
    parse_set_json,
    parse_set_string,
    quote,
)

# -- Helm's documented and tested behaviour, rule by rule ---------------------------------

PAIRS = [
    ("name1=value1", {"name1": "value1"}),
    ("name1=value1,name2=value2", {"name1": "value1", "name2": "value2"}),
    ("name1=value1,name2=value2,", {"name1": "value1", "name2": "value2"}),
    ("name1=,name2=value2", {"name1": "", "name2": "value2"}),
    ("name1=one two three,name2=three two one",
     {"name1": "one two three", "name2": "three two one"}),
    ("a=1,a=2", {"a": 2}),  # later pairs win
    ("a=x=y", {"a": "x=y"}),
    ("=1", {}),  # an empty key is ignored
    ("", {}),
]

TYPES = [
    ("name1=null,f=false,t=true", {"name1": None, "f": False, "t": True}),
    ("t=TRUE,f=False,n=NULL", {"t": True, "f": False, "n": None}),
    ("zero_int=0", {"zero_int": 0}),
    ("long_int=1234567890", {"long_int": 1234567890}),
    ("neg=-12", {"neg": -12}),
    ("plus=+5", {"plus": 5}),
    ("negzeros=-007", {"negzeros": -7}),  # only a leading 0 keeps a string
    ("leading_zeros=00009", {"leading_zeros": "00009"}),
    ("max=9223372036854775807", {"max": 9223372036854775807}),
    ("over=9223372036854775808", {"over": "9223372036854775808"}),
    # Helm's typedVal parses only int64: floats and exponents stay strings
    ("float=0.5", {"float": "0.5"}),
    ("float=50.0", {"float": "50.0"}),
    ("exp=1e3", {"exp": "1e3"}),
    ("under=1_000", {"under": "1_000"}),
    ("space= 1", {"space": " 1"}),
    ("yes=yes,on=on", {"yes": "yes", "on": "on"}),
    ("dur=180s", {"dur": "180s"}),
]

ESCAPES = [
    ("name1=one\\,two,name2=three\\,four", {"name1": "one,two", "name2": "three,four"}),
    ("name1=one\\=two,name2=three\\=four", {"name1": "one=two", "name2": "three=four"}),
    ("a\\.b=1", {"a.b": 1}),
    ("assess.SLOs.upper.grpc/latency/p97\\.5=7500",
     {"assess": {"SLOs": {"upper": {"grpc/latency/p97.5": 7500}}}}),
    ("a\\[0\\]=x", {"a[0]": "x"}),
    ("a=back\\\\slash", {"a": "back\\slash"}),
    ("a=trailing\\", {"a": "trailing"}),
    ("a=\\{x\\,y}", {"a": "{x,y}"}),
]

NESTING = [
    ("outer.inner=value", {"outer": {"inner": "value"}}),
    ("outer.middle.inner=value", {"outer": {"middle": {"inner": "value"}}}),
    ("outer.inner1=value,outer.inner2=value2",
     {"outer": {"inner1": "value", "inner2": "value2"}}),
    ("outer.inner1=value,outer.middle.inner=value",
     {"outer": {"inner1": "value", "middle": {"inner": "value"}}}),
    ("name1.name2=", {"name1": {"name2": ""}}),
    ("x.", {}),  # a dangling dot at the end sets nothing, as in Helm
    (".a=1", {}),
    ("custommetrics.templates.kserve-prometheus=https://x/y.tpl",
     {"custommetrics": {"templates": {"kserve-prometheus": "https://x/y.tpl"}}}),
]

LISTS = [
    ("name1={value1,value2}", {"name1": ["value1", "value2"]}),
    ("name1={value1,value2},name2={value1,value2}",
     {"name1": ["value1", "value2"], "name2": ["value1", "value2"]}),
    ("name1={1021,902}", {"name1": [1021, 902]}),
    ("name1={true,null,0.5}", {"name1": [True, None, "0.5"]}),
    ("name1.name2={value1,value2}", {"name1": {"name2": ["value1", "value2"]}}),
    ("a={}", {"a": [""]}),  # Helm quirk: one empty string
    ("a={x,}", {"a": ["x", ""]}),
    ("a={x\\,y,z}", {"a": ["x,y", "z"]}),
    ("a={x}b=1", {"a": ["x"], "b": 1}),  # Helm reads on after the closing brace
    ("tasks={ready,custommetrics,assess}", {"tasks": ["ready", "custommetrics", "assess"]}),
    ("list[0]=foo", {"list": ["foo"]}),
    ("list[0].foo=bar", {"list": [{"foo": "bar"}]}),
    ("list[0].foo=bar,list[0].hello=world", {"list": [{"foo": "bar", "hello": "world"}]}),
    ("list[0]=foo,list[1]=bar", {"list": ["foo", "bar"]}),
    ("list[0]=foo,list[1]=bar,", {"list": ["foo", "bar"]}),
    ("list[0]=foo,list[3]=bar", {"list": ["foo", None, None, "bar"]}),
    ("list[+1]=x", {"list": [None, "x"]}),
    ("list[007]=x", {"list": [None] * 7 + ["x"]}),
    ("noval[0]", {"noval": []}),
    ("noval[0]=", {"noval": [""]}),
    ("big[70000]", {"big": []}),  # never assigned, so never range-checked (as in Helm)
    ("nested[0][0]=1", {"nested": [[1]]}),
    ("nested[1][1]=1", {"nested": [None, [None, 1]]}),
    ("nested[0][0]={a,b}", {"nested": [[["a", "b"]]]}),
    ("name1.name2[0].foo=bar,name1.name2[1].foo=bar",
     {"name1": {"name2": [{"foo": "bar"}, {"foo": "bar"}]}}),
    ("name1.name2[1].foo=bar,name1.name2[0].foo=bar",
     {"name1": {"name2": [{"foo": "bar"}, {"foo": "bar"}]}}),
    ("name1.name2[1].foo=bar", {"name1": {"name2": [None, {"foo": "bar"}]}}),
    ("a[0]=x,a[0].b=1", {"a": [{"b": 1}]}),  # a non-map element is replaced by a map
    ("custommetrics.versionValues[1].labels.revision_name=r1",
     {"custommetrics": {"versionValues": [None, {"labels": {"revision_name": "r1"}}]}}),
]


@pytest.mark.parametrize(("expr", "expected"), PAIRS + TYPES + ESCAPES + NESTING + LISTS)
def test_parse_set(expr: str, expected: dict[str, Any]) -> None:
    assert parse_set(expr) == expected


def test_types_are_exact() -> None:
    got = parse_set("i=5,b=true")
    assert type(got["i"]) is int
    assert type(got["b"]) is bool


def test_max_index_is_accepted() -> None:
    got = parse_set(f"a[{MAX_INDEX}]=1")
    assert len(got["a"]) == MAX_INDEX + 1
    assert got["a"][-1] == 1


ERRORS = [
    ("name1", 'key "name1" has no value'),
    ("name1.name2", 'key "name2" has no value'),
    ("name1,name2=", 'key "name1" has no value (cannot end with ,)'),
    ("name1,name2=value2", 'key "name1" has no value (cannot end with ,)'),
    ("name1,name2", 'key "name1" has no value'),
    ("name1=value1,,,,name2=value2,", 'empty pair before ","'),
    ("name1.name2,name1.name3", 'key "name2" has no value'),
    ("name1.=name2", 'key map "name1" has no value'),
    ("name1.,name2", 'empty pair before ","'),
    ("name1={1021,902", 'list value has no closing "}"'),
    ("a[x]=1", 'invalid list index "x", expected a non-negative integer'),
    ("a[]=1", 'invalid list index "", expected a non-negative integer'),
    ("a[ 1]=1", 'invalid list index " 1", expected a non-negative integer'),
    ("list[0].foo=bar,list[-30].hello=world", 'invalid list index "-30"'),
    ("list[0]=foo,list[-20]=bar", 'invalid list index "-20"'),
    ("a[0", 'list index has no closing "]"'),
    (f"a[{MAX_INDEX + 1}]=1", f"list index {MAX_INDEX + 1} is too large"),
    ("a[99999999999999999999]=1", "is too large"),
    ("illegal[0]name.foo=bar", 'unexpected "name" after a list index'),
    ("]={}].", 'key "]" holds a list, expected a map'),
    ("a=1,a.b=2", 'key "a" holds an int, expected a map'),
    ("a=null,a.b=2", 'key "a" holds null, expected a map'),
    ("a.b=1,a[0]=2", 'key "a" holds a map, expected a list'),
    ("a[0]=x,a[0][0]=y", 'list element 0 holds a string, expected a list'),
    ("a" + ".a" * 31 + "=1", "keys nest deeper than 30 levels"),
    ("a" + "[0]" * 300 + "=1", "keys nest deeper than 200 levels"),
    ("a" + "[0].a" * 300 + "=1", "keys nest deeper than 200 levels"),
]


@pytest.mark.parametrize(("expr", "fragment"), ERRORS)
def test_parse_set_errors(expr: str, fragment: str) -> None:
    with pytest.raises(ValuesError) as info:
        parse_set(expr)
    message = str(info.value)
    assert fragment in message
    assert message.startswith("--set ")
    assert len(message.splitlines()) == 1


def test_error_names_flag_and_expression() -> None:
    with pytest.raises(ValuesError) as info:
        parse_set("a[x]=1")
    assert str(info.value) == (
        '--set "a[x]=1": invalid list index "x", expected a non-negative integer'
    )
    with pytest.raises(ValuesError, match=r'^--set-string "b\[y\]=1": '):
        parse_set_string("b[y]=1")


def test_error_message_is_one_line_for_control_characters() -> None:
    with pytest.raises(ValuesError) as info:
        parse_set("a\n\u2028b")
    assert len(str(info.value).splitlines()) == 1
    assert "\\u000a" in str(info.value)


def test_long_expressions_are_shortened_in_messages() -> None:
    with pytest.raises(ValuesError) as info:
        parse_set("x" * 1000)
    assert len(str(info.value)) < 2300
    assert '..."' in str(info.value)


def test_quote() -> None:
    assert quote('a"b') == '"a\\"b"'
    assert quote("a b") == '"a b"'
    assert quote("tab\there") == '"tab\\u0009here"'


# -- --set-string, --set-file --------------------------------------------------------------

SET_STRING = [
    ("long_int_string=1234567890", {"long_int_string": "1234567890"}),
    ("boolean=true", {"boolean": "true"}),
    ("is_null=null", {"is_null": "null"}),
    ("zero=0", {"zero": "0"}),
    ("a={1,true}", {"a": ["1", "true"]}),
    ("a[1]=2", {"a": [None, "2"]}),
]


@pytest.mark.parametrize(("expr", "expected"), SET_STRING)
def test_parse_set_string(expr: str, expected: dict[str, Any]) -> None:
    assert parse_set_string(expr) == expected


def test_parse_set_string_into_base() -> None:
    base = {"outer": {"inner1": "overwrite", "inner2": "value2"}}
    got = parse_set_string("outer.inner1=1,outer.inner3=3", base)
    assert got == {"outer": {"inner1": "1", "inner2": "value2", "inner3": "3"}}
    assert base == {"outer": {"inner1": "overwrite", "inner2": "value2"}}


def test_parse_set_file() -> None:
    files = {"path1": "value1", "p2": "true", "p3": "line1\nline2\n"}
    got = parse_set_file("name1=path1,b=p2,c={p2,p3}", files.__getitem__)
    assert got == {"name1": "value1", "b": "true", "c": ["true", "line1\nline2\n"]}


def test_parse_set_file_read_errors_become_values_errors() -> None:
    def missing(path: str) -> str:
        raise FileNotFoundError(2, "No such file or directory", path)

    with pytest.raises(ValuesError) as info:
        parse_set_file("a=nope.txt", missing)
    assert str(info.value) == (
        '--set-file "a=nope.txt": cannot read "nope.txt": No such file or directory'
    )

    def weird(path: str) -> str:
        raise RuntimeError("two\nlines")

    with pytest.raises(ValuesError) as info:
        parse_set_file("a=x", weird)
    assert str(info.value) == '--set-file "a=x": cannot read "x": two lines'


def test_parse_set_file_rejects_non_text() -> None:
    with pytest.raises(ValuesError, match="returned an int"):
        parse_set_file("a=x", lambda _path: 3)  # type: ignore[arg-type,return-value]


def test_non_string_expression() -> None:
    with pytest.raises(ValuesError, match="expected a string"):
        parse_set(3)  # type: ignore[arg-type]


# -- applying on top of a base (ParseInto) -------------------------------------------------

INTO = [
    (
        {"outer": {"inner1": "overwrite", "inner2": "value2"}},
        ["outer.inner1=value1,outer.inner3=value3,outer.inner4=4"],
        {"outer": {"inner1": "value1", "inner2": "value2", "inner3": "value3", "inner4": 4}},
    ),
    (
        {},
        ["listOuter[0][0].type=listValue", "listOuter[0][0].status=alive"],
        {"listOuter": [[{"type": "listValue", "status": "alive"}]]},
    ),
    (
        {},
        ["listOuter[0][0].type=listValue", "listOuter[1][0].status=alive"],
        {"listOuter": [[{"type": "listValue"}], [{"status": "alive"}]]},
    ),
    (
        {"listOuter": [[[{"exited": "old"}]]]},
        ["listOuter[0][1][0].type=listValue", "listOuter[0][0][1].status=alive"],
        {"listOuter": [[[{"exited": "old"}, {"status": "alive"}], [{"type": "listValue"}]]]},
    ),
    # an index into an existing list edits it in place
    ({"a": ["p", "q", "r"]}, ["a[1]=x"], {"a": ["p", "x", "r"]}),
    ({"a": [{"k": 1}]}, ["a[0].j=2"], {"a": [{"k": 1, "j": 2}]}),
    # a whole-list value replaces the list
    ({"a": ["p", "q", "r"]}, ["a={x}"], {"a": ["x"]}),
    ({"a": {"b": 1}}, ["a=null"], {"a": None}),
]


@pytest.mark.parametrize(("base", "exprs", "expected"), INTO)
def test_parse_set_into_base(
    base: dict[str, Any], exprs: list[str], expected: dict[str, Any]
) -> None:
    before = copy.deepcopy(base)
    got: dict[str, Any] = base
    for expr in exprs:
        got = parse_set(expr, got)
    assert got == expected
    assert base == before


def test_base_aliases_are_independent() -> None:
    shared = {"b": 1}
    got = parse_set("a.b=2", {"a": shared, "c": shared})
    assert got == {"a": {"b": 2}, "c": {"b": 1}}
    assert shared == {"b": 1}


# -- merging values files ------------------------------------------------------------------


def test_merge_values() -> None:
    a = {"x": {"y": 1, "l": [1, 2]}, "keep": "a", "n": {"m": 1}}
    b = {"x": {"z": 2, "l": [3]}, "keep": None, "n": "flat"}
    c = {"n": {"again": True}}
    assert merge_values(a, b, c) == {
        "x": {"y": 1, "z": 2, "l": [3]},
        "keep": None,
        "n": {"again": True},
    }


def test_merge_patch_removes_what_null_names() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2, "c": 3}
    override = {"a": {"y": [3], "z": {"q": 1}}, "b": None, "d": 4}
    assert merge_patch(base, override) == {"a": {"x": 1, "y": [3], "z": {"q": 1}}, "c": 3, "d": 4}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2, "c": 3}
    assert merge_patch(base, None) == base


def test_merge_patch_applies_a_map_over_anything_else_to_an_empty_map() -> None:
    assert merge_patch({"a": 1, "b": [1]}, {"a": {"x": None, "y": 2}, "b": {"z": None}}) == {
        "a": {"y": 2}, "b": {}}
    assert merge_patch({2: {True: 1}}, {"2": {"true": None, None: 3}}) == {  # type: ignore[dict-item]
        "2": {"null": 3}}


def test_merge_values_keys_become_text() -> None:
    assert merge_values({2: "a", True: "b", None: "c", 1.5: "d"}) == {  # type: ignore[dict-item]
        "2": "a",
        "true": "b",
        "null": "c",
        "1.5": "d",
    }


def test_merge_values_rejects_non_maps() -> None:
    with pytest.raises(ValuesError, match="values layer 2: expected a map at the top level"):
        merge_values({}, [1, 2])  # type: ignore[arg-type]


def test_merge_values_refuses_self_reference() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(ValuesError, match="refer to themselves"):
        merge_values(loop)


def test_build_values_uses_helms_order() -> None:
    files: list[dict[str, Any]] = [{"a": 1, "l": [1, 2, 3]}, {"b": {"c": 2}}]
    got = build_values(
        files,
        set_values=["a=2", "l[1]=x", "s=7"],
        set_string_values=["s=8", "b.c=3"],
        set_file_values=["f=path"],
        read_file=lambda path: f"contents of {path}",
    )
    assert got == {
        "a": 2,
        "l": [1, "x", 3],
        "b": {"c": "3"},
        "s": "8",
        "f": "contents of path",
    }
    assert files == [{"a": 1, "l": [1, 2, 3]}, {"b": {"c": 2}}]


# -- --set-json: Helm 3.10+'s JSON values -------------------------------------------------

SET_JSON = [
    # scalars replace one existing key, keep the others
    ('outer.inner1="1",outer.inner3=3,outer.inner4=true,outer.inner5="true"',
     {"outer": {"inner1": "overwrite", "inner2": "value2"}},
     {"outer": {"inner1": "1", "inner2": "value2", "inner3": 3, "inner4": True,
                "inner5": "true"}}),
    # objects and arrays, commas inside them included
    ('outer.inner1={"a":"1","b":2,"c":[1,2,3]},outer.inner3=["v1","v2"],'
     'outer.inner5=[{"A":"1","C":[1,2]}]',
     {"outer": {"inner1": {"x": "overwrite"}, "inner2": "value2", "inner3": ["overwrite"]}},
     {"outer": {"inner1": {"a": "1", "b": 2, "c": [1, 2, 3]}, "inner2": "value2",
                "inner3": ["v1", "v2"], "inner5": [{"A": "1", "C": [1, 2]}]}}),
    # an empty value is null; a key can go on into a value just set
    ('outer.inner1=,outer.inner3={"aa":"1","cc":[1,2,3]},outer.inner3.cc[1]=null',
     {"outer": {"inner1": {"x": "overwrite"}, "inner2": "value2"}},
     {"outer": {"inner1": None, "inner2": "value2", "inner3": {"aa": "1", "cc": [1, None, 3]}}}),
    # blanks around values, list indexes
    ('a = {"x": 1} , b[1]="s"', {}, {"a ": {"x": 1}, " b": [None, "s"]}),
    # a whole JSON object is merged into the values
    ('{"http": {"payloadStr": {"instances": [[1, 2]]}}}', {"http": {"url": "u"}},
     {"http": {"url": "u", "payloadStr": {"instances": [[1, 2]]}}}),
]


@pytest.mark.parametrize(("expr", "base", "expected"), SET_JSON)
def test_set_json(expr: str, base: dict[str, Any], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(base)
    assert parse_set_json(expr, base) == expected
    assert base == before


@pytest.mark.parametrize(("expr", "message"), [
    ('a={"x":1}]', 'key "]" has no value'),
    ('a={"x":}', "invalid JSON value at character 6: Expecting value"),
    ("a=[1,2", "invalid JSON value"),
    ('{"a": 1', "invalid JSON at character"),
    ("[1, 2]", "invalid list index"),
])
def test_set_json_errors_name_the_flag(expr: str, message: str) -> None:
    with pytest.raises(ValuesError) as caught:
        parse_set_json(expr)
    assert str(caught.value).startswith("--set-json ")
    assert message in str(caught.value)


def test_set_json_comes_right_after_values_files() -> None:
    got = build_values([{"a": 0, "b": 0}], set_values=["a=2"], set_json_values=["a=1,b=1"])
    assert got == {"a": 2, "b": 1}


def test_build_values_needs_a_reader_for_set_file() -> None:
    with pytest.raises(ValuesError, match="no file reader"):
        build_values(set_file_values=["a=b"])


def test_tutorial_values() -> None:
    got = build_values(
        set_values=[
            "tasks={ready,custommetrics,assess}",
            "ready.isvc=sklearn-iris",
            "ready.timeout=180s",
            "custommetrics.values.latencyPercentiles={50,75,90,95}",
            "assess.SLOs.upper.kserve-prometheus/latency-mean=50",
            "cronjobSchedule=*/1 * * * *",
        ]
    )
    assert got == {
        "tasks": ["ready", "custommetrics", "assess"],
        "ready": {"isvc": "sklearn-iris", "timeout": "180s"},
        "custommetrics": {"values": {"latencyPercentiles": [50, 75, 90, 95]}},
        "assess": {"SLOs": {"upper": {"kserve-prometheus/latency-mean": 50}}},
        "cronjobSchedule": "*/1 * * * *",
    }


# -- properties ------------------------------------------------------------------------------

SET_ALPHABET = st.sampled_from(list("ab.=[],{}\\0123456789-+ x\n\u00e9\u2028"))


@settings(max_examples=400)
@given(st.one_of(st.text(), st.text(SET_ALPHABET, max_size=40)))
def test_arbitrary_text_raises_only_values_error(expr: str) -> None:
    for parse in (parse_set, parse_set_string):
        try:
            got = parse(expr)
        except ValuesError as exc:
            assert len(str(exc).splitlines()) == 1
        else:
            assert isinstance(got, dict)
    try:
        parse_set_file(expr, lambda path: path)
    except ValuesError as exc:
        assert len(str(exc).splitlines()) == 1


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=3), json_values, max_size=4), st.text(SET_ALPHABET))
def test_arbitrary_text_on_arbitrary_base(base: dict[str, Any], expr: str) -> None:
    before = copy.deepcopy(base)
    with contextlib.suppress(ValuesError):
        parse_set(expr, base)
    assert base == before


KEY_CHARS = string.ascii_letters + string.digits + "-_/.,=[]\\{} é"


def _escape_key(key: str) -> str:
    return "".join("\\" + ch if ch in "\\.,=[" else ch for ch in key)


def _escape_value(text: str) -> str:
    out = "".join("\\" + ch if ch in "\\," else ch for ch in text)
    return "\\" + out if out.startswith("{") else out


def _is_untyped(text: str) -> bool:
    return isinstance(parse_set("k=" + _escape_value(text))["k"], str)


keys = st.text(KEY_CHARS, min_size=1, max_size=8)
segments = st.lists(
    st.one_of(keys.map(lambda k: ("key", k)), st.integers(0, 5).map(lambda i: ("index", i))),
    min_size=0,
    max_size=6,
)
scalars = st.one_of(
    st.none().map(lambda v: ("null", v)),
    st.booleans().map(lambda v: ("true" if v else "false", v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: (str(v), v)),
    st.text(KEY_CHARS, max_size=10).filter(lambda t: t != "").map(lambda t: (t, t)),
)


def _build(path: list[tuple[str, Any]], value: Any) -> Any:
    if not path:
        return value
    kind, part = path[0]
    inner = _build(path[1:], value)
    if kind == "key":
        return {part: inner}
    items: list[Any] = [None] * (part + 1)
    items[part] = inner
    return items


@settings(max_examples=300)
@given(keys, segments, scalars)
def test_well_formed_paths_round_trip(
    first: str, rest: list[tuple[str, Any]], scalar: tuple[str, Any]
) -> None:
    text, value = scalar
    if isinstance(value, str) and not _is_untyped(text):
        return  # text such as "12" or "True" is typed by Helm; covered above
    expr = _escape_key(first)
    for kind, part in rest:
        expr += f".{_escape_key(part)}" if kind == "key" else f"[{part}]"
    expr += "=" + _escape_value(text)
    expected = {first: _build(rest, value)}
    assert parse_set(expr) == expected
    as_string = text if value is not None else "null"
    assert parse_set_string(expr) == {first: _build(rest, as_string)}


@settings(max_examples=200)
@given(
    st.lists(st.dictionaries(st.text(max_size=3), json_values, max_size=4), max_size=4)
)
def test_merge_never_mutates_inputs(layers: list[dict[str, Any]]) -> None:
    before = copy.deepcopy(layers)
    merged = merge_values(*layers)
    assert layers == before
    # the last layer's top-level keys always win
    if layers:
        for key, value in layers[-1].items():
            if not isinstance(value, dict):
                assert merged[key] == value
    # the result shares nothing: changing it leaves the inputs alone
    _scribble(merged)
    assert layers == before


def _scribble(value: Any) -> None:
    if isinstance(value, dict):
        for key in list(value):
            _scribble(value[key])
        value["__scribbled__"] = True
    elif isinstance(value, list):
        for item in value:
            _scribble(item)
        value.append("__scribbled__")


def test_chart_defaults_coalesce_under_user_values_as_helm_does() -> None:
    defaults = {"image": "x", "resources": {"limits": {"memory": "384Mi", "cpu": "500m"}},
                "logLevel": "info", "nested": {"a": 1}}
    user = {"resources": {"limits": {"cpu": None, "memory": "1Gi"}}, "logLevel": None,
            "mine": None, "nested": "flat", "image": {"repo": "r"}}
    result = coalesce_defaults(user, defaults)
    assert result is user
    assert result == {"image": {"repo": "r"},                    # the user's value, kept whole
                      "resources": {"limits": {"memory": "1Gi"}},  # null removes the default
                      "mine": None,                              # no default: the null stays
                      "nested": "flat"}                          # a scalar over a default map
    assert defaults["resources"] == {"limits": {"memory": "384Mi", "cpu": "500m"}}
    filled = coalesce_defaults({}, defaults)
    filled["resources"]["limits"]["cpu"] = "1"
    assert defaults["resources"]["limits"]["cpu"] == "500m"  # copies, never shared
