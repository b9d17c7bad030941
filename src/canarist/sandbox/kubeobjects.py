"""What the API server does to objects on the way in: validation, defaults, Secret data."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Any

from canarist.sandbox.isvc_manifest import ManifestError, validate_sandbox_annotations
from canarist.sandbox.kuberesources import ResourceDef

Obj = dict[str, Any]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

# Required fields (dotted paths) per kind, checked on create and update.
REQUIRED: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.containers",),
    "Job": ("spec.template", "spec.template.spec.containers"),
    "CronJob": ("spec.schedule", "spec.jobTemplate", "spec.jobTemplate.spec.template.spec.containers"),
    "RoleBinding": ("roleRef", "roleRef.kind", "roleRef.name"),
}


class Invalid(ValueError):
    """An object the API rejects with 422 Invalid; `field` and `detail` become a cause."""

    def __init__(self, field: str, detail: str, cause: str = "FieldValueInvalid") -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
        self.cause = cause


class BadRequest(ValueError):
    """A request the API rejects with 400 BadRequest."""


def generate_name(prefix: str) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(5))


def validate_name(resource: ResourceDef, name: str) -> None:
    if resource.plural == "namespaces":
        ok, rule = bool(_LABEL_1123.match(name)) and len(name) <= 63, "a lowercase RFC 1123 label"
    elif resource.plural == "services":
        ok, rule = bool(_LABEL_1035.match(name)) and len(name) <= 63, "a DNS-1035 label"
    elif resource.group == "rbac.authorization.k8s.io":
        ok = name not in (".", "..") and not any(c in name for c in "/%")
        rule = "a path segment name"
    else:
        ok, rule = bool(_SUBDOMAIN.match(name)) and len(name) <= 253, "a lowercase RFC 1123 subdomain"
    if not ok:
        raise Invalid("metadata.name", f'Invalid value: "{name}": must be {rule}')


def _lookup(obj: Obj, path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_required(resource: ResourceDef, obj: Obj) -> None:
    for path in REQUIRED.get(resource.kind, ()):
        value = _lookup(obj, path)
        if value is None or value == [] or value == "":
            raise Invalid(path, "Required value", "FieldValueRequired")
    if resource.kind == "InferenceService":
        _admit_inference_service(obj)


def _admit_inference_service(obj: Obj) -> None:
    """The sandbox's admission check of an InferenceService: its `sandbox.canarist.dev/*`
    annotations (as KServe's webhook checks its own annotations). The rest of the spec is
    the controller's to judge (a bad one is reported in `.status`)."""
    for path in ("metadata.annotations", "spec.predictor.annotations"):
        try:
            validate_sandbox_annotations(_lookup(obj, path), path)
        except ManifestError as error:
            raise Invalid(error.field, error.detail) from None


def normalise_secret(obj: Obj) -> None:
    """Fold `stringData` into base64 `data` (stringData wins), as the API server does."""
    string_data = obj.pop("stringData", None)
    data = obj.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest("Secret in version \"v1\" cannot be handled as a Secret: data must be an object")
    for key, value in data.items():
        if not isinstance(value, str):
            raise BadRequest(f'Secret in version "v1" cannot be handled as a Secret: data[{key}] '
                             "must be a base64 string")
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f'Secret in version "v1" cannot be handled as a Secret: illegal base64 '
                             f"data in data[{key}]") from None
    if isinstance(string_data, dict):
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    for key in data:
        if not _SECRET_KEY.match(key):
            raise Invalid(f"data[{key}]", f'Invalid value: "{key}": a valid config key must consist '
                          "of alphanumeric characters, '-', '_' or '.'")
    if data or "data" in obj:
        obj["data"] = data
    obj.setdefault("type", "Opaque")


