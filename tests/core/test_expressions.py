"""The `if` expression evaluator: expr-lang v1.12 semantics, errors and safety."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canarist.core.errors import ExpressionError, InputError
from canarist.core.expressions import MAX_DEPTH, Expression, compile_expression


@dataclass
class Version:
    Name: str
    Weight: int

    def Promote(self) -> str:
        return "promoted"


def _env() -> dict[str, object]:
    return {
        "Result": {
            "NumLoops": 10,
            "NumCompletedTasks": 3,
            "Failure": False,
            "StartTime": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            "Insights": {
                "NumVersions": 2,
                "SLOsSatisfied": {"Upper": [[True, False]], "Lower": []},
            },
            "Empty": None,
        },
        "Spec": [{"task": "ready"}, {"task": "http", "with": {"qps": 8.5}}],
        "SLOs": lambda: True,
        "Completed": lambda: False,
        "NoFailure": lambda: True,
        "Add": lambda a, b: a + b,
        "Version": Version("canary", 20),
        "Names": ("a", "b"),
        "Started": datetime(2024, 1, 1, tzinfo=UTC),
        "Elapsed": timedelta(seconds=90),
        "Count": 4,
        "Ratio": 0.25,
    }


def _eval(text: str, env: Mapping[str, object] | None = None) -> object:
    return compile_expression(text).evaluate(_env() if env is None else env)


def _same(actual: object, expected: object) -> bool:
    """Equal values of the same type (so 8 and 8.0, or 1 and True, differ); NaN equals NaN."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, float) and isinstance(actual, float):
        return actual == expected or (math.isnan(actual) and math.isnan(expected))
    return actual == expected


def _check(text: str, expected: object) -> None:
    actual = _eval(text)
    assert _same(actual, expected), f"{text!r} gave {actual!r}, expected {expected!r}"


# --------------------------------------------------------------------------- tables

LITERALS = [
    ("42", 42),
    ("0", 0),
    ("1_000_000", 1_000_000),
    ("0x2A", 42),
    ("0XfF", 255),
    ("9223372036854775807", 2**63 - 1),
    ("0.5", 0.5),
    (".5", 0.5),
    ("1.", 1.0),
    ("1e3", 1000.0),
    ("2.5E-1", 0.25),
    ("'single'", "single"),
    ('"double"', "double"),
    ('"it\'s"', "it's"),
    (r"'say \"hi\"'", 'say "hi"'),
    (r'"a\tb\nc\\d"', "a\tb\nc\\d"),
    (r'"\x41\u00e9\U0001F600\101"', "Aé😀A"),
    ('"héllo"', "héllo"),
    ("''", ""),
    ("true", True),
    ("false", False),
    ("nil", None),
    ("[]", []),
    ("[1, 'a', true, nil, [2]]", [1, "a", True, None, [2]]),
    ("[1, 2,]", [1, 2]),
    ("{}", {}),
    ("{a: 1, 'b c': [2]}", {"a": 1, "b c": [2]}),
    ("/* comment */ 1 // trailing", 1),
    ("1 /* inline */ + 2", 3),
]

ARITHMETIC = [
    ("1 + 2", 3),
    ("1 + 2.5", 3.5),
    ("2.5 + 1", 3.5),
    ("'a' + 'b'", "ab"),
    ("5 - 7", -2),
    ("3 * 4", 12),
    ("3 * 0.5", 1.5),
    ("1 / 2", 0.5),
    ("4 / 2", 2.0),
    ("7.5 / 2.5", 3.0),
    ("7 % 3", 1),
    ("-7 % 3", -1),
    ("7 % -3", 1),
    ("-7 % -3", -1),
    ("2 ** 3", 8.0),
    ("2 ^ 3", 8.0),
    ("2 ** -1", 0.5),
    ("4 ** 0.5", 2.0),
    ("2 ** 3 ** 2", 512.0),
    ("(2 ** 3) ** 2", 64.0),
    ("-2 ** 2", -4.0),
    ("(-2) ** 2", 4.0),
    ("-8 ** (1/3)", -2.0),
    ("(-8) ** 0.5", math.nan),
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 4 - 3", 3),
    ("2 * 3 % 4", 2),
    ("100 / 10 / 2", 5.0),
    ("-3", -3),
    ("+3", 3),
    ("- -3", 3),
    ("-(1 + 2) * 2", -6),
    ("-2.5", -2.5),
    ("Count * Ratio", 1.0),
    ("Result.NumLoops + 1", 11),
    ("-9223372036854775807 - 1", -(2**63)),
]

