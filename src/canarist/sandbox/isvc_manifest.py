"""An InferenceService manifest as KServe checks it (`validate_manifest`, `ManifestError`
naming the first bad field), and the sandbox's fault annotations (`Faults`,
`validate_sandbox_annotations`). No I/O.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
DOMAIN = "example.com"
COMPONENT = "predictor"
DEFAULT_SUFFIX = "default"

# storageUri -> the bundled model that stands in for it (see modelserver.py).
MODEL_URIS: dict[str, str] = {
    "gs://kfserving-examples/models/sklearn/1.0/model": "iris-logreg",
    "gs://kfserving-examples/models/sklearn/1.0/model-2": "iris-forest",
    "gs://kserve-examples/models/sklearn/1.0/model": "iris-logreg",
    "gs://kserve-examples/models/sklearn/1.0/model-2": "iris-forest",
}
SUPPORTED_FORMATS = ("sklearn",)

# The sandbox's annotations: faults each revision created from the spec injects.
SANDBOX_PREFIX = "sandbox.canarist.dev/"
ADDED_LATENCY = SANDBOX_PREFIX + "added-latency-ms"
ERROR_RATE = SANDBOX_PREFIX + "error-rate"
SANDBOX_ANNOTATIONS = (ADDED_LATENCY, ERROR_RATE)
# Annotations KServe does not copy onto the revision (its ServiceAnnotationDisallowedList):
# changing them creates no revision.
NOT_PROPAGATED = frozenset({
    "autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/max-scale",
    "internal.serving.kserve.io/storage-initializer-sourceuri",
    "kubectl.kubernetes.io/last-applied-configuration"})



class ManifestError(ValueError):
    """A manifest the sandbox rejects; `field` is the dotted path of the offending field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


# -- validation ---------------------------------------------------------------------------

_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_NAME_MAX = 45  # leaves room for "-predictor-default-00001" within a 63-character label
_TOP = {"apiVersion", "kind", "metadata", "spec", "status"}
_META = {"name", "namespace", "labels", "annotations",
         # set by the API server; accepted so that `get -o yaml` output can be re-applied
         "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"}
_SPEC = {"predictor"}
_EXTENSION = {"canaryTrafficPercent", "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric",
              "containerConcurrency", "timeout", "serviceAccountName", "labels", "annotations"}
_MODEL = {"modelFormat", "storageUri", "protocolVersion", "runtime", "resources", "env", "args"}
_LEGACY_SKLEARN = {"storageUri", "protocolVersion", "runtimeVersion", "resources", "env", "args"}
_FORMAT = {"name", "version"}
_PROTOCOLS = ("v1", "v2")
_INT_FIELDS = {"minReplicas": (0, None), "maxReplicas": (0, None), "scaleTarget": (1, None),
               "containerConcurrency": (0, None), "timeout": (1, None)}


def _mapping(value: Any, path: str) -> Obj:
    if not isinstance(value, dict):
        raise ManifestError(path, f"expected a mapping, got {_type_name(value)}")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(path, f"expected a non-empty string, got {_type_name(value)}")
    return value


