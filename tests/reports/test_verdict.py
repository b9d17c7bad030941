"""The JSON verdict: golden outputs, the shipped schema, and agreement with `assert`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.reports.browser import EXPERIMENTS, GOLDEN, check_golden, hostile_experiment, load_experiment

from canarist.core.assertions import evaluate
from canarist.core.experiment import (
    SLO,
    Experiment,
    MetricMeta,
    MetricType,
    SLOLimits,
    SLOsSatisfied,
    TaskEntry,
    new_result,
)
from canarist.core.insights import (
    add_sample,
    add_value,
    ensure_insights,
    mark_unavailable,
    record_errors,
    register_metric,
)
from canarist.reports.verdict import SCHEMA_VERSION, render_json, schema, verdict


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    loaded = schema()
    jsonschema.Draft202012Validator.check_schema(loaded)
    return jsonschema.Draft202012Validator(loaded)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_golden(name: str, validator: jsonschema.protocols.Validator) -> None:
    text = render_json(load_experiment(name))
    validator.validate(json.loads(text))
    check_golden(GOLDEN / f"{name}.json", text)


def test_schema_version_and_summary() -> None:
    data = verdict(load_experiment("failed-grpc"))
    assert data["schemaVersion"] == SCHEMA_VERSION == 1
    assert data["summary"] == {
        # No SLOs were assessed: as `assert -c slos`, that counts as satisfied.
        "completed": False, "noFailure": False, "slosSatisfied": True,
        "failedTask": {"number": 2, "name": "grpc",
                       "reason": "host: cannot connect to 127.0.0.1:9 within 2s (connect-timeout)"},
        "numTasks": 3, "numCompletedTasks": 1, "numLoops": 1,
        "startTime": data["summary"]["startTime"], "numVersions": 1, "insights": True,
    }


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_conditions_agree_with_assert(name: str) -> None:
    experiment = load_experiment(name)
    data = verdict(experiment)
    for item in data["conditions"]:
        found = evaluate(experiment, item["condition"])
        assert (item["holds"], item["undecidable"]) == (found.holds, found.undecidable)
    assert data["summary"]["slosSatisfied"] == evaluate(experiment, "slos").holds
    assert data["summary"]["noFailure"] == evaluate(experiment, "nofailure").holds
    assert data["summary"]["completed"] == evaluate(experiment, "completed").holds


def test_unavailable_value_has_its_reason() -> None:
    data = verdict(load_experiment("kserve-two-versions-unavailable"))
    p90 = data["slos"][2]
    assert p90["metric"] == "kserve-prometheus/latency-p90"
    assert p90["versions"][1] == {
        "version": 1, "value": None, "satisfied": False,
        "reason": "Prometheus query returned no data (the canary has served no request in "
                  "the last 60s)"}
    assert data["versions"][1]["metrics"]["kserve-prometheus/latency-p90"]["value"] is None


def test_hostile_text_stays_data(validator: jsonschema.protocols.Validator) -> None:
    text = render_json(hostile_experiment())
    data = json.loads(text)
    validator.validate(data)
    assert data["summary"]["failedTask"]["name"] == "http<script>alert(1)</script>"
    assert data["versions"][1]["errors"] == {'http-"><img src=x onerror=alert(1)>': [
        {"code": "503", "count": 3, "message": "upstream said <script>alert(1)</script>"},
        {"code": "<script>alert(1)</script>", "count": 1,
         "message": '"><img src=x onerror=alert(1)>'}]}
    assert "errors" not in data["versions"][0]


def test_failed_requests_per_version() -> None:
    data = verdict(load_experiment("load-errors"))
    assert data["versions"][0]["errors"] == {
        "grpc": [{"code": "NOT_FOUND", "count": 50,
                  "message": "Model with name sklearn-irs does not exist."}],
        "http-typo": [{"code": "404", "count": 40,
                       "message": '{"error":"Model with name sklearn-irs does not exist."}'}],
    }
    for name in ("kserve-two-versions", "http-two-versions", "grpc-samples"):
        assert all("errors" not in v for v in verdict(load_experiment(name))["versions"]), name


_names = st.sampled_from(["p/a", "p/b-c", "http/latency-p99", "q/x/mean", "bad"])
_values = st.floats(allow_nan=False, allow_infinity=False, width=32)


@st.composite
def experiments(draw: st.DrawFn) -> Experiment:
    versions = draw(st.integers(0, 3))
    result = new_result(now=datetime(2024, 1, 1, tzinfo=UTC))
    result.num_loops = draw(st.integers(0, 5))
    result.num_completed_tasks = draw(st.integers(0, 3))
    result.failure = draw(st.booleans())
    if draw(st.booleans()):
        insights = ensure_insights(result, versions)
        for name in draw(st.lists(_names, max_size=4, unique=True)):
            if name == "q/x/mean":
                register_metric(insights, "q/x", MetricMeta(type=MetricType.SAMPLE))
                for j in range(versions):
                    add_sample(insights, j, "q/x", draw(st.lists(_values, max_size=5)))
                continue
            if name == "bad":
                continue
            register_metric(insights, name, MetricMeta(
                type=draw(st.sampled_from([MetricType.COUNTER, MetricType.GAUGE])),
                units=draw(st.none() | st.just("msec"))))
            for j in range(versions):
                if draw(st.booleans()):
                    add_value(insights, j, name, draw(_values))
                else:
                    mark_unavailable(insights, j, name, draw(st.text(max_size=10)))
        if draw(st.booleans()):
            upper = [SLO(metric=m, limit=draw(_values)) for m in draw(st.lists(_names, max_size=3))]
            lower = [SLO(metric=m, limit=draw(_values)) for m in draw(st.lists(_names, max_size=2))]
            insights.slos = SLOLimits(upper=upper, lower=lower)
            if draw(st.booleans()):
                insights.slos_satisfied = SLOsSatisfied(
                    upper=[[draw(st.booleans()) for _ in range(versions)] for _ in upper],
                    lower=[[draw(st.booleans()) for _ in range(versions)] for _ in lower])
        for j in range(versions):
            for provider in draw(st.lists(st.sampled_from(["http", "grpc-a"]), max_size=2)):
                record_errors(insights, j, provider, draw(st.lists(st.tuples(
                    st.sampled_from(["404", "NOT_FOUND", "timeout"]), st.integers(0, 9),
                    st.text(max_size=300)), max_size=3)))
    return Experiment(spec=[TaskEntry(task="assess")] * 3, result=result)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiments())
def test_every_verdict_matches_the_schema(experiment: Experiment) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    text = render_json(experiment)
    validator.validate(json.loads(text))
    assert text == render_json(experiment)
