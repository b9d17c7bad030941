"""Kubernetes through the official `kubernetes` client: configuration, calls, and errors.

Objects are plain dicts in the wire format. Every call has a timeout. Failures become
canarist errors that say which server or kubeconfig is at fault:

* the API server cannot be reached (refused, timed out, TLS) -> `KubeUnreachable` (exit 3);
* the API answered with a failure `Status` -> `KubeError` and a subclass per kind:
  `KubeNotFound` (404), `KubeForbidden` (403), `KubeUnauthorized` (401), `KubeConflict`
  (409: AlreadyExists or a stale resourceVersion, see `.reason`), `KubeInvalid` (400/422,
  exit 2); others (5xx, 429) stay `KubeError` (exit 3);
* the configuration is missing or broken (file, context) -> `InputError` (exit 2).

Configuration is looked for in order: the kubeconfig given, `$KUBECONFIG`, `~/.kube/config`,
then the in-cluster ServiceAccount (when running in a pod).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import urllib3
import yaml
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.config.config_exception import ConfigException

from canarist.core.errors import InputError, UnavailableError

Obj = dict[str, Any]
Query = list[tuple[str, Any]]
Objects = list[Obj]

DEFAULT_TIMEOUT_S = 10.0
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


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


class KubeError(UnavailableError):
    """The API server answered with a failure Status."""

    def __init__(self, message: str, *, status: int, reason: str = "",
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status of the failure Status; 0 when there was none (no answer, or not JSON)."""
        self.reason = reason
        self.detail = message if detail is None else detail
        """What went wrong without naming the server: the Status's message, as a caller quotes it."""


class KubeUnreachable(KubeError):
    """No answer from the API server (connection refused, timeout, TLS failure)."""


class KubeNotFound(KubeError):
    """404: the object, its namespace or the resource type does not exist."""


class KubeForbidden(KubeError):
    """403: the credentials may not do this (RBAC)."""


class KubeUnauthorized(KubeError):
    """401: the credentials were not accepted."""


class KubeConflict(KubeError):
    """409: `reason` is AlreadyExists (create) or Conflict (stale resourceVersion)."""


class KubeInvalid(KubeError):
    """400/422: the API rejected the object or request as malformed."""

    exit_code = 2


_BY_STATUS: dict[int, type[KubeError]] = {
    401: KubeUnauthorized, 403: KubeForbidden, 404: KubeNotFound, 409: KubeConflict,
    400: KubeInvalid, 422: KubeInvalid,
}


def _read_namespace_file() -> str:
    try:
        return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def load_configuration(kubeconfig: str | None = None,
                       context: str | None = None) -> tuple[Any, str, str]:
    """(client Configuration, its source for messages, the context's default namespace)."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    if path is None:
        home = Path.home() / ".kube" / "config"
        if home.is_file():
            path = str(home)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            if context:
                raise InputError(f"--context {context}: no kubeconfig to find it in (running "
                                 "in-cluster)")
            configuration = kclient.Configuration()
            try:
                kconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except ConfigException as error:
                raise InputError(f"in-cluster Kubernetes configuration: {error}") from None
            return configuration, "in-cluster configuration", _read_namespace_file()
        else:
            raise InputError("no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, "
                             "or create ~/.kube/config")
    files = [p for p in path.split(os.pathsep) if p]
    missing = [p for p in files if not Path(p).expanduser().is_file()]
    if kubeconfig and missing:
        raise InputError(f"kubeconfig {missing[0]}: no such file")
    if len(missing) == len(files):
        raise InputError(f"kubeconfig {path}: no such file")
    where = f"kubeconfig {path}" + (f" (context {context})" if context else "")
    configuration = kclient.Configuration()
    try:
        kconfig.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=configuration,
            persist_config=False)
        contexts, active = kconfig.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=path)
    except (ConfigException, yaml.YAMLError, OSError, ValueError, TypeError, KeyError,
            AttributeError) as error:
        detail = " ".join(str(error).split()) or type(error).__name__
        raise InputError(f"{where}: {detail}") from None
    chosen = next((c for c in contexts or [] if c.get("name") == context), active) if context \
        else active
    namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return configuration, where, str(namespace)


class KubeClient:
    """A small set of Kubernetes calls over one official-client ApiClient."""

    def __init__(self, api_client: Any, *, source: str = "", namespace: str = "default",
                 timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.api = api_client
        self.server: str = str(api_client.configuration.host)
        self.source = source or self.server
        self.namespace = namespace
        self.timeout = timeout

    @classmethod
    def connect(cls, kubeconfig: str | None = None, context: str | None = None, *,
                timeout: float = DEFAULT_TIMEOUT_S) -> KubeClient:
        """A client from a kubeconfig (and context), `$KUBECONFIG`, or in-cluster config."""
        configuration, source, namespace = load_configuration(kubeconfig, context)
        configuration.retries = 1
        return cls(kclient.ApiClient(configuration), source=source, namespace=namespace,
                   timeout=timeout)

    def close(self) -> None:
        self.api.close()

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
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            request = self.api.param_serialize(method=method, resource_path=path,
                                               query_params=query or None, header_params=headers,
                                               body=body, auth_settings=["BearerToken"])
            response = self.api.call_api(*request, _request_timeout=(limit, limit))
            response.read()
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeUnreachable(f"cannot reach the Kubernetes API server {self.server} "
                                  f"({self.source}): {_reason(error)}", status=0) from None
        except kclient.ApiException as error:  # raised by the client for TLS failures
            raise KubeUnreachable(f"cannot reach the Kubernetes API server {self.server} "
                                  f"({self.source}): {error.reason}", status=0) from None
        status = int(response.status)
        data: bytes = response.data or b""
        if 200 <= status < 300:
            return data
        raise self._failure(status, data)

    def _failure(self, status: int, data: bytes) -> KubeError:
        message, reason = "", ""
        try:
            parsed = json.loads(data)
            if isinstance(parsed, dict):
                message = str(parsed.get("message") or "")
                reason = str(parsed.get("reason") or "")
        except ValueError:
            message = data.decode("utf-8", errors="replace").strip()[:200]
        kind = _BY_STATUS.get(status, KubeError)
        text = message or reason or f"HTTP {status}"
        return kind(f"Kubernetes API {self.server}: {text}", status=status, reason=reason,
                    detail=text)


def _reason(error: BaseException) -> str:
    """The innermost useful text of a urllib3 failure: "Connection refused", "timed out"."""
    inner: BaseException | None = getattr(error, "reason", None)
    if isinstance(inner, BaseException):
        error = inner
    text = str(error)
    for marker in ("Connection refused", "timed out", "Name or service not known",
                   "No route to host", "certificate verify failed"):
        if marker in text:
            return marker
    return " ".join(text.split())[:200] or type(error).__name__


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
