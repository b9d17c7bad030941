"""Experiments inside Kubernetes: the objects a launch creates, built from values.

One experiment group is one Secret `<group>` holding `experiment.yaml`, the RBAC its runner
needs (unless `serviceAccountName` is given), and by `runner` a Job or a CronJob whose pod
runs `canarist k run`. `build_manifests` is pure: the same values, group, namespace,
revision and time give the same objects.

The runner may read and update only its own Secret (by name) and read only the objects its
`ready` tasks name (by name); nothing cluster-scoped, no wildcards. The pod runs as a
non-root user with a read-only root file system and `/tmp` as its writable working
directory.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from canarist.backends.kube import KubeConflict, KubeError, KubeInvalid, KubeNotFound
from canarist.core.chart import resolve_values
from canarist.core.errors import InputError, UnavailableError
from canarist.core.experiment import Experiment, experiment_to_data
from canarist.core.yamltext import dump_yaml
from canarist.runners.engine import RunSettings, experiment_from_values, run_experiment
from canarist.stores.secret import REVISION_ANNOTATION, SecretsApi, SecretStore
from canarist.tasks.base import TaskDefinition
from canarist.tasks.registry import TASKS

DOMAIN: Final = "canarist.dev"
GROUP_LABEL: Final = f"{DOMAIN}/group"
OBJECTS_ANNOTATION: Final = f"{DOMAIN}/objects"
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "canarist"}
EXPERIMENT_KEY: Final = "experiment.yaml"
RBAC_GROUP: Final = "rbac.authorization.k8s.io"
RUN_AS: Final = 65532
WORK_DIR: Final = "/tmp"

_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# A CronJob's name may have at most 52 characters; "-<revision>-cronjob" takes 9 + digits.
MAX_GROUP_LENGTH: Final = 36

Manifest = dict[str, Any]


def check_group(group: str) -> None:
    """The group names Kubernetes objects, so it must be a short DNS label."""
    if not _DNS_LABEL.fullmatch(group) or len(group) > MAX_GROUP_LENGTH:
        raise InputError(
            f"--group: {group!r} is not a valid experiment group name; expected lower-case "
            f"letters, digits and '-', starting and ending with a letter or digit, at most "
            f"{MAX_GROUP_LENGTH} characters"
        )


def service_account_name(group: str) -> str:
    return f"{group}-canarist-sa"


def workload_name(group: str, revision: int, runner: str) -> str:
    return f"{group}-{revision}-{runner}"


def render_experiment_data(values: dict[str, Any], *, namespace: str, now: datetime,
                           tasks: Mapping[str, TaskDefinition[Any]] = TASKS) -> dict[str, Any]:
    """The experiment as stored in the Secret; raises SpecError for invalid values."""
    experiment = experiment_from_values(values, tasks, now=now, namespace=namespace,
                                        base_dir=Path.cwd())
    return experiment_to_data(experiment)


def build_manifests(values: dict[str, Any], *, group: str, namespace: str, revision: int,
                    now: datetime,
                    tasks: Mapping[str, TaskDefinition[Any]] = TASKS) -> list[Manifest]:
    """Every object a launch creates, in creation order (the Secret first, the workload last).

    `tasks` are the tasks the experiment is checked against (every task canarist has).
    """
    check_group(group)
    data = render_experiment_data(values, namespace=namespace, now=now, tasks=tasks)
    resolved = resolve_values(values)
    ready = ready_targets(data, namespace)
    objects: list[Manifest] = []
    secret = _secret(group, namespace, revision, dump_yaml(data))
    objects.append(secret)
    sa_name = resolved.get("serviceAccountName")
    if not sa_name:
        sa_name = service_account_name(group)
        objects.extend(_rbac(group, namespace, revision, sa_name, ready))
    runner = str(resolved.get("runner", "none"))
    if runner in ("job", "cronjob"):
        objects.append(_workload(resolved, group, namespace, revision, runner, str(sa_name)))
    record = [{"kind": o["kind"], "namespace": o["metadata"]["namespace"],
               "name": o["metadata"]["name"]} for o in objects[1:]]
    secret["metadata"]["annotations"][OBJECTS_ANNOTATION] = json.dumps(record, sort_keys=True)
    return objects


def ready_targets(data: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """The objects the experiment's tasks read or change: group, resource, name, namespace
    and verbs. `ready` and `kserve` get; `rollout` patches the InferenceService too."""
    targets: list[dict[str, Any]] = []
    spec = data.get("spec") or []
    rolls_out = any(entry.get("task") == "rollout" for entry in spec)
    for entry in spec:
        with_ = entry.get("with") or {}
        if entry.get("task") == "ready":
            target = {"group": str(with_.get("group") or ""),
                      "resource": str(with_["resource"]), "name": str(with_["name"]),
                      "namespace": str(with_.get("namespace") or namespace), "verbs": ["get"]}
        elif entry.get("task") == "kserve":
            target = {"group": "serving.kserve.io", "resource": "inferenceservices",
                      "name": str(with_["isvc"]),
                      "namespace": str(with_.get("namespace") or namespace),
                      "verbs": ["get", "patch"] if rolls_out else ["get"]}
        else:
            continue
        same = next((t for t in targets if {**t, "verbs": None} == {**target, "verbs": None}), None)
        if same is None:
            targets.append(target)
        else:
            same["verbs"] = sorted(set(same["verbs"]) | set(target["verbs"]))
    return targets


def _meta(name: str, namespace: str, group: str, revision: int) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {GROUP_LABEL: group, **MANAGED_BY},
        "annotations": {GROUP_LABEL: group, REVISION_ANNOTATION: str(revision)},
    }


def _secret(group: str, namespace: str, revision: int, text: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(group, namespace, group, revision),
            "type": "Opaque", "stringData": {EXPERIMENT_KEY: text}}


def _role(name: str, namespace: str, group: str, revision: int,
          rules: list[dict[str, Any]]) -> Manifest:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "Role",
            "metadata": _meta(name, namespace, group, revision), "rules": rules}


def _binding(name: str, namespace: str, group: str, revision: int, sa_name: str,
             sa_namespace: str) -> Manifest:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding",
            "metadata": _meta(name, namespace, group, revision),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace}]}


def _rbac(group: str, namespace: str, revision: int, sa_name: str,
          ready: list[dict[str, Any]]) -> list[Manifest]:
    objects: list[Manifest] = [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": _meta(sa_name, namespace, group, revision)},
        _role(group, namespace, group, revision, [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [group],
             "verbs": ["get", "update"]}]),
        _binding(group, namespace, group, revision, sa_name, namespace),
    ]
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for target in ready:
        by_namespace.setdefault(target["namespace"], []).append(
            {"apiGroups": [target["group"]], "resources": [target["resource"]],
             "resourceNames": [target["name"]], "verbs": target["verbs"]})
    for ready_ns, rules in by_namespace.items():
        name = f"{group}-ready"
        objects.append(_role(name, ready_ns, group, revision, rules))
        objects.append(_binding(name, ready_ns, group, revision, sa_name, namespace))
    return objects


def run_command(namespace: str, group: str, log_level: str, *, reuse_result: bool) -> list[str]:
    command = ["canarist", "k", "run", "--namespace", namespace, "--group", group, "-l", log_level]
    return [*command, "--reuse-result"] if reuse_result else command


def _pod_template(values: dict[str, Any], group: str, namespace: str, sa_name: str,
                  reuse_result: bool) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "canarist",
        "image": str(values["image"]),
        "imagePullPolicy": "IfNotPresent",
        "command": run_command(namespace, group, str(values.get("logLevel", "info")),
                               reuse_result=reuse_result),
        "workingDir": WORK_DIR,
        "env": [{"name": "HOME", "value": WORK_DIR}, {"name": "TMPDIR", "value": WORK_DIR}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": WORK_DIR}],
    }
    resources = values.get("resources")
    if isinstance(resources, dict) and resources:
        container["resources"] = resources
    return {
        "metadata": {"labels": {GROUP_LABEL: group},
                     "annotations": {"sidecar.istio.io/inject": "false"}},
        "spec": {
            "serviceAccountName": sa_name,
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS,
                "runAsGroup": RUN_AS,
                "fsGroup": RUN_AS,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def _workload(values: dict[str, Any], group: str, namespace: str, revision: int, runner: str,
              sa_name: str) -> Manifest:
    name = workload_name(group, revision, runner)
    meta = _meta(name, namespace, group, revision)
    if runner == "job":
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                "spec": {"backoffLimit": 0,
                         "template": _pod_template(values, group, namespace, sa_name, False)}}
    job_meta = {"labels": {GROUP_LABEL: group},
                "annotations": {GROUP_LABEL: group, REVISION_ANNOTATION: str(revision)}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
            "spec": {"schedule": str(values["cronjobSchedule"]).strip(),
                     "concurrencyPolicy": "Forbid",
                     "jobTemplate": {"metadata": job_meta, "spec": {
                         "backoffLimit": 0,
                         "template": _pod_template(values, group, namespace, sa_name, True)}}}}


def manifest_text(objects: list[Manifest]) -> str:
    """The objects as one multi-document YAML text (what `--dry` writes)."""
    return "".join(f"---\n{dump_yaml(obj)}" for obj in objects)


# -- operations against a cluster -------------------------------------------------------------


class KubeApi(SecretsApi, Protocol):
    """What launching, running and deleting need from a Kubernetes client.

    Objects are plain dicts in the wire format. Failures raise the `KubeError` classes of
    canarist.backends.kube (`KubeNotFound`, `KubeConflict`, ..., `KubeUnreachable`);
    `ClusterCalls` there is the implementation over a cluster.
    """

    def create(self, obj: Manifest) -> Manifest: ...

    def replace(self, obj: Manifest) -> Manifest: ...

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete an object and, in the background, what it owns (a Job's pods)."""

    def list_pods(self, namespace: str, label_selector: str) -> list[Manifest]: ...

    def read_pod_log(self, namespace: str, name: str) -> str: ...


