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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from canarist.sandbox.isvc_manifest import (
    COMPONENT,
    DEFAULT_SUFFIX,
    DOMAIN,
    MODEL_URIS,
    SUPPORTED_FORMATS,
    Faults,
    revision_annotations,
    validate_sandbox_annotations,
)

Obj = dict[str, Any]
RevisionState = Literal["Pending", "Ready", "Failed"]


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
