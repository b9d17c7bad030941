"""Table-driven tests: every case renders exactly as Go's text/template + Sprig did.

The expectations in expected.json were produced by the Go oracle (see regen.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.core.gotemplate.cases import ALL_CASES, Case

from canarist.core.errors import TemplateError
from canarist.core.gotemplate import GoTemplateError, parse

EXPECTED: dict[str, dict[str, str]] = json.loads(
    (Path(__file__).parent / "expected.json").read_text()
)

# Deliberate differences from the Go 1.19 oracle, by template text.
KNOWN_DIFFERENCES = {
    "{{ with 1 }}{{ else with 2 }}{{ end }}": "{{else with}} is Go 1.23; canarist supports it",
    "{{ 1i }}": "complex constants are not supported",
}


def outcome(case: Case) -> dict[str, str]:
    """Our result in the oracle's shape."""
    try:
        tmpl = parse(case.text, name="t")
    except GoTemplateError as e:
        return {"error": e.go_message, "phase": "parse"}
    try:
        return {"out": tmpl.execute(case.data, strict=case.strict)}
    except GoTemplateError as e:
        return {"error": e.go_message, "phase": "exec"}


@pytest.mark.parametrize("case", [c for c in ALL_CASES if c.text not in KNOWN_DIFFERENCES],
                         ids=lambda c: c.id)
def test_matches_go(case: Case) -> None:
    assert outcome(case) == EXPECTED[case.id]


def test_every_case_has_an_expectation() -> None:
    missing = [c.id for c in ALL_CASES if c.id not in EXPECTED]
    assert not missing, "run python -m tests.core.gotemplate.regen"


def test_errors_are_template_errors() -> None:
    with pytest.raises(TemplateError) as err:
        parse("{{ .a ", name="x")
    assert str(err.value).startswith("x:1:")
