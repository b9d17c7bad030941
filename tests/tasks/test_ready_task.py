"""The `ready` task against the sandbox's Kubernetes API, and the docs' examples."""

from __future__ import annotations

import asyncio
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.fakes import KUBE_TOKEN

from canarist.core.errors import InputError, TaskError, UnavailableError
from canarist.core.experiment import parse_experiment
from canarist.runners.engine import prepare
from canarist.sandbox.kubeapi import RunningApi
from canarist.sandbox.kubeconfig import write_kubeconfig
from canarist.sandbox.store import ResourceKey
from canarist.tasks.base import TaskContext
from canarist.tasks.ready import NotReady, ReadyInputs, check_condition, run
from canarist.tasks.registry import TASKS

ISVC = ResourceKey("serving.kserve.io", "v1beta1", "inferenceservices")
SERVICES = ResourceKey("", "v1", "services")
DOC = Path(__file__).parent.parent.parent / "docs" / "ready.md"


def add_isvc(kube_api: RunningApi, name: str = "sklearn-iris", ready: str | None = None,
             message: str = "") -> None:
    obj: dict[str, Any] = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                           "metadata": {"name": name}, "spec": {"predictor": {}}}
    created = kube_api.store.create(ISVC, "default", obj)
    if ready is not None:
        set_ready(kube_api, created, ready, message)


def set_ready(kube_api: RunningApi, obj: dict[str, Any], status: str, message: str = "") -> None:
    condition = {"type": "Ready", "status": status}
    if message:
        condition["message"] = message
    kube_api.store.update(ISVC, "default", {**obj, "status": {"conditions": [condition]}}, status=True)


def context(tmp_path: Path, kubeconfig: Path | str | None, kube_context: str | None = None) -> TaskContext:
    experiment = parse_experiment({"spec": []}, source="test")
    return TaskContext(experiment=experiment, number=1, name="ready", run_dir=tmp_path,
                       kubeconfig=str(kubeconfig) if kubeconfig else None, kube_context=kube_context)


def inputs(**values: Any) -> ReadyInputs:
    base = {"group": "serving.kserve.io", "version": "v1beta1", "resource": "inferenceservices",
            "name": "sklearn-iris", "condition": "Ready"}
    return ReadyInputs.model_validate({**base, **values})


def test_passes_once_the_isvc_becomes_ready(kube_api: RunningApi, kubeconfig: Path, tmp_path: Path) -> None:
    add_isvc(kube_api, ready="False", message="Revision not ready")

    flipping = threading.Event()

    def flip() -> None:
        time.sleep(1.5)
        flipping.set()
        set_ready(kube_api, kube_api.store.get(ISVC, "default", "sklearn-iris"), "True")

    flipper = threading.Thread(target=flip)
    flipper.start()
    asyncio.run(run(inputs(timeout="10s"), context(tmp_path, kubeconfig)))  # passes: no raise
    assert flipping.is_set()  # not ready until then: the task waited for it
    flipper.join()


def test_fails_after_the_timeout_with_the_condition_message(kube_api: RunningApi, kubeconfig: Path,
                                                            tmp_path: Path) -> None:
    add_isvc(kube_api, ready="False", message="Revision missing")
    with pytest.raises(TaskError) as failed:
        asyncio.run(run(inputs(timeout="2s"), context(tmp_path, kubeconfig)))
    assert failed.value.exit_code == 1
    assert failed.value.message.startswith(
        "inferenceservices sklearn-iris in default: condition Ready is False: Revision missing (after ")


def test_missing_object_and_missing_condition(kube_api: RunningApi, kubeconfig: Path, tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="inferenceservices sklearn-iris in default: not found"):
        asyncio.run(run(inputs(timeout="1ms"), context(tmp_path, kubeconfig)))
    add_isvc(kube_api, ready="True")
    with pytest.raises(TaskError, match="expected condition not found: Serving"):
        asyncio.run(run(inputs(timeout="1s", condition="Serving"), context(tmp_path, kubeconfig)))
    asyncio.run(run(inputs(timeout="1ms", condition="ready"), context(tmp_path, kubeconfig)))
    asyncio.run(run(inputs(timeout="1ms", condition=None), context(tmp_path, kubeconfig)))


def test_existence_only_in_another_namespace(kube_api: RunningApi, kubeconfig: Path, tmp_path: Path) -> None:
    kube_api.store.create(ResourceKey("", "v1", "namespaces"), "", {"metadata": {"name": "models"}})
    kube_api.store.create(SERVICES, "models", {"metadata": {"name": "web"}, "spec": {}})
    web = {"version": "v1", "resource": "services", "name": "web", "timeout": "1ms"}
    asyncio.run(run(ReadyInputs.model_validate({**web, "namespace": "models"}),
                    context(tmp_path, kubeconfig)))  # found there: no error
    with pytest.raises(TaskError, match="services web in default: not found"):
        asyncio.run(run(ReadyInputs.model_validate(web), context(tmp_path, kubeconfig)))


