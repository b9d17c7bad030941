"""Where each version answers: the versions listed, or those KServe discovery found.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from canarist.backends.inference import (
    Endpoint,
)
from canarist.core.agreement import (
    Protocol,
)
from canarist.core.errors import InputError, TaskError
from canarist.core.experiment import (
    KServeState,
)
from canarist.core.kserve import version_address
from canarist.tasks.agreement.inputs import AgreementInputs, is_grpc

log = logging.getLogger("canarist")


@dataclass(frozen=True)
class Targets:
    endpoints: list[Endpoint | None]
    """One per version; None for a version nothing can reach (an unrouted revision)."""
    baseline: int
    protocol: Protocol


def explicit_targets(inputs: AgreementInputs) -> Targets:
    protocol = inputs.resolved_protocol()
    endpoints: list[Endpoint | None] = []
    for version in inputs.versions or []:
        url = version.url or inputs.url or ""
        headers = {**(inputs.headers or {}), **(version.headers or {})}
        endpoints.append(Endpoint(url, headers, protocol, inputs.model or ""))
    return Targets(endpoints, 1 if inputs.baseline is None else inputs.baseline, protocol)


def discovered_targets(inputs: AgreementInputs, found: KServeState | None) -> Targets:
    """Each discovered version through its tag host: the ingress (or `url`, gRPC's address)
    with the tag host in `Host`, or the tag URL itself."""
    if found is None:
        raise TaskError("agreement.kserve needs the versions of an InferenceService: set "
                        "kserve.isvc")
    protocol = inputs.resolved_protocol()
    model = inputs.model or found.isvc
    path = inputs.url if inputs.url and inputs.url.startswith("/") else (
        f"/v2/models/{model}/infer" if protocol == "v2" else f"/v1/models/{model}:predict")
    endpoints: list[Endpoint | None] = []
    for version in found.versions:
        address = version_address(version, found.ingress)
        if address is None:
            log.warning("agreement: %s %s has no tag host (it is not routed); it is not "
                        "compared", version.role, version.revision)
            endpoints.append(None)
            continue
        base, host = address
        headers = dict(inputs.headers or {})
        if protocol == "grpc":  # the tag host as authority, at the ingress or the tag URL
            target = inputs.url if inputs.url and is_grpc(inputs.url) else None
            if target is None:  # the tag URL's host and port: HTTP/2 on the same port
                parts = urlsplit(version.url)
                port = parts.port or (443 if parts.scheme == "https" else 80)
                scheme = "grpcs" if parts.scheme == "https" else "grpc"
                target = f"{scheme}://{parts.hostname}:{port}"
            headers["Host"] = version.host
            endpoints.append(Endpoint(target, headers, protocol, model))
        else:
            if host:
                headers["Host"] = host
            endpoints.append(Endpoint(base + path, headers, protocol, model))
    roles = [v.role for v in found.versions]
    baseline = inputs.baseline if inputs.baseline is not None else (
        roles.index("baseline") if "baseline" in roles else 0)
    if baseline >= len(endpoints):
        raise InputError(f"agreement.baseline: there is no version {baseline}; "
                         f"{found.isvc} has {len(endpoints)} version(s)")
    return Targets(endpoints, baseline, protocol)
