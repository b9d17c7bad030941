"""Differential tests: the Python engine against Go's text/template + Sprig.

These need Go: apt-get install -y golang-go golang-github-masterminds-sprig-dev.
Without it the tests fail (they do not skip), so CI notices a missing oracle.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.core.gotemplate.cases import ALL_CASES, DATA
from tests.core.gotemplate.grammar import templates
from tests.core.gotemplate.oracle_runner import OracleUnavailable, build_oracle, run_oracle
from tests.core.gotemplate.test_gotemplate_golden import KNOWN_DIFFERENCES, outcome

pytestmark = pytest.mark.slow

EXPECTED = json.loads((Path(__file__).parent / "expected.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def _oracle() -> None:
    try:
        build_oracle()
    except OracleUnavailable as e:
        pytest.fail(str(e), pytrace=False)


def _go_shape(r: object) -> dict[str, str]:
    out, error, phase = r.out, r.error, r.phase  # type: ignore[attr-defined]
    if error is not None:
        return {"error": error, "phase": phase}
    return {"out": out or ""}


def test_expected_json_is_current() -> None:
    results = run_oracle([c.oracle_input() for c in ALL_CASES])
    stale = [c.id for c, r in zip(ALL_CASES, results, strict=True)
             if _go_shape(r) != EXPECTED.get(c.id) and "now" not in c.text]
    assert not stale, "expected.json is stale; run python -m tests.core.gotemplate.regen"


def _compare(texts: list[str], data: object) -> None:
    from tests.core.gotemplate.cases import Case

    cases = [Case(f"gen/{i}", t, data) for i, t in enumerate(texts)]
    results = run_oracle([c.oracle_input() for c in cases])
    for case, r in zip(cases, results, strict=True):
        if r.phase == "panic" or case.text in KNOWN_DIFFERENCES:
            continue
        assert outcome(case) == _go_shape(r), case.text


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(templates(), min_size=25, max_size=25))
def test_generated_templates_match_go(texts: list[str]) -> None:
    _compare(texts, DATA)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.text(alphabet="{}-/*. $|()\"'`abc1:=,\n\t", max_size=24),
                min_size=40, max_size=40))
def test_random_text_errors_match_go(texts: list[str]) -> None:
    _compare(texts, DATA)
