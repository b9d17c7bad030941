"""The sandbox's Job/CronJob controller: pods as local processes, schedules, Forbid, deletion."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.cli.test_kube_env import CRONJOBS, JOBS, PODS, Cluster, cluster

from canarist.sandbox.jobs import wait_for

__all__ = ["cluster"]


def pod_template(script: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "probe"}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "c", "image": "x", "command": ["sh", "-c", script],
                                     "env": [{"name": "GREETING", "value": "hello"}]}]}}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_job_runs_its_pod_and_records_the_log_and_status(cluster: Cluster) -> None:
    cluster.store.create(JOBS, "default", {"apiVersion": "batch/v1", "kind": "Job",
                                           "metadata": {"name": "once"},
                                           "spec": {"template": pod_template(
                                               "echo $GREETING; test -n \"$KUBECONFIG\"; exit 3")}})
    assert wait_for(lambda: (cluster.store.get(JOBS, "default", "once").get("status") or {})
                    .get("failed") == 1, 20)
    pod = cluster.store.list(PODS, "default")[0]
    assert pod["metadata"]["labels"]["app"] == "probe"
    assert pod["metadata"]["ownerReferences"][0]["name"] == "once"
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert cluster.api.pod_logs.read("default", pod["metadata"]["name"]) == "hello\n"


def test_cronjob_forbid_skips_while_running_and_delete_stops_processes(cluster: Cluster,
                                                                        tmp_path: Path) -> None:
    marker = tmp_path / "pids"
    cluster.store.create(CRONJOBS, "default", {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {"schedule": "* * * * * *", "concurrencyPolicy": "Forbid",
                 "jobTemplate": {"spec": {"template": pod_template(
                     f"echo $$ >> {marker}; sleep 60")}}}})
    assert wait_for(lambda: marker.exists(), 20)
    wait_for(lambda: False, 3)  # three more schedule ticks pass while the first job runs
    assert len(cluster.names(JOBS)) == 1
    pid = int(marker.read_text().split()[0])
    assert pid_alive(pid)
    done = cluster.k("report", "-g", "nothing")  # the API stays responsive meanwhile
    assert done.returncode == 2
    cluster.store.delete(CRONJOBS, "default", "tick")
    assert wait_for(lambda: not pid_alive(pid), 15)
    assert wait_for(lambda: cluster.names(JOBS) == [] and cluster.names(PODS) == [], 10)


def test_deleting_a_job_through_the_api_stops_its_process(cluster: Cluster, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    cluster.store.create(JOBS, "default", {"apiVersion": "batch/v1", "kind": "Job",
                                           "metadata": {"name": "long"},
                                           "spec": {"template": pod_template(
                                               f"echo $$ > {marker}; sleep 60")}})
    assert wait_for(lambda: marker.exists() and marker.read_text().strip() != "", 20)
    pid = int(marker.read_text())
    cluster.store.delete(JOBS, "default", "long")
    assert wait_for(lambda: not pid_alive(pid), 15)


def test_stop_ends_every_process(cluster: Cluster, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    cluster.store.create(JOBS, "default", {"apiVersion": "batch/v1", "kind": "Job",
                                           "metadata": {"name": "long"},
                                           "spec": {"template": pod_template(
                                               f"echo $$ > {marker}; sleep 60")}})
    assert wait_for(lambda: marker.exists() and marker.read_text().strip() != "", 20)
    pid = int(marker.read_text())
    cluster.controller.stop()
    assert not pid_alive(pid)