COMPARISON = [
    ("1 == 1", True),
    ("1 == 1.0", True),
    ("1 != 2", True),
    ("1 < 2", True),
    ("2 <= 2.0", True),
    ("3 > 2.5", True),
    ("3 >= 4", False),
    ("'a' < 'b'", True),
    ("'abc' >= 'abd'", False),
    ("'a' == 'a'", True),
    ("true == true", True),
    ("true != false", True),
    ("nil == nil", True),
    ("nil == 1", False),
    ("'x' != nil", True),
    ("[1, 2] == [1, 2]", True),
    ("[1, 2] == [2, 1]", False),
    ("[1] == [1.0]", False),
    ("{a: 1} == {a: 1}", True),
    ("1 < 2 == true", True),
    ("1 + 1 == 2", True),
    ("Started < Result.StartTime", True),
    ("Result.StartTime == Result.StartTime", True),
    ("Elapsed > Elapsed", False),
    ("Result.Insights != nil", True),
    ("Result.Empty == nil", True),
]

LOGICAL = [
    ("true and false", False),
    ("true && true", True),
    ("false or true", True),
    ("false || false", False),
    ("not true", False),
    ("!false", True),
    ("!!true", True),
    ("not not true", True),
    ("not true == false", True),  # (not true) == false, as in expr
    ("true or false and false", True),
    ("(true or false) and false", False),
    ("false and undefined_name", False),
    ("true or 1 / 0 == 1", True),
    ("false && Spec[99] == nil", False),
    ("not (1 > 2)", True),
    ("1 < 2 and 2 < 3", True),
]

STRINGS_AND_MEMBERSHIP = [
    ("'hello' contains 'ell'", True),
    ("'hello' contains 'x'", False),
    ("'hello' startsWith 'he'", True),
    ("'hello' endsWith 'lo'", True),
    ("'hello' matches '^h.*o$'", True),
    ("'hello' matches 'l+'", True),
    ("'hello' matches '^l'", False),
    ("'hello' not contains 'x'", True),
    ("'hello' not startsWith 'he'", False),
    ("'hello' not endsWith 'x'", True),
    ("'hello' not matches '[0-9]'", True),
    ("2 in [1, 2, 3]", True),
    ("2.0 in [1, 2, 3]", True),
    ("'a' in [1, 2]", False),
    ("4 not in [1, 2, 3]", True),
    ("'a' in {a: 1}", True),
    ("'b' not in {a: 1}", True),
    ("'NumLoops' in Result", True),
    ("'Name' in Version", True),
    ("'Promote' in Version", False),
    ("'a' in Names", True),
    ("1 in nil", False),
    ("1 + 1 in [2]", True),
]

ACCESS = [
    ("Result.NumLoops", 10),
    ("Result.Failure", False),
    ("Result['NumLoops']", 10),
    ("Result.Insights.NumVersions", 2),
    ("Result.Insights.SLOsSatisfied.Upper[0][1]", False),
    ("Spec[1].task", "http"),
    ("Spec[1]['with'].qps", 8.5),
    ("Spec[-1].task", "http"),
    ("Names[0]", "a"),
    ("[1, 2, 3][1:]", [2, 3]),
    ("[1, 2, 3][:2]", [1, 2]),
    ("[1, 2, 3][1:-1]", [2]),
    ("[1, 2, 3][:]", [1, 2, 3]),
    ("'hello'[1:3]", "el"),
    ("{a: {b: 5}}.a.b", 5),
    ("Version.Name", "canary"),
    ("Version['Weight'] + 1", 21),
    ("SLOs()", True),
    ("Add(1, 2)", 3),
    ("Add('a', 'b') + 'c'", "abc"),
    ("len('héllo')", 5),
    ("len([1, 2])", 2),
    ("len(Result)", 6),
    ("len(Spec) == 2", True),
    ("abs(-3)", 3),
    ("abs(-2.5)", 2.5),
    ("int(3.9)", 3),
    ("int(-3.9)", -3),
    ("int('42')", 42),
    ("float(2)", 2.0),
    ("float('2.5')", 2.5),
]

