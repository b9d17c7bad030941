"""KServe discovery and the progressive rollout, end to end on the sandbox.

One sandbox serves the module; each test deploys its own InferenceService, so that none
depends on another. Experiments are launched and looped with the CLI, as a user (or the
CronJob the sandbox runs) does; no value names a revision: discovery finds them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from tests.sandbox.test_lifecycle import kserve_python, sandbox_cli

from canarist.sandbox.client import SandboxApi

pytestmark = pytest.mark.slow

CANARIST = [sys.executable, "-m", "canarist"]
ROWS = [[6.8, 2.8, 4.8, 1.4]]
MODEL = "gs://kfserving-examples/models/sklearn/1.0/model"
SLOW_MODEL = "gs://kfserving-examples/models/sklearn/1.0/model-2"  # +15 ms a prediction
SLOWER = {"sandbox.canarist.dev/added-latency-ms": "200"}


class Cluster:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        status = sandbox_cli("status", "-o", "json", "--dir", str(state_dir))
        assert status.returncode == 0, status.stderr
        import json
        self.ports: dict[str, int] = json.loads(status.stdout)["ports"]
        self.kubeconfig = state_dir / "kubeconfig"

    def apply(self, name: str, model: str, *, canary: int | None = None,
              extra: dict[str, Any] | None = None,
              annotations: dict[str, str] | None = None) -> None:
        predictor: dict[str, Any] = {"model": {"modelFormat": {"name": "sklearn"},
                                               "storageUri": model}, **(extra or {})}
        if canary is not None:
            predictor["canaryTrafficPercent"] = canary
        doc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
               "metadata": {"name": name, "annotations": annotations or {}},
               "spec": {"predictor": predictor}}
        done = sandbox_cli("apply", "--dir", str(self.dir), "--wait", "-f", "-",
                           input_text=yaml.safe_dump(doc))
        assert done.returncode == 0, done.stdout + done.stderr

    def isvc(self, name: str) -> dict[str, Any]:
        with SandboxApi(self.kubeconfig) as api:
            return api.get("default", name)

    def patch_percent(self, name: str, percent: int) -> None:
        with SandboxApi(self.kubeconfig) as api:
            obj = api.get("default", name)
            obj["spec"]["predictor"]["canaryTrafficPercent"] = percent
            api.apply(obj)

    def canarist(self, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        env.pop("CANARIST_PROMETHEUS_URL", None)
        return subprocess.run([*CANARIST, *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=240, check=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    python = kserve_python()
    assert python is not None, "kserve is not installed: run ./scripts/setup"
    state_dir = tmp_path_factory.mktemp("rollout-sandbox")
    up = sandbox_cli("up", "--dir", str(state_dir), "--ports", "auto", "--kserve-python", python)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield Cluster(state_dir)
    finally:
        sandbox_cli("down", "--dir", str(state_dir), timeout=120)


class Traffic:
    """Predictions sent to an InferenceService's main host, split by the ingress, ~40/s."""

    def __init__(self, port: int, name: str) -> None:
        self.port, self.host = port, f"{name}.default.example.com"
        self.stop = threading.Event()
        self.statuses: list[int] = []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._send()), daemon=True)

    async def _send(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        url = f"http://127.0.0.1:{self.port}/v1/models/{self.host.split('.')[0]}:predict"
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self.stop.is_set():
                async with session.post(url, json={"instances": ROWS},
                                        headers={"Host": self.host}) as response:
                    await response.read()
                    self.statuses.append(response.status)
                await asyncio.sleep(0.025)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def prometheus_values(cluster: Cluster, name: str, *relative: str) -> list[str]:
    values = ["--set", "tasks={custommetrics,assess,rollout}",
              "--set", f"kserve.isvc={name}",
              "--set", "custommetrics.templates.kserve-prometheus=kserve-prometheus",
              "--set", "custommetrics.values.prometheusURL="
                       f"http://127.0.0.1:{cluster.ports['prometheus']}/api/v1/query",
              "--set", "rollout.steps={10,50,100}"]
    for objective in relative:
        values += ["--set", f"assess.relative.upper.{objective}"]
    return values


def http_values(cluster: Cluster, name: str, *more: str) -> list[str]:
    """Load each discovered version through its tag host; an SLO every answer meets."""
    values = ["--set", "tasks={http,assess,rollout}",
              "--set", f"kserve.isvc={name}",
              "--set", f"kserve.ingress=http://127.0.0.1:{cluster.ports['http']}",
              "--set-json", 'http.payloadStr={"instances": [[6.8, 2.8, 4.8, 1.4]]}',
              "--set", "http.numRequests=20", "--set", "http.qps=50",
              "--set", "assess.SLOs.upper.http/error-rate=0"]
    for value in more:
        values += ["--set", value]
    return values


def rollout_state(workdir: Path) -> dict[str, Any]:
    data = yaml.safe_load((workdir / "experiment.yaml").read_text())
    return dict(data["result"].get("rollout") or {})


def loop_until(cluster: Cluster, workdir: Path, states: set[str], loops: int,
               pause_s: float = 4.0) -> dict[str, Any]:
    for _ in range(loops):
        time.sleep(pause_s)
        done = cluster.canarist(workdir, "run", "--reuse-result")
        assert done.returncode == 0, done.stderr[-3000:]
        state = rollout_state(workdir)
        if state.get("state") in states:
            return state
    raise AssertionError(f"rollout did not reach {states}: {rollout_state(workdir)}")


def test_a_healthy_canary_is_stepped_to_100_and_promoted(cluster: Cluster, tmp_path: Path) -> None:
    name = "iris-promote"
    cluster.apply(name, MODEL)
    cluster.apply(name, MODEL, canary=10, extra={"minReplicas": 1})  # same model, new revision
    with Traffic(cluster.ports["http"], name) as traffic:
        time.sleep(10)
        launched = cluster.canarist(tmp_path, "launch", *prometheus_values(
            cluster, name, "kserve-prometheus/latency-mean=50%",
            "kserve-prometheus/error-rate=0.05"))
        assert launched.returncode == 0, launched.stderr[-3000:]
        state = loop_until(cluster, tmp_path, {"promoted", "rolled-back"}, loops=40)
    assert state["state"] == "promoted", state
    assert set(traffic.statuses) == {200}  # no request failed through the weight changes
    predictor = cluster.isvc(name)["status"]["components"]["predictor"]
    assert predictor["latestRolledoutRevision"] == f"{name}-predictor-default-00002"
    assert cluster.isvc(name)["spec"]["predictor"]["canaryTrafficPercent"] == 100
    moves = [(a["action"], a["from"], a["to"]) for a in state["actions"] if a["action"] != "hold"]
    assert moves == [("step", 10, 50), ("promote", 50, 100)]
    assert all(a["verdict"] == "pass" for a in state["actions"] if a["action"] != "hold")
    # the report and the JSON verdict carry the rollout
    shown = cluster.canarist(tmp_path, "report", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    import json
    verdict = json.loads(shown.stdout)
    assert verdict["rollout"]["state"] == "promoted"
    assert verdict["rollout"]["percent"] == 100
    assert [a["action"] for a in verdict["rollout"]["actions"] if a["action"] != "hold"] == [
        "step", "promote"]
    text = cluster.canarist(tmp_path, "report")
    assert "Rollout: promoted" in text.stdout


def test_a_slow_canary_is_rolled_back_to_0(cluster: Cluster, tmp_path: Path) -> None:
    name = "iris-rollback"
    cluster.apply(name, MODEL)
    cluster.apply(name, MODEL, canary=10, annotations=SLOWER)  # 200 ms more a prediction
    with Traffic(cluster.ports["http"], name):
        time.sleep(10)
        launched = cluster.canarist(tmp_path, "launch", *prometheus_values(
            cluster, name, "kserve-prometheus/latency-mean=50%"))
        assert launched.returncode == 0, launched.stderr[-3000:]
        state = rollout_state(tmp_path)
        if state.get("state") not in ("rolled-back",):
            state = loop_until(cluster, tmp_path, {"promoted", "rolled-back"}, loops=20)
    assert state["state"] == "rolled-back", state
    last = state["actions"][-1]
    assert (last["action"], last["from"], last["to"], last["verdict"]) == ("rollback", 10, 0, "fail")
    assert "latency-mean" in last["reason"]
    obj = cluster.isvc(name)
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0
    traffic = {t["revisionName"]: t["percent"] for t in
               obj["status"]["components"]["predictor"]["traffic"]}
    assert traffic.get(f"{name}-predictor-default-00001") == 100
    # later loops only report
    again = cluster.canarist(tmp_path, "run", "--reuse-result")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "rolled-back at 0 %; nothing to do" in again.stderr
    assert "task 2: custommetrics: skipped (the rollout is rolled-back" in again.stderr
    shown = cluster.canarist(tmp_path, "report")
    assert shown.stdout.startswith("\nVerdict: ✖ REJECTED (fail)\n")  # the decision stands
    assert cluster.isvc(name)["metadata"]["generation"] == obj["metadata"]["generation"]


def test_a_spec_changed_by_someone_else_stops_the_rollout_untouched(
    cluster: Cluster, tmp_path: Path
) -> None:
    name = "iris-race"
    cluster.apply(name, MODEL)
    cluster.apply(name, MODEL, canary=10, extra={"minReplicas": 1})
    launched = cluster.canarist(tmp_path, "launch", *http_values(
        cluster, name, "rollout.steps={10,50,100}"))
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert rollout_state(tmp_path)["percent"] == 50  # the first loop passed and stepped
    cluster.apply(name, SLOW_MODEL, canary=20)  # a new model, mid-rollout
    before = cluster.isvc(name)
    stopped = cluster.canarist(tmp_path, "run", "--reuse-result")
    assert stopped.returncode == 3, stopped.stderr[-2000:]
    assert "rollout stopped: InferenceService iris-race changed since the rollout began" \
        in stopped.stderr
    state = rollout_state(tmp_path)
    assert state["state"] == "stopped" and state["actions"][-1]["action"] == "stop"
    after = cluster.isvc(name)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"]["predictor"]["canaryTrafficPercent"] == 20
    # and it stays stopped
    again = cluster.canarist(tmp_path, "run", "--reuse-result")
    assert again.returncode == 3 and "rollout stopped earlier" in again.stderr
    assert cluster.isvc(name)["metadata"]["generation"] == before["metadata"]["generation"]


def _pend(workdir: Path, action: str, frm: int, to: int) -> None:
    """The state a loop killed between its patch and its record leaves behind."""
    path = workdir / "experiment.yaml"
    data = yaml.safe_load(path.read_text())
    data["result"]["rollout"]["pending"] = {
        "time": "2026-01-01T00:00:00Z", "action": action, "from": frm, "to": to,
        "verdict": "pass", "reason": "every candidate is within its allowance"}
    path.write_text(yaml.safe_dump(data))


def test_a_restart_between_patch_and_record_never_steps_twice(
    cluster: Cluster, tmp_path: Path
) -> None:
    name = "iris-restart"
    cluster.apply(name, MODEL)
    cluster.apply(name, MODEL, canary=10, extra={"minReplicas": 1})
    launched = cluster.canarist(tmp_path, "launch", *http_values(
        cluster, name, "rollout.steps={10,25,50,100}"))
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert rollout_state(tmp_path)["percent"] == 25
    # killed after patching 25 -> 50, before writing it down
    _pend(tmp_path, "step", 25, 50)
    cluster.patch_percent(name, 50)
    done = cluster.canarist(tmp_path, "run", "--reuse-result")
    assert done.returncode == 0, done.stderr[-2000:]
    state = rollout_state(tmp_path)
    assert state["percent"] == 50 and "pending" not in state
    assert cluster.isvc(name)["spec"]["predictor"]["canaryTrafficPercent"] == 50  # not 100
    last = state["actions"][-1]
    assert (last["action"], last["from"], last["to"]) == ("step", 25, 50)
    assert "recorded after a restart" in last["reason"]
    # killed after writing the intent, before patching: the intent is dropped, the loop decides
    _pend(tmp_path, "promote", 50, 100)
    done = cluster.canarist(tmp_path, "run", "--reuse-result")
    assert done.returncode == 0, done.stderr[-2000:]
    state = rollout_state(tmp_path)
    moves = [(a["action"], a["from"], a["to"]) for a in state["actions"]]
    assert moves == [("step", 10, 25), ("step", 25, 50), ("promote", 50, 100)]
    assert "recorded after a restart" not in state["actions"][-1]["reason"]
    assert cluster.isvc(name)["spec"]["predictor"]["canaryTrafficPercent"] == 100


def test_a_candidate_without_traffic_is_never_passed(cluster: Cluster, tmp_path: Path) -> None:
    name = "iris-dark"
    cluster.apply(name, MODEL)
    # a model the sandbox cannot load: the revision fails, Knative keeps routing the old one
    doc_model = "gs://kfserving-examples/models/sklearn/1.0/missing"
    predictor = {"canaryTrafficPercent": 10,
                 "model": {"modelFormat": {"name": "sklearn"}, "storageUri": doc_model}}
    doc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
           "metadata": {"name": name}, "spec": {"predictor": predictor}}
    applied = sandbox_cli("apply", "--dir", str(cluster.dir), "-f", "-",
                          input_text=yaml.safe_dump(doc))
    assert applied.returncode == 0, applied.stderr
    deadline = time.monotonic() + 60
    while cluster.isvc(name)["status"]["components"]["predictor"].get(
            "latestCreatedRevision") != f"{name}-predictor-default-00002":
        assert time.monotonic() < deadline
        time.sleep(1)
    launched = cluster.canarist(tmp_path, "launch", *http_values(
        cluster, name, "assess.relative.upper.http/error-rate=0.05"))
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert "is not Ready, so it gets no traffic" in launched.stderr
    state = rollout_state(tmp_path)
    assert state["state"] == "held" and state["percent"] == 10
    assert state["actions"][-1]["verdict"] == "inconclusive"
    assert cluster.isvc(name)["spec"]["predictor"]["canaryTrafficPercent"] == 10
    shown = cluster.canarist(tmp_path, "report", "-o", "json")
    import json
    verdict = json.loads(shown.stdout)
    assert verdict["verdict"] == "inconclusive"
    reason = verdict["comparisons"][0]["reason"]
    assert reason == (f"candidate {name}-predictor-default-00002 received 0 requests; its route "
                      "share is 0 % — is it Ready?")


def test_a_patch_on_a_stale_read_is_refused_and_retried_only_if_the_spec_held(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Optimistic concurrency between the rollout's read and its patch, with the real API:
    a label change (no spec change) is re-read and patched; a spec change stops the rollout."""
    import asyncio as aio
    from datetime import UTC, datetime

    from canarist.backends.kube import KubeClient
    from canarist.core.errors import UnavailableError
    from canarist.core.experiment import (
        Experiment,
        KServeState,
        RolloutAction,
        RolloutRecord,
        new_result,
    )
    from canarist.core.kserve import Decision
    from canarist.tasks import rollout
    from canarist.tasks.base import TaskContext

    name = "iris-conflict"
    cluster.apply(name, MODEL)
    cluster.apply(name, MODEL, canary=10, extra={"minReplicas": 1})
    checkpoints: list[str] = []
    record = RolloutRecord(percent=10, candidate=f"{name}-predictor-default-00002",
                           generation=cluster.isvc(name)["metadata"]["generation"])
    ctx = TaskContext(experiment=Experiment(spec=[], result=new_result(now=datetime.now(UTC))),
                      number=3, name="rollout", run_dir=tmp_path,
                      checkpoint=lambda: checkpoints.append(
                          "pending" if record.pending else "done"))
    state = KServeState(isvc=name, namespace="default", service=f"{name}-predictor-default",
                        generation=record.generation)

    def step(to: int) -> tuple[RolloutAction, Decision]:
        action = RolloutAction(time=datetime.now(UTC), action="step", to=to, verdict="pass",
                               reason="r", **{"from": record.percent})
        return action, Decision("step", to, "r")

    with KubeClient.connect(str(cluster.kubeconfig)) as client:
        handle = rollout._Cluster(client, state)
        stale = aio.run(handle.read())
        with SandboxApi(cluster.kubeconfig) as api:  # someone labels it: only metadata moves
            labelled = api.get("default", name)
            labelled["metadata"]["labels"] = {"team": "ml"}
            api.apply(labelled)
        assert cluster.isvc(name)["metadata"]["resourceVersion"] != \
            stale["metadata"]["resourceVersion"]
        aio.run(rollout._apply(handle, stale, record, *step(25), ctx))
        assert checkpoints == ["pending", "done"]  # the intent was on record before the patch
        assert (record.percent, record.generation) == (25, stale["metadata"]["generation"] + 1)
        assert cluster.isvc(name)["spec"]["predictor"]["canaryTrafficPercent"] == 25

        stale = aio.run(handle.read())
        cluster.patch_percent(name, 40)  # someone moves the split by hand
        with pytest.raises(UnavailableError, match="changed while the rollout patched it"):
            aio.run(rollout._apply(handle, stale, record, *step(50), ctx))
    assert record.state == "stopped" and record.pending is None
    assert cluster.isvc(name)["spec"]["predictor"]["canaryTrafficPercent"] == 40
