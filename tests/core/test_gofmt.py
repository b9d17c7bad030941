# ruff: noqa: E501
"""Go fmt formatting. Every expectation below was produced by Go's fmt (Go 1.19)."""

from __future__ import annotations

import pytest

from canarist.core.gofmt import format_float, format_value, go_quote, go_type_name, sprint, sprintf, sprintln

# (format, args, Go's fmt.Sprintf output)
SPRINTF_CASES: list[tuple[str, list[object], str]] = [
    ('%v', [None], '<nil>'),
    ('%v', [True], 'true'),
    ('%v', [False], 'false'),
    ('%v', [0], '0'),
    ('%v', [1], '1'),
    ('%v', [-42], '-42'),
    ('%v', [1000000], '1000000'),
    ('%v', [0.0], '0'),
    ('%v', [-0.0], '-0'),
    ('%v', [0.5], '0.5'),
    ('%v', [500.0], '500'),
    ('%v', [1000000.0], '1e+06'),
    ('%v', [1e-05], '1e-05'),
    ('%v', [0.0001], '0.0001'),
    ('%v', [123456.0], '123456'),
    ('%v', [1234567.0], '1.234567e+06'),
    ('%v', [1e+20], '1e+20'),
    ('%v', [1e+21], '1e+21'),
    ('%v', [3.14159], '3.14159'),
    ('%v', [-2.5], '-2.5'),
    ('%v', [100.25], '100.25'),
    ('%v', [9007199254740992.0], '9.007199254740992e+15'),
    ('%v', [0.3333333333333333], '0.3333333333333333'),
    ('%v', [''], ''),
    ('%v', ['s'], 's'),
    ('%v', ['a b'], 'a b'),
    ('%v', [[]], '[]'),
    ('%v', [[1, 'a', None]], '[1 a <nil>]'),
    ('%v', [{'b': 1, 'a': [2.5, 'x']}], 'map[a:[2.5 x] b:1]'),
    ('%v', [{}], 'map[]'),
    ('%v', [[[1, 2], {'k': None}]], '[[1 2] map[k:<nil>]]'),
    ('%d|%5d|%-5d|%05d|%+d|% d', [42, 42, 42, -42, 5, 5], '42|   42|42   |-0042|+5| 5'),
    ('%x|%X|%o|%b|%#x|%#o|%O', [255, 255, 8, 5, 255, 8, 8], 'ff|FF|10|101|0xff|010|0o10'),
    ('%s|%q|%10s|%-10s|%.2s|%x|% x|%X', ['abc', 'a"b\n\t\x01é', 'r', 'l', 'xyz', 'hi', 'hi', 'hi'], 'abc|"a\\"b\\n\\t\\x01é"|         r|l         |xy|6869|68 69|6869'),
    ('%f|%.2f|%8.3f|%e|%E|%g|%G|%.3g|%.0f|%.10g', [3.14159, 2.675, -3.14159, 1234.5678, 1e-10, 1.2e-05, 1e+21, 3.14159, 2.5, 0.3333333333333333], '3.141590|2.67|  -3.142|1.234568e+03|1.000000E-10|1.2e-05|1E+21|3.14|2|0.3333333333'),
    ('%t|%v|%5t|%-6v|', [True, False, True, False], 'true|false| true|false |'),
    ('%d', ['x'], '%!d(string=x)'),
    ('%s', [5], '%!s(int=5)'),
    ('%s', [None], '%!s(<nil>)'),
    ('%d', [None], '%!d(<nil>)'),
    ('%d %d', [1], '1 %!d(MISSING)'),
    ('%d', [1, 2], '1%!(EXTRA int=2)'),
    ('%d', [1, 'a', None], '1%!(EXTRA string=a, <nil>)'),
    ('%z', [1], '%!z(int=1)'),
    ('%', [], '%!(NOVERB)'),
    ('%%|%c|%U|%q', [65, 128512, 97], "%|A|U+1F600|'a'"),
    ('%v|%d|%s|%q', [[1, 2], [1, 2], ['a', 'b'], ['a', 'b']], '[1 2]|[1 2]|[a b]|["a" "b"]'),
    ('%d|%s', [{'a': 1}, {'a': 1}], 'map[%!d(string=a):1]|map[a:%!s(int=1)]'),
    ('%T|%T|%T|%T|%T|%T|%T', [1, 1.5, 's', [1], {'a': 1}, True, None], 'int|float64|string|[]interface {}|map[string]interface {}|bool|<nil>'),
    ('%[2]d %[1]d|%[3]d', [1, 2], '2 1|%!d(BADINDEX)'),
    ('%*d|%-*d|%.*f', [5, 1, 4, 2, 2, 3.14159], '    1|2   |3.14'),
    ('%6.2f|%-8.1e|%08.3f|%+.1f|%+v', [1.5, 1234.5, -3.14159, 2.0, 7], '  1.50|1.2e+03 |-003.142|+2.0|7'),
    ('%5s|%-5s|%05d|%x', [None, True, -3, -255], '%!s(<nil>)|%!s(bool=true )|-0003|-ff'),
    ('%!|%-', [1], '%!!(int=1)|%!(NOVERB)'),
    ('%.3d|%8.3d|%.0d', [7, -7, 0], '007|    -007|'),
]


@pytest.mark.parametrize(("fmt", "args", "want"), SPRINTF_CASES, ids=lambda x: repr(x)[:40])
def test_sprintf_matches_go(fmt: str, args: list[object], want: str) -> None:
    assert sprintf(fmt, *args) == want


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (None, "<nil>"), (True, "true"), (0, "0"), (-42, "-42"), (1e6, "1e+06"), (0.5, "0.5"),
        (500.0, "500"), (1e-5, "1e-05"), (1e-4, "0.0001"), (123456.0, "123456"),
        (1234567.0, "1.234567e+06"), (1e21, "1e+21"), (-0.0, "-0"), (1 / 3, "0.3333333333333333"),
        (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (float("nan"), "NaN"),
        ("s", "s"), ([], "[]"), ([1, "a", None], "[1 a <nil>]"),
        ({"b": 1, "a": [2.5, "x"]}, "map[a:[2.5 x] b:1]"), ({}, "map[]"), ((1, 2), "[1 2]"),
    ],
)
def test_format_value(value: object, want: str) -> None:
    assert format_value(value) == want


def test_inf_and_nan_verbs() -> None:
    assert sprintf("%f|%g|%e|%5.1f", float("inf"), float("nan"), float("-inf"), float("inf")) == (
        "+Inf|NaN|-Inf| +Inf"
    )


def test_sprint_spacing_follows_go() -> None:
    assert sprint(1, 2, "a", 3, 4) == "1 2a3 4"
    assert sprint("a", "b") == "ab"
    assert sprintln(1, "a") == "1 a\n"


def test_helpers() -> None:
    assert format_float(1e6) == "1e+06"
    assert format_float(2.5, "f", 3) == "2.500"
    assert go_quote("a\"b\n\x01é") == '"a\\"b\\n\\x01é"'
    assert go_type_name([1]) == "[]interface {}"
    assert go_type_name({"a": 1}) == "map[string]interface {}"