def _job_defaults(spec: Obj, name: str) -> None:
    for field, value in (("parallelism", 1), ("completions", 1), ("backoffLimit", 6),
                         ("completionMode", "NonIndexed"), ("suspend", False)):
        spec.setdefault(field, value)
    template = spec.setdefault("template", {})
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    if name:
        labels.setdefault("batch.kubernetes.io/job-name", name)
        labels.setdefault("job-name", name)
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/job-name": name}})
    template.setdefault("spec", {}).setdefault("restartPolicy", "Never")


def apply_defaults(resource: ResourceDef, obj: Obj) -> None:
    """Defaults the API server fills in on create (the subset the sandbox's clients read)."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
    name = str(obj.get("metadata", {}).get("name", ""))
    if resource.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    elif resource.kind == "Pod":
        obj["status"] = {"phase": "Pending"}
        if spec is not None:
            spec.setdefault("restartPolicy", "Always")
    elif resource.kind == "Service":
        obj["status"] = {"loadBalancer": {}}
        if spec is not None:
            spec.setdefault("type", "ClusterIP")
    elif resource.kind == "Job" and spec is not None:
        _job_defaults(spec, name)
    elif resource.kind == "CronJob" and spec is not None:
        for field, value in (("concurrencyPolicy", "Allow"), ("suspend", False),
                             ("successfulJobsHistoryLimit", 3), ("failedJobsHistoryLimit", 1)):
            spec.setdefault(field, value)
    elif resource.has_status:
        obj.pop("status", None)


def prepare_new(resource: ResourceDef, obj: Obj, namespace: str) -> Obj:
    """Check and complete an object for POST: names, metadata, kind, defaults."""
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise BadRequest("metadata must be an object")
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = generate_name(str(meta["generateName"]))
    name = meta.get("name")
    if not name:
        raise Invalid("metadata.name", "Required value: name or generateName is required",
                      "FieldValueRequired")
    if not isinstance(name, str):
        raise BadRequest("metadata.name must be a string")
    validate_name(resource, name)
    if resource.namespaced:
        if meta.get("namespace") not in (None, "", namespace):
            raise BadRequest("the namespace of the provided object does not match the namespace "
                             "sent on the request")
    else:
        meta.pop("namespace", None)
    for field in ("resourceVersion", "uid", "creationTimestamp", "generation", "deletionTimestamp",
                  "managedFields", "selfLink"):
        meta.pop(field, None)
    _check_labels(meta)
    if resource.kind == "Secret":
        normalise_secret(obj)
    apply_defaults(resource, obj)
    check_required(resource, obj)
    return obj


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _check_labels(meta: Obj) -> None:
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        raise BadRequest("metadata.labels must be an object")
    for key, value in labels.items():
        prefix, _, name = str(key).rpartition("/")
        if (not _LABEL_KEY_NAME.match(name) or len(name) > 63
                or (prefix and not _SUBDOMAIN.match(prefix))):
            raise Invalid("metadata.labels", f'Invalid value: "{key}": name part must consist of '
                          "alphanumeric characters, '-', '_' or '.'")
        if not isinstance(value, str) or not _LABEL_VALUE.match(value) or len(value) > 63:
            raise Invalid(f"metadata.labels[{key}]", f'Invalid value: "{value}": a valid label value '
                          "must be 63 characters or less and consist of alphanumeric characters, "
                          "'-', '_' or '.'")
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
            isinstance(v, str) for v in annotations.values()):
        raise BadRequest("metadata.annotations must map strings to strings")


def prepare_replacement(resource: ResourceDef, obj: Obj, namespace: str, name: str) -> Obj:
    """Check an object for PUT or the result of a PATCH."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise BadRequest("metadata must be an object")
    if meta.get("name") not in (None, name):
        raise BadRequest(f"the name of the object ({meta.get('name')}) does not match the name on "
                         f"the URL ({name})")
    meta["name"] = name
    if resource.namespaced and meta.get("namespace") not in (None, "", namespace):
        raise BadRequest("the namespace of the provided object does not match the namespace sent "
                         "on the request")
    _check_labels(meta)
    if resource.kind == "Secret":
        normalise_secret(obj)
    check_required(resource, obj)
    return obj
