"""The chart's `kserve` and `rollout` values: what they render, and one line per mistake."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from canarist.core.chart import render_chart
from canarist.core.errors import SpecError
from canarist.runners.engine import experiment_from_values
from canarist.tasks.registry import TASKS

NOW = datetime(2026, 12, 3, tzinfo=UTC)
BASE: dict[str, Any] = {
    "tasks": ["custommetrics", "assess", "rollout"],
    "kserve": {"isvc": "sklearn-iris"},
    "custommetrics": {"templates": {"kserve-prometheus": "kserve-prometheus"}},
    "assess": {"relative": {"upper": {"kserve-prometheus/latency-mean": "50%"}}},
}


def test_discovery_runs_first_and_the_baseline_is_the_rolled_out_revision() -> None:
    spec = render_chart(BASE, now=NOW, namespace="models").data["spec"]
    assert [e["task"] for e in spec] == ["kserve", "custommetrics", "assess", "rollout"]
    assert spec[0]["with"] == {"isvc": "sklearn-iris", "namespace": "models"}
    assert spec[2]["with"]["baseline"] == 1


def test_http_loads_each_discovered_version_unless_given_a_url() -> None:
    values = {**BASE, "tasks": ["http", "assess"], "http": {"duration": "5s"}}
    spec = render_chart(values, now=NOW).data["spec"]
    assert spec[1]["with"] == {"duration": "5s", "kserve": True}
    values["http"] = {"url": "http://model.example/predict"}
    assert "kserve" not in render_chart(values, now=NOW).data["spec"][1]["with"]


@pytest.mark.parametrize("change, problem", [
    ({"kserve": {"isvc": "sklearn-iris", "ingres": "x"}},
     'kserve.ingres: unknown key "ingres"; did you mean ingress?'),
    ({"kserve": {"isvc": "sklearn-iris", "ingress": "http://127.0.0.1:8080/v1/models"}},
     "kserve.ingress: expected the ingress address alone, such as http://127.0.0.1:8080, got "
     '"http://127.0.0.1:8080/v1/models"'),
    ({"kserve": {"namespace": "x"}},
     "kserve.isvc: expected the name of an InferenceService, got null"),
    ({"kserve": None},
     "tasks[2]: rollout moves an InferenceService's canaryTrafficPercent: set "
     "kserve.isvc=<name> so canarist can find it"),
    ({"tasks": ["custommetrics", "rollout", "assess"]},
     "tasks[1]: rollout acts on the verdict of assess: list assess before it, e.g. "
     '--set "tasks={custommetrics,assess,rollout}"'),
])
def test_mistakes_in_the_values_name_the_key(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(SpecError) as raised:
        render_chart({**BASE, **change}, now=NOW)
    assert problem in raised.value.problems


@pytest.mark.parametrize("rollout, problem", [
    ({"steps": [50, 25, 100]}, "rollout.steps: expected increasing percentages between 1 and 100"),
    ({"steps": [10, 50]}, "rollout.steps: the last step must be 100 (the promotion)"),
    ({"maxHolds": -1}, "rollout.maxHolds: "),
    ({"minLoopsPerStep": 0}, "rollout.minLoopsPerStep: "),
    ({"dryrun": "maybe"}, "rollout.dryRun: expected true or false"),
    ({"step": [10]}, 'rollout.step: unknown key "step"; did you mean steps?'),
])
def test_bad_rollout_inputs_are_exit_2_at_launch(rollout: dict[str, Any], problem: str,
                                                 tmp_path: Any) -> None:
    with pytest.raises(SpecError) as raised:
        experiment_from_values({**BASE, "rollout": rollout}, TASKS, now=NOW, base_dir=tmp_path)
    assert raised.value.exit_code == 2
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_agreement_compares_the_discovered_versions_against_assess_baseline() -> None:
    values = {**BASE, "tasks": ["agreement", "assess"],
              "agreement": {"payloadFile": "iris.jsonl"},
              "assess": {"relative": {"lower": {"agreement/rate": "1%"}}}}
    spec = render_chart(values, now=NOW).data["spec"]
    assert [e["task"] for e in spec] == ["kserve", "agreement", "assess"]
    assert spec[1]["with"] == {"payloadFile": "iris.jsonl", "kserve": True, "baseline": 1}
    values["agreement"] = {"payloadFile": "iris.jsonl", "url": "grpc://127.0.0.1:8081"}
    assert render_chart(values, now=NOW).data["spec"][1]["with"]["kserve"] is True
    values["agreement"] = {"payloadFile": "iris.jsonl",
                           "versions": [{"url": "http://a/p"}, {"url": "http://b/p"}]}
    assert "kserve" not in render_chart(values, now=NOW).data["spec"][1]["with"]
    values["agreement"] = {"payloadFile": "iris.jsonl", "baseline": 0}
    with pytest.raises(SpecError, match=r"agreement\.baseline: 0 is not assess\.baseline 1"):
        render_chart(values, now=NOW)


def test_version_names_are_not_counted_against_discovered_versions() -> None:
    values = {**BASE, "tasks": ["agreement", "assess"], "versionNames": ["canary", "baseline"],
              "agreement": {"payloadFile": "iris.jsonl"}}
    rendered = render_chart(values, now=NOW).data
    assert rendered["result"]["versionNames"] == ["canary", "baseline"]
