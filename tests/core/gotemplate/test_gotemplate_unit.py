"""Behaviour not covered by the Go oracle table: API, limits, Go 1.23 additions, properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.core.gotemplate.cases import DATA, FIXTURES

from canarist.core.errors import TemplateError
from canarist.core.gotemplate import MAX_DEPTH, GoTemplateError, parse, render


def test_render_and_parse_api() -> None:
    tmpl = parse("{{ .a }}-{{ .s | upper }}", name="x")
    assert tmpl.execute({"a": 1, "s": "b"}) == "1-B"
    assert render("{{ range $k, $v := . }}{{ $k }}{{ $v }}{{ end }}", {"b": 2, "a": 1}) == "a1b2"
    assert render("{{ range . }}{{ . }}{{ end }}", (1, 2)) == "12"


def test_parse_errors_have_name_line_col() -> None:
    with pytest.raises(TemplateError) as err:
        parse("ok\n  {{ foo }}", name="prov")
    assert str(err.value) == 'prov:2:5: function "foo" not defined'
    assert isinstance(err.value, GoTemplateError)
    assert err.value.go_message == 'template: prov:2: function "foo" not defined'
    assert (err.value.line, err.value.col) == (2, 5)


def test_exec_errors_have_line_col() -> None:
    with pytest.raises(GoTemplateError) as err:
        render("a\n{{ .x.y }}", {"x": 1}, name="t")
    assert str(err.value) == 't:2:5: executing "t" at <.x.y>: can\'t evaluate field y in type ' \
        "interface {}"
    assert (err.value.line, err.value.col) == (2, 5)


def test_fail_carries_message() -> None:
    with pytest.raises(GoTemplateError) as err:
        render('{{ fail "labels must be primitive" }}', {})
    assert err.value.fail_message == "labels must be primitive"
    assert "error calling fail: labels must be primitive" in str(err.value)


@pytest.mark.parametrize("name", ["env", "expandenv", "getHostByName", "readFile", "exec"])
def test_no_access_to_the_outside(name: str) -> None:
    with pytest.raises(TemplateError, match=f'function "{name}" not defined'):
        parse("{{ " + name + ' "HOME" }}')


def test_strict_missing_key() -> None:
    assert render("{{ .missing }}", {}) == "<no value>"
    with pytest.raises(TemplateError, match='map has no entry for key "missing"'):
        render("{{ .missing }}", {}, strict=True)


# {{else with}} arrived in Go 1.23 (after the Go 1.19 oracle); semantics per its docs.
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("{{ with .missing }}a{{ else with .m }}{{ .b }}{{ end }}", "s"),
        ("{{ with .missing }}a{{ else with .es }}b{{ else }}c{{ end }}", "c"),
        ("{{ with .a }}{{ . }}{{ else with .m }}m{{ end }}", "1"),
        ("{{ with .missing }}{{ else with $x := .m.c }}{{ $x.d }}{{ .d }}{{ end }}", "44"),
        ("{{ with .missing }}a{{ else with .n }}b{{ else with .z }}c{{ else }}d{{ end }}", "d"),
    ],
)
def test_else_with(text: str, want: str) -> None:
    assert render(text, DATA) == want


def test_runaway_recursion_is_a_template_error() -> None:
    text = '{{ define "r" }}x{{ template "r" . }}{{ end }}{{ template "r" . }}'
    with pytest.raises(TemplateError, match=rf"exceeded maximum template depth \({MAX_DEPTH}\)"):
        render(text, {})


def test_bounded_recursion_works() -> None:
    text = ('{{ define "r" }}{{ if . }}{{ . }}{{ template "r" (sub . 1) }}{{ end }}{{ end }}'
            '{{ template "r" 20 }}')
    assert render(text, {}) == "".join(str(i) for i in range(20, 0, -1))


@pytest.mark.parametrize(
    "text",
    ["{{" + "(" * 3000 + "1" + ")" * 3000 + "}}", "{{ if 1 }}" * 800 + "{{ end }}" * 800],
)
def test_deep_nesting_never_leaks_recursion_error(text: str) -> None:
    with pytest.raises(GoTemplateError) as caught:
        render(text, {})
    assert str(caught.value) == "template:1:0: template nesting too deep"


def test_deeply_nested_data_is_a_template_error_not_recursion_error() -> None:
    data: object = 1
    for _ in range(5000):
        data = [data]
    with pytest.raises(GoTemplateError) as caught:
        render("{{ toJson . }}{{ . }}", data)
    assert str(caught.value) == 'template:1:10: executing "template" at <.>: template nesting too deep'


def test_istio_fixture_renders_labels_in_sorted_order() -> None:
    text = (FIXTURES / "istio-prom.tpl").read_text()
    out = render(text, {"labels": {"b": "2", "a": 1}, "elapsedTimeSeconds": 7,
                        "latencyPercentiles": [95]})
    assert 'a="1",\n          b="2",' in out
    assert "histogram_quantile(0.95," in out
    assert "url: http://prometheus.istio-system:9090/api/v1/query" in out


_TEMPLATE_CHARS = st.text(alphabet="{}-/*. $|()\"'`abcdefghijklmnopqrstuvwxyz019:=,\n\t\\é",
                          max_size=60)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(_TEMPLATE_CHARS)
def test_parser_only_raises_template_error(text: str) -> None:
    try:
        parse(text)
    except TemplateError as error:
        assert str(error).startswith("template:"), str(error)  # where, then why


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from([
    "{{", "}}", "{{-", "-}}", " ", ".a", ".m.b", "$", "$x", ":=", "=", "|", "(", ")", "if",
    "else", "end", "range", "with", "define", '"d"', "template", "block", "break", "continue",
    "len", "index", "printf", '"%d"', "eq", "default", "toYaml", "1", "2.5", "nil", "true",
    ",", "$i", "x", "\n", "/*", "*/",
]), max_size=25).map("".join))
def test_execution_only_raises_template_error(text: str) -> None:
    try:
        out = parse(text).execute(DATA)
    except TemplateError as error:
        assert str(error).startswith("template:"), str(error)  # where, then why
    else:
        assert isinstance(out, str)
