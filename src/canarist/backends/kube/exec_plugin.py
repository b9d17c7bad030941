"""Credentials from a kubeconfig `exec` plugin (client-go's credential plugin protocol).

The plugin runs without a terminal, with the kubeconfig's `env` added to canarist's own and
`KUBERNETES_EXEC_INFO` describing the request; it prints an ExecCredential whose `status`
holds a bearer token or a client certificate and key. What it printed is kept until its
`expirationTimestamp`, or until the API server rejects it (401), as client-go does.
Its output is never logged or echoed: it is a secret.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from canarist.backends.kube.config import ClusterConfig, ExecPlugin
from canarist.core.errors import InputError, UnavailableError
from canarist.core.redact import redact_text

RUN_TIMEOUT_S = 60.0
MAX_OUTPUT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Issued:
    """What one run of the plugin gave: a token, or a client certificate and key (PEM)."""

    token: str | None = field(default=None, repr=False)
    client_cert: bytes | None = field(default=None, repr=False)
    client_key: bytes | None = field(default=None, repr=False)
    expires: float | None = None
    """Unix time after which the plugin runs again; None: until rejected."""


class ExecCredentials:
    """Runs the plugin when credentials are first needed, expired, or rejected."""

    def __init__(self, plugin: ExecPlugin, config: ClusterConfig, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.plugin = plugin
        self.config = config
        self.clock = clock
        self._issued: Issued | None = None
        self._lock = threading.Lock()

    def current(self) -> Issued:
        with self._lock:
            issued = self._issued
            if issued is None or (issued.expires is not None and self.clock() >= issued.expires):
                issued = self._issued = self._run()
            return issued

    def rejected(self, issued: Issued) -> None:
        """The server answered 401 to `issued`: the next request runs the plugin again."""
        with self._lock:
            if self._issued is issued:
                self._issued = None

    def _run(self) -> Issued:
        plugin, name = self.plugin, f"exec plugin {self.plugin.command}"
        env = {**os.environ, **dict(plugin.env), "KUBERNETES_EXEC_INFO": json.dumps(self._info())}
        try:
            done = subprocess.run([plugin.command, *plugin.args], env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=RUN_TIMEOUT_S, check=False)
        except FileNotFoundError:
            hint = f" ({' '.join(plugin.install_hint.split())[:300]})" if plugin.install_hint else ""
            raise InputError(f"{self.config.source}: {name}: command not found{hint}") from None
        except PermissionError:
            raise InputError(f"{self.config.source}: {name}: not executable") from None
        except subprocess.TimeoutExpired:
            raise UnavailableError(f"{self.config.source}: {name} gave no credential within "
                                   f"{RUN_TIMEOUT_S:g}s") from None
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            last = f": {redact_text(said[-1][:300])}" if said else ""
            raise UnavailableError(f"{self.config.source}: {name} failed with exit code "
                                   f"{done.returncode}{last}")
        return parse_credential(done.stdout, plugin.api_version, f"{self.config.source}: {name}")

    def _info(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"interactive": False}
        if self.plugin.provide_cluster_info:
            cluster: dict[str, Any] = {"server": self.config.server,
                                       "insecure-skip-tls-verify": self.config.insecure}
            if self.config.ca_data:
                cluster["certificate-authority-data"] = base64.b64encode(
                    self.config.ca_data).decode()
            if self.config.tls_server_name:
                cluster["tls-server-name"] = self.config.tls_server_name
            spec["cluster"] = cluster
        return {"apiVersion": self.plugin.api_version, "kind": "ExecCredential", "spec": spec}


def parse_credential(output: bytes, api_version: str, name: str) -> Issued:
    """The ExecCredential a plugin printed; UnavailableError naming what is wrong, never what
    it holds."""
    if len(output) > MAX_OUTPUT_BYTES:
        raise UnavailableError(f"{name}: printed more than 1 MiB")
    try:
        found = json.loads(output)
    except ValueError:
        raise UnavailableError(f"{name}: did not print an ExecCredential as JSON") from None
    if not isinstance(found, dict) or found.get("kind") != "ExecCredential":
        raise UnavailableError(f"{name}: printed JSON that is not an ExecCredential")
    if found.get("apiVersion") != api_version:
        raise UnavailableError(f"{name}: printed apiVersion {str(found.get('apiVersion'))[:80]}, "
                               f"expected {api_version}")
    status = found.get("status")
    if not isinstance(status, dict):
        raise UnavailableError(f"{name}: the ExecCredential has no status")
    token = status.get("token")
    cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
    if not (isinstance(token, str) and token) and not (isinstance(cert, str) and cert
                                                       and isinstance(key, str) and key):
        raise UnavailableError(f"{name}: the ExecCredential status has neither a token nor "
                               "clientCertificateData with clientKeyData")
    if isinstance(token, str) and token and not (token.isascii() and token.isprintable()):
        raise UnavailableError(f"{name}: the ExecCredential's token is not printable ASCII")
    return Issued(token=token if isinstance(token, str) and token else None,
                  client_cert=cert.encode() if isinstance(cert, str) and cert else None,
                  client_key=key.encode() if isinstance(key, str) and key else None,
                  expires=_expiry(status.get("expirationTimestamp"), name))


def _expiry(stamp: Any, name: str) -> float | None:
    if stamp is None:
        return None
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        raise UnavailableError(f"{name}: expirationTimestamp {str(stamp)[:40]} is not RFC 3339"
                               ) from None
    if moment.tzinfo is None:
        raise UnavailableError(f"{name}: expirationTimestamp {str(stamp)[:40]} has no time zone")
    return moment.timestamp()