@dataclass(frozen=True)
class Launched:
    revision: int
    objects: list[Manifest]
    removed: list[str]


WORKLOAD_KINDS: Final = ("Job", "CronJob")


def describe(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}"


def launch(kube: KubeApi, values: dict[str, Any], *, group: str, namespace: str,
           now: datetime | None = None) -> Launched:
    """Create the group's objects, or replace them with a new revision if the group exists.

    A relaunch deletes the previous workload first (so its runs stop), replaces the Secret
    (fresh spec and result), creates or replaces the rest and removes what the new revision
    no longer has.
    """
    check_group(group)
    existing = _existing_secret(kube, namespace, group)
    revision = _revision_of(existing) + 1 if existing is not None else 1
    objects = build_manifests(values, group=group, namespace=namespace, revision=revision,
                              now=now or datetime.now(UTC))
    previous = recorded_objects(existing) if existing is not None else []
    removed: list[str] = []
    for kind, ns, name in previous:
        if kind in WORKLOAD_KINDS and _delete_quietly(kube, kind, ns, name):
            removed.append(describe(kind, ns, name))
    secret, rest = objects[0], objects[1:]
    if existing is not None:
        _guarded(lambda: kube.replace(secret), namespace)
    else:
        _guarded(lambda: kube.create(secret), namespace)
    for obj in rest:
        _create_or_replace(kube, obj)
    wanted = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in rest}
    for kind, ns, name in previous:
        if kind not in WORKLOAD_KINDS and (kind, ns, name) not in wanted \
                and _delete_quietly(kube, kind, ns, name):
            removed.append(describe(kind, ns, name))
    return Launched(revision, objects, removed)