@pytest.mark.parametrize(("obj", "reason"), [
    ({}, "object has no status"),
    ({"status": {"url": "x"}}, "object has no status.conditions"),
    ({"status": {"conditions": [{"status": "True"}]}}, "a condition in status.conditions has no type"),
    ({"status": {"conditions": [{"type": "READY", "status": "unknown", "reason": "Pending"}]}},
     "condition READY is unknown: Pending"),
])
def test_condition_reasons(obj: dict[str, Any], reason: str) -> None:
    with pytest.raises(NotReady) as caught:
        check_condition(obj, "Ready")
    assert str(caught.value) == reason
    # the condition's type and status match case-insensitively: ready, not a NotReady
    assert check_condition({"status": {"conditions": [{"type": "ready", "status": "TRUE"}]}},
                           "Ready") is None


def test_bad_kubeconfig_is_input_error(tmp_path: Path, kubeconfig: Path) -> None:
    with pytest.raises(InputError, match=r"kubeconfig .*nope: no such file") as missing:
        asyncio.run(run(inputs(), context(tmp_path, tmp_path / "nope")))
    assert missing.value.exit_code == 2
    with pytest.raises(InputError, match="context other"):
        asyncio.run(run(inputs(), context(tmp_path, kubeconfig, "other")))


def test_unreachable_server_is_exit_3(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}", KUBE_TOKEN)
    with pytest.raises(UnavailableError) as caught:
        asyncio.run(run(inputs(timeout="1s"), context(tmp_path, path)))
    assert caught.value.exit_code == 3
    assert f"cannot reach the Kubernetes API server http://127.0.0.1:{port}" in caught.value.message


def test_forbidden_is_exit_3(kube_api: RunningApi, tmp_path: Path) -> None:
    kube_api.store.create(ResourceKey("", "v1", "serviceaccounts"), "default", {"metadata": {"name": "sa"}})
    path = write_kubeconfig(tmp_path / "sa", kube_api.url, kube_api.issue_token("default", "sa"))
    add_isvc(kube_api, ready="True")
    with pytest.raises(UnavailableError, match="is forbidden"):
        asyncio.run(run(inputs(timeout="1ms"), context(tmp_path, path)))


def test_invalid_inputs() -> None:
    for bad in ({"timeout": "10"}, {"timeout": "soon"}, {"name": ""}, {"resource": None},
                {"unknown": 1}):
        with pytest.raises(ValueError):
            inputs(**bad)


# -- the docs' examples ------------------------------------------------------------------

def doc_blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", DOC.read_text(), re.M | re.S)


def canarist(args: list[str], cwd: Path, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    env = {"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "canarist", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_doc_values_example_runs_against_the_sandbox(kube_api: RunningApi, kubeconfig: Path,
                                                     tmp_path: Path) -> None:
    (values,) = [b for b in doc_blocks("yaml") if b.startswith("# values.yaml\n")]
    (tmp_path / "values.yaml").write_text(values)
    creator = threading.Timer(1.0, add_isvc, args=(kube_api,), kwargs={"ready": "True"})
    creator.start()
    try:
        done = canarist(["launch", "-f", "values.yaml"], tmp_path, kubeconfig)
    finally:
        creator.cancel()
        creator.join()
    assert done.returncode == 0, done.stderr
    assert "task 1: ready: completed" in done.stderr
    assert kube_api.store.get(ISVC, "default", "sklearn-iris")


def test_doc_launch_example_waits_for_the_isvc(kube_api: RunningApi, kubeconfig: Path,
                                                tmp_path: Path) -> None:
    line = next(ln for b in doc_blocks("shell") for ln in b.splitlines()
                if ln.startswith("canarist launch "))
    args = shlex.split(line)[1:]
    args = [re.sub(r"ready\.timeout=\w+", "ready.timeout=2s", a) for a in args]
    add_isvc(kube_api, ready="False", message='Revision "sklearn-iris-predictor-00001" failed')
    done = canarist(args, tmp_path, kubeconfig)
    assert done.returncode == 1, done.stderr
    (text_block,) = doc_blocks("text")
    expected = text_block.strip().replace("10 attempts in 10s", "")
    assert expected.split(" (after")[0] in done.stderr
    assert "task 2" not in done.stderr


def test_doc_experiment_example_is_valid() -> None:
    (body,) = [b for b in doc_blocks("yaml") if b.startswith("# experiment.yaml\n")]
    experiment = parse_experiment(yaml.safe_load(body), source="docs/ready.md")
    prepared = prepare(experiment.spec, TASKS)
    assert [p.inputs.resource for p in prepared] == ["inferenceservices", "services"]  # type: ignore[attr-defined]