def _integer(value: Any, path: str, low: int | None, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(path, f"expected an integer, got {_type_name(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ManifestError(path, f"must be {bounds}, got {value}")
    return value


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _unknown(obj: Obj, allowed: set[str], path: str) -> None:
    for key in obj:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ManifestError(where, "unknown field (allowed: " + ", ".join(sorted(allowed)) + ")")


def _required(obj: Obj, key: str, path: str) -> Any:
    if obj.get(key) is None:
        raise ManifestError(f"{path}.{key}", "required field is missing")
    return obj[key]


def validate_manifest(obj: Any) -> Obj:
    """Check an InferenceService manifest; returns it unchanged, or raises ManifestError."""
    doc = _mapping(obj, "(document)")
    _unknown(doc, _TOP, "")
    api_version = doc.get("apiVersion")
    if api_version != API_VERSION:
        raise ManifestError("apiVersion", f'expected "{API_VERSION}", got {json.dumps(api_version)}')
    if doc.get("kind") != KIND:
        raise ManifestError("kind", f'expected "{KIND}", got {json.dumps(doc.get("kind"))}')
    meta = _mapping(_top_required(doc, "metadata"), "metadata")
    _unknown(meta, _META, "metadata")
    validate_name(_required(meta, "name", "metadata"))
    if meta.get("namespace") is not None:
        namespace = _string(meta["namespace"], "metadata.namespace")
        if not _NAME.match(namespace) and not namespace.isalnum():
            raise ManifestError("metadata.namespace", f'"{namespace}" is not a valid namespace name')
    for key in ("labels", "annotations"):
        if meta.get(key) is not None:
            _string_map(meta[key], f"metadata.{key}")
    validate_sandbox_annotations(meta.get("annotations"), "metadata.annotations")
    validate_spec(_top_required(doc, "spec"))
    return doc


def _top_required(doc: Obj, key: str) -> Any:
    if doc.get(key) is None:
        raise ManifestError(key, "required field is missing")
    return doc[key]


def _string_map(value: Any, path: str) -> None:
    for key, item in _mapping(value, path).items():
        if not isinstance(item, str):
            hint = " (quote it)" if isinstance(item, int | float) else ""
            raise ManifestError(f"{path}.{key}", f"expected a string, got {_type_name(item)}{hint}")


def validate_name(name: Any) -> str:
    text = _string(name, "metadata.name")
    if not _NAME.match(text):
        raise ManifestError("metadata.name", f'"{text}" must start with a letter and contain only '
                            "lowercase letters, digits and '-' (a DNS-1035 label)")
    if len(text) > _NAME_MAX:
        raise ManifestError("metadata.name", f'"{text}" is longer than {_NAME_MAX} characters')
    return text


def validate_spec(spec: Any) -> Obj:
    """Check `spec` of an InferenceService; raises ManifestError naming the field."""
    body = _mapping(spec, "spec")
    _unknown(body, _SPEC, "spec")
    predictor = _mapping(_required(body, "predictor", "spec"), "spec.predictor")
    implementations = [key for key in predictor if key not in _EXTENSION]
    for key in implementations:
        if key not in ("model", "sklearn"):
            raise ManifestError(f"spec.predictor.{key}", "unknown or unsupported field (the sandbox "
                                "serves spec.predictor.model or spec.predictor.sklearn)")
    if len(implementations) != 1:
        raise ManifestError("spec.predictor.model", "required field is missing" if not implementations
                            else "exactly one of model or sklearn may be set")
    for key, (low, high) in _INT_FIELDS.items():
        if predictor.get(key) is not None:
            _integer(predictor[key], f"spec.predictor.{key}", low, high)
    if predictor.get("canaryTrafficPercent") is not None:
        _integer(predictor["canaryTrafficPercent"], "spec.predictor.canaryTrafficPercent", 0, 100)
    for key in ("serviceAccountName", "scaleMetric"):
        if predictor.get(key) is not None:
            _string(predictor[key], f"spec.predictor.{key}")
    for key in ("labels", "annotations"):
        if predictor.get(key) is not None:
            _string_map(predictor[key], f"spec.predictor.{key}")
    validate_sandbox_annotations(predictor.get("annotations"), "spec.predictor.annotations")
    if "model" in predictor:
        _validate_model(predictor["model"], "spec.predictor.model")
    else:
        _validate_legacy(predictor["sklearn"], "spec.predictor.sklearn")
    return body


def _validate_model(value: Any, path: str) -> None:
    model = _mapping(value, path)
    _unknown(model, _MODEL, path)
    fmt = _mapping(_required(model, "modelFormat", path), f"{path}.modelFormat")
    _unknown(fmt, _FORMAT, f"{path}.modelFormat")
    _string(_required(fmt, "name", f"{path}.modelFormat"), f"{path}.modelFormat.name")
    if fmt.get("version") is not None:
        _string(fmt["version"], f"{path}.modelFormat.version")
    _common_container(model, path)


def _validate_legacy(value: Any, path: str) -> None:
    model = _mapping(value, path)
    _unknown(model, _LEGACY_SKLEARN, path)
    _common_container(model, path)


def _common_container(model: Obj, path: str) -> None:
    _string(_required(model, "storageUri", path), f"{path}.storageUri")
    if model.get("protocolVersion") is not None and model["protocolVersion"] not in _PROTOCOLS:
        raise ManifestError(f"{path}.protocolVersion",
                            f'expected "v1" or "v2", got {json.dumps(model["protocolVersion"])}')
    for key in ("runtime", "runtimeVersion"):
        if model.get(key) is not None:
            _string(model[key], f"{path}.{key}")
    if model.get("resources") is not None:
        _mapping(model["resources"], f"{path}.resources")
    for key in ("env", "args"):
        if model.get(key) is not None and not isinstance(model[key], list):
            raise ManifestError(f"{path}.{key}", f"expected a list, got {_type_name(model[key])}")


# -- faults: the sandbox's annotations ----------------------------------------------------

@dataclass(frozen=True)
class Faults:
    """What a revision adds to every prediction: a pause, and a chance of failing."""

    added_latency_ms: float = 0.0
    error_rate: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.added_latency_ms or self.error_rate)

    def describe(self) -> str:
        """`added latency 200 ms, error rate 0.2` (the faults that are set)."""
        parts = []
        if self.added_latency_ms:
            parts.append(f"added latency {self.added_latency_ms:g} ms")
        if self.error_rate:
            parts.append(f"error rate {self.error_rate:g}")
        return ", ".join(parts) or "none"


_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _number(value: Any) -> float | None:
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def validate_sandbox_annotations(annotations: Any, path: str) -> Faults:
    """The faults that `sandbox.canarist.dev/*` annotations ask for; ManifestError naming the
    annotation if one is unknown or its value is not what it takes. Other annotations pass."""
    if not isinstance(annotations, dict):
        return Faults()
    latency, rate = 0.0, 0.0
    for key, value in annotations.items():
        if not str(key).startswith(SANDBOX_PREFIX):
            continue
        where = f"{path}.{key}"
        number = _number(value)
        if key == ADDED_LATENCY:
            if number is None or number < 0:
                raise ManifestError(where, "expected a number of milliseconds, 0 or more, got "
                                    + json.dumps(value))
            latency = number
        elif key == ERROR_RATE:
            if number is None or not 0 <= number <= 1:
                raise ManifestError(where, f"expected a number between 0 and 1, got {json.dumps(value)}")
            rate = number
        else:
            raise ManifestError(where, "unknown sandbox annotation (known: "
                                + ", ".join(SANDBOX_ANNOTATIONS) + ")")
    return Faults(latency, rate)


def revision_annotations(annotations: Any) -> dict[str, str]:
    """The InferenceService's annotations that KServe copies onto its revisions."""
    if not isinstance(annotations, dict):
        return {}
    return {str(k): str(v) for k, v in annotations.items() if k not in NOT_PROPAGATED}