def delete(kube: KubeApi, *, group: str, namespace: str) -> list[str]:
    """Remove everything launched for the group (the workload first, the Secret last)."""
    check_group(group)
    secret = _existing_secret(kube, namespace, group)
    if secret is None:
        raise InputError(f"experiment group {group} not found in namespace {namespace}")
    recorded = recorded_objects(secret)
    ordered = ([o for o in recorded if o[0] in WORKLOAD_KINDS]
               + [o for o in recorded if o[0] not in WORKLOAD_KINDS])
    removed = [describe(kind, ns, name) for kind, ns, name in ordered
               if _delete_quietly(kube, kind, ns, name)]
    if _delete_quietly(kube, "Secret", namespace, group):
        removed.append(describe("Secret", namespace, group))
    return removed


def pod_logs(kube: KubeApi, *, group: str, namespace: str) -> str:
    """The logs of the group's pods, oldest pod first, joined by `\\n***\\n`."""
    check_group(group)
    pods = _call(lambda: kube.list_pods(namespace, f"{GROUP_LABEL}={group}"),
                 f"list pods in namespace {namespace}")
    pods.sort(key=lambda p: (str(p.get("metadata", {}).get("creationTimestamp", "")),
                             str(p.get("metadata", {}).get("name", ""))))
    texts = []
    for pod in pods:
        name = str(pod["metadata"]["name"])
        texts.append(_call(lambda n=name: kube.read_pod_log(namespace, n),  # type: ignore[misc]
                           f"read the log of pod {namespace}/{name}"))
    return "\n***\n".join(text.rstrip("\n") for text in texts)


