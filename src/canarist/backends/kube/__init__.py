"""Kubernetes: configuration (kubeconfig, in-cluster), authenticated requests, the calls
canarist makes, and their failures by kind.

No Kubernetes client library: `config` reads kubeconfigs as client-go does, `transport`
sends requests with the standard library, `client` builds every path and reads plain JSON.
"""

from canarist.backends.kube.client import (
    CRONJOBS,
    INFERENCE_SERVICES,
    JOBS,
    NAMESPACES,
    PODS,
    ROLE_BINDINGS,
    ROLES,
    SECRETS,
    SERVICE_ACCOUNTS,
    SERVICES,
    ClusterCalls,
    KubeClient,
    Resource,
)
from canarist.backends.kube.config import ClusterConfig, load_configuration
from canarist.backends.kube.errors import (
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    KubeUnauthorized,
    KubeUnreachable,
)

__all__ = [
    "CRONJOBS", "INFERENCE_SERVICES", "JOBS", "NAMESPACES", "PODS", "ROLES", "ROLE_BINDINGS",
    "SECRETS", "SERVICES", "SERVICE_ACCOUNTS", "ClusterCalls", "ClusterConfig", "KubeClient",
    "KubeConflict", "KubeError", "KubeForbidden", "KubeInvalid", "KubeNotFound",
    "KubeUnauthorized", "KubeUnreachable", "Resource", "load_configuration",
]
