"""The sandbox's Kubernetes API: a subset of kube-apiserver over HTTP, serving an ObjectStore.

It speaks the wire protocol the official clients and kubectl use: bearer-token authentication,
discovery (`/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>[/<version>]`), JSON objects,
`Status` objects for every failure, LIST with label and field selectors, POST/PUT/PATCH/DELETE
with resourceVersion preconditions, the `status` subresource, `pods/<name>/log`, and WATCH
(a chunked stream of newline-delimited JSON events, resumable from a resourceVersion).

Served resources: namespaces, secrets, serviceaccounts, pods, services (core v1), roles and
rolebindings (rbac.authorization.k8s.io/v1), jobs and cronjobs (batch/v1) and
inferenceservices (serving.kserve.io/v1beta1). Writes go through the store, so anything
watching the store (the sandbox's controllers) hears of them.

`serve_api` runs the server on its own thread (for tests and synchronous callers);
`KubeApiServer.start` runs it on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from canarist.sandbox import kubeobjects, kuberesources
from canarist.sandbox.kubepatch import PatchError, json_patch, merge_patch
from canarist.sandbox.kuberbac import Attributes, Identity, authorize, forbidden_message
from canarist.sandbox.kuberesources import NAMESPACES, RESOURCES, ResourceDef
from canarist.sandbox.kubeselectors import SelectorError, field_selector, label_selector
from canarist.sandbox.kubetls import ServingCert, self_signed
from canarist.sandbox.store import EventType, ObjectStore, ResourceKey, StoreError, qualified

log = logging.getLogger("canarist.sandbox")

Obj = dict[str, Any]
DEFAULT_WATCH_TIMEOUT_S = 1800.0
# Kinds whose DELETE answers with the deleted object rather than a Status, as kube-apiserver's do.
RETURNS_DELETED = frozenset({"Pod", "Service", "ServiceAccount"})
PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/apply-patch+yaml": "apply",
}


class ApiError(Exception):
    """A failure answered with a Kubernetes `Status` object."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Obj:
        body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                     "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


def _not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _details(resource: ResourceDef, name: str = "", **extra: Any) -> Obj:
    details: Obj = {"name": name} if name else {}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    details.update(extra)
    return details


def _from_store(error: StoreError, resource: ResourceDef, name: str) -> ApiError:
    return ApiError(error.code, error.reason, error.message, _details(resource, name))


def _invalid(resource: ResourceDef, name: str, error: kubeobjects.Invalid) -> ApiError:
    details = _details(resource, name)
    details["kind"] = resource.kind
    details["causes"] = [{"reason": error.cause, "message": error.detail, "field": error.field}]
    return ApiError(422, "Invalid", f'{resource.kind} "{name}" is invalid: {error}', details)


@dataclass(frozen=True)
class Target:
    """What a resource path names."""

    resource: ResourceDef
    namespace: str | None  # None: all namespaces (or a cluster-scoped resource)
    name: str | None = None
    subresource: str | None = None


@dataclass
class _Event:
    rv: int
    key: ResourceKey
    type: EventType
    obj: Obj


@dataclass(eq=False)
class _Watcher:
    queue: asyncio.Queue[_Event | None] = field(default_factory=asyncio.Queue)


