"""The wire side of the sandbox's Kubernetes API: failures as `Status` objects, request
paths into targets and verbs, request bodies, and objects as the API serves them.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from canarist.sandbox import kubeobjects, kuberesources
from canarist.sandbox.kuberesources import ResourceDef
from canarist.sandbox.store import ObjectStore, StoreError

Obj = dict[str, Any]


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


def not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def status_details(resource: ResourceDef, name: str = "", **extra: Any) -> Obj:
    details: Obj = {"name": name} if name else {}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    details.update(extra)
    return details


def from_store(error: StoreError, resource: ResourceDef, name: str) -> ApiError:
    return ApiError(error.code, error.reason, error.message, status_details(resource, name))


def invalid_error(resource: ResourceDef, name: str, error: kubeobjects.Invalid) -> ApiError:
    details = status_details(resource, name)
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


def route(parts: list[str]) -> Target:
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        raise not_found_path()
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            raise not_found_path()
        group, version, rest = parts[1], parts[2], parts[3:]
    if rest[0] == "namespaces" and len(rest) >= 3:
        nested = kuberesources.find(group, version, rest[2])
        if nested is not None and nested.namespaced:
            if len(rest) > 5:
                raise not_found_path()
            return _target(nested, rest[1], rest[3] if len(rest) > 3 else None,
                           rest[4] if len(rest) > 4 else None)
    resource = kuberesources.find(group, version, rest[0])
    if resource is None:
        raise not_found_path()
    if resource.namespaced:
        if len(rest) != 1:
            raise not_found_path()
        return Target(resource, None)
    if len(rest) > 3:
        raise not_found_path()
    return _target(resource, None, rest[1] if len(rest) > 1 else None,
                   rest[2] if len(rest) > 2 else None)


def _target(resource: ResourceDef, namespace: str | None, name: str | None,
            sub: str | None) -> Target:
    if sub is not None and sub not in resource.subresources:
        raise not_found_path()
    return Target(resource, namespace, name, sub)


def verb_of(request: web.Request, target: Target) -> str:
    method = request.method
    if target.name is None:
        if method == "GET":
            return "watch" if request.query.get("watch") in ("true", "1") else "list"
        if method == "POST":
            return "create"
        raise method_not_allowed()
    if target.subresource == "log" and method != "GET":
        raise method_not_allowed()
    verbs = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if method not in verbs:
        raise method_not_allowed()
    return verbs[method]


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


async def read_body(request: web.Request) -> Obj:
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


def check_type(resource: ResourceDef, body: Obj) -> None:
    api_version = body.get("apiVersion")
    if api_version not in (None, "", resource.api_version):
        raise ApiError(400, "BadRequest", f"the API version in the data ({api_version}) does not match "
                       f"the expected API version ({resource.api_version})")
    kind = body.get("kind")
    if kind not in (None, "", resource.kind):
        raise ApiError(400, "BadRequest", f"the kind in the data ({kind}) does not match the expected "
                       f"kind ({resource.kind})")
    body["apiVersion"], body["kind"] = resource.api_version, resource.kind


def dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])


def as_served(resource: ResourceDef, obj: Obj, *, in_list: bool = False) -> Obj:
    out = copy.deepcopy(obj)
    if not resource.namespaced:
        out.get("metadata", {}).pop("namespace", None)
    if in_list and resource.builtin:
        out.pop("apiVersion", None)
        out.pop("kind", None)
    else:
        out["apiVersion"], out["kind"] = resource.api_version, resource.kind
    return out


def success_status(resource: ResourceDef, name: str, obj: Obj) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": status_details(resource, name, uid=obj.get("metadata", {}).get("uid", ""))}


def json_response(body: Obj, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body, separators=(",", ":")), status=status,
                        content_type="application/json")


def read_object(store: ObjectStore, target: Target) -> Obj:
    """The object `target` names, or the API's NotFound."""
    assert target.name is not None
    try:
        return store.get(target.resource.key, target.namespace or "", target.name)
    except StoreError as error:
        raise from_store(error, target.resource, target.name) from None
