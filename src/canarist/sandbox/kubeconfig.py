"""A kubeconfig for the sandbox's API: one cluster, one token user, one context."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

CLUSTER = "canarist-sandbox"


def kubeconfig_dict(server_url: str, token: str, namespace: str = "default",
                    user: str = "canarist-sandbox-admin",
                    ca_data: bytes | None = None) -> dict[str, object]:
    cluster: dict[str, str] = {"server": server_url}
    if ca_data:
        cluster["certificate-authority-data"] = base64.b64encode(ca_data).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CLUSTER, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": CLUSTER,
                      "context": {"cluster": CLUSTER, "user": user, "namespace": namespace}}],
        "current-context": CLUSTER,
    }


def write_kubeconfig(path: str | os.PathLike[str], server_url: str, token: str,
                     namespace: str = "default", *, user: str = "canarist-sandbox-admin",
                     ca_data: bytes | None = None) -> Path:
    """Write a standard kubeconfig readable only by its owner (mode 0600); returns its path.

    `ca_data` is the PEM certificate to trust for an https server (`RunningApi.ca_data`).

    The file is created with mode 0600 before the token is written into it, and replaced
    atomically if it exists.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig_dict(server_url, token, namespace, user, ca_data),
                          sort_keys=False)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target