class PodLogs:
    """Container output the API serves at `pods/<name>/log`, per pod and container.

    Text can be set or appended, or a file can be attached and is read on every request
    (how the sandbox's job runner exposes a process's output).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text: dict[tuple[str, str, str], str] = {}
        self._files: dict[tuple[str, str, str], Path] = {}

    def set(self, namespace: str, pod: str, text: str, container: str = "") -> None:
        with self._lock:
            self._text[(namespace, pod, container)] = text

    def append(self, namespace: str, pod: str, text: str, container: str = "") -> None:
        with self._lock:
            key = (namespace, pod, container)
            self._text[key] = self._text.get(key, "") + text

    def attach(self, namespace: str, pod: str, path: str | Path, container: str = "") -> None:
        with self._lock:
            self._files[(namespace, pod, container)] = Path(path)

    def forget(self, namespace: str, pod: str) -> None:
        with self._lock:
            for table in (self._text, self._files):
                for key in [k for k in table if k[:2] == (namespace, pod)]:
                    del table[key]

    def read(self, namespace: str, pod: str, container: str = "") -> str:
        with self._lock:
            for key in ((namespace, pod, container), (namespace, pod, "")):
                if key in self._files:
                    try:
                        return self._files[key].read_text(errors="replace")
                    except OSError:
                        return ""
                if key in self._text:
                    return self._text[key]
        return ""


class KubeApiServer:
    """The API server on an asyncio loop. `start` binds; `stop` ends watches and unbinds."""

    def __init__(self, store: ObjectStore, token: str, *, history: int = 10_000,
                 pod_logs: PodLogs | None = None) -> None:
        if not token:
            raise ValueError("the API needs a non-empty bearer token")
        self.store = store
        self.pod_logs = pod_logs or PodLogs()
        self._tokens: dict[str, Identity | tuple[str, str]] = {
            token: Identity("system:admin", ("system:masters", "system:authenticated"), admin=True)}
        self._history: deque[_Event] = deque(maxlen=history)
        self._history_lock = threading.Lock()
        self._oldest_rv = store.resource_version
        self._watchers: set[_Watcher] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.host = ""
        self.port = 0
        self._tls: ServingCert | None = None
        self._unsubscribe = store.watch(self._on_change)
        self._ensure_namespace("default")

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0, *,
                    tls: ServingCert | None = None) -> None:
        """Listen on host:port (0: a free port), over TLS with `tls`'s certificate if given."""
        self._tls = tls
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=3 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0,
                                     handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port,
                           ssl_context=tls.server_context() if tls else None)
        await site.start()
        address = self._runner.addresses[0]
        self.host, self.port = str(address[0]), int(address[1])
        log.info("Kubernetes API listening on %s", self.url)

    async def stop(self) -> None:
        self._unsubscribe()
        self._stopping.set()
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def issue_token(self, namespace: str, service_account: str) -> str:
        """A bearer token for a ServiceAccount; valid while the ServiceAccount exists."""
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (namespace, service_account)
        return token

    def revoke_token(self, token: str) -> None:
        self._tokens.pop(token, None)

    def _ensure_namespace(self, name: str) -> None:
        try:
            self.store.get(NAMESPACES.key, "", name)
        except StoreError:
            obj = kubeobjects.prepare_new(
                NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, "")
            with contextlib.suppress(StoreError):
                self.store.create(NAMESPACES.key, "", obj)

    # -- events ---------------------------------------------------------------------------

    def _on_change(self, event: EventType, obj: Obj) -> None:
        """Store listener (writer's thread, in resourceVersion order): record and fan out."""
        key = _key_of(obj)
        if key is None:
            return
        try:
            rv = int(obj["metadata"]["resourceVersion"])
        except (KeyError, TypeError, ValueError):
            return
        item = _Event(rv, key, event, obj)
        with self._history_lock:
            if len(self._history) == self._history.maxlen:
                self._oldest_rv = self._history[0].rv
            self._history.append(item)
            watchers = list(self._watchers)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for watcher in watchers:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(watcher.queue.put_nowait, item)

    # -- dispatch -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            if request.path in ("/healthz", "/livez", "/readyz"):
                return web.Response(text="ok")
            identity = self._authenticate(request)
            return await self._dispatch(request, identity)
        except ApiError as error:
            return _json(error.status(), error.code)
        except Exception as error:  # an unexpected failure must still answer as the API does
            log.exception("Kubernetes API: %s %s failed", request.method, request.path)
            return _json(ApiError(500, "InternalError", f"Internal error occurred: {error}").status(),
                         500)

    def _authenticate(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() == "bearer" and presented:
            for token, who in list(self._tokens.items()):
                if hmac.compare_digest(token.encode(), presented.strip().encode()):
                    if isinstance(who, Identity):
                        return who
                    namespace, name = who
                    try:
                        self.store.get(ResourceKey("", "v1", "serviceaccounts"), namespace, name)
                    except StoreError:
                        break
                    return Identity.service_account(namespace, name)
        raise ApiError(401, "Unauthorized", "Unauthorized")

    async def _dispatch(self, request: web.Request, identity: Identity) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        document = self._discovery(parts, request)
        if document is not None:
            if request.method != "GET":
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            return _json(document)
        target = _route(parts)
        verb = _verb(request, target)
        attrs = Attributes(verb, target.resource.group, target.resource.plural,
                           target.subresource or "", target.namespace or "",
                           target.name or "")
        if not authorize(self.store, identity, attrs):
            raise ApiError(403, "Forbidden", forbidden_message(identity, attrs),
                           _details(target.resource, target.name or ""))
        handler: Callable[[web.Request, Target], Any] = getattr(self, f"_{verb}")
        response: web.StreamResponse = await handler(request, target)
        return response

    def _discovery(self, parts: list[str], request: web.Request) -> Obj | None:
        if parts == ["version"]:
            return {**kuberesources.KUBERNETES_VERSION, "gitCommit": "", "gitTreeState": "clean",
                    "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24",
                    "compiler": "gc", "platform": "linux/amd64"}
        if parts == ["api"]:
            return kuberesources.api_versions_doc(request.host)
        if parts == ["apis"]:
            return kuberesources.api_group_list_doc()
        if len(parts) == 2 and parts[0] == "apis":
            doc = kuberesources.api_group_doc(parts[1])
            if doc is None:
                raise _not_found_path()
            return doc
        if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group = "" if parts[0] == "api" else parts[1]
            doc = kuberesources.resource_list_doc(group, parts[-1])
            if doc is None:
                raise _not_found_path()
            return doc
        return None

    # -- reads ----------------------------------------------------------------------------

    async def _get(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        if target.subresource == "log":
            return await self._log(request, target)
        obj = self._read(target)
        return _json(_output(target.resource, obj))

    def _read(self, target: Target) -> Obj:
        assert target.name is not None
        try:
            return self.store.get(target.resource.key, target.namespace or "", target.name)
        except StoreError as error:
            raise _from_store(error, target.resource, target.name) from None

    def _selectors(self, request: web.Request, target: Target) -> Callable[[Obj], bool]:
        try:
            labels = label_selector(request.query.get("labelSelector"))
            fields = field_selector(request.query.get("fieldSelector"),
                                    pods=target.resource.plural == "pods")
        except SelectorError as error:
            raise ApiError(400, "BadRequest", str(error)) from None
        return lambda obj: labels(obj) and fields(obj)

    async def _list(self, request: web.Request, target: Target) -> web.StreamResponse:
        matches = self._selectors(request, target)
        namespace = target.namespace if target.resource.namespaced else ""
        items, rv = self.store.list_with_version(target.resource.key, namespace)
        resource = target.resource
        listed = [_output(resource, o, in_list=True) for o in items if matches(o)]
        return _json({"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                      "metadata": {"resourceVersion": str(rv)}, "items": listed})

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        matches = self._selectors(request, target)
        namespace = target.namespace if target.resource.namespaced else ""
        key = target.resource.key
        timeout = _float(request.query.get("timeoutSeconds"), DEFAULT_WATCH_TIMEOUT_S)
        since = request.query.get("resourceVersion", "")
        watcher = _Watcher()
        with self._history_lock:
            self._watchers.add(watcher)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            initial: list[_Event] = []
            if since in ("", "0"):
                items, last = self.store.list_with_version(key, namespace)
                initial = [_Event(last, key, "ADDED", o) for o in items]
            else:
                try:
                    last = int(since)
                except ValueError:
                    raise ApiError(400, "BadRequest", f"invalid resource version: {since}") from None
                with self._history_lock:
                    if last < self._oldest_rv:
                        gone = ApiError(410, "Expired", f"too old resource version: {last} "
                                        f"({self._oldest_rv})")
                        await _send(response, "ERROR", gone.status())
                        return response
                    initial = [e for e in self._history if e.rv > last and e.key == key]
                    if initial:
                        last = initial[-1].rv
            stream = _Filter(matches, namespace, complete=since in ("", "0"))
            for event in initial:
                await stream.send(response, event)
            deadline = time.monotonic() + timeout
            while not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    arrived = await asyncio.wait_for(watcher.queue.get(), remaining)
                except TimeoutError:
                    break
                if arrived is None:
                    break
                if arrived.key != key or arrived.rv <= last:
                    continue
                last = arrived.rv
                await stream.send(response, arrived)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            with self._history_lock:
                self._watchers.discard(watcher)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def _log(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        namespace = target.namespace or ""
        pod = self._read(Target(target.resource, target.namespace, target.name))
        containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        container = request.query.get("container", "")
        if container and containers and container not in containers:
            raise ApiError(400, "BadRequest",
                           f"container {container} is not valid for pod {target.name}")
        if not container and len(containers) > 1:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod "
                           f"{target.name}, choose one of: [{' '.join(containers)}]")
        container = container or (containers[0] if containers else "")
        tail = request.query.get("tailLines")
        limit = request.query.get("limitBytes")

        def current() -> str:
            text = self.pod_logs.read(namespace, target.name or "", container)
            if tail is not None and tail.isdigit():
                lines = text.splitlines(keepends=True)
                text = "".join(lines[-int(tail):]) if int(tail) else ""
            if limit is not None and limit.isdigit():
                text = text.encode()[: int(limit)].decode(errors="ignore")
            return text

        if request.query.get("follow") != "true":
            return web.Response(text=current(), content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            while True:
                text = self.pod_logs.read(namespace, target.name or "", container)
                if sent == 0 and tail is not None:
                    chunk = current()
                    sent = len(text)
                else:
                    chunk = text[sent:]
                    sent = len(text)
                if chunk:
                    await response.write(chunk.encode())
                try:
                    phase = (self.store.get(target.resource.key, namespace, target.name or "")
                             .get("status") or {}).get("phase")
                except StoreError:
                    break
                if phase in ("Succeeded", "Failed") or self._stopping.is_set():
                    rest = self.pod_logs.read(namespace, target.name or "", container)[sent:]
                    if rest:
                        await response.write(rest.encode())
                    break
                await asyncio.sleep(0.2)
            await response.write_eof()
        return response

    # -- writes ---------------------------------------------------------------------------

    def _check_namespace(self, target: Target) -> None:
        if target.resource.namespaced and target.namespace:
            try:
                self.store.get(NAMESPACES.key, "", target.namespace)
            except StoreError:
                raise ApiError(404, "NotFound", f'namespaces "{target.namespace}" not found',
                               {"name": target.namespace, "kind": "namespaces"}) from None

    async def _create(self, request: web.Request, target: Target) -> web.StreamResponse:
        resource = target.resource
        if target.subresource is not None or (resource.namespaced and not target.namespace):
            raise _method_not_allowed()
        body = await _body(request)
        _check_type(resource, body)
        namespace = target.namespace or ""
        name = str((body.get("metadata") or {}).get("name") or "")
        try:
            obj = kubeobjects.prepare_new(resource, body, namespace)
        except kubeobjects.Invalid as error:
            raise _invalid(resource, name, error) from None
        except kubeobjects.BadRequest as error:
            raise ApiError(400, "BadRequest", str(error)) from None
        name = obj["metadata"]["name"]
        self._check_namespace(target)
        if _dry_run(request):
            return _json(_output(resource, obj), 201)
        try:
            created = self.store.create(resource.key, namespace, obj)
        except StoreError as error:
            raise _from_store(error, resource, name) from None
        return _json(_output(resource, created), 201)

    async def _update(self, request: web.Request, target: Target) -> web.StreamResponse:
        body = await _body(request)
        return self._replace(request, target, body)

    def _replace(self, request: web.Request, target: Target, body: Obj) -> web.StreamResponse:
        resource = target.resource
        assert target.name is not None
        if target.subresource not in (None, "status"):
            raise _method_not_allowed()
        _check_type(resource, body)
        namespace = target.namespace or ""
        try:
            obj = kubeobjects.prepare_replacement(resource, body, namespace, target.name)
        except kubeobjects.Invalid as error:
            raise _invalid(resource, target.name, error) from None
        except kubeobjects.BadRequest as error:
            raise ApiError(400, "BadRequest", str(error)) from None
        status_only = target.subresource == "status"
        if not status_only and resource.has_status:
            obj.pop("status", None)  # the main resource ignores status; /status sets it
        if _dry_run(request):
            current = self._read(target)
            merged = {**current, "status": obj.get("status")} if status_only else obj
            return _json(_output(resource, merged))
        try:
            updated = self.store.update(resource.key, namespace, obj, status=status_only)
        except StoreError as error:
            raise _from_store(error, resource, target.name) from None
        return _json(_output(resource, updated))

    async def _patch(self, request: web.Request, target: Target) -> web.StreamResponse:
        resource = target.resource
        assert target.name is not None
        kind = PATCH_TYPES.get(request.content_type)
        if kind is None:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media "
                           f"types include: {', '.join(PATCH_TYPES)}")
        text = (await request.read()).decode("utf-8", errors="replace")
        try:
            patch = yaml.safe_load(text) if kind == "apply" else json.loads(text)
        except (ValueError, yaml.YAMLError) as error:
            raise ApiError(400, "BadRequest", f"error decoding patch: {error}") from None
        pinned = isinstance(patch, dict) and bool((patch.get("metadata") or {}).get("resourceVersion"))
        for _attempt in range(10):
            try:
                current = self.store.get(resource.key, target.namespace or "", target.name)
            except StoreError as error:
                if kind == "apply" and error.code == 404 and target.subresource is None:
                    if not isinstance(patch, dict):
                        raise ApiError(400, "BadRequest", "an apply patch must be an object") from None
                    patch.setdefault("metadata", {}).setdefault("name", target.name)
                    return await self._create_from(request, target, patch)
                raise _from_store(error, resource, target.name) from None
            try:
                patched = (json_patch(current, patch) if kind == "json"
                           else merge_patch(current, patch))
            except PatchError as error:
                code = error.code
                raise ApiError(code, "Invalid" if code == 422 else "BadRequest", str(error)) from None
            if not isinstance(patched, dict):
                raise ApiError(422, "Invalid", "the patch does not produce an object")
            if not pinned:
                patched.setdefault("metadata", {})["resourceVersion"] = (
                    current["metadata"]["resourceVersion"])
            if resource.has_status and target.subresource is None:
                patched["status"] = current.get("status")
                if patched["status"] is None:
                    patched.pop("status")
            try:
                return self._replace(request, target, patched)
            except ApiError as error:
                if error.reason != "Conflict" or pinned:
                    raise
        raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource.key)} '
                       f'"{target.name}": too many concurrent writers',
                       _details(resource, target.name))

    async def _create_from(self, request: web.Request, target: Target, body: Obj) -> web.StreamResponse:
        resource = target.resource
        _check_type(resource, body)
        try:
            obj = kubeobjects.prepare_new(resource, body, target.namespace or "")
        except kubeobjects.Invalid as error:
            raise _invalid(resource, target.name or "", error) from None
        except kubeobjects.BadRequest as error:
            raise ApiError(400, "BadRequest", str(error)) from None
        self._check_namespace(target)
        if _dry_run(request):
            return _json(_output(resource, obj), 201)
        try:
            created = self.store.create(resource.key, target.namespace or "", obj)
        except StoreError as error:
            raise _from_store(error, resource, target.name or "") from None
        return _json(_output(resource, created), 201)

    async def _delete(self, request: web.Request, target: Target) -> web.StreamResponse:
        resource = target.resource
        assert target.name is not None
        if target.subresource is not None:
            raise _method_not_allowed()
        options: Obj = {}
        if request.can_read_body:
            text = (await request.read()).decode("utf-8", errors="replace")
            if text.strip():
                try:
                    options = json.loads(text)
                except ValueError as error:
                    raise ApiError(400, "BadRequest", f"error decoding DeleteOptions: {error}") from None
        current = self._read(target)
        preconditions = options.get("preconditions") or {}
        for field_name, have in (("uid", current["metadata"].get("uid")),
                                 ("resourceVersion", current["metadata"].get("resourceVersion"))):
            wanted = preconditions.get(field_name)
            if wanted and wanted != have:
                raise ApiError(409, "Conflict", f"Precondition failed: {field_name}: {wanted}, "
                               f"but it is {have}", _details(resource, target.name))
        policy = (request.query.get("propagationPolicy") or options.get("propagationPolicy")
                  or ("Orphan" if options.get("orphanDependents") else None)
                  or ("Orphan" if resource.kind == "Job" else "Background"))
        if _dry_run(request):
            return _json(_success(resource, target.name, current))
        namespace = target.namespace or ""
        if resource.kind == "Namespace":
            self._delete_namespace_contents(target.name)
        try:
            deleted = self.store.delete(resource.key, namespace, target.name)
        except StoreError as error:
            raise _from_store(error, resource, target.name) from None
        if policy in ("Background", "Foreground") and resource.namespaced:
            self._delete_dependents(namespace, str(deleted["metadata"].get("uid", "")))
        if resource.kind == "Pod":
            self.pod_logs.forget(namespace, target.name)
        if resource.kind in RETURNS_DELETED:
            return _json(_output(resource, deleted))
        return _json(_success(resource, target.name, deleted))

    def _delete_dependents(self, namespace: str, uid: str) -> None:
        if not uid:
            return
        for resource in RESOURCES:
            if not resource.namespaced:
                continue
            for obj in self.store.list(resource.key, namespace):
                owners = obj.get("metadata", {}).get("ownerReferences") or []
                if any(isinstance(o, dict) and o.get("uid") == uid for o in owners):
                    with contextlib.suppress(StoreError):
                        gone = self.store.delete(resource.key, namespace, obj["metadata"]["name"])
                        self._delete_dependents(namespace, str(gone["metadata"].get("uid", "")))
                        if resource.kind == "Pod":
                            self.pod_logs.forget(namespace, obj["metadata"]["name"])

    def _delete_namespace_contents(self, namespace: str) -> None:
        for resource in RESOURCES:
            if not resource.namespaced:
                continue
            for obj in self.store.list(resource.key, namespace):
                with contextlib.suppress(StoreError):
                    self.store.delete(resource.key, namespace, obj["metadata"]["name"])


class _Filter:
    """Selection for one watch: objects entering or leaving the selection are sent as ADDED
    or DELETED, as the API server's watch cache does."""

    def __init__(self, matches: Callable[[Obj], bool], namespace: str | None, *,
                 complete: bool) -> None:
        self.matches = matches
        self.namespace = namespace
        self.complete = complete  # every object's state is known (the watch began with a list)
        self.inside: set[tuple[str, str]] = set()
        self.outside: set[tuple[str, str]] = set()

    def classify(self, event: _Event) -> str | None:
        meta = event.obj.get("metadata") or {}
        if self.namespace and meta.get("namespace") != self.namespace:
            return None
        ident = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        was_inside = ident in self.inside
        if event.type == "DELETED":
            known_outside = ident in self.outside or (self.complete and not was_inside)
            self.inside.discard(ident)
            self.outside.discard(ident)
            return None if known_outside or not (was_inside or self.matches(event.obj)) else "DELETED"
        if not self.matches(event.obj):
            self.inside.discard(ident)
            self.outside.add(ident)
            return "DELETED" if was_inside else None
        entered = not was_inside and (event.type == "ADDED" or self.complete or ident in self.outside)
        self.outside.discard(ident)
        self.inside.add(ident)
        return "ADDED" if entered else "MODIFIED"

    async def send(self, response: web.StreamResponse, event: _Event) -> None:
        kind = self.classify(event)
        if kind is None:
            return
        resource = kuberesources.by_key(event.key)
        body = _output(resource, event.obj) if resource else event.obj
        await _send(response, kind, body)


async def _send(response: web.StreamResponse, kind: str, obj: Obj) -> None:
    line = json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n"
    await response.write(line.encode())


def _key_of(obj: Obj) -> ResourceKey | None:
    api_version = str(obj.get("apiVersion", ""))
    kind = obj.get("kind")
    group, _, version = api_version.rpartition("/")
    for resource in RESOURCES:
        if resource.kind == kind and resource.group == group and resource.version == version:
            return resource.key
    return None


def _route(parts: list[str]) -> Target:
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        raise _not_found_path()
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            raise _not_found_path()
        group, version, rest = parts[1], parts[2], parts[3:]
    if rest[0] == "namespaces" and len(rest) >= 3:
        nested = kuberesources.find(group, version, rest[2])
        if nested is not None and nested.namespaced:
            if len(rest) > 5:
                raise _not_found_path()
            return _target(nested, rest[1], rest[3] if len(rest) > 3 else None,
                           rest[4] if len(rest) > 4 else None)
    resource = kuberesources.find(group, version, rest[0])
    if resource is None:
        raise _not_found_path()
    if resource.namespaced:
        if len(rest) != 1:
            raise _not_found_path()
        return Target(resource, None)
    if len(rest) > 3:
        raise _not_found_path()
    return _target(resource, None, rest[1] if len(rest) > 1 else None,
                   rest[2] if len(rest) > 2 else None)


def _target(resource: ResourceDef, namespace: str | None, name: str | None,
            sub: str | None) -> Target:
    if sub is not None and sub not in resource.subresources:
        raise _not_found_path()
    return Target(resource, namespace, name, sub)


def _verb(request: web.Request, target: Target) -> str:
    method = request.method
    if target.name is None:
        if method == "GET":
            return "watch" if request.query.get("watch") in ("true", "1") else "list"
        if method == "POST":
            return "create"
        raise _method_not_allowed()
    if target.subresource == "log" and method != "GET":
        raise _method_not_allowed()
    verbs = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if method not in verbs:
        raise _method_not_allowed()
    return verbs[method]


def _method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


async def _body(request: web.Request) -> Obj:
    if request.content_type not in ("application/json", "application/yaml",
                                    "application/octet-stream", ""):
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media types "
                       f"include: application/json, application/yaml (not {request.content_type})")
    text = (await request.read()).decode("utf-8", errors="replace")
    try:
        body = yaml.safe_load(text) if request.content_type == "application/yaml" else json.loads(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ApiError(400, "BadRequest", f"the body of the request could not be decoded: {error}") \
            from None
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the body of the request must be an object")
    return body


def _check_type(resource: ResourceDef, body: Obj) -> None:
    api_version = body.get("apiVersion")
    if api_version not in (None, "", resource.api_version):
        raise ApiError(400, "BadRequest", f"the API version in the data ({api_version}) does not match "
                       f"the expected API version ({resource.api_version})")
    kind = body.get("kind")
    if kind not in (None, "", resource.kind):
        raise ApiError(400, "BadRequest", f"the kind in the data ({kind}) does not match the expected "
                       f"kind ({resource.kind})")
    body["apiVersion"], body["kind"] = resource.api_version, resource.kind


def _dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])


