"""Discovery and the rollout policy, on InferenceService objects as KServe reports them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from canarist.core.errors import InputError
from canarist.core.experiment import RolloutRecord
from canarist.core.kserve import (
    MAX_WINDOW_S,
    MIN_WINDOW_S,
    Policy,
    decide,
    discover,
    measurement_window,
    next_step,
    service_of,
)

WHERE = "kserve.isvc sklearn-iris in default"


def isvc(*, created: str, ready: str, rolled_out: str, traffic: list[dict[str, Any]],
         percent: int | None = 10, generation: int = 2,
         annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """An InferenceService in serverless mode, its status shaped as KServe writes it."""
    predictor: dict[str, Any] = {"model": {"modelFormat": {"name": "sklearn"},
                                           "storageUri": "gs://models/m"}}
    if percent is not None:
        predictor["canaryTrafficPercent"] = percent
    return {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "sklearn-iris", "namespace": "default", "generation": generation,
                     "annotations": annotations or {}},
        "spec": {"predictor": predictor},
        "status": {
            "conditions": [
                {"type": "PredictorConfigurationReady", "status": "True",
                 "lastTransitionTime": "2026-12-03T10:00:00Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-03T09:00:00Z"},
            ],
            "components": {"predictor": {
                "latestCreatedRevision": created, "latestReadyRevision": ready,
                "latestRolledoutRevision": rolled_out, "traffic": traffic}},
        },
    }


def target(revision: str, percent: int, tag: str, component: str) -> dict[str, Any]:
    return {"revisionName": revision, "percent": percent, "latestRevision": tag == "latest",
            "tag": tag, "url": f"http://{tag}-{component}.default.example.com"}


CANARY = isvc(
    created="sklearn-iris-predictor-default-00002", ready="sklearn-iris-predictor-default-00002",
    rolled_out="sklearn-iris-predictor-default-00001",
    traffic=[target("sklearn-iris-predictor-default-00002", 10, "latest",
                    "sklearn-iris-predictor-default"),
             target("sklearn-iris-predictor-default-00001", 90, "prev",
                    "sklearn-iris-predictor-default")])


def test_a_canary_is_version_0_and_the_rolled_out_revision_version_1() -> None:
    found = discover(CANARY, where=WHERE)
    assert found.service == "sklearn-iris-predictor-default"
    assert found.generation == 2 and found.canary_percent == 10
    candidate, baseline = found.versions
    assert (candidate.role, candidate.revision, candidate.percent, candidate.ready) == (
        "candidate", "sklearn-iris-predictor-default-00002", 10, True)
    assert candidate.host == "latest-sklearn-iris-predictor-default.default.example.com"
    assert (baseline.role, baseline.revision, baseline.percent) == (
        "baseline", "sklearn-iris-predictor-default-00001", 90)
    assert baseline.url == "http://prev-sklearn-iris-predictor-default.default.example.com"
    assert found.candidate_ready_since == datetime(2026, 12, 3, 10, tzinfo=UTC)


def test_the_newer_predictor_naming_is_read_as_the_cluster_reports_it() -> None:
    obj = isvc(created="sklearn-iris-predictor-00002", ready="sklearn-iris-predictor-00002",
               rolled_out="sklearn-iris-predictor-00001",
               traffic=[target("sklearn-iris-predictor-00002", 25, "latest",
                               "sklearn-iris-predictor"),
                        target("sklearn-iris-predictor-00001", 75, "prev",
                               "sklearn-iris-predictor")])
    found = discover(obj, where=WHERE)
    assert found.service == "sklearn-iris-predictor"
    assert [v.revision for v in found.versions] == ["sklearn-iris-predictor-00002",
                                                    "sklearn-iris-predictor-00001"]
    assert [v.percent for v in found.versions] == [25, 75]


def test_a_candidate_that_is_not_ready_gets_no_share_and_no_host() -> None:
    # Knative routes `latestRevision` to the latest *ready* revision: the old one takes it all
    obj = isvc(created="sklearn-iris-predictor-default-00002",
               ready="sklearn-iris-predictor-default-00001",
               rolled_out="sklearn-iris-predictor-default-00001",
               traffic=[target("sklearn-iris-predictor-default-00001", 10, "latest",
                               "sklearn-iris-predictor-default"),
                        target("sklearn-iris-predictor-default-00001", 90, "prev",
                               "sklearn-iris-predictor-default")])
    candidate, baseline = discover(obj, where=WHERE).versions
    assert (candidate.percent, candidate.ready, candidate.host) == (0, False, "")
    assert baseline.percent == 100  # both targets name it


def test_a_fully_rolled_out_service_has_one_version() -> None:
    obj = isvc(created="sklearn-iris-predictor-default-00001",
               ready="sklearn-iris-predictor-default-00001",
               rolled_out="sklearn-iris-predictor-default-00001", percent=None,
               traffic=[{"revisionName": "sklearn-iris-predictor-default-00001", "percent": 100,
                         "latestRevision": True}])
    found = discover(obj, where=WHERE)
    assert [v.role for v in found.versions] == ["candidate"]
    assert found.baseline is None and found.canary_percent is None


@pytest.mark.parametrize("change, message", [
    (lambda o: o["metadata"]["annotations"].update(
        {"serving.kserve.io/deploymentMode": "RawDeployment"}),
     f"{WHERE}: runs in RawDeployment mode; canarist discovers the versions of serverless "
     "InferenceServices (canaryTrafficPercent) only; set versionValues by hand for this one"),
    (lambda o: o["status"]["components"].pop("predictor"),
     f"{WHERE}: has no revision yet (status.components.predictor.latestCreatedRevision is "
     "empty); wait until it is Ready"),
])
def test_what_discovery_cannot_judge_is_said_in_one_line(change: Any, message: str) -> None:
    obj = copy.deepcopy(CANARY)
    change(obj)
    with pytest.raises(InputError) as raised:
        discover(obj, where=WHERE)
    assert raised.value.message == message


def test_service_of_strips_the_revision_number_only() -> None:
    assert service_of("a-predictor-default-00012") == "a-predictor-default"
    assert service_of("model-2024-predictor-00001") == "model-2024-predictor"


def test_the_window_covers_the_current_split_within_bounds() -> None:
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    assert measurement_window(now, None, default_s=300) == 300
    assert measurement_window(now, now - timedelta(seconds=10), default_s=300) == MIN_WINDOW_S
    assert measurement_window(now, now - timedelta(seconds=200), default_s=300) == 200
    assert measurement_window(now, now - timedelta(days=2), default_s=300) == MAX_WINDOW_S


def record(percent: int, *, loops: int = 1, holds: int = 0) -> RolloutRecord:
    return RolloutRecord(percent=percent, loopsAtStep=loops, holds=holds)


@pytest.mark.parametrize("percent, verdict, loops, holds, policy, expected", [
    (10, "pass", 1, 0, Policy(), ("step", 25)),
    (50, "pass", 1, 0, Policy(), ("promote", 100)),
    (30, "pass", 1, 0, Policy(), ("step", 50)),  # a split set by hand: the next step above it
    (10, "fail", 1, 0, Policy(), ("rollback", 0)),
    (50, "fail", 3, 0, Policy(), ("rollback", 0)),
    (10, "inconclusive", 1, 1, Policy(), ("hold", 10)),
    (10, "inconclusive", 10, 10, Policy(max_holds=10), ("rollback", 0)),
    (10, "inconclusive", 50, 50, Policy(max_holds=0), ("hold", 10)),  # 0: hold for ever
    (10, "pass", 1, 0, Policy(min_loops_per_step=3), ("hold", 10)),
    (10, "pass", 3, 0, Policy(min_loops_per_step=3), ("step", 25)),
    (10, "pass", 1, 0, Policy(steps=(10, 100)), ("promote", 100)),
])
def test_the_policy_steps_on_pass_rolls_back_on_fail_and_holds_otherwise(
    percent: int, verdict: Any, loops: int, holds: int, policy: Policy,
    expected: tuple[str, int],
) -> None:
    decision = decide(record(percent, loops=loops, holds=holds), verdict, "why", policy)
    assert (decision.action, decision.to) == expected


def test_a_hold_for_too_long_says_why_it_rolls_back() -> None:
    decision = decide(record(25, loops=4, holds=4), "inconclusive", "too few requests",
                      Policy(max_holds=4))
    assert decision.reason == ("still inconclusive after 4 loops at 25 % (rollout.maxHolds=4): "
                               "too few requests")


def test_next_step_is_100_past_the_last() -> None:
    assert next_step((10, 25, 50, 100), None) == 10
    assert next_step((10, 25, 50, 100), 0) == 10
    assert next_step((10, 25, 50, 100), 100) == 100
