"""`canarist demo`: the canary-testing tutorial, end to end, on the local sandbox.

Each step prints the command a user would type, then runs it as that command: the demo
drives canarist exactly as a person following the tutorial would.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import click

from canarist.core.errors import UnavailableError
from canarist.sandbox.state import StateDir

MANIFEST_V1 = """apiVersion: "serving.kserve.io/v1beta1"
kind: "InferenceService"
metadata:
  name: "sklearn-iris"
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      storageUri: "gs://kfserving-examples/models/sklearn/1.0/model"
"""

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

PREDICTION = b'{"instances": [[6.8,  2.8,  4.8,  1.4], [6.0,  3.4,  4.5,  1.6]]}'
REQUEST_TIMEOUT_S = 10.0


def _say(text: str) -> None:
    click.secho(f"\n==> {text}", fg="cyan", err=True)


def _canarist(*args: str, stdin: str | None = None, stdout: Path | None = None) -> None:
    """Run one canarist command as a user would, showing it first."""
    shown = "canarist " + " ".join(shlex.quote(a) for a in args)
    click.secho(f"$ {shown}", bold=True, err=True)
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(stdout.open("w")) if stdout else None
        done = subprocess.run([sys.executable, "-m", "canarist", *args], input=stdin, text=True,
                              stdout=out, check=False)
    if done.returncode not in (0, 1):
        raise UnavailableError(f"demo step failed (exit {done.returncode}): {shown}")


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
                headers={"Host": "sklearn-iris.default.example.com",
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
@click.option("--out", "out_dir", default="canarist-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where the experiment, its reports and the sandbox state go.")
@click.option("--traffic-seconds", default=45, show_default=True,
              help="How long to send predictions before the experiment runs.")
@click.option("--keep", is_flag=True, help="Leave the sandbox running at the end.")
def demo(out_dir: Path, traffic_seconds: int, keep: bool) -> None:
    """Run the KServe canary-testing tutorial on the local sandbox, start to end."""
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="sandbox-", dir=out_dir))
    _say("Starting the local KServe sandbox (model servers, ingress, Prometheus, Kubernetes API)")
    _canarist("sandbox", "up", "--dir", str(state), "--ports", "auto")
    try:
        _tutorial(out_dir, state, _ingress(state), traffic_seconds)
    finally:
        if keep:
            _say(f"Leaving the sandbox running; stop it with: canarist sandbox down --dir {state}")
        else:
            _say("Tearing the sandbox down")
            _canarist("sandbox", "down", "--dir", str(state))


def _ingress(state: Path) -> str:
    """host:port of the sandbox's HTTP ingress, as `sandbox up` recorded it."""
    endpoint = ((StateDir.at(state).read() or {}).get("endpoints") or {}).get("http")
    if not endpoint:
        raise UnavailableError(f"the sandbox in {state} recorded no ingress endpoint")
    return str(endpoint)


def _tutorial(out_dir: Path, state: Path, ingress: str, traffic_seconds: int) -> None:
    _say("Deploying the InferenceService sklearn-iris (revision 00001)")
    _canarist("sandbox", "apply", "--dir", str(state), "--wait", "-f", "-", stdin=MANIFEST_V1)
    _say("Updating it with the canary model-2, taking 10% of the traffic (revision 00002)")
    _canarist("sandbox", "apply", "--dir", str(state), "--wait", "-f", "-", stdin=MANIFEST_CANARY)
    _canarist("sandbox", "status", "--dir", str(state))

    traffic = Traffic(ingress, per_second=5)
    _say(f"Sending prediction requests through the ingress for {traffic_seconds}s "
         "(Host: sklearn-iris.default.example.com)")
    with traffic.running():
        for left in range(traffic_seconds, 0, -5):
            click.echo(f"    {traffic.sent} requests sent, {left}s to go", err=True)
            time.sleep(min(5, left))
        _say("Launching the experiment inside the (sandbox) cluster as a CronJob that loops "
             "every minute: ready, custommetrics (kserve-prometheus), assess")
        # The tutorial's command as it is, with `canarist` for `iter8` and the built-in
        # template: the sandbox's CronJobs query its own Prometheus by default.
        kubeconfig = str(state / "kubeconfig")
        click.secho(f"$ export KUBECONFIG={kubeconfig}", bold=True, err=True)
        os.environ["KUBECONFIG"] = kubeconfig
        _canarist(
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
        _say("Waiting for the first loop (the CronJob fires at the next minute), as CI would")
        _canarist("k", "assert", "-c", "nofailure,slos", "--timeout", "150s")
    click.echo(f"    {traffic.sent} requests sent in all, {traffic.failed} failed", err=True)
    _say("The report (version 0 is the canary, revision 00002; version 1 is revision 00001)")
    _canarist("k", "report")
    _canarist("k", "report", "-o", "html", stdout=out_dir / "report.html")
    _canarist("k", "report", "-o", "json", stdout=out_dir / "verdict.json")
    _say("The experiment's logs, from its pods")
    _canarist("k", "log")
    _say("Cleaning up the experiment")
    _canarist("k", "delete")
    click.echo(f"\nHTML report: {out_dir / 'report.html'}\nJSON verdict: "
               f"{out_dir / 'verdict.json'}", err=True)
