"""InferenceService rules, as KServe (serverless mode, on Knative) applies them. No I/O.

* `validate_manifest` checks a `serving.kserve.io/v1beta1` InferenceService strictly and
  raises `ManifestError` naming the first bad field.
* `Service` is what the sandbox remembers about one InferenceService: its revisions and the
  rollout bookkeeping KServe keeps in `status.components.predictor`.
* `Service.apply(spec, annotations=...)` creates a revision `<name>-predictor-default-0000N`
  when the revision template changes: everything in `spec.predictor` except
  `canaryTrafficPercent`, and the InferenceService's annotations that KServe copies onto the
  revision (all but `NOT_PROPAGATED`).
* `Faults` are what a revision injects into its predictions, read from the sandbox's own
  annotations (`sandbox.canarist.dev/added-latency-ms`, `sandbox.canarist.dev/error-rate`);
  `validate_sandbox_annotations` checks them (the manifest check, the API server's admission
  and the controller all use it).
* `Service.reconcile()` computes the traffic targets as KServe writes them into the Knative
  route (`canaryTrafficPercent` splits between the latest revision and the last rolled-out
  one, tagged `latest` and `prev`), resolves `latestRevision: true` to the latest *ready*
  revision as Knative does, and applies KServe's promote and rollback bookkeeping until
  nothing changes.
* `status_doc` renders `.status` as KServe reports it.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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

RevisionState = Literal["Pending", "Ready", "Failed"]


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


# -- the predictor template ---------------------------------------------------------------

@dataclass(frozen=True)
class ModelRef:
    """What a revision serves."""

    model_format: str
    storage_uri: str


def template_of(spec: Obj, annotations: Mapping[str, str] | None = None) -> Obj:
    """The revision template: `spec.predictor` without `canaryTrafficPercent` (route, not
    config), and under `metadata.annotations` the InferenceService's annotations that KServe
    copies onto the revision."""
    predictor: Obj = copy.deepcopy(spec["predictor"])
    predictor.pop("canaryTrafficPercent", None)
    if "sklearn" in predictor:  # the pre-0.8 schema names the framework instead of a modelFormat
        legacy = predictor.pop("sklearn")
        predictor["model"] = {"modelFormat": {"name": "sklearn"}, **legacy}
    copied = revision_annotations(dict(annotations or {}))
    if copied:  # `metadata` cannot be a predictor field: validate_spec rejects it
        predictor["metadata"] = {"annotations": copied}
    return predictor


def model_of(template: Obj) -> ModelRef:
    model = template["model"]
    return ModelRef(str(model["modelFormat"]["name"]), str(model["storageUri"]))


def faults_of(template: Obj) -> Faults:
    """A revision's faults: its annotations, `spec.predictor.annotations` over the
    InferenceService's (as KServe merges them). Raises ManifestError if one is invalid."""
    merged = {**(template.get("metadata") or {}).get("annotations", {}),
              **(template.get("annotations") or {})}
    return validate_sandbox_annotations(merged, "annotations")


def support_problem(model: ModelRef) -> tuple[str, str] | None:
    """(reason, message) when the sandbox cannot serve the model, else None."""
    if model.model_format not in SUPPORTED_FORMATS:
        return ("NoSupportingRuntime",
                f"No runtime found to support predictor with model type: {model.model_format} "
                f"(the sandbox serves: {', '.join(SUPPORTED_FORMATS)})")
    if model.storage_uri not in MODEL_URIS:
        known = ", ".join(sorted(uri for uri in MODEL_URIS if "kfserving" in uri))
        return ("ModelLoadFailed",
                f'storageUri "{model.storage_uri}" is not a model the sandbox has; it serves {known} '
                "(and the same paths under gs://kserve-examples)")
    return None


# -- revisions, traffic and rollout bookkeeping --------------------------------------------

