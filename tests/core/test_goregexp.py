"""Go's regexp in templates and `if` expressions: RE2's linear time, Go's results and errors."""

from __future__ import annotations

import time

import pytest

from canarist.core import gotemplate
from canarist.core.errors import ExpressionError, TemplateError
from canarist.core.expressions import compile_expression

CATASTROPHIC = "a" * 20000 + "b"


def render(text: str, data: object = None) -> str:
    return gotemplate.render(text, data if data is not None else {})


def test_catastrophic_patterns_answer_at_once() -> None:
    start = time.monotonic()
    assert render('{{ regexMatch "^(a+)+$" .s }}', {"s": CATASTROPHIC}) == "false"
    assert render('{{ regexFind "(a|aa)+$" .s }}', {"s": CATASTROPHIC}) == ""
    assert render('{{ regexReplaceAll "(a*)*b" .s "x" }}', {"s": CATASTROPHIC}) == "x"
    assert compile_expression("Names[0] matches '^(a+)+$'").evaluate(
        {"Names": [CATASTROPHIC]}) is False
    assert time.monotonic() - start < 10  # backtracking would take longer than the universe has


@pytest.mark.parametrize(("text", "expected"), [
    # Go's rule: an empty match right after a match is not one
    ('{{ regexFindAll "a*" "baaac" -1 }}', "[ aaa ]"),
    ('{{ regexFindAll "[0-9]+" "a1b22c333" 2 }}', "[1 22]"),
    ('{{ regexFindAll "z" "abc" -1 }}', "[]"),
    ('{{ regexReplaceAll "a*" "baaac" "-" }}', "-b-c-"),
    ('{{ regexReplaceAll "(?P<w>[a-z]+)" "ab cd" "${w}!" }}', "ab! cd!"),
    ('{{ regexReplaceAllLiteral "(a)" "aa" "$1" }}', "$1$1"),
    ('{{ regexSplit "," "a,b,c" -1 }}', "[a b c]"),
    ('{{ regexSplit "," "a,b,c" 2 }}', "[a b,c]"),
    ('{{ regexSplit "x*" "axbc" -1 }}', "[a b c]"),
    ('{{ regexSplit "," "a,b" 0 }}', "[]"),
    ('{{ regexQuoteMeta "a.b*c[d]" }}', "a\\.b\\*c\\[d\\]"),
    ('{{ mustRegexMatch "^h" "hi" }} {{ mustRegexFind "i+" "hiii" }}', "true iii"),
    ('{{ regexMatch "é+$" "xéé" }} {{ regexFind "(?i)É" "xé" }}', "true é"),
    ('{{ regexMatch "a\\\\z" "ba" }}', "true"),
    ('{{ regexMatch "(a)\\\\1" "aa" }}', "false"),  # no backreferences in RE2; regexMatch says false
])
def test_go_results(text: str, expected: str) -> None:
    assert render(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ('{{ regexFind "(" "x" }}',
     "error calling regexFind: regexp: Compile(`(`): error parsing regexp: missing closing ): `(`"),
    ('{{ mustRegexFind "(" "x" }}', "error calling mustRegexFind: error parsing regexp: "
                                    "missing closing ): `(`"),
    ('{{ regexReplaceAll "(a)\\\\1" "aa" "" }}',
     "error parsing regexp: invalid escape sequence: `\\1`"),
    ('{{ mustRegexSplit "(?=a)" "aa" -1 }}',
     "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"),
    ('{{ regexFindAll "a**" "aa" -1 }}', "error parsing regexp: invalid nested repetition operator: `**`"),
])
def test_go_errors_and_nothing_on_stderr(text: str, message: str,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(TemplateError) as caught:
        render(text)
    assert message in caught.value.message
    assert capfd.readouterr().err == ""


def test_expression_matches_rejects_what_go_rejects() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("'aa' matches '(a)\\\\1'")
    assert 'invalid regular expression "(a)\\\\1": invalid escape sequence: `\\1`' in str(caught.value)