CONDITIONAL = [
    ("true ? 1 : 2", 1),
    ("false ? 1 : 2", 2),
    ("1 > 2 ? 'a' : 'b'", "b"),
    ("false ? 1 : true ? 2 : 3", 2),
    ("true ? false ? 1 : 2 : 3", 2),
    ("(true ? 1 : 2) + 1", 2),
    ("true ? 1 : 1 / 0", 1),
    ("not true ? 1 : 2", 2),
]

ITER8_CONDITIONS = [
    ("Result.NumLoops == 10", True),
    ("Result.NumLoops > 2", True),
    ("Result.Failure", False),
    ("not SLOs()", False),
    ("SLOs() && Result.NumLoops > 2", True),
    ("Completed() or NoFailure()", True),
    ("Completed() and NoFailure()", False),
    ("!Completed()", True),
    ("Result.NumCompletedTasks >= 3 && Result.Insights.NumVersions == 2", True),
    ("Result.NumLoops % 2 == 0", True),
]


@pytest.mark.parametrize(("text", "expected"), LITERALS)
def test_literals(text: str, expected: object) -> None:
    _check(text, expected)


@pytest.mark.parametrize(("text", "expected"), ARITHMETIC)
def test_arithmetic(text: str, expected: object) -> None:
    _check(text, expected)


@pytest.mark.parametrize(("text", "expected"), COMPARISON)
def test_comparison(text: str, expected: object) -> None:
    _check(text, expected)


@pytest.mark.parametrize(("text", "expected"), LOGICAL)
def test_logical(text: str, expected: object) -> None:
    _check(text, expected)


@pytest.mark.parametrize(("text", "expected"), STRINGS_AND_MEMBERSHIP)
def test_strings_and_membership(text: str, expected: object) -> None:
    _check(text, expected)


@pytest.mark.parametrize(("text", "expected"), ACCESS)
def test_access_calls_and_builtins(text: str, expected: object) -> None:
    _check(text, expected)


@pytest.mark.parametrize(("text", "expected"), CONDITIONAL)
def test_conditional(text: str, expected: object) -> None:
    _check(text, expected)


@pytest.mark.parametrize(("text", "expected"), ITER8_CONDITIONS)
def test_iter8_conditions(text: str, expected: bool) -> None:
    assert compile_expression(text).evaluate_bool(_env()) is expected


def test_compiled_once_evaluated_many_times() -> None:
    expression = compile_expression("Result.NumLoops >= 3")
    assert isinstance(expression, Expression)
    assert expression.text == "Result.NumLoops >= 3"
    results = [expression.evaluate_bool({"Result": {"NumLoops": n}}) for n in range(1, 5)]
    assert results == [False, False, True, True]


def test_calls_see_the_current_environment() -> None:
    calls: list[str] = []

    def slos() -> bool:
        calls.append("SLOs")
        return False

    assert compile_expression("SLOs() or SLOs()").evaluate({"SLOs": slos}) is False
    assert calls == ["SLOs", "SLOs"]
    calls.clear()
    assert compile_expression("SLOs() and SLOs()").evaluate({"SLOs": slos}) is False
    assert calls == ["SLOs"]


def test_errors_are_input_errors() -> None:
    with pytest.raises(InputError):
        compile_expression("1 +")


# --------------------------------------------------------------------------- errors

