"""`canarist demo --scenario promote|rollback`: a progressive rollout on the local sandbox.

The tutorial's InferenceService gets a canary at 10 %; an experiment launched as a CronJob
that loops every 10 s finds both revisions itself (`kserve.isvc`), judges the canary against
its baseline with relative objectives, and its `rollout` task steps `canaryTrafficPercent`
on each pass, promotes at 100 %, or rolls back to 0 % on a fail. All along, predictions go
through the ingress to the service's main host, split by the ingress as a user's would be,
and every 5 s the demo prints how many were answered, how many failed, and the split: a
weight change that drops requests shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import click

from canarist.backends.clock import poll
from canarist.backends.kube import INFERENCE_SERVICES, ClusterCalls, KubeClient
from canarist.cli.demo_steps import HOST, MANIFEST_V1, PREDICTION, canarist, say, show
from canarist.core.errors import ExperimentFailed, UnavailableError
from canarist.core.experiment import Experiment, RolloutAction, RolloutRecord
from canarist.runners import kubernetes as kube_runner

ISVC = "sklearn-iris"
NAMESPACE = "default"
PER_SECOND = 30.0
"""Predictions a second: enough for the canary's 10 % to be measured within a loop or two."""
WINDOW_S = 5.0
REQUEST_TIMEOUT_S = 10.0
POLL_S = 2.0
SPLIT_POLL_S = 1.0
SCHEDULE = "@every 10s"
"""Every 10 s, as Kubernetes writes it."""
TERMINAL = ("promoted", "rolled-back", "stopped")

_HEALTHY_CANARY = """apiVersion: "serving.kserve.io/v1beta1"
kind: "InferenceService"
metadata:
  name: "sklearn-iris"
spec:
  predictor:
    canaryTrafficPercent: 10
    minReplicas: 1
    model:
      modelFormat:
        name: sklearn
      storageUri: "gs://kfserving-examples/models/sklearn/1.0/model"
"""