@dataclass
class Revision:
    name: str
    number: int
    template: Obj
    state: RevisionState = "Pending"
    reason: str = ""
    message: str = ""

    @property
    def model(self) -> ModelRef:
        return model_of(self.template)

    @property
    def faults(self) -> Faults:
        return faults_of(self.template)


@dataclass(frozen=True)
class Target:
    """A resolved traffic target, as in `status.components.predictor.traffic[]`."""

    revision: str
    percent: int
    latest: bool
    tag: str = ""


@dataclass
class Service:
    name: str
    namespace: str
    revisions: list[Revision] = field(default_factory=list)
    canary_percent: int | None = None
    latest_rolledout: str = ""
    previous_rolledout: str = ""
    traffic: list[Target] = field(default_factory=list)
    generation: int = 0
    annotations: dict[str, str] = field(default_factory=dict)  # as last applied, copied ones

    @property
    def component_name(self) -> str:
        """The Knative service (and configuration) of the predictor."""
        return f"{self.name}-{COMPONENT}-{DEFAULT_SUFFIX}"

    def revision_name(self, number: int) -> str:
        return f"{self.component_name}-{number:05d}"

    @property
    def latest_created(self) -> Revision | None:
        return self.revisions[-1] if self.revisions else None

    @property
    def latest_ready(self) -> Revision | None:
        ready = [r for r in self.revisions if r.state == "Ready"]
        return ready[-1] if ready else None

    def revision(self, name: str) -> Revision | None:
        return next((r for r in self.revisions if r.name == name), None)

    def apply(self, spec: Obj, generation: int = 0,
              annotations: Mapping[str, str] | None = None) -> Revision | None:
        """Take a new spec and the InferenceService's annotations; returns the revision they
        create, if the template changed."""
        predictor = spec["predictor"]
        percent = predictor.get("canaryTrafficPercent")
        self.canary_percent = int(percent) if percent is not None else None
        self.generation = generation
        self.annotations = revision_annotations(dict(annotations or {}))
        template = template_of(spec, annotations)
        latest = self.latest_created
        if latest is not None and _canonical(latest.template) == _canonical(template):
            return None
        number = latest.number + 1 if latest else 1
        revision = Revision(self.revision_name(number), number, template)
        self.revisions.append(revision)
        return revision

    def set_state(self, name: str, state: RevisionState, reason: str = "", message: str = "") -> None:
        revision = self.revision(name)
        if revision is not None:
            revision.state, revision.reason, revision.message = state, reason, message

    def route_spec(self) -> list[tuple[str | None, int, str]]:
        """The Knative route KServe writes: (revision or None for "latest", percent, tag)."""
        last = self.latest_rolledout
        if self.canary_percent is not None and last:
            targets: list[tuple[str | None, int, str]] = [(None, self.canary_percent, "latest")]
            if self.canary_percent < 100:
                targets.append((last, 100 - self.canary_percent, "prev"))
            return targets
        return [(None, 100, "")]

    def resolve(self) -> list[Target]:
        """Knative's route status: `latestRevision` targets go to the latest ready revision."""
        ready = self.latest_ready
        resolved: list[Target] = []
        for revision, percent, tag in self.route_spec():
            if revision is None:
                if ready is None:
                    continue
                resolved.append(Target(ready.name, percent, True, tag))
            else:
                resolved.append(Target(revision, percent, False, tag))
        return resolved

    def _propagate(self) -> None:
        """KServe's bookkeeping of rolled-out revisions from the route status."""
        ready, created = self.latest_ready, self.latest_created
        if ready is None or created is None:
            return
        per_revision: dict[str, int] = {}
        for target in self.traffic:
            per_revision[target.revision] = per_revision.get(target.revision, 0) + target.percent
        for target in self.traffic:
            if not (target.latest and target.revision == ready.name):
                continue
            if self.latest_rolledout != ready.name:
                if target.percent == 100:  # promoted: the latest ready revision takes everything
                    self.previous_rolledout = self.latest_rolledout
                    self.latest_rolledout = ready.name
            elif (ready.name == created.name and target.percent < 100
                  and per_revision.get(target.revision) == 100 and self.previous_rolledout):
                # rolled back after a promotion: pin traffic to the previously rolled-out one
                self.latest_rolledout = self.previous_rolledout

    def reconcile(self) -> list[Target]:
        """Route, then bookkeeping, until both settle (at most a few rounds)."""
        for _ in range(5):
            before = (self.traffic, self.latest_rolledout, self.previous_rolledout)
            self.traffic = self.resolve()
            self._propagate()
            if (self.traffic, self.latest_rolledout, self.previous_rolledout) == before:
                break
        return self.traffic

    def wanted_running(self) -> set[str]:
        """Revisions that keep a server: routed ones, the rollout history, the newest."""
        names = {t.revision for t in self.traffic}
        names.update(n for n in (self.latest_rolledout, self.previous_rolledout) if n)
        for revision in (self.latest_ready, self.latest_created):
            if revision is not None:
                names.add(revision.name)
        return {n for n in names if (r := self.revision(n)) is not None and r.state != "Failed"}

    # -- hosts ---------------------------------------------------------------------------

    def hosts(self) -> dict[str, str | None]:
        """Host names the ingress answers for this service -> a tag (None: the split)."""
        ns, name, component = self.namespace, self.name, self.component_name
        hosts: dict[str, str | None] = {
            f"{name}.{ns}.{DOMAIN}": None,
            f"{component}.{ns}.{DOMAIN}": None,
            f"{name}.{ns}.svc.cluster.local": None,
            f"{component}.{ns}.svc.cluster.local": None,
            f"{name}.{ns}": None,
            f"{component}.{ns}": None,
        }
        for tag in {t.tag for t in self.traffic if t.tag}:
            hosts[f"{tag}-{component}.{ns}.{DOMAIN}"] = tag
        return hosts