def recorded_objects(secret: Manifest) -> list[tuple[str, str, str]]:
    """The objects a launch recorded on the group's Secret: (kind, namespace, name)."""
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    try:
        items = json.loads(annotations.get(OBJECTS_ANNOTATION) or "[]")
    except ValueError:
        return []
    found: list[tuple[str, str, str]] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("kind") in KINDS:
            found.append((str(item["kind"]), str(item.get("namespace", "")), str(item.get("name", ""))))
    return found


KINDS: Final = frozenset({"Secret", "ServiceAccount", "Role", "RoleBinding", "Job", "CronJob"})


def _existing_secret(kube: KubeApi, namespace: str, group: str) -> Manifest | None:
    try:
        return kube.get_secret(namespace, group)
    except KubeNotFound:
        return None
    except KubeError as error:
        raise _api_failure(error, f"get secret {group} in namespace {namespace}") from None


def _revision_of(secret: Manifest) -> int:
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    try:
        return max(0, int(annotations.get(REVISION_ANNOTATION, "0")))
    except ValueError:
        return 0


def _create_or_replace(kube: KubeApi, obj: Manifest) -> None:
    meta = obj["metadata"]
    try:
        kube.create(obj)
        return
    except KubeNotFound:
        raise InputError(f"namespace {meta['namespace']} not found") from None
    except KubeConflict:
        pass
    except KubeError as error:
        raise _api_failure(error, f"create {describe(obj['kind'], meta['namespace'], meta['name'])}") \
            from None
    if obj["kind"] in WORKLOAD_KINDS:
        raise InputError(f"{describe(obj['kind'], meta['namespace'], meta['name'])} already exists; "
                         f"remove it or run `canarist k delete -g {meta['labels'][GROUP_LABEL]}`")
    _call(lambda: kube.replace(obj), f"replace {describe(obj['kind'], meta['namespace'], meta['name'])}")


def _guarded(action: Callable[[], Manifest], namespace: str) -> None:
    try:
        action()
    except KubeNotFound:
        raise InputError(f"namespace {namespace} not found") from None
    except KubeError as error:
        raise _api_failure(error, f"write the experiment secret in namespace {namespace}") from None


def _delete_quietly(kube: KubeApi, kind: str, namespace: str, name: str) -> bool:
    """Delete; False if it was already gone."""
    try:
        kube.delete(kind, namespace, name)
        return True
    except KubeNotFound:
        return False
    except KubeError as error:
        raise _api_failure(error, f"delete {describe(kind, namespace, name)}") from None


T = TypeVar("T")


def _call(action: Callable[[], T], what: str) -> T:
    try:
        return action()
    except KubeError as error:
        raise _api_failure(error, what) from None


def _api_failure(error: KubeError, what: str) -> Exception:
    """An API failure as a canarist error that says what was being done."""
    if not error.status:
        return error  # no answer (unreachable API server), or not one of the API's: explained
    text = f"unable to {what}: {error.detail}"
    if isinstance(error, KubeInvalid):
        return InputError(text)
    return UnavailableError(text)


def run(kube: KubeApi, *, group: str, namespace: str, reuse_result: bool,
        settings: RunSettings) -> Experiment:
    """One loop of the group's experiment, written back to its Secret after every task.

    The run holds the Secret's run lease throughout: while another run holds it, this one
    stops at once (exit 3) and changes nothing."""
    store = SecretStore(kube, namespace, group)
    with store.lease():
        experiment = store.read()
        return asyncio.run(run_experiment(experiment, store, TASKS, settings,
                                          reuse_result=reuse_result))


def reader(kube: KubeApi, *, group: str, namespace: str) -> Callable[[], Experiment]:
    """Reads the group's experiment (no waiting for permissions: the caller is a person)."""
    check_group(group)
    store = SecretStore(kube, namespace, group, forbidden_wait_s=0.0)
    return store.read
