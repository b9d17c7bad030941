"""canarist.backends.kube against the sandbox API: configuration, calls and error mapping."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes import KUBE_TOKEN, kubeconfig_for

from canarist.backends.kube import (
    CRONJOBS,
    INFERENCE_SERVICES,
    JOBS,
    PODS,
    ROLE_BINDINGS,
    ROLES,
    SECRETS,
    SERVICE_ACCOUNTS,
    KubeClient,
    KubeConflict,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    KubeUnauthorized,
    KubeUnreachable,
)
from canarist.core.errors import InputError
from canarist.sandbox.kubeapi import RunningApi
from canarist.sandbox.kubeconfig import write_kubeconfig


@pytest.fixture
def kubeconfig(kube_api: RunningApi, tmp_path: Path) -> Path:
    return kubeconfig_for(kube_api, tmp_path / "kubeconfig", namespace="team")


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    with KubeClient.connect(str(kubeconfig), timeout=5) as connected:
        yield connected


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connect_reads_server_and_namespace(kube: KubeClient, kube_api: RunningApi) -> None:
    assert kube.server == kube_api.url and kube.namespace == "team"


def test_experiment_secret_lifecycle(kube: KubeClient) -> None:
    created = kube.create(SECRETS, "default", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "exp", "annotations": {"iter8.tools/group": "exp"}},
        "stringData": {"experiment.yaml": "spec: []\n"}})
    version = created["metadata"]["resourceVersion"]
    got = kube.get(SECRETS, "default", "exp")
    assert base64.b64decode(got["data"]["experiment.yaml"]) == b"spec: []\n"
    got["stringData"] = {"experiment.yaml": "spec: [1]\n"}
    replaced = kube.replace(SECRETS, "default", got)
    assert replaced["metadata"]["resourceVersion"] != version
    got["metadata"]["resourceVersion"] = version
    with pytest.raises(KubeConflict) as stale:
        kube.replace(SECRETS, "default", got)
    assert stale.value.reason == "Conflict" and stale.value.exit_code == 3
    with pytest.raises(KubeConflict) as exists:
        kube.create(SECRETS, "default", {"metadata": {"name": "exp"}})
    assert exists.value.reason == "AlreadyExists"
    with pytest.raises(KubeConflict):
        kube.delete(SECRETS, "default", "exp", resource_version=version)
    kube.delete(SECRETS, "default", "exp")
    with pytest.raises(KubeNotFound) as gone:
        kube.get(SECRETS, "default", "exp")
    assert gone.value.status == 404 and 'secrets "exp" not found' in gone.value.message


def test_runner_objects_pods_and_logs(kube: KubeClient, kube_api: RunningApi) -> None:
    template = {"metadata": {"labels": {"iter8.tools/group": "exp"}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "iter8", "image": "canarist"}]}}
    objects = [
        (SERVICE_ACCOUNTS, {"metadata": {"name": "exp-sa"}}),
        (ROLES, {"metadata": {"name": "exp"}, "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["exp"],
             "verbs": ["get", "update"]}]}),
        (ROLE_BINDINGS, {"metadata": {"name": "exp"}, "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "exp"},
            "subjects": [{"kind": "ServiceAccount", "name": "exp-sa"}]}),
        (JOBS, {"metadata": {"name": "exp-1-job"}, "spec": {"template": template}}),
        (CRONJOBS, {"metadata": {"name": "exp-1-cronjob"}, "spec": {
            "schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": template}}}}),
    ]
    for resource, obj in objects:
        assert kube.create(resource, "default", obj)["metadata"]["uid"]
    job = kube.get(JOBS, "default", "exp-1-job")
    job["spec"]["backoffLimit"] = 0
    assert kube.replace(JOBS, "default", job)["spec"]["backoffLimit"] == 0
    kube.create(PODS, "default", {"metadata": {
        "name": "exp-1-job-x", "labels": {"iter8.tools/group": "exp"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "exp-1-job",
                             "uid": job["metadata"]["uid"]}]}, "spec": template["spec"]})
    kube_api.pod_logs.set("default", "exp-1-job-x", "a\nb\n")
    pods = kube.list(PODS, "default", label_selector="iter8.tools/group=exp")
    assert [p["metadata"]["name"] for p in pods] == ["exp-1-job-x"]
    assert kube.pod_log("default", "exp-1-job-x") == "a\nb\n"
    assert kube.pod_log("default", "exp-1-job-x", tail_lines=1) == "b\n"
    kube.delete(JOBS, "default", "exp-1-job")  # Background: the job's pods go too
    assert kube.list(PODS, "default") == []
    for resource, obj in objects:
        if resource is not JOBS:
            kube.delete(resource, "default", obj["metadata"]["name"])


def test_generic_get_and_status_patch(kube: KubeClient) -> None:
    kube.create(INFERENCE_SERVICES, "default", {"metadata": {"name": "sk"}, "spec": {}})
    kube.patch(INFERENCE_SERVICES, "default", "sk",
               {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, subresource="status")
    assert kube.get(INFERENCE_SERVICES, "default", "sk")["status"]["conditions"][0]["status"] == "True"
    with pytest.raises(KubeInvalid) as invalid:
        kube.create(SECRETS, "default", {"metadata": {"name": "UPPER"}})
    assert invalid.value.exit_code == 2 and invalid.value.status == 422


def test_forbidden_and_unauthorized_stay_distinct(kube: KubeClient, kube_api: RunningApi,
                                                  tmp_path: Path) -> None:
    kube.create(SERVICE_ACCOUNTS, "default", {"metadata": {"name": "nobody"}})
    path = write_kubeconfig(tmp_path / "sa", kube_api.url, kube_api.issue_token("default", "nobody"))
    with KubeClient.connect(str(path)) as limited, pytest.raises(KubeForbidden) as forbidden:
        limited.get(SECRETS, "default", "x")
    assert forbidden.value.status == 403 and "forbidden" in forbidden.value.message
    bad = write_kubeconfig(tmp_path / "bad", kube_api.url, "wrong")
    with KubeClient.connect(str(bad)) as stranger, pytest.raises(KubeUnauthorized):
        stranger.get(SECRETS, "default", "x")


def test_unreachable_server_names_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    path = write_kubeconfig(tmp_path / "kubeconfig", url, KUBE_TOKEN)
    with KubeClient.connect(str(path), timeout=2) as kube, pytest.raises(KubeUnreachable) as caught:
        kube.get(SECRETS, "default", "x")
    assert caught.value.exit_code == 3
    assert url in caught.value.message and "Connection refused" in caught.value.message


def test_bad_configuration_is_input_error(tmp_path: Path, kubeconfig: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match=r"kubeconfig .*missing: no such file"):
        KubeClient.connect(str(tmp_path / "missing"))
    garbage = tmp_path / "garbage"
    garbage.write_text("clusters: [unclosed\n")
    with pytest.raises(InputError, match=f"kubeconfig {garbage}"):
        KubeClient.connect(str(garbage))
    with pytest.raises(InputError, match=r"context nope"):
        KubeClient.connect(str(kubeconfig), "nope")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with KubeClient.connect() as from_env:
        assert from_env.namespace == "team"
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InputError, match="no Kubernetes configuration"):
        KubeClient.connect()
