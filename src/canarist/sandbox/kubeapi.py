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

This module authenticates, authorizes and dispatches requests, and serves discovery, GET and
LIST; the rest is in kubewire (Status failures, routing, bodies, answers), kubewrites,
kubewatch and kubelogs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from canarist.sandbox import kubeobjects, kuberesources
from canarist.sandbox.kubelogs import PodLogs, serve_log
from canarist.sandbox.kuberbac import Attributes, Identity, authorize, forbidden_message
from canarist.sandbox.kuberesources import NAMESPACES
from canarist.sandbox.kubeselectors import SelectorError, field_selector, label_selector
from canarist.sandbox.kubetls import ServingCert, self_signed
from canarist.sandbox.kubewatch import Watches
from canarist.sandbox.kubewire import (
    ApiError,
    Target,
    as_served,
    json_response,
    not_found_path,
    read_object,
    route,
    status_details,
    verb_of,
)
from canarist.sandbox.kubewrites import Writes
from canarist.sandbox.store import ObjectStore, ResourceKey, StoreError

log = logging.getLogger("canarist.sandbox")

Obj = dict[str, Any]


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
        self.watches = Watches(store, history)
        self.writes = Writes(store, self.pod_logs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.host = ""
        self.port = 0
        self._tls: ServingCert | None = None
        self._unsubscribe = store.watch(self.watches.on_change)
        self._ensure_namespace("default")

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
        self.watches.begin(self._loop, self._stopping)
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
        self.watches.end()
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

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            if request.path in ("/healthz", "/livez", "/readyz"):
                return web.Response(text="ok")
            identity = self._authenticate(request)
            return await self._dispatch(request, identity)
        except ApiError as error:
            return json_response(error.status(), error.code)
        except Exception as error:  # an unexpected failure must still answer as the API does
            log.exception("Kubernetes API: %s %s failed", request.method, request.path)
            return json_response(ApiError(500, "InternalError", f"Internal error occurred: {error}").status(),
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
            return json_response(document)
        target = route(parts)
        verb = verb_of(request, target)
        attrs = Attributes(verb, target.resource.group, target.resource.plural,
                           target.subresource or "", target.namespace or "",
                           target.name or "")
        if not authorize(self.store, identity, attrs):
            raise ApiError(403, "Forbidden", forbidden_message(identity, attrs),
                           status_details(target.resource, target.name or ""))
        if verb == "watch":
            return await self.watches.watch(request, target, self._selectors(request, target))
        handlers: dict[str, Callable[[web.Request, Target], Awaitable[web.StreamResponse]]] = {
            "get": self._get, "list": self._list, "create": self.writes.create,
            "update": self.writes.update, "patch": self.writes.patch, "delete": self.writes.delete,
        }
        return await handlers[verb](request, target)

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
                raise not_found_path()
            return doc
        if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group = "" if parts[0] == "api" else parts[1]
            doc = kuberesources.resource_list_doc(group, parts[-1])
            if doc is None:
                raise not_found_path()
            return doc
        return None

    async def _get(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        if target.subresource == "log":
            return await serve_log(request, target, self.store, self.pod_logs, self._stopping)
        obj = read_object(self.store, target)
        return json_response(as_served(target.resource, obj))

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
        listed = [as_served(resource, o, in_list=True) for o in items if matches(o)]
        return json_response({"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                      "metadata": {"resourceVersion": str(rv)}, "items": listed})


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