def _output(resource: ResourceDef, obj: Obj, *, in_list: bool = False) -> Obj:
    out = copy.deepcopy(obj)
    if not resource.namespaced:
        out.get("metadata", {}).pop("namespace", None)
    if in_list and resource.builtin:
        out.pop("apiVersion", None)
        out.pop("kind", None)
    else:
        out["apiVersion"], out["kind"] = resource.api_version, resource.kind
    return out


def _success(resource: ResourceDef, name: str, obj: Obj) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": _details(resource, name, uid=obj.get("metadata", {}).get("uid", ""))}


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default


def _json(body: Obj, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body, separators=(",", ":")), status=status,
                        content_type="application/json")


class RunningApi:
    """A KubeApiServer on its own thread and event loop; stop it (or use `with`)."""

    def __init__(self, server: KubeApiServer, host: str, port: int,
                 tls: ServingCert | None = None) -> None:
        self.server = server
        self.tls = tls
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(host, port, tls),
                                        name="canarist-kubeapi", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the Kubernetes API did not start within 30s")
        if self._error is not None:
            self._thread.join(5)
            raise self._error

    def _run(self, host: str, port: int, tls: ServingCert | None) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start(host, port, tls=tls))
        except BaseException as error:
            self._error = error
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def ca_data(self) -> bytes | None:
        """The PEM certificate clients must trust when the API is served over TLS."""
        return self.tls.ca_data() if self.tls else None

    @property
    def store(self) -> ObjectStore:
        return self.server.store

    @property
    def pod_logs(self) -> PodLogs:
        return self.server.pod_logs

    def issue_token(self, namespace: str, service_account: str) -> str:
        return self.server.issue_token(namespace, service_account)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout)
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    def __enter__(self) -> RunningApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_api(store: ObjectStore, host: str = "127.0.0.1", port: int = 0, token: str = "",
              *, pod_logs: PodLogs | None = None, tls_dir: str | Path | None = None,
              history: int = 10_000) -> RunningApi:
    """Serve `store` on host:port (0: a free port) on a background thread; returns the handle.

    Every request needs `Authorization: Bearer <token>`. The `default` namespace is created
    if the store lacks it. With `tls_dir`, a self-signed certificate is made there and the
    API is served over HTTPS (kubectl sends tokens only over TLS); pass the handle's
    `ca_data` to `write_kubeconfig`. `history` is how many events a watch can resume from.
    """
    tls = self_signed(Path(tls_dir), host) if tls_dir is not None else None
    server = KubeApiServer(store, token, pod_logs=pod_logs, history=history)
    try:
        return RunningApi(server, host, port, tls)
    except BaseException:
        server._unsubscribe()
        raise
