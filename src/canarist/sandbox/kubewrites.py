"""Writes for the sandbox's Kubernetes API: create, replace (the object or its status),
patch (merge, strategic merge as merge, JSON patch, apply) and delete (preconditions,
propagation to what the object owns).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import yaml
from aiohttp import web

from canarist.sandbox import kubeobjects
from canarist.sandbox.kubelogs import PodLogs
from canarist.sandbox.kubepatch import PatchError, json_patch, merge_patch
from canarist.sandbox.kuberesources import NAMESPACES, RESOURCES
from canarist.sandbox.kubewire import (
    ApiError,
    Target,
    as_served,
    check_type,
    dry_run,
    from_store,
    invalid_error,
    json_response,
    method_not_allowed,
    read_body,
    read_object,
    status_details,
    success_status,
)
from canarist.sandbox.store import ObjectStore, StoreError, qualified

Obj = dict[str, Any]


# Kinds whose DELETE answers with the deleted object rather than a Status, as kube-apiserver's do.
RETURNS_DELETED = frozenset({"Pod", "Service", "ServiceAccount"})
PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/apply-patch+yaml": "apply",
}


class Writes:
    """POST, PUT (the object or its status), PATCH and DELETE, as kube-apiserver answers them;
    a delete takes what the object owns with it (background propagation)."""

    def __init__(self, store: ObjectStore, pod_logs: PodLogs) -> None:
        self.store = store
        self.pod_logs = pod_logs

    def _check_namespace(self, target: Target) -> None:
        if target.resource.namespaced and target.namespace:
            try:
                self.store.get(NAMESPACES.key, "", target.namespace)
            except StoreError:
                raise ApiError(404, "NotFound", f'namespaces "{target.namespace}" not found',
                               {"name": target.namespace, "kind": "namespaces"}) from None

    async def create(self, request: web.Request, target: Target) -> web.StreamResponse:
        resource = target.resource
        if target.subresource is not None or (resource.namespaced and not target.namespace):
            raise method_not_allowed()
        body = await read_body(request)
        check_type(resource, body)
        namespace = target.namespace or ""
        name = str((body.get("metadata") or {}).get("name") or "")
        try:
            obj = kubeobjects.prepare_new(resource, body, namespace)
        except kubeobjects.Invalid as error:
            raise invalid_error(resource, name, error) from None
        except kubeobjects.BadRequest as error:
            raise ApiError(400, "BadRequest", str(error)) from None
        name = obj["metadata"]["name"]
        self._check_namespace(target)
        if dry_run(request):
            return json_response(as_served(resource, obj), 201)
        try:
            created = self.store.create(resource.key, namespace, obj)
        except StoreError as error:
            raise from_store(error, resource, name) from None
        return json_response(as_served(resource, created), 201)

    async def update(self, request: web.Request, target: Target) -> web.StreamResponse:
        body = await read_body(request)
        return self._replace(request, target, body)

    def _replace(self, request: web.Request, target: Target, body: Obj) -> web.StreamResponse:
        resource = target.resource
        assert target.name is not None
        if target.subresource not in (None, "status"):
            raise method_not_allowed()
        check_type(resource, body)
        namespace = target.namespace or ""
        try:
            obj = kubeobjects.prepare_replacement(resource, body, namespace, target.name)
        except kubeobjects.Invalid as error:
            raise invalid_error(resource, target.name, error) from None
        except kubeobjects.BadRequest as error:
            raise ApiError(400, "BadRequest", str(error)) from None
        status_only = target.subresource == "status"
        if not status_only and resource.has_status:
            obj.pop("status", None)  # the main resource ignores status; /status sets it
        if dry_run(request):
            current = read_object(self.store, target)
            merged = {**current, "status": obj.get("status")} if status_only else obj
            return json_response(as_served(resource, merged))
        try:
            updated = self.store.update(resource.key, namespace, obj, status=status_only)
        except StoreError as error:
            raise from_store(error, resource, target.name) from None
        return json_response(as_served(resource, updated))

    async def patch(self, request: web.Request, target: Target) -> web.StreamResponse:
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
                raise from_store(error, resource, target.name) from None
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
                       status_details(resource, target.name))

    async def _create_from(self, request: web.Request, target: Target, body: Obj) -> web.StreamResponse:
        resource = target.resource
        check_type(resource, body)
        try:
            obj = kubeobjects.prepare_new(resource, body, target.namespace or "")
        except kubeobjects.Invalid as error:
            raise invalid_error(resource, target.name or "", error) from None
        except kubeobjects.BadRequest as error:
            raise ApiError(400, "BadRequest", str(error)) from None
        self._check_namespace(target)
        if dry_run(request):
            return json_response(as_served(resource, obj), 201)
        try:
            created = self.store.create(resource.key, target.namespace or "", obj)
        except StoreError as error:
            raise from_store(error, resource, target.name or "") from None
        return json_response(as_served(resource, created), 201)

    async def delete(self, request: web.Request, target: Target) -> web.StreamResponse:
        resource = target.resource
        assert target.name is not None
        if target.subresource is not None:
            raise method_not_allowed()
        options: Obj = {}
        if request.can_read_body:
            text = (await request.read()).decode("utf-8", errors="replace")
            if text.strip():
                try:
                    options = json.loads(text)
                except ValueError as error:
                    raise ApiError(400, "BadRequest", f"error decoding DeleteOptions: {error}") from None
        current = read_object(self.store, target)
        preconditions = options.get("preconditions") or {}
        for field_name, have in (("uid", current["metadata"].get("uid")),
                                 ("resourceVersion", current["metadata"].get("resourceVersion"))):
            wanted = preconditions.get(field_name)
            if wanted and wanted != have:
                raise ApiError(409, "Conflict", f"Precondition failed: {field_name}: {wanted}, "
                               f"but it is {have}", status_details(resource, target.name))
        policy = (request.query.get("propagationPolicy") or options.get("propagationPolicy")
                  or ("Orphan" if options.get("orphanDependents") else None)
                  or ("Orphan" if resource.kind == "Job" else "Background"))
        if dry_run(request):
            return json_response(success_status(resource, target.name, current))
        namespace = target.namespace or ""
        if resource.kind == "Namespace":
            self._delete_namespace_contents(target.name)
        try:
            deleted = self.store.delete(resource.key, namespace, target.name)
        except StoreError as error:
            raise from_store(error, resource, target.name) from None
        if policy in ("Background", "Foreground") and resource.namespaced:
            self._delete_dependents(namespace, str(deleted["metadata"].get("uid", "")))
        if resource.kind == "Pod":
            self.pod_logs.forget(namespace, target.name)
        if resource.kind in RETURNS_DELETED:
            return json_response(as_served(resource, deleted))
        return json_response(success_status(resource, target.name, deleted))

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