COMPILE_ERRORS = [
    ("Result.NumLoops ==", "unexpected end of expression at column 17"),
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("1 +", "unexpected end of expression at column 3"),
    ("(1 + 2", 'unexpected end of expression at column 6: expected ")"'),
    ("[1, 2", 'unexpected end of expression at column 5: expected "," or "]"'),
    ("f(1 2)", 'unexpected "2" at column 5: expected "," or ")"'),
    ("1 2", 'unexpected "2" at column 3'),
    ("a b", 'unexpected "b" at column 3'),
    ("1 == == 2", 'unexpected "==" at column 6'),
    (")", 'unexpected ")" at column 1'),
    ("a not b", 'unexpected "not" at column 3'),
    ("a = 1", 'unexpected "=" at column 3'),
    ("a @ b", "unrecognized character: U+0040 '@' at column 3"),
    ("'abc", "string literal not terminated at column 1"),
    ('"a\nb"', "string literal not terminated at line 1, column 1"),
    (r"'\q'", "invalid escape sequence \\q in string at column 1"),
    (r"'\x4'", "invalid escape sequence in string at column 1"),
    ("/* open", "unclosed comment at column 1"),
    ("12abc", 'bad number syntax: "12a" at column 1'),
    ("0x", 'invalid number "0x" at column 1'),
    ("1e", 'invalid number "1e" at column 1'),
    ("1e999", 'invalid number "1e999" at column 1'),
    ("9223372036854775808", "integer literal 9223372036854775808 out of range at column 1"),
    ("__class__", 'names starting with "_" are not allowed: __class__ at column 1'),
    ("Result._secret", 'names starting with "_" are not allowed: _secret at column 8'),
    ("Result.", "unexpected end of expression at column 7: expected a member name"),
    ("Result.NumLoops()", "method calls are not supported: Result.NumLoops() at column 8"),
    ("1..3", "the range operator .. is not supported at column 2"),
    ("a ?? b", "the nil coalescing operator ?? is not supported at column 3"),
    ("a?.b", "optional chaining ?. is not supported at column 2"),
    ("a | b", "the pipe operator | is not supported at column 3"),
    ("a ?: b", 'the "?:" shorthand is not supported at column 3'),
    ("true ? 1", 'unexpected end of expression at column 8: expected ":"'),
    ("all(Spec, {.x})", "the builtin all() is not supported at column 1"),
    ("len(1, 2)", "invalid number of arguments for len (expected 1, got 2) at column 1"),
    ("len()", "invalid number of arguments for len (expected 1, got 0) at column 1"),
    ("'a' matches '('", 'invalid regular expression "(": missing closing ): `(`'),
    ("{1: 2}", 'unexpected "1" at column 2: expected a map key'),
    ("x\n  + ", "unexpected end of expression at line 2, column 3"),
]


@pytest.mark.parametrize(("text", "message"), COMPILE_ERRORS)
def test_compile_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    prefix = f"if {_quoted(text)}: "
    assert str(caught.value).startswith(prefix + message)
    assert "\n" not in str(caught.value)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


