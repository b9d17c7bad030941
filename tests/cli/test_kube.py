"""`canarist k` against the sandbox's Kubernetes API, through the official client."""

from __future__ import annotations

import base64
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.cli.test_kube_env import (
    CRONJOBS,
    JOBS,
    PODS,
    PROGRAM,
    ROLES,
    SECRETS,
    SERVICE_ACCOUNTS,
    Cluster,
    cluster,
)
from tests.servers.http_target import ThreadedHttpTarget

from canarist.backends import kube
from canarist.backends.kube import KubeClient
from canarist.sandbox.jobs import wait_for
from canarist.sandbox.kubeconfig import write_kubeconfig
from canarist.sandbox.store import ResourceKey

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
                     "--set", "cronjobSchedule=@every 2s")
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


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def test_runner_none_then_run_by_hand_with_iter8_spellings(cluster: Cluster, target: str,
                                                           tmp_path: Path) -> None:
    done = cluster.k("launch", *experiment_args(target), "--group", "manual")
    assert done.returncode == 0, done.stderr
    assert cluster.names(JOBS) == [] and cluster.names(CRONJOBS) == []
    pending = cluster.k("assert", "--group", "manual", "--condition", "completed")
    assert pending.returncode == 1
    assert "experiment did not complete" in pending.stderr
    for _ in range(2):
        ran = cluster.k("run", "--group", "manual", "--reuseResult", cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
    assert experiment_in(cluster, "manual")["result"]["numLoops"] == 2
    asserted = cluster.k("assert", "-g", "manual", "-c", "completed", "-c", "nofailure,slos")
    assert asserted.returncode == 0, asserted.stderr
    text = cluster.k("report", "-g", "manual", "--outputFormat", "TEXT")
    assert text.returncode == 0, text.stderr
    assert "http/error-count" in text.stdout
    bad = cluster.k("report", "-g", "manual", "-o", "pdf")
    assert bad.returncode == 2 and "'pdf' is not one of" in one_error_line(bad.stderr)
    empty = cluster.k("log", "-g", "manual")
    assert empty.returncode == 0
    assert empty.stderr.rstrip().endswith("indented-trace=below ...")


def test_concurrent_k_runs_never_lose_a_loop(cluster: Cluster, target: str,
                                             tmp_path: Path) -> None:
    """Rounds of three `canarist k run --reuse-result` started together on one group: each
    run that exits 0 added one loop and its results; the others exit 3, naming the Secret
    and the holder, and changed nothing; no lease is left behind."""
    done = cluster.k("launch", "--group", "race", "--set", "tasks={http}",
                     "--set", f"http.url={target}/", "--set", "http.numRequests=30",
                     "--set", "http.qps=30")
    assert done.returncode == 0, done.stderr
    env = cluster.env()
    succeeded = refused = 0
    for _round in range(3):
        procs = [subprocess.Popen([*PROGRAM, "k", "run", "-g", "race", "--reuse-result"],
                                  cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
        outcomes = [(proc.pid, proc.wait(120), proc.communicate()[1]) for proc in procs]
        for _pid, code, stderr in outcomes:
            assert code in (0, 3), stderr
            if code == 0:
                succeeded += 1
                continue
            refused += 1
            line = one_error_line(stderr)
            found = re.fullmatch(
                r"Error: experiment group race in namespace default \(Secret default/race\) is "
                r"being run by another canarist run \(pid (\d+) on host \S+, lease until \S+Z "
                r"unless renewed\); this one stops without changing it", line)
            assert found, line
            assert int(found[1]) in {pid for pid, _, _ in outcomes}
        result = experiment_in(cluster, "race")["result"]
        counts = result["insights"]["nonHistMetricValues"][0]["http/request-count"]
        assert result["numLoops"] == len(counts) == succeeded
        secret = cluster.store.get(SECRETS, "default", "race")
        assert "canarist.dev/run-lease" not in secret["metadata"]["annotations"]
    assert refused > 0, "the runs never overlapped; the test proves nothing"


def test_dry_writes_manifest_and_creates_nothing(cluster: Cluster, target: str,
                                                 tmp_path: Path) -> None:
    done = cluster.k("launch", "--dry", *experiment_args(target), "--set", "runner=job",
                     "-n", "team-a", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote kubernetes manifest into manifest.yaml" in done.stderr
    assert "dry run complete" in done.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all((tmp_path / "manifest.yaml").read_text())]
    assert kinds == ["Secret", "ServiceAccount", "Role", "RoleBinding", "Job"]
    assert cluster.names(SECRETS) == [] and cluster.names(SECRETS, "team-a") == []


def test_errors_are_one_clear_line(cluster: Cluster, target: str, tmp_path: Path) -> None:
    missing = cluster.k("report", "--kubeconfig", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert "kubeconfig" in one_error_line(missing.stderr)
    context = cluster.k("report", "--context", "elsewhere")
    assert context.returncode == 2
    assert "elsewhere" in one_error_line(context.stderr)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = write_kubeconfig(tmp_path / "dead", f"http://127.0.0.1:{port}", "token")
    unreachable = cluster.k("report", "--kubeconfig", str(dead))
    assert unreachable.returncode == 3
    assert "cannot reach the Kubernetes API server" in one_error_line(unreachable.stderr)
    no_namespace = cluster.k("launch", *experiment_args(target), "-n", "nowhere")
    assert no_namespace.returncode == 2
    assert one_error_line(no_namespace.stderr) == "Error: namespace nowhere not found"
    for command in ("report", "delete", "log", "assert -c completed"):
        unknown = cluster.k(*command.split(), "-g", "ghost")
        if command == "log":
            assert unknown.returncode == 0  # no pods: nothing to show
            continue
        assert unknown.returncode == 2, command
        assert one_error_line(unknown.stderr) == \
            "Error: experiment group ghost not found in namespace default"
    schedule = cluster.k("launch", *experiment_args(target), "--set", "runner=cronjob",
                         "--set", "cronjobSchedule=every minute")
    assert schedule.returncode == 2
    assert "cronjobSchedule" in one_error_line(schedule.stderr)
    assert cluster.names(SECRETS) == []
    group = cluster.k("launch", *experiment_args(target), "-g", "Bad_Name")
    assert group.returncode == 2
    assert "not a valid experiment group name" in one_error_line(group.stderr)


def test_ready_runs_in_the_pod_with_only_its_roles(cluster: Cluster) -> None:
    isvcs = ResourceKey("serving.kserve.io", "v1beta1", "inferenceservices")
    cluster.store.create(isvcs, "default", {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "sklearn-iris"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    done = cluster.k("launch", "--set", "tasks={ready}", "--set", "ready.isvc=sklearn-iris",
                     "--set", "runner=job")
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: job_done(cluster, "default-1-job"), 60)
    pod = cluster.store.list(PODS, "default")[0]["metadata"]["name"]
    assert cluster.store.get(JOBS, "default", "default-1-job")["status"].get("succeeded") == 1, \
        cluster.api.pod_logs.read("default", pod)
    # the pod's token can read that InferenceService and the Secret, and nothing else
    token = cluster.api.issue_token("default", "default-canarist-sa")
    client = KubeClient.connect(str(write_kubeconfig(cluster.kubeconfig.parent / "sa", cluster.api.url,
                                                     token)))
    with client:
        client.get(kube.INFERENCE_SERVICES, "default", "sklearn-iris")
        client.get(kube.SECRETS, "default", "default")
        for resource, name in ((kube.SECRETS, "other"), (kube.INFERENCE_SERVICES, "other"),
                               (kube.PODS, pod), (kube.JOBS, "default-1-job")):
            with pytest.raises(kube.KubeForbidden):
                client.get(resource, "default", name)
        with pytest.raises(kube.KubeForbidden):
            client.list(kube.SECRETS, "default")
