"""The objects `canarist k launch` creates: golden files, Kubernetes schemas, least privilege."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ConfigDict

from canarist.core.errors import InputError, SpecError
from canarist.runners.kubernetes import build_manifests, manifest_text
from canarist.tasks.base import TaskContext, TaskDefinition, TaskInputs
from canarist.tasks.registry import TASKS

GOLDEN = Path(__file__).parent.parent / "fixtures" / "k8s"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class _ReadyInputs(TaskInputs):
    model_config = ConfigDict(extra="allow", frozen=True)


async def _ready(inputs: _ReadyInputs, ctx: TaskContext) -> None:
    """Stands in for the ready task where the registry lacks it."""


ALL_TASKS: dict[str, TaskDefinition[Any]] = {
    "ready": TaskDefinition("ready", _ReadyInputs, _ready), **TASKS}

TUTORIAL: dict[str, Any] = {
    "tasks": ["ready", "custommetrics", "assess"],
    "ready": {"isvc": "sklearn-iris", "timeout": "180s"},
    "custommetrics": {
        "templates": {"kserve-prometheus": "kserve-prometheus"},
        "values": {"labels": {"service_name": "sklearn-iris-predictor-default"},
                   "latencyPercentiles": [50, 75, 90, 95]},
        "versionValues": [{"labels": {"revision_name": "sklearn-iris-predictor-default-00002"}},
                          {"labels": {"revision_name": "sklearn-iris-predictor-default-00001"}}],
    },
    "assess": {"SLOs": {"upper": {"kserve-prometheus/latency-mean": 50,
                                  "kserve-prometheus/latency-p90": 75,
                                  "kserve-prometheus/error-count": 0}}},
    "runner": "cronjob",
    "cronjobSchedule": "*/1 * * * *",
}

CASES: dict[str, tuple[dict[str, Any], str, str, int]] = {
    "tutorial-cronjob": (TUTORIAL, "default", "default", 1),
    "job-ready-elsewhere": ({**TUTORIAL, "runner": "job", "logLevel": "debug",
                             "image": "registry.example/canarist:1.0",
                             "ready": {"isvc": "sklearn-iris", "deploy": "web",
                                       "namespace": "models"}},
                            "canary", "experiments", 3),
    "own-service-account": ({**TUTORIAL, "runner": "job", "serviceAccountName": "runner"},
                            "mine", "default", 2),
    "kserve-rollout": ({"tasks": ["custommetrics", "assess", "rollout"],
                        "kserve": {"isvc": "sklearn-iris"},
                        "custommetrics": {"templates": {"kserve-prometheus": "kserve-prometheus"}},
                        "assess": {"relative": {"upper": {
                            "kserve-prometheus/latency-mean": "50%"}}},
                        "runner": "cronjob", "cronjobSchedule": "*/1 * * * *"},
                       "canary", "models", 1),
    "runner-none": ({"tasks": ["http", "assess"], "http": {"url": "http://model.team-a/predict"},
                     "assess": {"SLOs": {"upper": {"http/error-count": 0}}}},
                    "default", "team-a", 1),
}


def manifests(name: str) -> list[dict[str, Any]]:
    values, group, namespace, revision = CASES[name]
    return build_manifests(values, group=group, namespace=namespace, revision=revision, now=NOW,
                           tasks=ALL_TASKS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_manifests_match_golden_files(name: str) -> None:
    text = manifest_text(manifests(name))
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("CANARIST_REGEN_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_manifests_validate_against_kubernetes_schemas(name: str) -> None:
    documents = list(yaml.safe_load_all((GOLDEN / f"{name}.yaml").read_text()))
    assert documents and all(document for document in documents)
    for document in documents:  # raises ValidationError on the first that does not validate
        kubernetes_validate.validate(document, "1.33.0", strict=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_roles_grant_least_privilege(name: str) -> None:
    objects = manifests(name)
    group = CASES[name][1]
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    spec = yaml.safe_load(objects[0]["stringData"]["experiment.yaml"])["spec"]
    ready = [e["with"] for e in spec if e.get("task") == "ready"]
    allowed_ready = {(r.get("group", ""), r["resource"], r["name"], r["namespace"]) for r in ready}
    isvcs = {(e["with"]["isvc"], e["with"].get("namespace", CASES[name][2])) for e in spec
             if e.get("task") == "kserve"}
    patches = any(e.get("task") == "rollout" for e in spec)
    for role in (o for o in objects if o["kind"] == "Role"):
        namespace = role["metadata"]["namespace"]
        for rule in role["rules"]:
            fields = [*rule["verbs"], *rule["apiGroups"], *rule["resources"],
                      *rule.get("resourceNames", [])]
            assert "*" not in fields and not any("*" in f for f in fields), rule
            assert rule.get("resourceNames"), f"{role['metadata']['name']}: rule without names"
            assert "nonResourceURLs" not in rule
            if rule["resources"] == ["secrets"]:
                assert rule == {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [group],
                                "verbs": ["get", "update"]}
                assert role["metadata"]["name"] == group
            elif rule["resources"] == ["inferenceservices"] and rule["resourceNames"] and \
                    (rule["resourceNames"][0], namespace) in isvcs:
                # discovery reads the one InferenceService; only a rollout may patch it
                assert rule["verbs"] == (["get", "patch"] if patches else ["get"]), rule
                assert rule["apiGroups"] == ["serving.kserve.io"]
            else:
                assert rule["verbs"] == ["get"], rule
                for resource in rule["resources"]:
                    for named in rule["resourceNames"]:
                        for api_group in rule["apiGroups"]:
                            assert (api_group, resource, named, namespace) in allowed_ready


def test_pod_runs_non_root_with_read_only_root() -> None:
    job = manifests("job-ready-elsewhere")[-1]
    pod = job["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert pod["metadata"]["labels"] == {"canarist.dev/group": "canary"}
    assert pod["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert pod["spec"]["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
    assert container["command"] == ["canarist", "k", "run", "--namespace", "experiments",
                                    "--group", "canary", "-l", "debug"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["runAsUser"] == 65532
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["workingDir"] == "/tmp"
    assert {"name": "tmp", "emptyDir": {}} in pod["spec"]["volumes"]
    assert container["image"] == "registry.example/canarist:1.0"


def test_cronjob_forbids_overlap_and_reuses_the_result() -> None:
    cronjob = manifests("tutorial-cronjob")[-1]
    assert cronjob["kind"] == "CronJob" and cronjob["metadata"]["name"] == "default-1-cronjob"
    assert cronjob["spec"]["schedule"] == "*/1 * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    command = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-1] == "--reuse-result"


def test_own_service_account_means_no_rbac_objects() -> None:
    kinds = [o["kind"] for o in manifests("own-service-account")]
    assert kinds == ["Secret", "Job"]
    job = manifests("own-service-account")[-1]
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "runner"


def test_ready_rbac_lives_in_the_targets_namespace() -> None:
    objects = manifests("job-ready-elsewhere")
    ready_role = next(o for o in objects if o["metadata"]["name"] == "canary-ready"
                      and o["kind"] == "Role")
    assert ready_role["metadata"]["namespace"] == "models"
    binding = next(o for o in objects if o["metadata"]["name"] == "canary-ready"
                   and o["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "canary-canarist-sa",
                                    "namespace": "experiments"}]


@pytest.mark.parametrize("group", ["Bad", "-x", "a" * 40, "a_b", ""])
def test_bad_group_names_are_rejected(group: str) -> None:
    with pytest.raises(InputError, match="not a valid experiment group name"):
        build_manifests(CASES["runner-none"][0], group=group, namespace="default", revision=1,
                        now=NOW)


def test_a_schedule_that_is_not_cron_is_rejected() -> None:
    with pytest.raises(SpecError, match="cronjobSchedule"):
        build_manifests({**CASES["runner-none"][0], "runner": "cronjob",
                         "cronjobSchedule": "every minute"},
                        group="g", namespace="default", revision=1, now=NOW)


def test_a_rollout_may_patch_only_its_inferenceservice() -> None:
    roles = [o for o in manifests("kserve-rollout") if o["kind"] == "Role"]
    rules = [rule for role in roles for rule in role["rules"]
             if rule["resources"] == ["inferenceservices"]]
    assert rules == [{"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"],
                      "resourceNames": ["sklearn-iris"], "verbs": ["get", "patch"]}]
    without = {**CASES["kserve-rollout"][0], "tasks": ["custommetrics", "assess"]}
    objects = build_manifests(without, group="canary", namespace="models", revision=1, now=NOW,
                              tasks=ALL_TASKS)
    verbs = [rule["verbs"] for o in objects if o["kind"] == "Role" for rule in o["rules"]
             if rule["resources"] == ["inferenceservices"]]
    assert verbs == [["get"]]
