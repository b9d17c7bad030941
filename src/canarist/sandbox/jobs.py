"""The sandbox's Job and CronJob controller: pods are local processes.

* A Job gets one Pod object (labels from its template, owned by the Job) and the pod's
  container command runs as a local process. The process reaches the sandbox's API through
  a kubeconfig written for the pod: with a token of the pod's ServiceAccount when the
  ServiceAccount exists (so RBAC applies as in a cluster), else the administrator's.
  Output goes to a file the API serves as the pod's log. When the process ends the Pod and
  Job get their final status (Succeeded/Complete or Failed).
* A CronJob creates Jobs on its schedule (croniter syntax, which has a sixth field of
  seconds, and Kubernetes' `@every <duration>`: every so long after the last run) and
  honours `suspend`, `concurrencyPolicy: Forbid` (skip while a Job runs), `Replace`, and the
  history limits.
* Deleting a Pod, Job or CronJob stops the processes it led to.

Store listeners only queue events; one worker thread does everything else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from croniter import croniter

from canarist.backends.clock import poll
from canarist.core.cron import every_seconds
from canarist.sandbox.kubeconfig import write_kubeconfig
from canarist.sandbox.kubelogs import PodLogs
from canarist.sandbox.processes import stop
from canarist.sandbox.store import EventType, ObjectStore, ResourceKey, StoreError

log = logging.getLogger("canarist.sandbox")

Obj = dict[str, Any]
JOBS = ResourceKey("batch", "v1", "jobs")
CRONJOBS = ResourceKey("batch", "v1", "cronjobs")
PODS = ResourceKey("", "v1", "pods")
SERVICE_ACCOUNTS = ResourceKey("", "v1", "serviceaccounts")
STOP_GRACE_S = 5.0


def default_program() -> list[str]:
    """How a container command's `canarist` is run locally."""
    return [sys.executable, "-m", "canarist"]


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Process:
    namespace: str
    pod: str
    job: str
    popen: subprocess.Popen[bytes]
    output: IO[bytes]
    token: str | None


@dataclass
class _Schedule:
    uid: str
    schedule: str
    next_run: datetime | None
    jobs: list[str] = field(default_factory=list)