def _canonical(value: Obj) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# -- status ---------------------------------------------------------------------------------

CONDITION_TYPES = ("IngressReady", "LatestDeploymentReady", "PredictorConfigurationReady",
                   "PredictorReady", "PredictorRouteReady", "Ready", "RoutesReady")


@dataclass(frozen=True)
class Condition:
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""


def conditions_of(service: Service) -> dict[str, Condition]:
    """Knative's and KServe's conditions for the predictor, from the revisions' states."""
    created, ready = service.latest_created, service.latest_ready
    if created is None:
        config = Condition("Unknown", "RevisionMissing", "Configuration has no revision yet.")
    elif created.state == "Ready":
        config = Condition("True")
    elif created.state == "Failed":
        config = Condition("False", "RevisionFailed",
                           f'Revision "{created.name}" failed with message: {created.message}')
    else:
        config = Condition("Unknown", "RevisionMissing",
                           f'Configuration "{service.component_name}" is waiting for a Revision to '
                           "become ready.")
    if ready is not None and service.traffic:
        route = Condition("True")
    elif created is not None and created.state == "Failed":
        route = Condition("False", "RevisionFailed",
                          f'Revision "{created.name}" failed with message: {created.message}')
    else:
        route = Condition("Unknown", "RevisionMissing",
                          f'Configuration "{service.component_name}" is waiting for a Revision to '
                          "become ready.")
    if config.status == "True" and route.status == "True":
        predictor = Condition("True")
    elif "False" in (config.status, route.status):
        failing = config if config.status == "False" else route
        reason = created.reason if created is not None and created.reason else failing.reason
        predictor = Condition("False", reason, failing.message)
    else:
        predictor = Condition("Unknown", config.reason or route.reason,
                              config.message or route.message)
    ingress = Condition("True") if route.status == "True" else Condition(
        route.status, "PredictorRouteReady not ready", route.message)
    overall = predictor if predictor.status != "True" else ingress
    return {
        "IngressReady": ingress,
        "LatestDeploymentReady": _aggregate(config, "PredictorConfigurationReady not ready"),
        "PredictorConfigurationReady": config,
        "PredictorReady": predictor,
        "PredictorRouteReady": route,
        "Ready": overall,
        "RoutesReady": _aggregate(route, "PredictorRouteReady not ready"),
    }