_SLOW_CANARY = """apiVersion: "serving.kserve.io/v1beta1"
kind: "InferenceService"
metadata:
  name: "sklearn-iris"
  annotations:
    sandbox.canarist.dev/added-latency-ms: "200"
spec:
  predictor:
    canaryTrafficPercent: 10
    model:
      modelFormat:
        name: sklearn
      storageUri: "gs://kfserving-examples/models/sklearn/1.0/model"
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    canary: str
    """The canary's manifest, applied over the baseline's."""
    story: str
    """What applying it does, as the demo says it."""
    expected: str
    """How the rollout must end: `promoted` or `rolled-back`."""


SCENARIOS = {
    "promote": Scenario(
        "promote", _HEALTHY_CANARY,
        "Updating it with a healthy canary: the same model with minReplicas: 1, a new revision "
        "(00002) taking 10% of the traffic",
        "promoted"),
    "rollback": Scenario(
        "rollback", _SLOW_CANARY,
        "Updating it with a slow canary: the same model, answering 200 ms later (the sandbox's "
        "fault annotation sandbox.canarist.dev/added-latency-ms), a new revision (00002) "
        "taking 10% of the traffic",
        "rolled-back"),
}

LAUNCH = (
    "--set", "tasks={custommetrics,assess,rollout}",
    "--set", f"kserve.isvc={ISVC}",
    "--set", "custommetrics.templates.kserve-prometheus=kserve-prometheus",
    "--set", "assess.relative.upper.kserve-prometheus/latency-mean=50%",
    "--set", "assess.relative.upper.kserve-prometheus/error-rate=0.05",
    "--set", "rollout.steps={10,25,50,100}",
    "--set", "runner=cronjob",
    "--set", f"cronjobSchedule={SCHEDULE}",
)
"""One experiment for both scenarios: no revision is named, discovery finds them."""


def run_scenario(scenario: Scenario, out_dir: Path, state: Path, ingress: str,
                 warmup_s: int, timeout_s: float) -> str:
    """Run the scenario; return how it ended as it should, or raise saying how it did not."""
    say(f"Deploying the InferenceService {ISVC} (revision 00001)")
    canarist("sandbox", "apply", "--dir", str(state), "--wait", "-f", "-", stdin=MANIFEST_V1)
    say(scenario.story)
    canarist("sandbox", "apply", "--dir", str(state), "--wait", "-f", "-", stdin=scenario.canary)
    canarist("sandbox", "status", "--dir", str(state))
    kubeconfig = str(state / "kubeconfig")
    show(f"export KUBECONFIG={kubeconfig}")
    os.environ["KUBECONFIG"] = kubeconfig

    started = time.monotonic()
    with KubeClient.connect(kubeconfig) as client:
        driver = TrafficDriver(ingress, PER_SECOND, lambda: split(client))
        say(f"Sending {PER_SECOND:g} predictions a second through the ingress (Host: {HOST}), "
            f"split between the revisions by canaryTrafficPercent; every {WINDOW_S:g} s: "
            "requests answered, errors, and the split")
        with driver.running():
            time.sleep(warmup_s)
            say("Launching the experiment as a CronJob that loops every 10 s: custommetrics "
                "(kserve-prometheus) measures both revisions, found by kserve.isvc; assess "
                "judges the canary against its baseline; rollout steps canaryTrafficPercent "
                "10 -> 25 -> 50 -> 100 on a pass, rolls back to 0 on a fail")
            canarist("k", "launch", *LAUNCH)
            say(f"Watching the rollout (result.rollout in the experiment's Secret, as `canarist "
                f"k report` shows it) until it is promoted or rolled back, at most "
                f"{timeout_s:g} s")
            record = watch(client, timeout_s)
            if record is not None and record.state in TERMINAL:
                time.sleep(WINDOW_S)  # one more window at the final split
        rollout_s = time.monotonic() - started
    click.echo(f"    {driver.requests} predictions in {rollout_s:.0f} s, {driver.errors} "
               f"failed{driver.describe_errors()}", err=True)

    say("The report: the verdict, the canary against its baseline, and the rollout's actions")
    canarist("k", "report")
    canarist("k", "report", "-o", "html", stdout=out_dir / "report.html")
    canarist("k", "report", "-o", "json", stdout=out_dir / "verdict.json")
    say("Cleaning up the experiment")
    canarist("k", "delete")
    click.echo(f"\nHTML report: {out_dir / 'report.html'}\nJSON verdict: "
               f"{out_dir / 'verdict.json'}", err=True)
    return conclude(scenario, record, driver, timeout_s)


def conclude(scenario: Scenario, record: RolloutRecord | None, driver: TrafficDriver,
             timeout_s: float) -> str:
    """How the scenario ended, in one line; raise unless it ended as it should."""
    where = f"scenario {scenario.name}"
    if record is None or record.state not in TERMINAL:
        now = "no loop judged the canary yet" if record is None else \
            f"{record.state} at {record.percent} %{_last_reason(record)}"
        raise UnavailableError(f"{where}: the rollout did not end within {timeout_s:g} s "
                               f"({now}); raise --timeout on a busy machine")
    if record.state != scenario.expected:
        raise ExperimentFailed(f"{where}: the rollout ended {record.state} at {record.percent} %, "
                               f"expected {scenario.expected}{_last_reason(record)}")
    if driver.errors:
        raise ExperimentFailed(f"{where}: {record.state}, but {driver.errors} of "
                               f"{driver.requests} predictions failed"
                               f"{driver.describe_errors()} (see the {WINDOW_S:g} s windows)")
    return (f"Scenario {scenario.name}: {record.state} at {record.percent} %; "
            f"{driver.requests} predictions, none failed")


def _last_reason(record: RolloutRecord) -> str:
    last = record.actions[-1] if record.actions else None
    return f" ({last.verdict}: {last.reason})" if last and last.verdict else \
        (f" ({record.reason})" if record.reason else "")


def split(client: KubeClient) -> str:
    """`00001 90% / 00002 10%`: the routes the ingress splits by, from the service's status."""
    obj = client.get(INFERENCE_SERVICES, NAMESPACE, ISVC)
    predictor = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
    routes = sorted((str(t.get("revisionName", "?")), t.get("percent"))
                    for t in predictor.get("traffic") or [] if t.get("percent") is not None)
    return " / ".join(f"{name.rsplit('-', 1)[-1]} {percent}%" for name, percent in routes) or "-"


def describe(action: RolloutAction) -> str:
    if action.action == "hold":
        move = f"hold at {action.from_} %"
    elif action.action == "stop":
        move = f"stop at {action.from_} %"
    else:
        move = f"{action.action} {action.from_} % -> {action.to} %"
    because = f"{action.verdict}: {action.reason}" if action.verdict else action.reason
    return f"    rollout: {move} ({because})"


