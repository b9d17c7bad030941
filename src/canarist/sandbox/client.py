"""Sending manifests to a running sandbox through its Kubernetes API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from canarist.backends.clock import poll
from canarist.backends.kube import (
    INFERENCE_SERVICES,
    KubeClient,
    KubeError,
    KubeNotFound,
    KubeUnreachable,
)
from canarist.core.errors import InputError, UnavailableError
from canarist.sandbox.isvc_manifest import API_VERSION, KIND, ManifestError, validate_manifest

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "inferenceservices"
TIMEOUT_S = 10.0
POLL_S = 0.5

Obj = dict[str, Any]


def load_manifests(text: str, source: str) -> list[Obj]:
    """Every InferenceService in a YAML (or JSON) stream, checked strictly."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not docs:
        raise InputError(f"{source}: no manifest found")
    for index, doc in enumerate(docs, 1):
        where = f"{source}" + (f" (document {index})" if len(docs) > 1 else "")
        try:
            validate_manifest(doc)
        except ManifestError as exc:
            name = doc.get("metadata", {}).get("name") if isinstance(doc, dict) else None
            named = f"{KIND} {name}: " if isinstance(name, str) and exc.field != "kind" else ""
            raise InputError(f"{where}: {named}{exc}") from None
    return docs


class SandboxApi:
    """InferenceServices on the sandbox's API, with a kubeconfig the sandbox wrote."""

    def __init__(self, kubeconfig: Path) -> None:
        if not kubeconfig.exists():
            raise UnavailableError(f"{kubeconfig}: no kubeconfig; is the sandbox running? "
                                   "Start it with: canarist sandbox up")
        self.kube = KubeClient.connect(str(kubeconfig), timeout=TIMEOUT_S)
        self.server = self.kube.server

    def close(self) -> None:
        self.kube.close()

    def __enter__(self) -> SandboxApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def apply(self, doc: Obj, default_namespace: str = "default") -> str:
        """Create or replace one InferenceService; returns kubectl's kind of answer."""
        meta = doc["metadata"]
        name = meta["name"]
        namespace = meta.get("namespace") or default_namespace
        body = {key: value for key, value in doc.items() if key != "status"}
        body["metadata"] = {k: v for k, v in meta.items()
                            if k in ("name", "namespace", "labels", "annotations")}
        body["metadata"]["namespace"] = namespace
        label = f"inferenceservice.serving.kserve.io/{name}"
        with self._answers(f"{namespace}/{name}"):
            try:
                current = self.kube.get(INFERENCE_SERVICES, namespace, name)
            except KubeNotFound:
                self.kube.create(INFERENCE_SERVICES, namespace, body)
                return f"{label} created"
            if (current.get("spec") == body.get("spec")
                    and _same_meta(current.get("metadata", {}), body["metadata"])):
                return f"{label} unchanged"
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.kube.replace(INFERENCE_SERVICES, namespace, body)
            return f"{label} configured"

    def get(self, namespace: str, name: str) -> Obj:
        with self._answers(f"{namespace}/{name}"):
            return self.kube.get(INFERENCE_SERVICES, namespace, name)

    def delete(self, namespace: str, name: str) -> str:
        """Delete one InferenceService; returns kubectl's answer. InputError if there is none."""
        with self._answers(f"{namespace}/{name}"):
            try:
                self.kube.delete(INFERENCE_SERVICES, namespace, name)
            except KubeNotFound:
                raise InputError(f'{PLURAL}.{GROUP} "{name}" not found in namespace '
                                 f'"{namespace}"') from None
        return f'{KIND.lower()}.{GROUP} "{name}" deleted'

    def wait_ready(self, namespace: str, name: str, timeout_s: float) -> None:
        """Block until the InferenceService is Ready for its current spec, or raise why not."""
        def verdict_now() -> str:
            verdict = readiness(self.get(namespace, name))
            if verdict.startswith("failed: "):
                raise UnavailableError(f"{namespace}/{name} is not ready: {verdict[8:]}")
            return verdict

        verdict = poll(verdict_now, done=lambda verdict: verdict == "", timeout_s=timeout_s,
                       interval_s=POLL_S)
        if verdict == "":
            return
        raise UnavailableError(f"{namespace}/{name} was not ready within {timeout_s:g}s: {verdict}")

    def list(self) -> list[Obj]:
        with self._answers(PLURAL):
            return self.kube.list(INFERENCE_SERVICES, None)

    @contextlib.contextmanager
    def _answers(self, what: str) -> Iterator[None]:
        """The API's failures in the sandbox's words: a rejected request is the user's input
        (exit 2), anything else says the sandbox is not answering as it should (exit 3)."""
        try:
            yield
        except KubeUnreachable as error:
            raise UnavailableError(f"the sandbox API at {self.server} is not reachable: "
                                   f"{error.detail}") from None
        except KubeError as error:
            if 400 <= error.status < 500 and error.status not in (401, 403):
                raise InputError(f"{what}: {error.detail}") from None
            raise UnavailableError(f"{what}: the sandbox API answered {error.status}: "
                                   f"{error.detail}") from None


def readiness(obj: Obj) -> str:
    """"" when the object is Ready for its current generation with its newest revision;
    "failed: <reason: message>" when it cannot get there; otherwise what it waits for."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj.get("metadata", {}).get("generation"):
        return "waiting for the controller"
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready", {})
    predictor = (status.get("components") or {}).get("predictor") or {}
    if ready.get("status") == "False":
        cause = conditions.get("PredictorReady", ready)
        return f"failed: {cause.get('reason', '')}: {cause.get('message', '')}"
    if ready.get("status") == "True" and (
            predictor.get("latestCreatedRevision") == predictor.get("latestReadyRevision")):
        return ""
    return ready.get("message") or "waiting for the revision to become ready"


def _same_meta(current: Obj, wanted: Obj) -> bool:
    return all((current.get(k) or {}) == (wanted.get(k) or {}) for k in ("labels", "annotations"))
