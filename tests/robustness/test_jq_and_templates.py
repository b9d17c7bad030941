"""10,000 generated jq expressions and 10,000 generated Go templates, each evaluated the way a
task evaluates them (in a bounded child, in batches), with a secret planted in the
environment: every one ends in a value or a one-line reason of the expected kind, none
hangs past its bound, and the secret is never seen.

Generation is seeded (the same inputs every run, as the derandomized property tests are):
grammar-built expressions and templates, hostile fragments (`$ENV`, `env`, `input`,
`import`, `debug`, regexes that backtrack), and random cuts and insertions of them, which
make syntax errors.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable

import pytest

from canarist.backends.bounded import Limit, Mark, Overrun, evaluate_async
from canarist.backends.providers.extract import MetricUnavailable, jq_outputs, read_output, to_float
from canarist.core import gotemplate
from canarist.core.errors import TemplateError

COUNT = 10_000
BATCH = 100
LIMIT = Limit(60, "60s (evaluation limit)")
SECRET = "robust-secret-5d2c8e1f"
ANSWER = {"status": "success", "v": "21.7", "n": 3, "l": [1, "2", None, {"a": 1}],
          "data": {"result": [{"metric": {"le": "0.5"}, "value": [1, "4"]},
                              {"metric": {"le": "+Inf"}, "value": [1, "9"]}]}}

JQ_ATOMS = [".", ".v", ".n", ".l", ".l[]", ".l[0]", ".data.result[0].value[1]", ".missing",
            ".data.result[]", "..", "1", "-2.5", '"x"', "null", "true", "[]", "{}", "$ENV",
            "env", "$ENV.CANARIST_ROBUST_SECRET", "env.CANARIST_ROBUST_SECRET", "input",
            "[inputs]", "input_filename", "$__loc__", "debug", "stderr", "now", "nan",
            "infinite", "empty", "range(3)", "limit(3; repeat(1))", "get_search_list",
            '"aaaaaaaaaaaaaaaaaaaaaaaaaaaaab" | test("^(a+)+$")', "builtins | length"]
JQ_FILTERS = ["tonumber", "tostring", "length", "keys", "type", "not", "first", "last",
              "add", "floor", "sqrt", "tojson", "fromjson", "ascii_downcase", "@base64",
              "@base64d", "@sh", "@csv", "@uri", "isnan", "isinfinite", "sort", "reverse",
              "unique", "to_entries", "flatten", "min", "max", "paths", "splits(\"a\")",
              "select(. != null)", "map(. * 2)", "error", 'error("boom\\nline")',
              "halt_error", "ltrimstr(\"x\")", "test(\"(a|aa)+$\")", "input_line_number"]
JQ_BINARY = ["|", ",", "+", "-", "*", "/", "%", "==", "<", "and", "or", "//"]
JQ_PREFIX = ["", "", "", "def f: .; ", "def g(x): x | x; ", '"x" as $v | ',
             'import "m" as $m; ', 'include "m"; ', "module {}; ", "# comment\n"]


def jq_expression(rng: random.Random, depth: int = 3) -> str:
    roll = rng.random()
    if depth <= 0 or roll < 0.3:
        return rng.choice(JQ_ATOMS)
    if roll < 0.55:
        return f"{jq_expression(rng, depth - 1)} | {rng.choice(JQ_FILTERS)}"
    if roll < 0.75:
        return (f"{jq_expression(rng, depth - 1)} {rng.choice(JQ_BINARY)} "
                f"{jq_expression(rng, depth - 1)}")
    if roll < 0.85:
        return f"[{jq_expression(rng, depth - 1)}]"
    if roll < 0.92:
        return f"try ({jq_expression(rng, depth - 1)}) catch ."
    return (f"if {jq_expression(rng, depth - 1)} then {jq_expression(rng, depth - 1)} "
            f"else {jq_expression(rng, depth - 1)} end")


TEMPLATE_ACTIONS = [
    "{{ .s }}", "{{ .a }}", "{{ .l }}", "{{ .m.b }}", "{{ .missing }}", "{{ .m.missing.x }}",
    '{{ printf "%v-%d" .s 3 }}', "{{ len .l }}", "{{ index .l 5 }}", "{{ add 1 .a }}",
    "{{ div 1 0 }}", '{{ regexMatch "^(a+)+$" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab" }}',
    '{{ regexFind "(" .s }}', '{{ mustRegexFind "a(?=b)" "ab" }}',
    '{{ regexReplaceAll "(l+)" .s "<$1>" }}', '{{ regexSplit "l" .s -1 }}',
    '{{ regexFindAll "a*" "baaac" -1 }}', "{{ toJson . }}", "{{ toYaml .m }}",
    '{{ env "CANARIST_ROBUST_SECRET" }}', '{{ expandenv "$CANARIST_ROBUST_SECRET" }}',
    "{{ until 5 }}", "{{ seq 1 3 }}", '{{ fail "no" }}', "{{ template \"t\" . }}",
    '{{ include "t" . }}', "{{ now | date \"2006\" }}", "{{ b64dec \"!!\" }}",
    "{{ .s | upper | quote }}", "{{ default 1 .missing }}", "{{ $x := 1 }}{{ $x }}",
    "{{ range .l }}{{ . }}{{ end }}", "{{ with .m }}{{ .b }}{{ end }}",
    "{{ if eq .s \"hello\" }}y{{ else }}n{{ end }}", "{{ range $i, $e := .l }}{{ $i }}{{ end }}",
    '{{ define "t" }}[{{ . }}]{{ end }}', "{{/* c */}}", "{{- .s -}}", "{{ nil }}",
    "{{ .s.x }}", "{{ slice .l 1 }}", "{{ dict \"a\" 1 | toJson }}", "{{ sha256sum .s }}",
]


def template_text(rng: random.Random) -> str:
    parts = [rng.choice(TEMPLATE_ACTIONS) for _ in range(rng.randint(1, 5))]
    text = "text ".join(parts)
    if rng.random() < 0.4:
        text = mutate(rng, text)
    return text


def mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 3)):
        if not text:
            break
        at = rng.randrange(len(text))
        choice = rng.random()
        if choice < 0.4:
            text = text[:at] + text[at + 1:]
        elif choice < 0.8:
            text = text[:at] + rng.choice("{}()[]|.$\"'\\;:,# \n\x00é") + text[at:]
        else:
            text = text[:at]
    return text


def in_batches(items: list[str], work: Callable[[list[str], Mark], list[object]]) -> tuple[
        list[object | None], list[int]]:
    """Every item's outcome, batch by batch in bounded children (two at a time); an item
    that overruns is None and its batch resumes after it."""

    async def one(first: int) -> tuple[list[object | None], list[int]]:
        outcomes: list[object | None] = []
        overruns: list[int] = []
        batch = items[first:first + BATCH]
        while batch:
            try:
                outcomes.extend(await evaluate_async(functools.partial(work, batch), LIMIT))
                break
            except Overrun as exc:
                assert exc.at >= 0, exc
                done = (await evaluate_async(functools.partial(work, batch[:exc.at]), LIMIT)
                        if exc.at else [])
                outcomes.extend([*done, None])
                overruns.append(first + len(outcomes) - 1)
                batch = batch[exc.at + 1:]
        return outcomes, overruns

    async def every() -> list[tuple[list[object | None], list[int]]]:
        slots = asyncio.Semaphore(2)

        async def limited(first: int) -> tuple[list[object | None], list[int]]:
            async with slots:
                return await one(first)

        return await asyncio.gather(*(limited(first) for first in range(0, len(items), BATCH)))

    outcomes: list[object | None] = []
    overruns: list[int] = []
    for batch_outcomes, batch_overruns in asyncio.run(every()):
        outcomes.extend(batch_outcomes)
        overruns.extend(batch_overruns)
    return outcomes, overruns


@pytest.mark.slow
def test_generated_jq_expressions_end_in_a_value_or_a_one_line_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARIST_ROBUST_SECRET", SECRET)
    rng = random.Random(20261203)
    expressions = []
    for _ in range(COUNT):
        text = rng.choice(JQ_PREFIX) + jq_expression(rng)
        expressions.append(mutate(rng, text) if rng.random() < 0.3 else text)

    def work(batch: list[str], mark: Mark) -> list[object]:
        return list(jq_outputs([(ANSWER, e) for e in batch], mark))

    outcomes, overruns = in_batches(expressions, work)
    assert len(outcomes) == COUNT
    assert overruns == [], [expressions[i] for i in overruns]
    kinds = {"out": 0, "none": 0, "fail": 0, "invalid": 0}
    for expression, outcome in zip(expressions, outcomes, strict=True):
        assert isinstance(outcome, tuple)
        kind, value = outcome
        kinds[kind] += 1
        assert SECRET not in repr(value)
        try:
            to_float(ANSWER, read_output(ANSWER, expression, outcome))
        except MetricUnavailable as exc:
            assert "\n" not in exc.reason.replace(repr(expression), ""), exc.reason
            assert SECRET not in exc.reason
    assert all(kinds.values()), kinds  # every kind of ending was reached
    refused = [e for e, o in zip(expressions, outcomes, strict=True)
               if isinstance(o, tuple) and o[0] == "invalid" and "import" in str(o[1])]
    assert refused


@pytest.mark.slow
def test_generated_templates_render_or_fail_with_a_template_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARIST_ROBUST_SECRET", SECRET)
    rng = random.Random(20261204)
    texts = [template_text(rng) for _ in range(COUNT)]
    data = {"s": "hello", "a": 2.0, "l": [1.0, "x", None], "m": {"b": "y"}}

    def work(batch: list[str], mark: Mark) -> list[object]:
        results: list[object] = []
        for index, text in enumerate(batch):
            mark(index)
            try:
                results.append(("ok", gotemplate.render(text, data, name="t")))
            except TemplateError as exc:  # anything else escapes: the test fails on it
                results.append(("error", exc.message))
        return results

    outcomes, overruns = in_batches(texts, work)
    assert len(outcomes) == COUNT
    assert overruns == [], [texts[i] for i in overruns]
    rendered = [o for o in outcomes if isinstance(o, tuple) and o[0] == "ok"]
    failed = [o for o in outcomes if isinstance(o, tuple) and o[0] == "error"]
    assert rendered and failed
    for outcome in outcomes:
        assert SECRET not in repr(outcome)
