"""Kubernetes calls canarist makes: objects as plain dicts in the wire format, every call
with a timeout, failures as the `KubeError` classes of `canarist.backends.kube.errors`.

Where the server is and how to authenticate comes from `canarist.backends.kube.config`; the
requests go through `canarist.backends.kube.transport`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

from canarist.backends.kube.config import ClusterConfig, load_configuration
from canarist.backends.kube.errors import KubeError, failure
from canarist.backends.kube.transport import Transport
from canarist.core.errors import InputError

Obj = dict[str, Any]
Query = list[tuple[str, Any]]
Objects = list[Obj]

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Resource:
    """A REST collection: API group ("" for core), version and plural resource name."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        if sub:
            base += f"/{sub}"
        return base

    def describe(self, name: str, namespace: str | None) -> str:
        where = f" in {namespace}" if namespace else ""
        return f"{self.plural} {name}{where}"


SECRETS = Resource("", "v1", "secrets")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")
PODS = Resource("", "v1", "pods")
SERVICES = Resource("", "v1", "services")
NAMESPACES = Resource("", "v1", "namespaces")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
JOBS = Resource("batch", "v1", "jobs")
CRONJOBS = Resource("batch", "v1", "cronjobs")
INFERENCE_SERVICES = Resource("serving.kserve.io", "v1beta1", "inferenceservices")


class KubeClient:
    """A small set of Kubernetes calls to one API server."""

    def __init__(self, config: ClusterConfig, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.config = config
        self.transport = Transport(config)
        self.server = config.server
        self.source = config.source
        self.namespace = config.namespace
        self.timeout = timeout

    @classmethod
    def connect(cls, kubeconfig: str | None = None, context: str | None = None, *,
                timeout: float = DEFAULT_TIMEOUT_S) -> KubeClient:
        """A client from a kubeconfig (and context), `$KUBECONFIG`, or in-cluster config."""
        return cls(load_configuration(kubeconfig, context), timeout=timeout)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str | None, name: str, *,
            timeout: float | None = None) -> Obj:
        return self._json("GET", resource.path(namespace, name), timeout=timeout)

    def list(self, resource: Resource, namespace: str | None, *, label_selector: str | None = None,
             timeout: float | None = None) -> Objects:
        query = [("labelSelector", label_selector)] if label_selector else []
        found = self._json("GET", resource.path(namespace), query=query, timeout=timeout)
        items = found.get("items") or []
        return [item for item in items if isinstance(item, dict)]

    def create(self, resource: Resource, namespace: str | None, obj: Obj, *,
               timeout: float | None = None) -> Obj:
        return self._json("POST", resource.path(namespace), body=obj, timeout=timeout)

    def replace(self, resource: Resource, namespace: str | None, obj: Obj, *,
                timeout: float | None = None) -> Obj:
        """PUT the whole object; a `metadata.resourceVersion` in it must still be current."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        if not name:
            raise InputError(f"{resource.plural}: cannot replace an object without metadata.name")
        return self._json("PUT", resource.path(namespace, name), body=obj, timeout=timeout)

    def patch(self, resource: Resource, namespace: str | None, name: str, patch: Obj, *,
              subresource: str | None = None, timeout: float | None = None) -> Obj:
        """A JSON merge patch (RFC 7386)."""
        return self._json("PATCH", resource.path(namespace, name, subresource), body=patch,
                          content_type="application/merge-patch+json", timeout=timeout)

    def delete(self, resource: Resource, namespace: str | None, name: str, *,
               propagation: str = "Background", resource_version: str | None = None,
               timeout: float | None = None) -> None:
        """Delete an object and (by default) what it owns; KubeNotFound if it is not there."""
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1",
                        "propagationPolicy": propagation}
        if resource_version:
            options["preconditions"] = {"resourceVersion": resource_version}
        self._json("DELETE", resource.path(namespace, name), body=options, timeout=timeout)

    def pod_log(self, namespace: str, name: str, *, container: str | None = None,
                tail_lines: int | None = None, timeout: float | None = None) -> str:
        query: Query = []
        if container:
            query.append(("container", container))
        if tail_lines is not None:
            query.append(("tailLines", tail_lines))
        return self._call("GET", PODS.path(namespace, name, "log"), query=query,
                          accept="text/plain", timeout=timeout).decode("utf-8", errors="replace")

    # -- plumbing -------------------------------------------------------------------------

    def _json(self, method: str, path: str, *, query: Query | None = None,
              body: Obj | None = None, content_type: str = "application/json",
              timeout: float | None = None) -> Obj:
        data = self._call(method, path, query=query, body=body, content_type=content_type,
                          timeout=timeout)
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            detail = f"{method} {path}: the answer is not JSON"
            raise KubeError(f"Kubernetes API {self.server}: {detail}", status=0,
                            detail=detail) from None
        if not isinstance(parsed, dict):
            detail = f"{method} {path}: the answer is not an object"
            raise KubeError(f"Kubernetes API {self.server}: {detail}", status=0, detail=detail)
        return parsed

    def _call(self, method: str, path: str, *, query: Query | None = None,
              body: Obj | None = None, content_type: str = "application/json",
              accept: str = "application/json", timeout: float | None = None) -> bytes:
        limit = self.timeout if timeout is None else timeout
        headers = {"Accept": accept}
        payload = None
        if body is not None:
            headers["Content-Type"] = content_type
            payload = json.dumps(body).encode()
        target = path + (f"?{urlencode([(k, str(v)) for k, v in query])}" if query else "")
        status, data = self.transport.send(method, target, headers, payload, limit)
        if 200 <= status < 300:
            return data
        raise failure(self.server, status, data)


# -- canarist's objects by kind -----------------------------------------------------------------

_BY_KIND: dict[str, Resource] = {
    "Secret": SECRETS,
    "ServiceAccount": SERVICE_ACCOUNTS,
    "Role": ROLES,
    "RoleBinding": ROLE_BINDINGS,
    "Job": JOBS,
    "CronJob": CRONJOBS,
}


class ClusterCalls:
    """The calls launching, running and deleting an experiment group make, by kind (Secret,
    ServiceAccount, Role, RoleBinding, Job, CronJob), over a `KubeClient`.

    Failures are the `KubeError` classes above: callers catch `KubeNotFound`, `KubeConflict`
    and so on, and `KubeUnreachable` when no answer came.
    """

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    @property
    def namespace(self) -> str:
        """The namespace of the kubeconfig context (or the pod's), `default` if none."""
        return self.client.namespace

    def get_secret(self, namespace: str, name: str) -> Obj:
        return self.client.get(SECRETS, namespace, name)

    def replace_secret(self, namespace: str, name: str, body: Obj) -> Obj:
        return self.client.replace(SECRETS, namespace, body)

    def create(self, obj: Obj) -> Obj:
        return self.client.create(_BY_KIND[obj["kind"]], obj["metadata"]["namespace"], obj)

    def replace(self, obj: Obj) -> Obj:
        return self.client.replace(_BY_KIND[obj["kind"]], obj["metadata"]["namespace"], obj)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.client.delete(_BY_KIND[kind], namespace, name, propagation="Background")

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        return self.client.list(PODS, namespace, label_selector=label_selector)

    def read_pod_log(self, namespace: str, name: str) -> str:
        return self.client.pod_log(namespace, name)