def _aggregate(condition: Condition, reason: str) -> Condition:
    return condition if condition.status == "True" else Condition(condition.status, reason)


def status_doc(service: Service, previous: Mapping[str, Any] | None, now: str) -> Obj:
    """`.status` as KServe reports it; keeps lastTransitionTime of unchanged conditions."""
    before = {c.get("type"): c for c in (previous or {}).get("conditions") or []
              if isinstance(c, dict)}
    conditions = []
    for kind, cond in conditions_of(service).items():
        entry: Obj = {"type": kind, "status": cond.status}
        old = before.get(kind)
        entry["lastTransitionTime"] = (old.get("lastTransitionTime", now)
                                       if old and old.get("status") == cond.status else now)
        if cond.reason:
            entry["reason"] = cond.reason
        if cond.message:
            entry["message"] = cond.message
        if kind in ("PredictorConfigurationReady", "PredictorRouteReady") and cond.status != "True":
            entry["severity"] = "Info"
        conditions.append(entry)
    ns, component = service.namespace, service.component_name
    predictor: Obj = {}
    created, ready = service.latest_created, service.latest_ready
    if created is not None:
        predictor["latestCreatedRevision"] = created.name
    if ready is not None:
        predictor["latestReadyRevision"] = ready.name
    if service.latest_rolledout:
        predictor["latestRolledoutRevision"] = service.latest_rolledout
    if service.previous_rolledout:
        predictor["previousRolledoutRevision"] = service.previous_rolledout
    if service.traffic:
        predictor["traffic"] = [_target_doc(t, component, ns) for t in service.traffic]
    routed = conditions_of(service)["PredictorReady"].status == "True" or bool(service.traffic)
    if routed:
        predictor["url"] = f"http://{component}.{ns}.{DOMAIN}"
        predictor["address"] = {"url": f"http://{component}.{ns}.svc.cluster.local"}
    status: Obj = {"observedGeneration": service.generation, "conditions": conditions}
    if routed:
        status["url"] = f"http://{service.name}.{ns}.{DOMAIN}"
        status["address"] = {"url": f"http://{service.name}.{ns}.svc.cluster.local"}
    status["components"] = {COMPONENT: predictor}
    status["modelStatus"] = _model_status(service)
    return status


def _target_doc(target: Target, component: str, namespace: str) -> Obj:
    doc: Obj = {"latestRevision": target.latest, "percent": target.percent,
                "revisionName": target.revision}
    if target.tag:
        doc["tag"] = target.tag
        doc["url"] = f"http://{target.tag}-{component}.{namespace}.{DOMAIN}"
    return doc


def _model_status(service: Service) -> Obj:
    created = service.latest_created
    if created is None or created.state == "Pending":
        doc: Obj = {"transitionStatus": "InProgress",
                    "states": {"activeModelState": "Loaded" if service.latest_ready else "Pending",
                               "targetModelState": "Pending"}}
    elif created.state == "Ready":
        doc = {"transitionStatus": "UpToDate",
               "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"}}
    else:
        doc = {"transitionStatus": "BlockedByFailedLoad",
               "states": {"activeModelState": "Loaded" if service.latest_ready else "FailedToLoad",
                          "targetModelState": "FailedToLoad"},
               "lastFailureInfo": {"location": created.name, "reason": created.reason or "ModelLoadFailed",
                                   "message": created.message, "modelRevisionName": created.name}}
    doc["copies"] = {"failedCopies": 1 if created is not None and created.state == "Failed" else 0,
                     "totalCopies": len([r for r in service.revisions if r.state == "Ready"])}
    return doc
