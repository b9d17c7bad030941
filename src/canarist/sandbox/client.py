"""Sending manifests to a running sandbox through its Kubernetes API (official client)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, cast

import yaml

from canarist.backends.clock import poll
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
        from kubernetes import client, config

        if not kubeconfig.exists():
            raise UnavailableError(f"{kubeconfig}: no kubeconfig; is the sandbox running? "
                                   "Start it with: canarist sandbox up")
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig),  # type: ignore[no-untyped-call]
                                client_configuration=configuration)
        configuration.retries = 0
        self.server = configuration.host
        self.api = client.CustomObjectsApi(client.ApiClient(configuration))

    def close(self) -> None:
        self.api.api_client.close()

    def __enter__(self) -> SandboxApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def apply(self, doc: Obj, default_namespace: str = "default") -> str:
        """Create or replace one InferenceService; returns kubectl's kind of answer."""
        from kubernetes.client.exceptions import ApiException

        meta = doc["metadata"]
        name = meta["name"]
        namespace = meta.get("namespace") or default_namespace
        body = {key: value for key, value in doc.items() if key != "status"}
        body["metadata"] = {k: v for k, v in meta.items()
                            if k in ("name", "namespace", "labels", "annotations")}
        body["metadata"]["namespace"] = namespace
        label = f"inferenceservice.serving.kserve.io/{name}"
        try:
            try:
                current = cast(Obj, self.api.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _request_timeout=TIMEOUT_S))
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self.api.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, body, _request_timeout=TIMEOUT_S)
                return f"{label} created"
            if (current.get("spec") == body.get("spec")
                    and _same_meta(current.get("metadata", {}), body["metadata"])):
                return f"{label} unchanged"
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.api.replace_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, body, _request_timeout=TIMEOUT_S)
            return f"{label} configured"
        except ApiException as exc:
            raise _api_error(exc, f"{namespace}/{name}") from None
        except Exception as exc:  # urllib3 connection and timeout errors
            raise UnavailableError(f"the sandbox API at {self.server} is not reachable: "
                                   f"{type(exc).__name__}") from None

    def get(self, namespace: str, name: str) -> Obj:
        from kubernetes.client.exceptions import ApiException

        try:
            return cast(Obj, self.api.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=TIMEOUT_S))
        except ApiException as exc:
            raise _api_error(exc, f"{namespace}/{name}") from None
        except Exception as exc:
            raise UnavailableError(f"the sandbox API at {self.server} is not reachable: "
                                   f"{type(exc).__name__}") from None

    def delete(self, namespace: str, name: str) -> str:
        """Delete one InferenceService; returns kubectl's answer. InputError if there is none."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.api.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=TIMEOUT_S)
        except ApiException as exc:
            if exc.status == 404:
                raise InputError(f'{PLURAL}.{GROUP} "{name}" not found in namespace '
                                 f'"{namespace}"') from None
            raise _api_error(exc, f"{namespace}/{name}") from None
        except Exception as exc:
            raise UnavailableError(f"the sandbox API at {self.server} is not reachable: "
                                   f"{type(exc).__name__}") from None
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
        from kubernetes.client.exceptions import ApiException

        try:
            found = cast(Obj, self.api.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, _request_timeout=TIMEOUT_S))
        except ApiException as exc:
            raise _api_error(exc, PLURAL) from None
        except Exception as exc:
            raise UnavailableError(f"the sandbox API at {self.server} is not reachable: "
                                   f"{type(exc).__name__}") from None
        items: list[Obj] = found.get("items", [])
        return items


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


def _api_error(exc: Any, what: str) -> Exception:
    message = exc.reason or "error"
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        message = json.loads(exc.body).get("message", message)
    if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403):
        return InputError(f"{what}: {message}")
    return UnavailableError(f"{what}: the sandbox API answered {exc.status}: {message}")