EVAL_ERRORS = [
    ("Foo", "unknown name Foo at column 1"),
    ("Foo()", "unknown name Foo at column 1"),
    ("Result.NumLoop", 'Result has no member "NumLoop" at column 8'),
    ("Result.Insights.Foo", 'Result.Insights has no member "Foo" at column 17'),
    ("Result['Nope']", 'Result has no member "Nope" at column 7'),
    ("Result.Empty.X", 'cannot fetch "X" from nil (Result.Empty) at column 14'),
    ("Result.NumLoops.X", 'cannot fetch "X" from int (Result.NumLoops) at column 17'),
    ("Spec[5]", "index out of range: 5 (array length 2) at column 5"),
    ("Spec[-3]", "index out of range: -3 (array length 2) at column 5"),
    ("Spec['a']", "array index must be an integer, got string at column 5"),
    ("Spec[1.0]", "array index must be an integer, got float at column 5"),
    ("'abc'[0]", "cannot fetch 0 from string ('abc') at column 6"),
    ("[1][true:]", "slice bounds must be integers, got bool at column 4"),
    ("Count[1:]", "cannot slice int at column 6"),
    ("Version.Promote", 'Version has no member "Promote" at column 9'),
    ("Version['__dict__']", 'Version has no member "__dict__" at column 8'),
    ("Version.Missing", 'Version has no member "Missing" at column 9'),
    ("Count()", "Count is not a function (it is int) at column 1"),
    ("SLOs(1)", "wrong number of arguments in call to SLOs(): got 1 at column 1"),
    ("Add(1)", "wrong number of arguments in call to Add(): got 1 at column 1"),
    ("1 / 0", "division by zero at column 3"),
    ("1.5 / 0.0", "division by zero at column 5"),
    ("1 % 0", "division by zero at column 3"),
    ("0 ** -1", "division by zero at column 3"),
    ("1.5 % 1", "invalid operation: % (mismatched types float and int) at column 5"),
    ("9223372036854775807 + 1", "integer overflow at column 21"),
    ("-9223372036854775807 - 2", "integer overflow at column 22"),
    ("4294967296 * 4294967296", "integer overflow at column 12"),
    ("-(-9223372036854775807 - 1)", "integer overflow at column 1"),
    ("abs(-9223372036854775807 - 1)", "integer overflow at column 1"),
    ("10 ** 400", "numeric overflow at column 4"),
    ("2.0 ** 99999999999", "numeric overflow at column 5"),
    ("'a' + 1", "invalid operation: + (mismatched types string and int) at column 5"),
    ("'a' - 'b'", "invalid operation: - (mismatched types string and string) at column 5"),
    ("'a' < 1", "invalid operation: < (mismatched types string and int) at column 5"),
    ("1 >= '1'", "invalid operation: >= (mismatched types int and string) at column 3"),
    ("true < false", "invalid operation: < (mismatched types bool and bool) at column 6"),
    ("1 == '1'", "invalid operation: == (mismatched types int and string) at column 3"),
    ("true == 1", "invalid operation: == (mismatched types bool and int) at column 6"),
    ("[1] != {}", "invalid operation: != (mismatched types array and map) at column 5"),
    ("Result.Failure == 'false'", "invalid operation: == (mismatched types bool and string)"),
    ("'a' in 'abc'", "invalid operation: in (mismatched types string and string) at column 5"),
    ("1 contains 1", "invalid operation: contains (mismatched types int and int) at column 3"),
    ("'a' matches 1", "invalid operation: matches (mismatched types string and int) at column 5"),
    ("'a' matches Names[0] + '('", 'invalid regular expression "a(": missing closing ): `a(`'),
    ("1 and true", "invalid operation: and (operand of type int, expected bool) at column 3"),
    ("false || 'x'", "invalid operation: || (operand of type string, expected bool) at column 7"),
    ("not 1", "invalid operation: not (mismatched type int) at column 1"),
    ("!nil", "invalid operation: ! (mismatched type nil) at column 1"),
    ("-'a'", "invalid operation: - (mismatched type string) at column 1"),
    ("1 ? 2 : 3", "non-bool expression (type int) used as condition at column 3"),
    ("len(1)", "invalid argument for len (type int) at column 1"),
    ("int('x')", 'invalid syntax for int: "x" at column 1'),
    ("float('1e999')", 'value out of range for float: "1e999" at column 1'),
    ("abs('x')", "invalid argument for abs (type string) at column 1"),
]


@pytest.mark.parametrize(("text", "message"), EVAL_ERRORS)
def test_evaluation_errors(text: str, message: str) -> None:
    expression = compile_expression(text)
    with pytest.raises(ExpressionError) as caught:
        expression.evaluate(_env())
    assert str(caught.value).startswith(f"if {_quoted(text)}: {message}")


@pytest.mark.parametrize(
    ("text", "kind"),
    [("1 + 2", "int"), ("0.5", "float"), ("'yes'", "string"), ("nil", "nil"), ("[true]", "array")],
)
def test_evaluate_bool_requires_a_boolean(text: str, kind: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text).evaluate_bool(_env())
    assert str(caught.value) == f"if {_quoted(text)}: expected a boolean, got {kind}"


def test_exceptions_raised_by_environment_functions_propagate() -> None:
    def broken() -> bool:
        raise InputError("no SLOs were assessed")

    with pytest.raises(InputError, match="no SLOs were assessed"):
        compile_expression("SLOs()").evaluate({"SLOs": broken})


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "text",
    [
        "(" * 1000 + "1" + ")" * 1000,
        "-" * 1000 + "1",
        "not " * 1000 + "true",
        "[" * 1000 + "]" * 1000,
        "2 ** " * 1000 + "2",
        " + ".join(["1"] * 5000),
        " && ".join(["true"] * 5000),
        "true ? " * 500 + "1" + " : 2" * 500,
        "f(" * 1000 + ")" * 1000,
        "a" + ".b" * 1000,
    ],
)
def test_deep_or_huge_expressions_are_rejected(text: str) -> None:
    with pytest.raises(ExpressionError, match=r"nested too deeply|too large"):
        compile_expression(text)


def test_nesting_up_to_the_limit_is_fine() -> None:
    depth = MAX_DEPTH // 2
    assert _eval("(" * depth + "1" + ")" * depth) == 1
    assert _eval(" + ".join(["1"] * depth)) == depth


