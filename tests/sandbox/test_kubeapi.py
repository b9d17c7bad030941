"""The sandbox's Kubernetes API, driven by the official `kubernetes` client given a kubeconfig."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client, config, watch
from kubernetes.client import ApiClient
from kubernetes.dynamic import DynamicClient
from tests.fakes import KUBE_TOKEN, fake_kube_api
from tests.helpers import require

from canarist.sandbox.kubeapi import RunningApi, serve_api
from canarist.sandbox.kubeconfig import write_kubeconfig
from canarist.sandbox.store import ObjectStore

ISVC = ("serving.kserve.io", "v1beta1")


@pytest.fixture
def kube_api() -> Iterator[RunningApi]:
    with fake_kube_api(history=50) as running:  # a short history, to see a watch expire
        yield running


@pytest.fixture
def kc(kubeconfig: Path) -> Iterator[ApiClient]:
    api_client = config.new_client_from_config(str(kubeconfig))
    yield api_client
    api_client.close()


def validated(obj: dict[str, Any]) -> dict[str, Any]:
    kubernetes_validate.validate(obj, "1.33.0", strict=True)
    return obj


def plain(api_client: ApiClient, model: Any) -> dict[str, Any]:
    result: dict[str, Any] = api_client.sanitize_for_serialization(model)
    return result


def isvc(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                             "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}}}}


def status_of(error: client.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == error.status
    return body


# -- kubeconfig and discovery ------------------------------------------------------------

def test_kubeconfig_is_private_and_standard(kubeconfig: Path, kube_api: RunningApi) -> None:
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    _contexts, active = config.list_kube_config_contexts(str(kubeconfig))
    assert active["name"] == "canarist-sandbox"
    assert active["context"] == {"cluster": "canarist-sandbox", "user": "canarist-sandbox-admin",
                                 "namespace": "default"}


def test_discovery(kc: ApiClient) -> None:
    assert client.VersionApi(kc).get_code().major == "1"
    assert client.CoreApi(kc).get_api_versions().versions == ["v1"]
    groups = {g.name: g.preferred_version.group_version
              for g in client.ApisApi(kc).get_api_versions().groups}
    assert groups == {"rbac.authorization.k8s.io": "rbac.authorization.k8s.io/v1",
                      "batch": "batch/v1", "serving.kserve.io": "serving.kserve.io/v1beta1"}
    core = {r.name: r for r in client.CoreV1Api(kc).get_api_resources().resources}
    assert {"namespaces", "secrets", "serviceaccounts", "pods", "pods/log", "services"} <= set(core)
    assert core["namespaces"].namespaced is False and core["secrets"].kind == "Secret"
    batch = {r.name for r in client.BatchV1Api(kc).get_api_resources().resources}
    assert {"jobs", "cronjobs", "jobs/status"} <= batch
    kserve = client.CustomObjectsApi(kc).get_api_resources(*ISVC)
    names = {r.name: r.kind for r in kserve.resources}
    assert names["inferenceservices"] == "InferenceService" and "inferenceservices/status" in names


def test_dynamic_client_discovers_every_kind(kc: ApiClient) -> None:
    dynamic = DynamicClient(kc)
    for api_version, kind in (("v1", "Secret"), ("v1", "Pod"), ("v1", "Namespace"),
                              ("batch/v1", "Job"), ("batch/v1", "CronJob"),
                              ("rbac.authorization.k8s.io/v1", "Role"),
                              ("serving.kserve.io/v1beta1", "InferenceService")):
        assert dynamic.resources.get(api_version=api_version, kind=kind).kind == kind
    services = dynamic.resources.get(api_version="serving.kserve.io/v1beta1", kind="InferenceService")
    services.create(body=isvc("dyn"), namespace="default")
    assert services.get(name="dyn", namespace="default").metadata.name == "dyn"


def test_wrong_or_missing_token_is_401(kube_api: RunningApi, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "bad", kube_api.url, "not-the-token")
    with config.new_client_from_config(str(path)) as api_client, \
            pytest.raises(client.ApiException) as caught:
        client.CoreV1Api(api_client).list_namespaced_secret("default")
    assert caught.value.status == 401
    assert status_of(caught.value)["reason"] == "Unauthorized"


# -- core objects ------------------------------------------------------------------------

def test_secrets_crud_string_data_and_conflicts(kc: ApiClient) -> None:
    core = client.CoreV1Api(kc)
    manifest = validated({"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": "exp", "labels": {"iter8.tools/group": "exp"}},
                          "stringData": {"experiment.yaml": "spec: []\n"},
                          "data": {"kept": base64.b64encode(b"raw").decode()}})
    created = core.create_namespaced_secret("default", manifest)
    assert created.string_data is None
    assert base64.b64decode(created.data["experiment.yaml"]) == b"spec: []\n"
    assert base64.b64decode(created.data["kept"]) == b"raw"
    assert created.type == "Opaque" and created.metadata.uid
    validated(plain(kc, created) | {"apiVersion": "v1", "kind": "Secret"})

    with pytest.raises(client.ApiException) as exists:
        core.create_namespaced_secret("default", manifest)
    assert exists.value.status == 409 and status_of(exists.value)["reason"] == "AlreadyExists"
    assert status_of(exists.value)["details"] == {"name": "exp", "kind": "secrets"}

    fresh = core.read_namespaced_secret("exp", "default")
    fresh.string_data = {"experiment.yaml": "spec: [1]\n"}
    updated = core.replace_namespaced_secret("exp", "default", fresh)
    assert base64.b64decode(updated.data["experiment.yaml"]) == b"spec: [1]\n"
    assert int(updated.metadata.resource_version) > int(fresh.metadata.resource_version)

    fresh.string_data = {"experiment.yaml": "stale\n"}  # still carries the old resourceVersion
    with pytest.raises(client.ApiException) as stale:
        core.replace_namespaced_secret("exp", "default", fresh)
    assert stale.value.status == 409 and status_of(stale.value)["reason"] == "Conflict"

    patched = core.patch_namespaced_secret("exp", "default", {"metadata": {"labels": {"x": "y"}}})
    assert patched.metadata.labels == {"iter8.tools/group": "exp", "x": "y"}
    core.delete_namespaced_secret("exp", "default")
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_secret("exp", "default")
    assert gone.value.status == 404
    assert status_of(gone.value)["message"] == 'secrets "exp" not found'


def test_label_and_field_selectors(kc: ApiClient) -> None:
    core = client.CoreV1Api(kc)
    for name, labels in (("a", {"app": "web", "tier": "1"}), ("b", {"app": "web"}),
                         ("c", {"app": "db", "tier": "2"})):
        core.create_namespaced_secret("default", {"metadata": {"name": name, "labels": labels}})

    def names(**kwargs: Any) -> list[str]:
        return [s.metadata.name for s in core.list_namespaced_secret("default", **kwargs).items]

    assert names() == ["a", "b", "c"]
    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app==web,tier") == ["a"]
    assert names(label_selector="app!=web") == ["c"]
    assert names(label_selector="tier in (2, 3)") == ["c"]
    assert names(label_selector="app notin (db),!tier") == ["b"]
    assert names(field_selector="metadata.name=b") == ["b"]
    listed = core.list_namespaced_secret("default")
    assert int(listed.metadata.resource_version) >= 4
    with pytest.raises(client.ApiException) as bad:
        names(label_selector="app in (web")
    assert bad.value.status == 400
    assert [s.metadata.name for s in core.list_secret_for_all_namespaces(label_selector="tier").items] \
        == ["a", "c"]


def test_namespaces_must_exist(kc: ApiClient) -> None:
    core = client.CoreV1Api(kc)
    assert [n.metadata.name for n in core.list_namespace().items] == ["default"]
    with pytest.raises(client.ApiException) as missing:
        core.create_namespaced_service_account("nowhere", {"metadata": {"name": "sa"}})
    assert missing.value.status == 404
    body = status_of(missing.value)
    assert body["message"] == 'namespaces "nowhere" not found'
    assert body["details"] == {"name": "nowhere", "kind": "namespaces"}
    with pytest.raises(client.ApiException) as absent:
        core.read_namespaced_secret("x", "nowhere")
    assert absent.value.status == 404

    namespace = core.create_namespace(validated({"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "team"}}))
    assert namespace.status.phase == "Active" and namespace.metadata.namespace is None
    core.create_namespaced_service_account("team", {"metadata": {"name": "sa"}})
    core.delete_namespace("team")
    with pytest.raises(client.ApiException) as deleted:
        core.read_namespaced_service_account("sa", "team")
    assert deleted.value.status == 404


def test_invalid_objects_are_422(kc: ApiClient) -> None:
    core = client.CoreV1Api(kc)
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_secret("default", {"metadata": {"name": "Not_Valid"}})
    assert caught.value.status == 422
    body = status_of(caught.value)
    assert body["reason"] == "Invalid" and body["details"]["causes"][0]["field"] == "metadata.name"
    # The typed API checks required fields before sending; the dynamic client does not.
    cronjobs = DynamicClient(kc).resources.get(api_version="batch/v1", kind="CronJob")
    with pytest.raises(client.ApiException) as no_schedule:
        cronjobs.create(namespace="default", body={
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
            "spec": {"jobTemplate": {"spec": {"template": {
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}}}})
    assert no_schedule.value.status == 422
    assert "spec.schedule: Required value" in status_of(no_schedule.value)["message"]


def test_generate_name_and_dry_run(kc: ApiClient) -> None:
    core = client.CoreV1Api(kc)
    made = core.create_namespaced_secret("default", {"metadata": {"generateName": "run-"}})
    assert made.metadata.name.startswith("run-") and len(made.metadata.name) == 9
    core.create_namespaced_secret("default", {"metadata": {"name": "dry"}}, dry_run="All")
    assert [s.metadata.name for s in core.list_namespaced_secret("default").items] == [made.metadata.name]


# -- the kinds the Kubernetes runner creates ----------------------------------------------

def runner_objects() -> list[dict[str, Any]]:
    pod_spec = {"serviceAccountName": "exp-iter8-sa", "restartPolicy": "Never",
                "containers": [{"name": "iter8", "image": "canarist:latest",
                                "command": ["/bin/sh", "-c", "canarist k run --namespace default"]}]}
    template = {"metadata": {"labels": {"iter8.tools/group": "exp"},
                             "annotations": {"sidecar.istio.io/inject": "false"}}, "spec": pod_spec}
    return [validated(obj) for obj in (
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "exp-iter8-sa"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "exp"},
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["exp"],
                    "verbs": ["get", "update"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "exp"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "exp"},
         "subjects": [{"kind": "ServiceAccount", "name": "exp-iter8-sa", "namespace": "default"}]},
        {"apiVersion": "batch/v1", "kind": "Job",
         "metadata": {"name": "exp-1-job", "annotations": {"iter8.tools/revision": "1"}},
         "spec": {"backoffLimit": 0, "template": template}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "exp-1-cronjob"},
         "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Forbid",
                  "jobTemplate": {"spec": {"backoffLimit": 0, "template": template}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
    )]


def test_runner_kinds_round_trip(kc: ApiClient) -> None:
    core, rbac, batch = client.CoreV1Api(kc), client.RbacAuthorizationV1Api(kc), client.BatchV1Api(kc)
    sa, role, binding, job, cronjob, service = runner_objects()
    created = [
        core.create_namespaced_service_account("default", sa),
        rbac.create_namespaced_role("default", role),
        rbac.create_namespaced_role_binding("default", binding),
        batch.create_namespaced_job("default", job),
        batch.create_namespaced_cron_job("default", cronjob),
        core.create_namespaced_service("default", service),
    ]
    for manifest, model in zip((sa, role, binding, job, cronjob, service), created, strict=True):
        obj = plain(kc, model)
        assert obj["metadata"]["name"] == manifest["metadata"]["name"]
        validated(obj | {"apiVersion": manifest["apiVersion"], "kind": manifest["kind"]})
    stored_job = batch.read_namespaced_job("exp-1-job", "default")
    assert stored_job.spec.backoff_limit == 0
    assert stored_job.spec.template.metadata.labels["batch.kubernetes.io/job-name"] == "exp-1-job"
    assert rbac.read_namespaced_role("exp", "default").rules[0].resource_names == ["exp"]
    cron = batch.read_namespaced_cron_job("exp-1-cronjob", "default")
    cron.spec.schedule = "*/5 * * * *"
    assert batch.replace_namespaced_cron_job("exp-1-cronjob", "default", cron).spec.schedule == "*/5 * * * *"
    assert [j.metadata.name for j in batch.list_namespaced_job("default").items] == ["exp-1-job"]
    for delete in (lambda: batch.delete_namespaced_job("exp-1-job", "default",
                                                       propagation_policy="Background"),
                   lambda: batch.delete_namespaced_cron_job("exp-1-cronjob", "default"),
                   lambda: rbac.delete_namespaced_role_binding("exp", "default"),
                   lambda: rbac.delete_namespaced_role("exp", "default"),
                   lambda: core.delete_namespaced_service_account("exp-iter8-sa", "default"),
                   lambda: core.delete_namespaced_service("web", "default")):
        delete()
    assert batch.list_namespaced_job("default").items == []


def test_job_deletion_takes_its_pods_and_pod_logs(kc: ApiClient, kube_api: RunningApi) -> None:
    core, batch = client.CoreV1Api(kc), client.BatchV1Api(kc)
    job = batch.create_namespaced_job("default", runner_objects()[3])
    pod = validated({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "exp-1-job-abcde", "labels": {"iter8.tools/group": "exp", "job-name": "exp-1-job"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "exp-1-job",
                             "uid": job.metadata.uid, "controller": True}]},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "iter8", "image": "canarist"}]}})
    created = core.create_namespaced_pod("default", pod)
    assert created.status.phase == "Pending"
    kube_api.pod_logs.set("default", "exp-1-job-abcde", "line 1\nline 2\nline 3\n")
    listed = core.list_namespaced_pod("default", label_selector="iter8.tools/group=exp")
    assert [p.metadata.name for p in listed.items] == ["exp-1-job-abcde"]
    assert core.read_namespaced_pod_log("exp-1-job-abcde", "default") == "line 1\nline 2\nline 3\n"
    assert core.read_namespaced_pod_log("exp-1-job-abcde", "default", tail_lines=1) == "line 3\n"
    with pytest.raises(client.ApiException) as wrong:
        core.read_namespaced_pod_log("exp-1-job-abcde", "default", container="other")
    assert wrong.value.status == 400
    batch.delete_namespaced_job("exp-1-job", "default", propagation_policy="Background")
    assert core.list_namespaced_pod("default").items == []


# -- InferenceServices, status and watch -------------------------------------------------

def test_isvc_status_subresource(kc: ApiClient) -> None:
    custom = client.CustomObjectsApi(kc)
    created = custom.create_namespaced_custom_object(*ISVC, "default", "inferenceservices",
                                                     isvc("sk") | {"status": {"url": "ignored"}})
    assert "status" not in created and created["metadata"]["generation"] == 1
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    after = custom.patch_namespaced_custom_object_status(*ISVC, "default", "inferenceservices", "sk", ready)
    assert after["status"] == ready["status"] and after["metadata"]["generation"] == 1
    current = custom.get_namespaced_custom_object(*ISVC, "default", "inferenceservices", "sk")
    current["spec"]["predictor"]["canaryTrafficPercent"] = 10
    current["status"] = {"conditions": []}  # the main resource ignores status
    replaced = custom.replace_namespaced_custom_object(*ISVC, "default", "inferenceservices", "sk",
                                                       current)
    assert replaced["status"] == ready["status"] and replaced["metadata"]["generation"] == 2
    patched = custom.patch_namespaced_custom_object(
        *ISVC, "default", "inferenceservices", "sk",
        [{"op": "replace", "path": "/spec/predictor/canaryTrafficPercent", "value": 20}],
        _content_type="application/json-patch+json")
    assert patched["spec"]["predictor"]["canaryTrafficPercent"] == 20
    listed = custom.list_namespaced_custom_object(*ISVC, "default", "inferenceservices")
    assert listed["kind"] == "InferenceServiceList" and listed["items"][0]["kind"] == "InferenceService"


def test_isvc_sandbox_annotations_are_checked_on_admission(kc: ApiClient) -> None:
    custom = client.CustomObjectsApi(kc)
    bad = isvc("faulty")
    bad["metadata"]["annotations"] = {"sandbox.canarist.dev/error-rate": "x"}
    with pytest.raises(client.ApiException) as caught:
        custom.create_namespaced_custom_object(*ISVC, "default", "inferenceservices", bad)
    assert caught.value.status == 422
    body = status_of(caught.value)
    assert body["message"] == (
        'InferenceService "faulty" is invalid: metadata.annotations.sandbox.canarist.dev/error-rate: '
        'expected a number between 0 and 1, got "x"')
    assert body["details"]["causes"][0]["field"] == (
        "metadata.annotations.sandbox.canarist.dev/error-rate")
    good = isvc("faulty")
    good["metadata"]["annotations"] = {"sandbox.canarist.dev/added-latency-ms": "200"}
    custom.create_namespaced_custom_object(*ISVC, "default", "inferenceservices", good)
    for patch in ({"metadata": {"annotations": {"sandbox.canarist.dev/added-latency-ms": "-1"}}},
                  {"spec": {"predictor": {"annotations": {"sandbox.canarist.dev/other": "1"}}}}):
        with pytest.raises(client.ApiException) as caught:
            custom.patch_namespaced_custom_object(*ISVC, "default", "inferenceservices", "faulty",
                                                  patch)
        assert caught.value.status == 422
    assert "spec.predictor.annotations.sandbox.canarist.dev/other: unknown sandbox annotation" \
        in status_of(caught.value)["message"]
    kept = custom.get_namespaced_custom_object(*ISVC, "default", "inferenceservices", "faulty")
    assert kept["metadata"]["annotations"] == {"sandbox.canarist.dev/added-latency-ms": "200"}


def test_watch_sees_an_isvc_become_ready(kc: ApiClient) -> None:
    custom = client.CustomObjectsApi(kc)
    custom.create_namespaced_custom_object(*ISVC, "default", "inferenceservices", isvc("sk"))

    def flip() -> None:
        time.sleep(0.3)
        custom.patch_namespaced_custom_object_status(
            *ISVC, "default", "inferenceservices", "sk",
            {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})

    flipper = threading.Thread(target=flip)
    flipper.start()
    events = []
    stream = watch.Watch()
    for event in stream.stream(custom.list_namespaced_custom_object, *ISVC, "default",
                               "inferenceservices", timeout_seconds=10):
        events.append((event["type"], event["object"].get("status")))
        if event["type"] == "MODIFIED":
            stream.stop()
    flipper.join()
    assert events == [("ADDED", None),
                      ("MODIFIED", {"conditions": [{"type": "Ready", "status": "True"}]})]


def test_watch_resumes_from_a_resource_version_and_expires(kc: ApiClient) -> None:
    core = client.CoreV1Api(kc)
    first = core.create_namespaced_pod("default", {"metadata": {"name": "p1"}, "spec": {
        "containers": [{"name": "c", "image": "i"}]}})
    since = first.metadata.resource_version
    core.patch_namespaced_pod("p1", "default", {"metadata": {"labels": {"a": "b"}}})
    core.delete_namespaced_pod("p1", "default")
    seen = [(e["type"], e["object"].metadata.name, e["object"].metadata.resource_version)
            for e in watch.Watch().stream(core.list_namespaced_pod, "default",
                                          resource_version=since, timeout_seconds=1)]
    assert [s[0] for s in seen] == ["MODIFIED", "DELETED"]
    assert int(seen[1][2]) > int(seen[0][2]) > int(since)
    for number in range(60):  # more writes than the API keeps (history=50)
        core.create_namespaced_secret("default", {"metadata": {"name": f"s{number}"}})
    with pytest.raises(client.ApiException) as expired:
        list(watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=since,
                                  timeout_seconds=1))
    assert expired.value.status == 410


def test_watch_with_a_label_selector_reports_objects_leaving_it(kc: ApiClient) -> None:
    core = client.CoreV1Api(kc)
    core.create_namespaced_secret("default", {"metadata": {"name": "s", "labels": {"a": "1"}}})
    core.create_namespaced_secret("default", {"metadata": {"name": "other"}})

    def later() -> None:
        time.sleep(0.3)
        core.patch_namespaced_secret("other", "default", {"metadata": {"labels": {"a": "1"}}})
        core.patch_namespaced_secret("s", "default", {"metadata": {"labels": {"a": "2"}}})

    writer = threading.Thread(target=later)
    writer.start()
    seen = []
    stream = watch.Watch()
    for event in stream.stream(core.list_namespaced_secret, "default", label_selector="a=1",
                               timeout_seconds=10):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            stream.stop()
    writer.join()
    assert seen == [("ADDED", "s"), ("ADDED", "other"), ("DELETED", "s")]


# -- errors ------------------------------------------------------------------------------

def test_unknown_resources_are_404(kc: ApiClient) -> None:
    custom = client.CustomObjectsApi(kc)
    with pytest.raises(client.ApiException) as unknown:
        custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
    assert unknown.value.status == 404 and status_of(unknown.value)["reason"] == "NotFound"
    with pytest.raises(client.ApiException) as missing:
        custom.get_namespaced_custom_object(*ISVC, "default", "inferenceservices", "none")
    assert status_of(missing.value)["message"] == \
        'inferenceservices.serving.kserve.io "none" not found'
    assert status_of(missing.value)["details"] == {
        "name": "none", "group": "serving.kserve.io", "kind": "inferenceservices"}


def test_service_account_tokens_follow_rbac(kc: ApiClient, kube_api: RunningApi, tmp_path: Path) -> None:
    core, rbac = client.CoreV1Api(kc), client.RbacAuthorizationV1Api(kc)
    sa, role, binding = runner_objects()[:3]
    core.create_namespaced_service_account("default", sa)
    rbac.create_namespaced_role("default", role)
    rbac.create_namespaced_role_binding("default", binding)
    core.create_namespaced_secret("default", {"metadata": {"name": "exp"}})
    core.create_namespaced_secret("default", {"metadata": {"name": "other"}})
    token = kube_api.issue_token("default", "exp-iter8-sa")
    path = write_kubeconfig(tmp_path / "sa", kube_api.url, token, user="exp-iter8-sa")
    with config.new_client_from_config(str(path)) as sa_client:
        as_sa = client.CoreV1Api(sa_client)
        secret = as_sa.read_namespaced_secret("exp", "default")
        secret.string_data = {"experiment.yaml": "result: {}\n"}
        as_sa.replace_namespaced_secret("exp", "default", secret)
        with pytest.raises(client.ApiException) as forbidden:
            as_sa.read_namespaced_secret("other", "default")
        assert forbidden.value.status == 403
        assert status_of(forbidden.value)["message"] == (
            'secrets "other" is forbidden: User "system:serviceaccount:default:exp-iter8-sa" '
            'cannot get resource "secrets" in API group "" in the namespace "default"')
        with pytest.raises(client.ApiException) as listing:
            as_sa.list_namespaced_secret("default")
        assert listing.value.status == 403
        core.delete_namespaced_service_account("exp-iter8-sa", "default")
        with pytest.raises(client.ApiException) as revoked:
            as_sa.read_namespaced_secret("exp", "default")
        assert revoked.value.status == 401


def test_writes_reach_store_listeners(kc: ApiClient, kube_api: RunningApi) -> None:
    heard: list[tuple[str, str]] = []
    remove = kube_api.store.watch(lambda event, obj: heard.append((event, obj["metadata"]["name"])))
    try:
        custom = client.CustomObjectsApi(kc)
        custom.create_namespaced_custom_object(*ISVC, "default", "inferenceservices", isvc("sk"))
        custom.delete_namespaced_custom_object(*ISVC, "default", "inferenceservices", "sk")
    finally:
        remove()
    assert heard == [("ADDED", "sk"), ("DELETED", "sk")]


def test_kubectl_over_tls(tmp_path: Path) -> None:
    require(shutil.which("kubectl") is not None and shutil.which("openssl") is not None,
            "needs kubectl and openssl")
    with serve_api(ObjectStore(), token=KUBE_TOKEN, tls_dir=tmp_path / "tls") as running:
        assert running.url.startswith("https://127.0.0.1:")
        path = write_kubeconfig(tmp_path / "kubeconfig", running.url, KUBE_TOKEN, ca_data=running.ca_data)
        env = {**os.environ, "KUBECONFIG": str(path), "HOME": str(tmp_path)}
        manifest = tmp_path / "isvc.json"
        manifest.write_text(json.dumps(isvc("sklearn-iris")))

        def kubectl(*args: str) -> str:
            done = subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True,
                                  timeout=60, check=False)
            assert done.returncode == 0, done.stderr
            return done.stdout

        assert "inferenceservices   isvc" in kubectl("api-resources")
        kubectl("apply", "--validate=false", "-f", str(manifest))
        assert "sklearn-iris" in kubectl("get", "isvc")
        assert json.loads(kubectl("get", "isvc", "sklearn-iris", "-o", "json"))["spec"]["predictor"]
        with config.new_client_from_config(str(path)) as api_client:
            names = [i["metadata"]["name"] for i in client.CustomObjectsApi(api_client)
                     .list_namespaced_custom_object(*ISVC, "default", "inferenceservices")["items"]]
        assert names == ["sklearn-iris"]
