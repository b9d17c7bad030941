"""`canarist k` against the sandbox's Kubernetes API, through the official client."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import yaml
from tests.cli.test_kube_env import (
    CRONJOBS,
    JOBS,
    PODS,
    ROLES,
    SECRETS,
    SERVICE_ACCOUNTS,
    Cluster,
    cluster,
)
from tests.servers.http_target import ThreadedHttpTarget

from canarist.sandbox.jobs import wait_for

__all__ = ["cluster"]


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with ThreadedHttpTarget() as url:
        yield url


def experiment_args(url: str) -> list[str]:
    return ["--set", "tasks={http,assess}", "--set", f"http.url={url}/",
            "--set", "http.numRequests=5", "--set", "http.qps=50",
            "--set", "assess.SLOs.upper.http/error-count=0"]


def experiment_in(c: Cluster, group: str = "default") -> dict:
    secret = c.store.get(SECRETS, "default", group)
    return yaml.safe_load(base64.b64decode(secret["data"]["experiment.yaml"]))


def job_done(c: Cluster, name: str) -> bool:
    try:
        status = c.store.get(JOBS, "default", name).get("status") or {}
    except Exception:
        return False
    return bool(status.get("succeeded") or status.get("failed"))


def test_launch_job_runs_reports_asserts_logs_deletes(cluster: Cluster, target: str) -> None:
    done = cluster.k("launch", *experiment_args(target), "--set", "runner=job")
    assert done.returncode == 0, done.stderr
    assert "experiment launched" in done.stderr
    assert wait_for(lambda: job_done(cluster, "default-1-job"), 60)
    job = cluster.store.get(JOBS, "default", "default-1-job")
    pods = cluster.store.list(PODS, "default")
    log_text = cluster.api.pod_logs.read("default", pods[0]["metadata"]["name"])
    assert job["status"].get("succeeded") == 1, log_text
    assert experiment_in(cluster)["result"]["numCompletedTasks"] == 2

    report = cluster.k("report")
    assert report.returncode == 0, report.stderr
    assert "Experiment summary" in report.stdout or report.stdout

    asserted = cluster.k("assert", "-c", "completed,nofailure")
    assert asserted.returncode == 0, asserted.stderr
    assert "all conditions were satisfied" in asserted.stderr

    logs = cluster.k("log")
    assert logs.returncode == 0, logs.stderr
    assert "experiment logs from Kubernetes cluster indented-trace=below ..." in logs.stderr
    assert "\n  time=" in logs.stderr and "task 2: assess: completed" in logs.stderr

    deleted = cluster.k("delete")
    assert deleted.returncode == 0, deleted.stderr
    assert "experiment group default deleted" in deleted.stderr
    assert "Job default/default-1-job" in deleted.stderr
    assert cluster.names(SECRETS) == []
    assert cluster.names(JOBS) == [] and cluster.names(ROLES) == []
    assert cluster.names(SERVICE_ACCOUNTS) == []
    assert wait_for(lambda: cluster.names(PODS) == [], 10)


def test_cronjob_loops_and_relaunch_replaces(cluster: Cluster, target: str) -> None:
    done = cluster.k("launch", *experiment_args(target), "--set", "runner=cronjob",
                     "--set", "cronjobSchedule=* * * * * */2")
    assert done.returncode == 0, done.stderr
    assert cluster.names(CRONJOBS) == ["default-1-cronjob"]
    assert wait_for(lambda: experiment_in(cluster)["result"].get("numLoops", 0) >= 2, 60)
    again = cluster.k("launch", *experiment_args(target), "--set", "runner=job")
    assert again.returncode == 0, again.stderr
    assert "deleted CronJob default/default-1-cronjob" in again.stderr
    assert cluster.names(CRONJOBS) == []
    assert "default-2-job" in cluster.names(JOBS)
    secret = cluster.store.get(SECRETS, "default", "default")
    assert secret["metadata"]["annotations"]["canarist.dev/revision"] == "2"
    assert wait_for(lambda: job_done(cluster, "default-2-job"), 60)
    assert experiment_in(cluster)["result"]["numLoops"] == 1
    assert cluster.k("delete").returncode == 0
