"""`canarist demo`: the canary-testing tutorial, end to end, on the local sandbox, and two
progressive rollouts (`--scenario promote`, `--scenario rollback`).

Each step prints the command a user would type, then runs it as that command: the demo
drives canarist exactly as a person following the tutorial would.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import click

from canarist.cli.demo_steps import HOST, MANIFEST_V1, PREDICTION, canarist, ingress, say

SCENARIOS = ("tutorial", "promote", "rollback")

MANIFEST_CANARY = """apiVersion: "serving.kserve.io/v1beta1"
kind: "InferenceService"
metadata:
  name: "sklearn-iris"
spec:
  predictor:
    canaryTrafficPercent: 10
    model:
      modelFormat:
        name: sklearn
      storageUri: "gs://kfserving-examples/models/sklearn/1.0/model-2"
"""

REQUEST_TIMEOUT_S = 10.0


class Traffic:
    """The tutorial's curl loop, a little faster: predictions through the ingress by Host."""

    def __init__(self, ingress: str, per_second: float) -> None:
        self.url = f"http://{ingress}/v1/models/sklearn-iris:predict"
        self.interval = 1.0 / per_second
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-traffic", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            request = urllib.request.Request(
                self.url, data=PREDICTION, method="POST",
                headers={"Host": HOST,
                         "Content-Type": "application/x-www-form-urlencoded"})
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                    response.read()
            except (urllib.error.URLError, OSError):
                self.failed += 1
            self.sent += 1
            self._stop.wait(self.interval)

    @contextlib.contextmanager
    def running(self) -> Iterator[Traffic]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(REQUEST_TIMEOUT_S + 1)


@click.command()
@click.option("--scenario", type=click.Choice(SCENARIOS), default="tutorial", show_default=True,
              help="tutorial: the Iter8 tutorial's experiment. promote: a healthy canary stepped "
                   "to 100 % and promoted. rollback: a slow canary rolled back to 0 %.")
@click.option("--out", "out_dir", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where the experiment, its reports and the sandbox state go "
                   "[default: canarist-demo, or canarist-demo/SCENARIO for a rollout].")
@click.option("--traffic-seconds", default=None, type=click.IntRange(min=0),
              help="How long to send predictions before the experiment runs "
                   "[default: 45, or 10 for a rollout].")
@click.option("--timeout", default="240s", show_default=True,
              help="How long a rollout may take to end, promoted or rolled back, once launched.")
@click.option("--keep", is_flag=True, help="Leave the sandbox running at the end.")
def demo(scenario: str, out_dir: Path | None, traffic_seconds: int | None, timeout: str,
         keep: bool) -> None:
    """Run the KServe canary-testing tutorial on the local sandbox, start to end.

    With --scenario promote or rollback, run a progressive rollout instead: the rollout task
    steps the canary's canaryTrafficPercent on the verdict of relative objectives, while
    predictions flow through the ingress and every 5 s shows requests, errors and the split.
    Exits 0 only when the scenario ends as it should (promoted, or rolled back).
    """
    from canarist.core.durations import parse_duration

    timeout_s = parse_duration(timeout, field="--timeout")
    rollout = scenario != "tutorial"
    out_dir = (out_dir or Path("canarist-demo", scenario if rollout else "")).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="sandbox-", dir=out_dir))
    say("Starting the local KServe sandbox (model servers, ingress, Prometheus, Kubernetes API)")
    canarist("sandbox", "up", "--dir", str(state), "--ports", "auto")
    ended = ""
    try:
        if rollout:
            from canarist.cli.demo_rollout import SCENARIOS as ROLLOUTS
            from canarist.cli.demo_rollout import run_scenario

            ended = run_scenario(ROLLOUTS[scenario], out_dir, state, ingress(state),
                                 10 if traffic_seconds is None else traffic_seconds, timeout_s)
        else:
            _tutorial(out_dir, state, ingress(state),
                      45 if traffic_seconds is None else traffic_seconds)
    finally:
        if keep:
            say(f"Leaving the sandbox running; stop it with: canarist sandbox down --dir {state}")
        else:
            say("Tearing the sandbox down")
            canarist("sandbox", "down", "--dir", str(state))
    if ended:
        click.secho(f"\n{ended}", fg="green", err=True)


def _tutorial(out_dir: Path, state: Path, ingress: str, traffic_seconds: int) -> None:
    say("Deploying the InferenceService sklearn-iris (revision 00001)")
    canarist("sandbox", "apply", "--dir", str(state), "--wait", "-f", "-", stdin=MANIFEST_V1)
    say("Updating it with the canary model-2, taking 10% of the traffic (revision 00002)")
    canarist("sandbox", "apply", "--dir", str(state), "--wait", "-f", "-", stdin=MANIFEST_CANARY)
    canarist("sandbox", "status", "--dir", str(state))

    traffic = Traffic(ingress, per_second=5)
    say(f"Sending prediction requests through the ingress for {traffic_seconds}s "
         "(Host: sklearn-iris.default.example.com)")
    with traffic.running():
        for left in range(traffic_seconds, 0, -5):
            click.echo(f"    {traffic.sent} requests sent, {left}s to go", err=True)
            time.sleep(min(5, left))
        say("Launching the experiment inside the (sandbox) cluster as a CronJob that loops "
             "every minute: ready, custommetrics (kserve-prometheus), assess")
        # The tutorial's command as it is, with `canarist` for `iter8` and the built-in
        # template: the sandbox's CronJobs query its own Prometheus by default.
        kubeconfig = str(state / "kubeconfig")
        click.secho(f"$ export KUBECONFIG={kubeconfig}", bold=True, err=True)
        os.environ["KUBECONFIG"] = kubeconfig
        canarist(
            "k", "launch",
            "--set", "tasks={ready,custommetrics,assess}",
            "--set", "ready.isvc=sklearn-iris",
            "--set", "ready.timeout=180s",
            "--set", "custommetrics.templates.kserve-prometheus=kserve-prometheus",
            "--set", "custommetrics.values.labels.service_name=sklearn-iris-predictor-default",
            "--set", "custommetrics.versionValues[0].labels.revision_name="
                     "sklearn-iris-predictor-default-00002",
            "--set", "custommetrics.versionValues[1].labels.revision_name="
                     "sklearn-iris-predictor-default-00001",
            "--set", "custommetrics.values.latencyPercentiles={50,75,90,95}",
            "--set", "assess.SLOs.upper.kserve-prometheus/latency-mean=50",
            "--set", "assess.SLOs.upper.kserve-prometheus/latency-p90=75",
            "--set", "assess.SLOs.upper.kserve-prometheus/error-count=0",
            "--set", "runner=cronjob",
            "--set", "cronjobSchedule=*/1 * * * *",
        )
        say("Waiting for the first loop (the CronJob fires at the next minute), as CI would")
        canarist("k", "assert", "-c", "nofailure,slos", "--timeout", "150s")
    click.echo(f"    {traffic.sent} requests sent in all, {traffic.failed} failed", err=True)
    say("The report (version 0 is the canary, revision 00002; version 1 is revision 00001)")
    canarist("k", "report")
    canarist("k", "report", "-o", "html", stdout=out_dir / "report.html")
    canarist("k", "report", "-o", "json", stdout=out_dir / "verdict.json")
    say("The experiment's logs, from its pods")
    canarist("k", "log")
    say("Cleaning up the experiment")
    canarist("k", "delete")
    click.echo(f"\nHTML report: {out_dir / 'report.html'}\nJSON verdict: "
               f"{out_dir / 'verdict.json'}", err=True)
