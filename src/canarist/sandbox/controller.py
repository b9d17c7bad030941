"""The InferenceService controller: store events in, model servers and status out.

It watches `serving.kserve.io/v1beta1` InferenceServices in the store. For each one it keeps
an `isvc.Service` (revisions and rollout bookkeeping), starts a model server per revision
that should run, stops the ones no longer needed, publishes the traffic split to the ingress
and writes `.status` through the status subresource. A revision is Ready only once its
server answers readiness; a server that dies or never gets ready fails its revision with
the last lines of its log as the message.

A revision comes from the spec and from the annotations KServe copies onto revisions, so a
change to either is acted on. An annotation change leaves `metadata.generation` as it is (as
the API server does for custom resources); `apply --wait` still sees the new revision, because
the API server and this controller share one event loop and the controller writes
`latestCreatedRevision` a couple of loop turns after the write, before the next request is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from canarist.sandbox import isvc, isvc_manifest
from canarist.sandbox.revisions import RevisionProcess, RevisionRunner
from canarist.sandbox.routes import Backend, Route, RouteTable
from canarist.sandbox.store import EventType, ObjectStore, ResourceKey, StoreError

log = logging.getLogger("canarist.sandbox")

ISVC_KEY = ResourceKey("serving.kserve.io", "v1beta1", "inferenceservices")
WATCH_INTERVAL_S = 1.0

Key = tuple[str, str]  # namespace, name


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ProcessInfo:
    namespace: str
    isvc: str
    revision: str
    pid: int
    http_port: int
    grpc_port: int
    ready: bool
    log: str


class Controller:
    def __init__(self, store: ObjectStore, runner: RevisionRunner, routes: RouteTable,
                 on_change: Callable[[], None] | None = None) -> None:
        self.store = store
        self.runner = runner
        self.routes = routes
        self.on_change = on_change
        self.services: dict[Key, isvc.Service] = {}
        self.processes: dict[tuple[str, str], RevisionProcess] = {}  # (namespace, revision)
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unwatch: Callable[[], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unwatch = self.store.watch(self._on_event, ISVC_KEY)
        for obj in self.store.list(ISVC_KEY):
            meta = obj["metadata"]
            self._enqueue((meta["namespace"], meta["name"]))
        self._spawn(self._run())
        self._spawn(self._watch_processes())

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(self.runner.stop(p) for p in self.processes.values()),
                             return_exceptions=True)
        self.processes.clear()
        await self.runner.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- events ---------------------------------------------------------------------------

    def _on_event(self, event: EventType, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata", {})
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        if event == "MODIFIED":
            known = self.services.get(key)
            if (known is not None and known.generation == meta.get("generation")
                    and known.annotations == isvc_manifest.revision_annotations(meta.get("annotations"))):
                return  # a status write, or a change to labels or uncopied annotations
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._enqueue, key)

    def _enqueue(self, key: Key) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    async def _run(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                await self.reconcile(*key)
            except Exception:
                log.exception("reconciling InferenceService %s/%s failed", *key)

    # -- reconcile ------------------------------------------------------------------------

    async def reconcile(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        try:
            obj = self.store.get(ISVC_KEY, namespace, name)
        except StoreError:
            await self._remove(key)
            return
        service = self.services.get(key)
        if service is None:
            service = self.services[key] = isvc.Service(name, namespace)
        generation = int(obj["metadata"].get("generation", 1))
        annotations = obj["metadata"].get("annotations") or {}
        if (generation != service.generation
                or isvc_manifest.revision_annotations(annotations) != service.annotations):
            try:
                isvc_manifest.validate_sandbox_annotations(annotations, "metadata.annotations")
                spec = isvc_manifest.validate_spec(obj.get("spec"))
            except isvc_manifest.ManifestError as exc:
                service.generation = generation
                service.annotations = isvc_manifest.revision_annotations(annotations)
                self._write_invalid(obj, str(exc))
                return
            created = service.apply(spec, generation, annotations)
            if created is not None:
                problem = isvc.support_problem(created.model)
                if problem is not None:
                    service.set_state(created.name, "Failed", *problem)
                faults = created.faults
                log.info("InferenceService %s/%s: revision %s%s", namespace, name, created.name,
                         f" (faults: {faults.describe()})" if faults else "")
        service.reconcile()
        self._converge_processes(service)
        service.reconcile()
        self._publish(service)
        self._write_status(service, obj)
        if self.on_change is not None:
            self.on_change()

    def _converge_processes(self, service: isvc.Service) -> None:
        wanted = service.wanted_running()
        for revision in service.revisions:
            pkey = (service.namespace, revision.name)
            running = self.processes.get(pkey)
            if revision.name in wanted and running is None and revision.state != "Failed":
                model = revision.model
                proc = self.runner.start(service.namespace, revision.name, service.name,
                                         model.storage_uri, revision.faults)
                self.processes[pkey] = proc
                service.set_state(revision.name, "Pending")
                self._spawn(self._await_ready(service, proc))
            elif revision.name not in wanted and running is not None:
                del self.processes[pkey]
                self._spawn(self.runner.stop(running))

    async def _await_ready(self, service: isvc.Service, proc: RevisionProcess) -> None:
        ready = await self.runner.wait_ready(proc)
        if self.processes.get((proc.namespace, proc.revision)) is not proc:
            return
        if ready:
            service.set_state(proc.revision, "Ready")
        else:
            service.set_state(proc.revision, "Failed", "ModelLoadFailed", proc.failure())
            del self.processes[(proc.namespace, proc.revision)]
            await self.runner.stop(proc)
        self._enqueue((service.namespace, service.name))

    async def _watch_processes(self) -> None:
        """A ready server that dies fails its revision (traffic moves off it)."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            for pkey, proc in list(self.processes.items()):
                if proc.ready and not proc.alive():
                    del self.processes[pkey]
                    for service in self.services.values():
                        if service.namespace == proc.namespace and service.revision(proc.revision):
                            service.set_state(proc.revision, "Failed", "ModelLoadFailed",
                                              proc.failure())
                            self._enqueue((service.namespace, service.name))

    async def _remove(self, key: Key) -> None:
        service = self.services.pop(key, None)
        self.routes.publish(key[0], key[1], {})
        if service is None:
            return
        for revision in service.revisions:
            proc = self.processes.pop((service.namespace, revision.name), None)
            if proc is not None:
                await self.runner.stop(proc)
        if self.on_change is not None:
            self.on_change()

    # -- outputs --------------------------------------------------------------------------

    def _backend(self, service: isvc.Service, revision: str) -> Backend | None:
        proc = self.processes.get((service.namespace, revision))
        if proc is None or not proc.ready:
            return None
        return Backend(revision, service.component_name, service.namespace, service.name,
                       proc.http_port, proc.grpc_port)

    def _publish(self, service: isvc.Service) -> None:
        routes: dict[str, Route] = {}
        for host, tag in service.hosts().items():
            targets = [t for t in service.traffic if tag is None or t.tag == tag]
            backends = []
            for target in targets:
                backend = self._backend(service, target.revision)
                if backend is not None:
                    backends.append((backend, 100 if tag else target.percent))
            routes[host] = Route(service.name, service.namespace, tuple(backends))
        self.routes.publish(service.namespace, service.name, routes)

    def _write_status(self, service: isvc.Service, obj: dict[str, Any]) -> None:
        previous = obj.get("status") or {}
        status = isvc.status_doc(service, previous, now())
        if _comparable(status) == _comparable(previous):
            return
        try:
            self.store.update(ISVC_KEY, service.namespace,
                              {"metadata": {"name": service.name}, "status": status}, status=True)
        except StoreError as exc:
            log.warning("status of %s/%s not written: %s", service.namespace, service.name, exc)

    def _write_invalid(self, obj: dict[str, Any], message: str) -> None:
        meta = obj["metadata"]
        stamp = now()
        status = {"observedGeneration": meta.get("generation", 1), "conditions": [
            {"type": kind, "status": "False", "lastTransitionTime": stamp, "reason": "InvalidSpec",
             "message": message} for kind in ("PredictorReady", "Ready")]}
        with contextlib.suppress(StoreError):
            self.store.update(ISVC_KEY, meta["namespace"],
                              {"metadata": {"name": meta["name"]}, "status": status}, status=True)

    def process_table(self) -> list[ProcessInfo]:
        out = []
        for (namespace, revision), proc in sorted(self.processes.items()):
            owner = next((s.name for s in self.services.values()
                          if s.namespace == namespace and s.revision(revision)), "")
            out.append(ProcessInfo(namespace, owner, revision, proc.pid, proc.http_port,
                                   proc.grpc_port, proc.ready, str(proc.log_path)))
        return out


def _comparable(status: dict[str, Any]) -> Any:
    conditions = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                  for c in status.get("conditions") or []]
    return {**status, "conditions": conditions}
