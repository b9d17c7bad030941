"""A sandbox cluster for `canarist k` tests: the Kubernetes API subset on 127.0.0.1 with a
kubeconfig, and the Job/CronJob controller running pods as local processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.fakes import KUBE_TOKEN, fake_kube_api, kubeconfig_for

from canarist.sandbox.jobs import JobController
from canarist.sandbox.kubeapi import RunningApi
from canarist.sandbox.store import ObjectStore, ResourceKey

# `canarist` with the `k` commands registered, whether or not the app registers them yet.
PROGRAM = [sys.executable, "-c",
           "import sys; from canarist.cli.app import cli; from canarist.cli.kube import k\n"
           "if 'k' not in cli.commands: cli.add_command(k)\n"
           "from canarist.cli import main; main()"]

SECRETS = ResourceKey("", "v1", "secrets")
JOBS = ResourceKey("batch", "v1", "jobs")
CRONJOBS = ResourceKey("batch", "v1", "cronjobs")
PODS = ResourceKey("", "v1", "pods")
ROLES = ResourceKey("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = ResourceKey("rbac.authorization.k8s.io", "v1", "rolebindings")
SERVICE_ACCOUNTS = ResourceKey("", "v1", "serviceaccounts")


@dataclass
class Cluster:
    api: RunningApi
    kubeconfig: Path
    controller: JobController

    @property
    def store(self) -> ObjectStore:
        return self.api.store

    def canarist(self, *args: str, cwd: Path | None = None,
                 timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*PROGRAM, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False,
                              env=self.env())

    def env(self) -> dict[str, str]:
        """A bare environment for `canarist` (PYTHONPATH kept: it says which source runs)."""
        kept = {key: os.environ[key] for key in ("PYTHONPATH",) if key in os.environ}
        return {"KUBECONFIG": str(self.kubeconfig), "NO_COLOR": "1", "PATH": "/usr/bin:/bin",
                "HOME": str(self.kubeconfig.parent), **kept}

    def k(self, *args: str, cwd: Path | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return self.canarist("k", *args, cwd=cwd, timeout=timeout)

    def names(self, key: ResourceKey, namespace: str = "default") -> list[str]:
        return [obj["metadata"]["name"] for obj in self.store.list(key, namespace)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    api = fake_kube_api()
    try:
        kubeconfig = kubeconfig_for(api, tmp_path / "state" / "kubeconfig")
        controller = JobController(api.store, api_url=api.url, admin_token=KUBE_TOKEN,
                                   state_dir=tmp_path / "state", pod_logs=api.pod_logs,
                                   issue_token=api.issue_token, revoke_token=api.server.revoke_token,
                                   program=PROGRAM)
        with controller:
            yield Cluster(api, kubeconfig, controller)
    finally:
        api.stop()