class JobController:
    """Runs the store's Jobs as local processes and CronJobs on their schedules."""

    def __init__(self, store: ObjectStore, *, api_url: str, admin_token: str, state_dir: Path,
                 pod_logs: PodLogs,
                 issue_token: Callable[[str, str], str] | None = None,
                 revoke_token: Callable[[str], None] | None = None,
                 program: list[str] | None = None,
                 clock: Callable[[], datetime] = _now, tick_s: float = 0.2) -> None:
        self.store = store
        self.api_url = api_url
        self.admin_token = admin_token
        self.state_dir = Path(state_dir)
        self.pod_logs = pod_logs
        self.issue_token = issue_token
        self.revoke_token = revoke_token
        self.program = program or default_program()
        self.clock = clock
        self.tick_s = tick_s
        self._events: queue.Queue[tuple[EventType, Obj] | None] = queue.Queue()
        self._processes: dict[tuple[str, str], _Process] = {}
        self._schedules: dict[tuple[str, str], _Schedule] = {}
        self._started: set[str] = set()
        self._thread: threading.Thread | None = None
        self._unwatch: list[Callable[[], None]] = []

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        for key in (JOBS, CRONJOBS, PODS):
            self._unwatch.append(self.store.watch(self._listen, key))
        for key in (CRONJOBS, JOBS):
            for obj in self.store.list(key):
                self._events.put(("ADDED", obj))
        self._thread = threading.Thread(target=self._loop, name="canarist-sandbox-jobs",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and stop every process this controller started."""
        for unwatch in self._unwatch:
            unwatch()
        self._unwatch.clear()
        if self._thread is not None:
            self._events.put(None)
            self._thread.join(30)
            self._thread = None
        for key in list(self._processes):
            self._kill(key)

    def __enter__(self) -> JobController:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self, event: EventType, obj: Obj) -> None:
        self._events.put((event, obj))

    def _loop(self) -> None:
        while True:
            try:
                item = self._events.get(timeout=self.tick_s)
            except queue.Empty:
                item = ("MODIFIED", {})
            if item is None:
                return
            try:
                if item[1]:
                    self._handle(*item)
                self._reap()
                self._run_schedules()
            except Exception:
                log.exception("sandbox job controller failed")

    # -- events -----------------------------------------------------------------------------

    def _handle(self, event: EventType, obj: Obj) -> None:
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        if kind == "Pod" and event == "DELETED":
            self._kill((namespace, name))
        elif kind == "Job":
            if event == "DELETED":
                for key, process in list(self._processes.items()):
                    if process.namespace == namespace and process.job == name:
                        self._kill(key)
            elif (event == "ADDED" and not (obj.get("status") or {}).get("startTime")
                  and str(meta.get("uid")) not in self._started):
                self._started.add(str(meta.get("uid")))
                self._start_job(obj)
        elif kind == "CronJob":
            if event == "DELETED":
                self._schedules.pop((namespace, name), None)
                self._delete_owned(JOBS, namespace, str(meta.get("uid", "")))
            else:
                self._track_cronjob(obj)

    # -- jobs and pods ----------------------------------------------------------------------

    def _start_job(self, job: Obj) -> None:
        meta = job["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        template = (job.get("spec") or {}).get("template") or {}
        pod_spec = template.get("spec") or {}
        containers = pod_spec.get("containers") or []
        pod_name = f"{name}-{secrets.token_hex(3)[:5]}"
        now = self.clock()
        pod_meta = template.get("metadata") or {}
        labels = {**(pod_meta.get("labels") or {}), "batch.kubernetes.io/job-name": name,
                  "job-name": name, "batch.kubernetes.io/controller-uid": meta.get("uid", "")}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pod_name, "namespace": namespace, "labels": labels,
                            "annotations": dict(pod_meta.get("annotations") or {}),
                            "ownerReferences": [_owner(job)]},
               "spec": pod_spec}
        try:
            self.store.create(PODS, namespace, pod)
        except StoreError as error:
            log.warning("sandbox: cannot create pod for job %s/%s: %s", namespace, name,
                        error.message)
            return
        self._set_job_status(namespace, name, {"startTime": _stamp(now), "active": 1})
        if not containers:
            self._finish(namespace, pod_name, name, 1, "no containers")
            return
        container = containers[0]
        pod_dir = self.state_dir / "pods" / namespace / pod_name
        pod_dir.mkdir(parents=True, exist_ok=True)
        output_path = pod_dir / "output.log"
        output = open(output_path, "wb")  # noqa: SIM115 - closed when the process is reaped
        self.pod_logs.attach(namespace, pod_name, output_path)
        token, owned_token = self._token(namespace, str(pod_spec.get("serviceAccountName") or
                                                        "default"))
        kubeconfig = write_kubeconfig(pod_dir / "kubeconfig", self.api_url, token, namespace)
        env = dict(os.environ)
        for item in container.get("env") or []:
            if isinstance(item, dict) and "value" in item:
                env[str(item["name"])] = str(item["value"])
        work_dir = pod_dir / "work"
        work_dir.mkdir(exist_ok=True)
        env.update({"KUBECONFIG": str(kubeconfig), "HOME": str(work_dir),
                    "TMPDIR": str(work_dir), "NO_COLOR": "1"})
        env.pop("KUBERNETES_SERVICE_HOST", None)
        argv = self._argv(container)
        try:
            popen = subprocess.Popen(argv, cwd=work_dir, env=env, stdout=output,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        except OSError as error:
            output.write(f"cannot start {argv[0]}: {error}\n".encode())
            output.close()
            self._finish(namespace, pod_name, name, 127, "cannot start")
            return
        self._processes[(namespace, pod_name)] = _Process(namespace, pod_name, name, popen, output,
                                                          token if owned_token else None)
        self._set_pod_status(namespace, pod_name, {
            "phase": "Running", "startTime": _stamp(now),
            "containerStatuses": [{"name": container.get("name", ""), "ready": True,
                                   "restartCount": 0, "image": container.get("image", ""),
                                   "state": {"running": {"startedAt": _stamp(now)}}}]})

    def _argv(self, container: Obj) -> list[str]:
        argv = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
        if argv and argv[0] == "canarist":
            return [*self.program, *argv[1:]]
        return argv

    def _token(self, namespace: str, service_account: str) -> tuple[str, bool]:
        if self.issue_token is not None:
            try:
                self.store.get(SERVICE_ACCOUNTS, namespace, service_account)
                return self.issue_token(namespace, service_account), True
            except StoreError:
                pass
        return self.admin_token, False

    def _reap(self) -> None:
        for key, process in list(self._processes.items()):
            code = process.popen.poll()
            if code is None:
                continue
            self._processes.pop(key, None)
            self._release(process)
            self._finish(process.namespace, process.pod, process.job, code, "")

    def _finish(self, namespace: str, pod: str, job: str, code: int, message: str) -> None:
        now = _stamp(self.clock())
        phase = "Succeeded" if code == 0 else "Failed"
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                      "finishedAt": now}
        if message:
            terminated["message"] = message
        self._set_pod_status(namespace, pod, {"phase": phase, "containerStatuses": [
            {"name": "canarist", "ready": False, "restartCount": 0,
             "state": {"terminated": terminated}}]}, merge=True)
        if code == 0:
            status: Obj = {"succeeded": 1, "active": 0, "completionTime": now, "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
                {"type": "Complete", "status": "True", "lastTransitionTime": now}]}
        else:
            status = {"failed": 1, "active": 0, "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                 "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                 "message": "Job has reached the specified backoff limit",
                 "lastTransitionTime": now}]}
        self._set_job_status(namespace, job, status)

    def _kill(self, key: tuple[str, str]) -> None:
        process = self._processes.pop(key, None)
        if process is None:
            return
        popen = process.popen
        stop(popen.pid, exited=lambda: popen.poll() is not None, grace_s=STOP_GRACE_S, group=True)
        self._release(process)

    def _release(self, process: _Process) -> None:
        process.output.close()
        if process.token and self.revoke_token is not None:
            self.revoke_token(process.token)
        with contextlib.suppress(OSError):
            (self.state_dir / "pods" / process.namespace / process.pod / "kubeconfig").unlink()

    def _set_pod_status(self, namespace: str, name: str, status: Obj, *, merge: bool = False) -> None:
        try:
            pod = self.store.get(PODS, namespace, name)
            pod["status"] = {**(pod.get("status") or {}), **status} if merge else status
            self.store.update(PODS, namespace, pod, status=True)
        except StoreError:
            pass  # deleted meanwhile

    def _set_job_status(self, namespace: str, name: str, status: Obj) -> None:
        try:
            job = self.store.get(JOBS, namespace, name)
            job["status"] = {**(job.get("status") or {}), **status}
            self.store.update(JOBS, namespace, job, status=True)
        except StoreError:
            pass

    def _delete_owned(self, key: ResourceKey, namespace: str, uid: str) -> None:
        """Delete what `uid` owns, and what that owns (pods of jobs), as the garbage collector."""
        if not uid:
            return
        for obj in self.store.list(key, namespace):
            owners = (obj.get("metadata") or {}).get("ownerReferences") or []
            if any(isinstance(o, dict) and o.get("uid") == uid for o in owners):
                name = obj["metadata"]["name"]
                with contextlib.suppress(StoreError):
                    gone = self.store.delete(key, namespace, name)
                    if key == JOBS:
                        self._delete_owned(PODS, namespace, str(gone["metadata"].get("uid", "")))
                    else:
                        self._kill((namespace, name))
                        self.pod_logs.forget(namespace, name)
                        shutil.rmtree(self.state_dir / "pods" / namespace / name,
                                      ignore_errors=True)

    # -- cronjobs ---------------------------------------------------------------------------

    def _track_cronjob(self, cronjob: Obj) -> None:
        meta = cronjob["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]))
        schedule = str((cronjob.get("spec") or {}).get("schedule", ""))
        known = self._schedules.get(key)
        if known is not None and known.uid == meta.get("uid") and known.schedule == schedule:
            return
        try:
            next_run: datetime | None = _next_run(schedule, self.clock())
        except (ValueError, KeyError) as error:
            log.warning("sandbox: cronjob %s/%s: bad schedule %r: %s", *key, schedule, error)
            next_run = None
        self._schedules[key] = _Schedule(str(meta.get("uid", "")), schedule, next_run)

    def _run_schedules(self) -> None:
        now = self.clock()
        for (namespace, name), schedule in list(self._schedules.items()):
            if schedule.next_run is None or now < schedule.next_run:
                continue
            due = schedule.next_run
            schedule.next_run = _next_run(schedule.schedule, now)
            try:
                cronjob = self.store.get(CRONJOBS, namespace, name)
            except StoreError:
                self._schedules.pop((namespace, name), None)
                continue
            self._fire(cronjob, schedule, due)

    def _fire(self, cronjob: Obj, schedule: _Schedule, due: datetime) -> None:
        meta = cronjob["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        spec = cronjob.get("spec") or {}
        if spec.get("suspend"):
            return
        running = [job for job in self._owned_jobs(namespace, schedule.uid) if _active(job)]
        policy = spec.get("concurrencyPolicy", "Allow")
        if running and policy == "Forbid":
            log.info("sandbox: cronjob %s/%s: skipping %s, the previous job is still running",
                     namespace, name, _stamp(due))
            return
        if running and policy == "Replace":
            for job in running:
                with contextlib.suppress(StoreError):
                    gone = self.store.delete(JOBS, namespace, job["metadata"]["name"])
                    self._delete_owned(PODS, namespace, str(gone["metadata"].get("uid", "")))
        template = spec.get("jobTemplate") or {}
        template_meta = template.get("metadata") or {}
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": f"{name}-{int(due.timestamp())}", "namespace": namespace,
                            "labels": dict(template_meta.get("labels") or {}),
                            "annotations": {**(template_meta.get("annotations") or {}),
                                            "batch.kubernetes.io/cronjob-scheduled-timestamp":
                                                _stamp(due)},
                            "ownerReferences": [_owner(cronjob)]},
               "spec": template.get("spec") or {}}
        try:
            self.store.create(JOBS, namespace, job)
        except StoreError as error:
            log.warning("sandbox: cronjob %s/%s: cannot create job: %s", namespace, name,
                        error.message)
            return
        with contextlib.suppress(StoreError):
            current = self.store.get(CRONJOBS, namespace, name)
            current["status"] = {**(current.get("status") or {}), "lastScheduleTime": _stamp(due)}
            self.store.update(CRONJOBS, namespace, current, status=True)
        self._prune_history(namespace, schedule.uid, spec)

    def _owned_jobs(self, namespace: str, uid: str) -> list[Obj]:
        return [job for job in self.store.list(JOBS, namespace)
                if any(isinstance(o, dict) and o.get("uid") == uid
                       for o in (job.get("metadata") or {}).get("ownerReferences") or [])]

    def _prune_history(self, namespace: str, uid: str, spec: Obj) -> None:
        jobs = sorted(self._owned_jobs(namespace, uid),
                      key=lambda j: str(j["metadata"].get("creationTimestamp", "")) +
                      j["metadata"]["name"].rjust(80))
        for field_name, wanted, default in (("successfulJobsHistoryLimit", "succeeded", 3),
                                            ("failedJobsHistoryLimit", "failed", 1)):
            limit = spec.get(field_name, default)
            finished = [j for j in jobs if (j.get("status") or {}).get(wanted)]
            for job in finished[:max(0, len(finished) - int(limit))]:
                with contextlib.suppress(StoreError):
                    gone = self.store.delete(JOBS, namespace, job["metadata"]["name"])
                    self._delete_owned(PODS, namespace, str(gone["metadata"].get("uid", "")))


def _owner(obj: Obj) -> Obj:
    meta = obj["metadata"]
    return {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""),
            "name": meta["name"], "uid": meta.get("uid", ""), "controller": True,
            "blockOwnerDeletion": True}


def _active(job: Obj) -> bool:
    status = job.get("status") or {}
    return not status.get("succeeded") and not status.get("failed")


def wait_for(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `condition` until it holds or `timeout_s` passes; True if it held."""
    return poll(condition, timeout_s=timeout_s, interval_s=interval_s)


def _next_run(schedule: str, after: datetime) -> datetime:
    """When `schedule` next fires after `after`. `@every d` (Kubernetes' robfig/cron) fires
    d after the last run, rounded to whole seconds and at least 1s apart."""
    interval = every_seconds(schedule)
    if interval is not None:
        return after + timedelta(seconds=max(1, int(interval)))
    next_time: datetime = croniter(schedule, after).get_next(datetime)
    return next_time