def watch(client: KubeClient, timeout_s: float) -> RolloutRecord | None:
    """Print each rollout action as the loops record it; return the rollout once it has
    ended, or as it stands when time is up."""
    read = kube_runner.reader(ClusterCalls(client), group="default",
                              namespace=NAMESPACE)
    shown: set[tuple[Any, ...]] = set()
    failures: set[str] = set()
    record: RolloutRecord | None = None

    def latest() -> RolloutRecord | None:
        nonlocal record
        with contextlib.suppress(UnavailableError):  # a read between a loop's writes
            record = _show_progress(read(), shown, failures) or record
        return record

    return poll(latest, done=lambda found: found is not None and found.state in TERMINAL,
                timeout_s=timeout_s, interval_s=POLL_S)


def _show_progress(experiment: Experiment, shown: set[tuple[Any, ...]],
                   failures: set[str]) -> RolloutRecord | None:
    result = experiment.result
    if result is None:
        return None
    failed = result.failed_task
    if result.failure and failed is not None:
        line = f"    loop {result.num_loops}: task {failed.number} ({failed.name}) failed: {failed.reason}"
        if failed.reason not in failures:
            failures.add(failed.reason)
            click.echo(line, err=True)
    record = result.rollout
    for action in record.actions if record else []:
        key = (action.time, action.action, action.from_, action.to)
        if key not in shown:
            shown.add(key)
            click.echo(describe(action), err=True)
    return record


class TrafficDriver:
    """Predictions to the service's main host at a steady rate (open loop: a slow answer
    does not slow the sending), counted per window of `WINDOW_S` seconds, with every split
    the service had during the window (read each `SPLIT_POLL_S`)."""

    def __init__(self, ingress: str, per_second: float, routes: Callable[[], str]) -> None:
        self.url = f"http://{ingress}/v1/models/{ISVC}:predict"
        self.interval = 1.0 / per_second
        self.routes = routes
        self.requests = 0
        self.errors = 0
        self.reasons: Counter[str] = Counter()
        self._window = [0, 0]  # requests, errors
        self._window_reasons: Counter[str] = Counter()
        self._split = ""
        self._window_splits: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._drive()),
                                        name="demo-traffic", daemon=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[TrafficDriver]:
        click.echo(f"    {'time':8}  {'requests':>8}  {'errors':>6}  split (-> a change within "
                   "the window)", err=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(REQUEST_TIMEOUT_S + 5)

    def describe_errors(self) -> str:
        return f" ({', '.join(f'{n} {why}' for why, n in self.reasons.most_common())})" \
            if self.reasons else ""

    async def _drive(self) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        connector = aiohttp.TCPConnector(limit=64)
        await self._poll_split()
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            background = [asyncio.create_task(self._report()),
                          asyncio.create_task(self._follow_split())]
            in_flight: set[asyncio.Task[None]] = set()
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while not self._stop.is_set():
                task = asyncio.create_task(self._predict(session))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                next_at += self.interval
                await asyncio.sleep(max(0.0, next_at - loop.time()))
            if in_flight:
                await asyncio.wait(in_flight)
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._window[0]:
                self._close_window()

    async def _predict(self, session: aiohttp.ClientSession) -> None:
        why = ""
        try:
            async with session.post(self.url, data=PREDICTION, headers={
                    "Host": HOST, "Content-Type": "application/json"}) as response:
                await response.read()
                if response.status != 200:
                    why = f"HTTP {response.status}"
        except TimeoutError:
            why = "timeout"
        except aiohttp.ClientError as error:
            why = type(error).__name__
        with self._lock:
            self.requests += 1
            self._window[0] += 1
            if why:
                self.errors += 1
                self._window[1] += 1
                self.reasons[why] += 1
                self._window_reasons[why] += 1

    async def _poll_split(self) -> None:
        try:
            split = await asyncio.to_thread(self.routes)
        except UnavailableError as error:
            split = f"unknown ({error})"
        if split != self._split:
            self._split = split
            self._window_splits.append(split)

    async def _follow_split(self) -> None:
        while True:
            await asyncio.sleep(SPLIT_POLL_S)
            await self._poll_split()

    async def _report(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(1, 1_000_000):
            await asyncio.sleep(max(0.0, start + n * WINDOW_S - loop.time()))
            self._close_window()

    def _close_window(self) -> None:
        with self._lock:
            (requests, errors), self._window = self._window, [0, 0]
            reasons, self._window_reasons = self._window_reasons, Counter()
        splits, self._window_splits = self._window_splits or [self._split], [self._split]
        why = f"  ({', '.join(f'{n} {r}' for r, n in reasons.most_common())})" if reasons else ""
        click.echo(f"    {time.strftime('%H:%M:%S')}  {requests:8d}  {errors:6d}  "
                   f"{' -> '.join(splits)}{why}", err=True)
