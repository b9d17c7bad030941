"""The controller on a real store with stand-in model-server processes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canarist.sandbox.controller import ISVC_KEY, Controller
from canarist.sandbox.isvc_manifest import Faults
from canarist.sandbox.routes import RouteTable
from canarist.sandbox.store import ObjectStore

MODEL_1 = "gs://kfserving-examples/models/sklearn/1.0/model"
MODEL_2 = "gs://kfserving-examples/models/sklearn/1.0/model-2"


@dataclass
class FakeProcess:
    revision: str
    namespace: str
    http_port: int
    grpc_port: int = 0
    pid: int = 0
    ready: bool = False
    running: bool = True
    log_path: Path = Path("/dev/null")
    faults: Faults = field(default_factory=Faults)

    def alive(self) -> bool:
        return self.running

    def failure(self) -> str:
        return "the model server exited with code 1; last log lines: boom"


@dataclass
class FakeRunner:
    outcome: dict[str, bool] = field(default_factory=dict)  # revision -> becomes ready?
    started: list[FakeProcess] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def start(self, namespace: str, revision: str, model_name: str, storage_uri: str,
              faults: Faults | None = None) -> FakeProcess:
        proc = FakeProcess(revision, namespace, 10_000 + len(self.started),
                           faults=faults or Faults())
        self.started.append(proc)
        return proc

    async def wait_ready(self, proc: FakeProcess) -> bool:
        await asyncio.sleep(0.01)
        proc.ready = self.outcome.get(proc.revision, True)
        return proc.ready

    async def stop(self, proc: FakeProcess) -> None:
        proc.running = False
        self.stopped.append(proc.revision)

    async def close(self) -> None:
        pass


def manifest(uri: str, canary: int | None = None, name: str = "sklearn-iris") -> dict[str, Any]:
    predictor: dict[str, Any] = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"predictor": predictor}}


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


def conditions(store: ObjectStore, name: str = "sklearn-iris") -> dict[str, dict[str, Any]]:
    status = store.get(ISVC_KEY, "default", name).get("status") or {}
    return {c["type"]: c for c in status.get("conditions", [])}


def test_controller_rollout_routes_and_teardown() -> None:
    async def scenario() -> None:
        store, routes, runner = ObjectStore(), RouteTable(), FakeRunner()
        controller = Controller(store, runner, routes)  # type: ignore[arg-type]
        controller.start()
        store.create(ISVC_KEY, "default", manifest(MODEL_1))
        await settle()
        assert conditions(store)["Ready"]["status"] == "True"
        route = routes.lookup("sklearn-iris.default.example.com")
        assert route is not None and [(b.http_port, p) for b, p in route.targets] == [(10_000, 100)]

        current = store.get(ISVC_KEY, "default", "sklearn-iris")
        current["spec"] = manifest(MODEL_2, canary=10)["spec"]
        store.update(ISVC_KEY, "default", current)
        await settle()
        route = routes.lookup("sklearn-iris.default.example.com")
        assert route is not None
        assert sorted((b.revision[-5:], p) for b, p in route.targets) == [("00001", 90), ("00002", 10)]
        prev = routes.lookup("prev-sklearn-iris-predictor-default.default.example.com")
        assert prev is not None and [b.revision[-5:] for b, _ in prev.targets] == ["00001"]

        store.delete(ISVC_KEY, "default", "sklearn-iris")
        await settle()
        assert sorted(runner.stopped) == ["sklearn-iris-predictor-default-00001",
                                          "sklearn-iris-predictor-default-00002"]
        assert routes.lookup("sklearn-iris.default.example.com") is None
        await controller.stop()

    asyncio.run(scenario())


def test_controller_reports_a_server_that_never_gets_ready() -> None:
    async def scenario() -> None:
        store, routes = ObjectStore(), RouteTable()
        runner = FakeRunner({"sklearn-iris-predictor-default-00001": False})
        controller = Controller(store, runner, routes)  # type: ignore[arg-type]
        controller.start()
        store.create(ISVC_KEY, "default", manifest(MODEL_1))
        await settle()
        found = conditions(store)
        assert found["Ready"]["status"] == "False"
        assert found["PredictorReady"]["reason"] == "ModelLoadFailed"
        assert "boom" in found["PredictorReady"]["message"]
        assert runner.stopped == ["sklearn-iris-predictor-default-00001"]
        await controller.stop()

    asyncio.run(scenario())


def test_controller_marks_an_invalid_spec() -> None:
    async def scenario() -> None:
        store, routes, runner = ObjectStore(), RouteTable(), FakeRunner()
        controller = Controller(store, runner, routes)  # type: ignore[arg-type]
        controller.start()
        bad = manifest(MODEL_1)
        del bad["spec"]["predictor"]["model"]["modelFormat"]
        store.create(ISVC_KEY, "default", bad)
        await settle()
        found = conditions(store)
        assert found["Ready"]["reason"] == "InvalidSpec"
        assert "spec.predictor.model.modelFormat" in found["Ready"]["message"]
        assert runner.started == []
        await controller.stop()

    asyncio.run(scenario())


ADDED_LATENCY = "sandbox.canarist.dev/added-latency-ms"
ERROR_RATE = "sandbox.canarist.dev/error-rate"


def test_an_annotation_change_starts_a_revision_with_its_faults() -> None:
    """Annotations leave metadata.generation alone; the controller still makes the revision."""
    async def scenario() -> None:
        store, routes, runner = ObjectStore(), RouteTable(), FakeRunner()
        controller = Controller(store, runner, routes)  # type: ignore[arg-type]
        controller.start()
        doc = manifest(MODEL_1)
        doc["metadata"]["annotations"] = {ADDED_LATENCY: "200"}
        store.create(ISVC_KEY, "default", doc)
        await settle()
        assert [(p.revision[-5:], p.faults) for p in runner.started] == [("00001", Faults(200.0, 0.0))]

        current = store.get(ISVC_KEY, "default", "sklearn-iris")
        current["metadata"]["annotations"][ERROR_RATE] = "0.5"  # metadata only
        assert store.update(ISVC_KEY, "default", current)["metadata"]["generation"] == 1
        await settle()
        assert [(p.revision[-5:], p.faults) for p in runner.started] == [
            ("00001", Faults(200.0, 0.0)), ("00002", Faults(200.0, 0.5))]
        status = store.get(ISVC_KEY, "default", "sklearn-iris")["status"]
        assert status["observedGeneration"] == 1
        predictor = status["components"]["predictor"]
        assert predictor["latestCreatedRevision"].endswith("00002")
        assert [(t["revisionName"][-5:], t["percent"]) for t in predictor["traffic"]] == [("00002", 100)]

        # labels and the annotations KServe does not copy make no revision
        current = store.get(ISVC_KEY, "default", "sklearn-iris")
        current["metadata"]["labels"] = {"team": "ml"}
        current["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
        store.update(ISVC_KEY, "default", current)
        await settle()
        assert len(runner.started) == 2
        assert len(controller.services[("default", "sklearn-iris")].revisions) == 2

        # a bad value written past the API's admission is reported, and nothing starts
        current = store.get(ISVC_KEY, "default", "sklearn-iris")
        current["metadata"]["annotations"][ERROR_RATE] = "often"
        store.update(ISVC_KEY, "default", current)
        await settle()
        found = conditions(store)
        assert found["Ready"]["reason"] == "InvalidSpec"
        assert found["Ready"]["message"] == (
            f'metadata.annotations.{ERROR_RATE}: expected a number between 0 and 1, got "often"')
        assert len(runner.started) == 2
        await controller.stop()

    asyncio.run(scenario())
