"""The resources the sandbox's Kubernetes API serves, and their discovery documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canarist.sandbox.store import ResourceKey

KUBERNETES_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0-canarist-sandbox"}

ALL_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceDef:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    has_status: bool = False
    builtin: bool = True

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.group, self.version, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version


RESOURCES: tuple[ResourceDef, ...] = (
    ResourceDef("", "v1", "namespaces", "namespace", "Namespace", namespaced=False,
                short_names=("ns",), subresources=("status",), has_status=True),
    ResourceDef("", "v1", "secrets", "secret", "Secret"),
    ResourceDef("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", short_names=("sa",)),
    ResourceDef("", "v1", "pods", "pod", "Pod", short_names=("po",), subresources=("log", "status"),
                has_status=True),
    ResourceDef("", "v1", "services", "service", "Service", short_names=("svc",),
                subresources=("status",), has_status=True),
    ResourceDef("rbac.authorization.k8s.io", "v1", "roles", "role", "Role"),
    ResourceDef("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding"),
    ResourceDef("batch", "v1", "jobs", "job", "Job", subresources=("status",), has_status=True),
    ResourceDef("batch", "v1", "cronjobs", "cronjob", "CronJob", short_names=("cj",),
                subresources=("status",), has_status=True),
    ResourceDef("serving.kserve.io", "v1beta1", "inferenceservices", "inferenceservice",
                "InferenceService", short_names=("isvc",), subresources=("status",), has_status=True,
                builtin=False),
)

NAMESPACES = RESOURCES[0]


def find(group: str, version: str, plural: str) -> ResourceDef | None:
    for resource in RESOURCES:
        if (resource.group, resource.version, resource.plural) == (group, version, plural):
            return resource
    return None


def by_key(key: ResourceKey) -> ResourceDef | None:
    return find(key.group, key.version, key.resource)


def group_versions() -> dict[str, list[str]]:
    """API group -> its versions ("" is the core group)."""
    found: dict[str, list[str]] = {}
    for resource in RESOURCES:
        versions = found.setdefault(resource.group, [])
        if resource.version not in versions:
            versions.append(resource.version)
    return found


def api_versions_doc(server_address: str) -> dict[str, Any]:
    """GET /api."""
    return {
        "kind": "APIVersions",
        "versions": group_versions()[""],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def api_group_list_doc() -> dict[str, Any]:
    """GET /apis."""
    groups = [_group_doc(g, v) for g, v in group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group_doc(group: str) -> dict[str, Any] | None:
    """GET /apis/<group>."""
    versions = group_versions().get(group)
    if not group or versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


def resource_list_doc(group: str, version: str) -> dict[str, Any] | None:
    """GET /api/v1 or /apis/<group>/<version>."""
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    entries: list[dict[str, Any]] = []
    for resource in served:
        entry: dict[str, Any] = {
            "name": resource.plural, "singularName": resource.singular,
            "namespaced": resource.namespaced, "kind": resource.kind, "verbs": list(ALL_VERBS),
        }
        if resource.short_names:
            entry["shortNames"] = list(resource.short_names)
        if not resource.builtin:
            entry["categories"] = ["all"]
        entries.append(entry)
        for sub in resource.subresources:
            verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
            entries.append({"name": f"{resource.plural}/{sub}", "singularName": "",
                            "namespaced": resource.namespaced,
                            "kind": "Pod" if sub == "log" else resource.kind, "verbs": verbs})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": served[0].group_version, "resources": entries}