def test_python_internals_are_out_of_reach() -> None:
    env = {"Version": Version("v", 1), "f": len, "Result": {"__class__": "key"}}
    for text in ("Version['__class__']", "Version['__init__']", "f['__globals__']"):
        with pytest.raises(ExpressionError):
            compile_expression(text).evaluate(env)
    # a map key is data, whatever its name
    assert compile_expression("Result['__class__']").evaluate(env) == "key"
    with pytest.raises(ExpressionError, match="is not a function"):
        compile_expression("int2()").evaluate({"int2": int})


TOKENS = [
    "Result", "Spec", "SLOs", "Completed", "NoFailure", "Version", "Names", "Count",
    "Ratio", "Started", "Elapsed", ".", "NumLoops", "Insights", "NumVersions", "Failure",
    "Name", "(", ")", "[", "]", "{", "}", ",", ":", "?", "+", "-", "*", "/", "%", "**",
    "^", "==", "!=", "<", "<=", ">", ">=", "!", "not", "and", "or", "&&", "||", "in",
    "contains", "startsWith", "endsWith", "matches", "true", "false", "nil", "0", "1",
    "2", "-1", "0.5", "1e308", "9223372036854775807", "'a'", '"b"', "'('", "len", "abs",
    "int", "float", "_x", "..", "??", "?.", "|", "#", "'\\n'", "/*", "//",
]  # fmt: skip


@settings(max_examples=400)
@given(st.text(max_size=60))
def test_arbitrary_text_gives_a_result_or_an_expression_error(text: str) -> None:
    _result_or_expression_error(text)


@settings(max_examples=600)
@given(st.lists(st.sampled_from(TOKENS), max_size=14), st.sampled_from([" ", ""]))
def test_token_soup_gives_a_result_or_an_expression_error(tokens: list[str], sep: str) -> None:
    _result_or_expression_error(sep.join(tokens))


def _result_or_expression_error(text: str) -> None:
    try:
        expression = compile_expression(text)
    except ExpressionError as exc:
        assert "\n" not in str(exc)
        return
    for evaluate in (expression.evaluate, expression.evaluate_bool):
        try:
            evaluate(_env())
        except ExpressionError as exc:
            assert "\n" not in str(exc)


# --------------------------------------------------------------------------- generated trees
#
# Trees are ("lit", value), ("un", op, child), ("bin", op, left, right) or
# ("cond", test, then, other). They are printed with the fewest parentheses expr's
# precedence allows, so parsing is exercised too, and evaluated directly below.

PRECEDENCE = {
    "or": 10, "||": 10, "and": 15, "&&": 15,
    "==": 20, "!=": 20, "<": 20, "<=": 20, ">": 20, ">=": 20,
    "+": 30, "-": 30, "*": 60, "/": 60, "%": 60, "**": 100,
}  # fmt: skip
UNARY_PRECEDENCE = {"not": 50, "!": 50, "-": 90, "+": 90}
ATOM = 1000

Tree = tuple[Any, ...]


def _literal(value: object) -> Tree:
    return ("lit", value)


NUMBER_LEAVES = st.one_of(
    st.integers(0, 20),
    st.integers(0, 2**63 - 1),
    st.floats(0, 1e6, allow_nan=False),
    st.sampled_from([0.5, 1.5, 2.0, 1e300]),
)
NUMBER_OPS = ["+", "-", "*", "/", "%", "**"]
BOOLEAN_OPS = ["and", "or", "&&", "||", "==", "!="]
COMPARISONS = ["==", "!=", "<", "<=", ">", ">="]


@st.composite
def trees(draw: st.DrawFn, kind: str, depth: int = 5) -> Tree:
    """A well-typed tree: `kind` is "number" or "boolean"."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return _literal(draw(NUMBER_LEAVES if kind == "number" else st.booleans()))
    shape = draw(st.sampled_from(["un", "bin", "bin", "cond", "compare"]))
    if shape == "cond":
        return ("cond", draw(trees("boolean", depth - 1)), *_pair(draw, kind, depth))
    if shape == "un":
        op = draw(st.sampled_from(["-", "+"] if kind == "number" else ["not", "!"]))
        return ("un", op, draw(trees(kind, depth - 1)))
    if shape == "compare" and kind == "boolean":
        return ("bin", draw(st.sampled_from(COMPARISONS)), *_pair(draw, "number", depth))
    op = draw(st.sampled_from(NUMBER_OPS if kind == "number" else BOOLEAN_OPS))
    return ("bin", op, *_pair(draw, kind, depth))


def _pair(draw: st.DrawFn, kind: str, depth: int) -> tuple[Tree, Tree]:
    return draw(trees(kind, depth - 1)), draw(trees(kind, depth - 1))


def _render(tree: Tree) -> tuple[str, int]:
    """Text of the tree and the precedence of its top operator."""
    kind = tree[0]
    if kind == "lit":
        value = tree[1]
        if isinstance(value, bool):
            return ("true" if value else "false"), ATOM
        return repr(value), ATOM
    if kind == "un":
        op, child = tree[1], tree[2]
        text = _wrap(child, lambda p: p < UNARY_PRECEDENCE[op])
        return f"{op} {text}" if op == "not" else f"{op}{text}", UNARY_PRECEDENCE[op]
    if kind == "bin":
        op, left, right = tree[1], tree[2], tree[3]
        rank = PRECEDENCE[op]
        right_assoc = op == "**"
        left_text = _wrap(left, lambda p: p < rank or (p == rank and right_assoc))
        right_text = _wrap(right, lambda p: p < rank or (p == rank and not right_assoc))
        return f"{left_text} {op} {right_text}", rank
    test, then, other = (_wrap(c, lambda p: p <= 0) for c in tree[1:])
    return f"{test} ? {then} : {other}", 0


def _wrap(tree: Tree, needs_parens: Any) -> str:
    text, rank = _render(tree)
    return f"({text})" if needs_parens(rank) else text


class RefError(Exception):
    pass


def _int64(value: int) -> int:
    if not -(2**63) <= value < 2**63:
        raise RefError("overflow")
    return value


def _reference(tree: Tree) -> object:
    kind = tree[0]
    if kind == "lit":
        return tree[1]
    if kind == "un":
        return _reference_unary(tree[1], _reference(tree[2]))
    if kind == "cond":
        return _reference(tree[2]) if _reference(tree[1]) else _reference(tree[3])
    op, left_tree, right_tree = tree[1], tree[2], tree[3]
    left = _reference(left_tree)
    if op in ("and", "&&"):
        return left and _reference(right_tree)
    if op in ("or", "||"):
        return left or _reference(right_tree)
    return _reference_binary(op, left, _reference(right_tree))


def _reference_unary(op: str, value: Any) -> object:
    if op in ("not", "!"):
        return not value
    if op == "-":
        return _int64(-value) if isinstance(value, int) else -value
    return value


def _reference_binary(op: str, left: Any, right: Any) -> object:
    both_int = isinstance(left, int) and isinstance(right, int)
    if isinstance(left, bool) or isinstance(right, bool):
        return {"==": left == right, "!=": left != right}[op]
    if op in ("==", "!=", "<", "<=", ">", ">="):
        a, b = (left, right) if both_int else (float(left), float(right))
        table = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}
        return table[op]
    if op in ("+", "-", "*"):
        if both_int:
            return _int64({"+": left + right, "-": left - right, "*": left * right}[op])
        a, b = float(left), float(right)
        return {"+": a + b, "-": a - b, "*": a * b}[op]
    if op == "/":
        if right == 0:
            raise RefError("division by zero")
        return float(left) / float(right)
    if op == "%":
        if not both_int or right == 0:
            raise RefError("modulo")
        quotient = abs(left) // abs(right) * (1 if (left < 0) == (right < 0) else -1)
        return left - right * quotient
    base, exponent = float(left), float(right)
    if base < 0 and math.isfinite(exponent) and not exponent.is_integer():
        return math.nan  # Go's math.Pow
    try:
        result = base**exponent
    except (OverflowError, ZeroDivisionError) as exc:
        raise RefError("power") from exc
    return result


@settings(max_examples=250)
@given(st.one_of(trees("number"), trees("boolean")))
def test_generated_expressions_match_a_reference_evaluation(tree: Tree) -> None:
    text, _ = _render(tree)
    expression = compile_expression(text)
    try:
        expected = _reference(tree)
    except RefError:
        with pytest.raises(ExpressionError):
            expression.evaluate({})
        return
    actual = expression.evaluate({})
    assert _same(actual, expected), f"{text!r} gave {actual!r}, expected {expected!r}"
