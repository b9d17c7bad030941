"""What the parts of canarist other than the load generators cost: one sub-command per table.

    .venv/bin/python bench/costs.py judge          [--loops 300] [--repeat 5]
    .venv/bin/python bench/costs.py custommetrics  [--metrics 20] [--delay-ms 100] [--slowest-ms 400]
    .venv/bin/python bench/costs.py report         [--loops 300] [--repeat 5]
    .venv/bin/python bench/costs.py pod            [--loops 3]

judge: time and peak memory of `canarist.core.judge.compare` for one candidate against a
  baseline on 10^6 exact samples per version (from the raw samples: the sort is included) and
  on 30-bucket histograms (through `evidence`, as assess reads them from an experiment's
  insights); then a looping experiment (the engine running the http task against two local
  endpoints and assess, `--loops` times with the result reused, the file store writing
  experiment.yaml after every task as `canarist run` does): the judge's time and memory at
  each loop and the size of the state it reads and writes (histogram buckets, comparison
  records, experiment.yaml). Goal: < 1 s and < 50 MB per judgement, state bounded in loops.
custommetrics: one custommetrics task with `--metrics` metrics and two versions against a
  local HTTP server answering Prometheus instant queries, each after `--delay-ms` (one metric
  after `--slowest-ms`): the task's wall time against the slowest round trip and against the
  sum of all round trips, and the most queries the server had in flight at once.
report: `canarist report -o html` (a fresh process, as typed) on the experiment the judge's
  looping run leaves (`--loops` loops): wall time (median of `--repeat`) and output size.
  Goal: < 2 s, < 1.5 MB.
pod: peak RSS of `canarist k run` (the command the Job's pod runs) for the KServe tutorial's
  experiment against the local sandbox (KServe model servers, Prometheus and the Kubernetes
  API as local processes): the process and all its children, sampled every 10 ms from /proc,
  and each process' own `ru_maxrss`.

Every sub-command prints the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CANARIST = str(Path(PYTHON).with_name("canarist"))
T = TypeVar("T")

JUDGE_GOAL_S = 1.0
JUDGE_GOAL_MB = 50.0
REPORT_GOAL_S = 2.0
REPORT_GOAL_MB = 1.5


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def measured(work: Callable[[], T]) -> tuple[T, float, float]:
    """(result, seconds, peak MB allocated while it ran, numpy's arrays included)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    try:
        out = work()
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, elapsed, peak / 2**20


# judge ---------------------------------------------------------------------------------------

KNATIVE_BOUNDS = (5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700,
                  800, 900, 1000, 1500, 2000, 3000, 5000, 10000, 20000, 50000, 100000, 200000,
                  math.inf)
"""30 bucket upper bounds (ms): Knative's request latency buckets, with +Inf."""


def judge_single(repeat: int) -> list[tuple[str, float, float]]:
    """(what, median seconds, median peak MB) of one judgement on 10^6 samples and on buckets."""
    from canarist.core.experiment import HistBucket, Insights
    from canarist.core.judge import Evidence, RelativeObjective, compare, evidence
    from canarist.core.stats.compare import Allowance
    from canarist.core.stats.quantiles import CumulativeCounts

    rng = np.random.default_rng(15)
    objective = RelativeObjective("http/latency-p90", "upper", Allowance.parse("20%"))
    candidate = rng.lognormal(math.log(50), 0.5, 10**6)
    baseline = rng.lognormal(math.log(50), 0.5, 10**6)

    def exact() -> object:
        return compare(objective,
                       (1, Evidence(histogram=CumulativeCounts.from_samples(candidate))),
                       (0, Evidence(histogram=CumulativeCounts.from_samples(baseline))), 0.95)

    bounds = np.array(KNATIVE_BOUNDS)
    insights = Insights.model_validate({"numVersions": 2})
    for version, samples in ((0, baseline), (1, candidate)):
        counts = np.bincount(np.searchsorted(bounds, samples, side="left"), minlength=len(bounds))
        lowers = (0.0, *KNATIVE_BOUNDS[:-1])
        insights.hist_metric_values[version]["http/latency"] = [
            HistBucket(lower=lo, upper=hi, count=int(n))
            for lo, hi, n in zip(lowers, KNATIVE_BOUNDS, counts, strict=True)]
    assert len(insights.hist_metric_values[0]["http/latency"]) == 30

    def buckets() -> object:
        return compare(objective, (1, evidence(insights, 1, objective.metric)),
                       (0, evidence(insights, 0, objective.metric)), 0.95)

    rows = []
    for name, work in (("10^6 exact samples per version", exact),
                       ("30-bucket histogram per version (10^6 requests each)", buckets)):
        runs = [measured(work) for _ in range(repeat)]
        rows.append((name, statistics.median(r[1] for r in runs),
                     statistics.median(r[2] for r in runs)))
    return rows


@contextlib.contextmanager
def http_target() -> Iterator[str]:
    """tests/servers/http_target.py in its own process; yields its base URL."""
    proc = subprocess.Popen([PYTHON, str(REPO / "tests/servers/http_target.py")],
                            stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'src'}"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"the HTTP target did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


@dataclass
class Look:
    loop: int
    judge_s: float
    judge_mb: float
    buckets: int
    """Histogram buckets stored for http/latency, both versions together."""
    comparisons: int
    yaml_bytes: int


@dataclass
class LoopRun:
    looks: list[Look] = field(default_factory=list)
    loop_s: list[float] = field(default_factory=list)


def loop_spec(url: str) -> list[dict[str, Any]]:
    """The looping experiment: two versions load-tested, then judged on SLOs and relative
    objectives (candidate 1 against baseline 0)."""
    return [
        {"task": "http", "with": {
            "numRequests": 200, "qps": 400, "connections": 4,
            "versionValues": [{"url": f"{url}/infer?delay_ms=2"},
                              {"url": f"{url}/infer?delay_ms=2"}]}},
        {"task": "assess", "with": {
            "SLOs": {"upper": [{"metric": "http/error-rate", "limit": 0.01},
                               {"metric": "http/latency-mean", "limit": 50},
                               {"metric": "http/latency-p90", "limit": 80}]},
            "baseline": 0,
            "relative": {"upper": [{"metric": "http/latency-p90", "allowance": "20%"},
                                   {"metric": "http/latency-mean", "allowance": "20%"},
                                   {"metric": "http/error-rate", "allowance": "0.01"}]}}},
    ]


def run_loops(loops: int, run_dir: Path, every: int = 1) -> LoopRun:
    """Run the looping experiment `loops` times in `run_dir` (experiment.yaml is left there)."""
    import uvloop

    from canarist.core.experiment import Experiment
    from canarist.runners.engine import RunSettings, run_experiment
    from canarist.stores.file import FileStore
    from canarist.tasks.base import TaskDefinition
    from canarist.tasks.registry import TASKS

    out = LoopRun()
    timing: dict[str, float] = {}
    assess = TASKS["assess"]

    async def timed_assess(inputs: Any, ctx: Any) -> None:
        tracemalloc.start()
        start = time.perf_counter()
        try:
            await assess.run(inputs, ctx)
        finally:
            timing["s"] = time.perf_counter() - start
            timing["mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()

    tasks: dict[str, TaskDefinition[Any]] = {
        **TASKS, "assess": TaskDefinition(name="assess", inputs=assess.inputs, run=timed_assess,
                                          check=assess.check)}
    run_dir.mkdir(parents=True, exist_ok=True)
    with http_target() as url:
        experiment = Experiment.model_validate({"spec": loop_spec(url)})
        store = FileStore(run_dir)
        for loop in range(1, loops + 1):
            start = time.perf_counter()
            experiment = uvloop.run(run_experiment(experiment, store, tasks,
                                                   RunSettings(run_dir=run_dir),
                                                   reuse_result=loop > 1))
            out.loop_s.append(time.perf_counter() - start)
            result = experiment.result
            assert result is not None and result.insights is not None and not result.failure
            if loop == 1 or loop % every == 0 or loop == loops:
                insights = result.insights
                out.looks.append(Look(
                    loop, timing["s"], timing["mb"],
                    sum(len(v.get("http/latency", [])) for v in insights.hist_metric_values),
                    len(insights.comparisons),
                    (run_dir / "experiment.yaml").stat().st_size))
                print(f"  loop {loop}: judge {timing['s'] * 1e3:.1f} ms, "
                      f"{out.looks[-1].buckets} buckets, "
                      f"experiment.yaml {out.looks[-1].yaml_bytes / 1024:.0f} KiB", flush=True)
    return out


def cmd_judge(args: argparse.Namespace) -> list[str]:
    lines = [f"{'judgement':<56} {'time ms':>9} {'peak MB':>8}  goal (< 1 s, < 50 MB)"]
    lines.append("-" * len(lines[0]))
    for name, seconds, mb in judge_single(args.repeat):
        lines.append(f"{name:<56} {seconds * 1e3:>9.1f} {mb:>8.1f}  "
                     f"{met(seconds < JUDGE_GOAL_S and mb < JUDGE_GOAL_MB)}")
    run_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="canarist-loops-"))
    print(f"running {args.loops} loops in {run_dir} ...", flush=True)
    run = run_loops(args.loops, run_dir, every=max(1, args.loops // 10))
    lines += ["", f"looping experiment, {args.loops} loops (http, 2 versions x 200 requests, then "
              "assess: 3 SLOs, 3 relative objectives)",
              f"{'loop':>5} {'assess ms':>10} {'peak MB':>8} {'buckets':>8} {'records':>8} "
              f"{'experiment.yaml KiB':>20}"]
    for look in run.looks:
        lines.append(f"{look.loop:>5} {look.judge_s * 1e3:>10.1f} {look.judge_mb:>8.2f} "
                     f"{look.buckets:>8} {look.comparisons:>8} {look.yaml_bytes / 1024:>20.1f}")
    first, last = run.looks[0], run.looks[-1]
    slowest = max(run.looks, key=lambda look: look.judge_s)
    biggest = max(run.looks, key=lambda look: look.judge_mb)
    lines.append(f"whole loop (http + assess + 3 writes): median {statistics.median(run.loop_s):.3f}"
                 f" s over the first 10 loops {statistics.median(run.loop_s[:10]):.3f} s,"
                 f" last 10 {statistics.median(run.loop_s[-10:]):.3f} s")
    lines.append(f"judge across loops: slowest {slowest.judge_s * 1e3:.1f} ms (loop {slowest.loop}),"
                 f" most memory {biggest.judge_mb:.2f} MB (loop {biggest.loop}): "
                 f"{met(slowest.judge_s < JUDGE_GOAL_S and biggest.judge_mb < JUDGE_GOAL_MB)}")
    bounded = last.buckets <= 2 * max(first.buckets, 1) + 200 and last.comparisons == first.comparisons
    lines.append(f"state: {first.buckets} buckets after loop 1, {last.buckets} after loop "
                 f"{last.loop}; {first.comparisons} comparison records after loop 1, "
                 f"{last.comparisons} after loop {last.loop}: bounded {met(bounded)}")
    lines.append(f"experiment left in {run_dir}")
    return lines


# custommetrics -------------------------------------------------------------------------------

class Prometheus:
    """A local HTTP server answering `/api/v1/query` like Prometheus, after a delay read from
    the query (`delay="<ms>"`); counts the queries in flight."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.queries = 0
        self.first: float | None = None
        self.last = 0.0
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Prometheus:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def reset(self) -> None:
        self.most_in_flight = self.queries = 0
        self.first, self.last = None, 0.0

    def _serve(self) -> None:
        from aiohttp import web

        async def query(request: web.Request) -> web.Response:
            text = request.query.get("query", "")
            delay = float(text.split('delay="')[1].split('"')[0]) if 'delay="' in text else 0.0
            self.queries += 1
            self.first = self.first or time.perf_counter()
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await asyncio.sleep(delay / 1000)
            finally:
                self.in_flight -= 1
                self.last = time.perf_counter()
            return web.json_response({"status": "success", "data": {
                "resultType": "vector",
                "result": [{"metric": {}, "value": [time.time(), "1.5"]}]}})

        app = web.Application()
        app.router.add_get("/api/v1/query", query)
        loop = asyncio.new_event_loop()
        self._loop = loop
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()


def metrics_template(metrics: int, delay_ms: float, slowest_ms: float) -> str:
    out = ["url: {{ .promURL }}", "provider: bench", "method: GET", "metrics:"]
    for i in range(metrics):
        delay = slowest_ms if i == metrics - 1 else delay_ms
        out += [f"- name: m{i}", "  type: gauge", "  params:", "  - name: query",
                f'    value: m{i}{{version="{{{{ .version }}}}",delay="{delay:g}"}}',
                "  jqExpression: .data.result[0].value[1] | tonumber"]
    return "\n".join(out) + "\n"


def cmd_custommetrics(args: argparse.Namespace) -> list[str]:
    import uvloop

    from canarist.core.experiment import Experiment
    from canarist.runners.engine import RunSettings, run_experiment
    from canarist.stores.file import FileStore
    from canarist.tasks.registry import TASKS

    run_dir = Path(tempfile.mkdtemp(prefix="canarist-custommetrics-"))

    def runs(prom: Prometheus, delay_ms: float, slowest_ms: float) -> tuple[float, float, int]:
        """Median task wall time, median first-query-to-last-answer span, most in flight."""
        (run_dir / "bench.tpl").write_text(metrics_template(args.metrics, delay_ms, slowest_ms))
        spec = [{"task": "custommetrics", "with": {
            "templates": {"bench": "bench.tpl"},
            "values": {"promURL": f"http://127.0.0.1:{prom.port}/api/v1/query"},
            "versionValues": [{"version": "v0"}, {"version": "v1"}]}}]
        walls, spans, most = [], [], 0
        for _ in range(args.repeat):
            prom.reset()
            experiment = Experiment.model_validate({"spec": spec})
            start = time.perf_counter()
            experiment = uvloop.run(run_experiment(experiment, FileStore(run_dir), TASKS,
                                                   RunSettings(run_dir=run_dir)))
            walls.append(time.perf_counter() - start)
            result = experiment.result
            assert result is not None and result.insights is not None and not result.failure
            recorded = sum(len(v) for v in result.insights.non_hist_metric_values)
            assert recorded == 2 * args.metrics, recorded
            spans.append(prom.last - (prom.first or prom.last))
            most = max(most, prom.most_in_flight)
            print(f"  run (delays {delay_ms:g}/{slowest_ms:g} ms): {walls[-1] * 1e3:.0f} ms, "
                  f"{prom.queries} queries, at most {prom.most_in_flight} in flight, first query "
                  f"to last answer {spans[-1] * 1e3:.0f} ms", flush=True)
        return statistics.median(walls), statistics.median(spans), most

    with Prometheus() as prom:
        base_wall, _, _ = runs(prom, 0, 0)
        wall, span, most = runs(prom, args.delay_ms, args.slowest_ms)
    queries = 2 * args.metrics
    slowest = args.slowest_ms / 1000
    total = (2 * (args.metrics - 1) * args.delay_ms + 2 * args.slowest_ms) / 1000
    queried = wall - base_wall
    return [
        f"custommetrics: {args.metrics} metrics x 2 versions = {queries} queries, each answered "
        f"after {args.delay_ms:g} ms, one metric's after {args.slowest_ms:g} ms; medians of "
        f"{args.repeat} runs of one loop (engine, template, jq and file store included)",
        f"  slowest round trip {slowest * 1e3:.0f} ms; sum of all round trips {total * 1e3:.0f} ms",
        f"  most queries in flight at once: {most} of {queries}",
        f"  server's first query to last answer: {span * 1e3:.0f} ms",
        f"  task wall time {wall * 1e3:.0f} ms; with answers at once (no delay) "
        f"{base_wall * 1e3:.0f} ms; the difference, what the queries cost: {queried * 1e3:.0f} ms",
        f"  about one slowest round trip (< 1.5x {slowest * 1e3:.0f} ms): "
        f"{met(queried < 1.5 * slowest)}; x{queried / slowest:.2f} the slowest, "
        f"x{queried / total:.3f} the sum",
    ]


# report --------------------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> list[str]:
    run_dir = Path(args.dir) if args.dir else None
    if run_dir is None or not (run_dir / "experiment.yaml").exists():
        run_dir = run_dir or Path(tempfile.mkdtemp(prefix="canarist-loops-"))
        print(f"running {args.loops} loops in {run_dir} ...", flush=True)
        run_loops(args.loops, run_dir, every=max(1, args.loops // 10))
    from canarist.core.experiment import parse_experiment
    from canarist.core.yamltext import load_yaml

    text = (run_dir / "experiment.yaml").read_text()
    experiment = parse_experiment(load_yaml(text, source="experiment.yaml"), source="x")
    assert experiment.result is not None
    loops = experiment.result.num_loops
    walls, cpus, size = [], [], 0
    for _ in range(args.repeat):
        cpu = children_cpu_s()
        start = time.perf_counter()
        proc = subprocess.run([CANARIST, "report", "-o", "html"], cwd=run_dir,
                              capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        cpus.append(children_cpu_s() - cpu)
        size = len(proc.stdout)
    wall = statistics.median(walls)
    mb = size / 1e6
    return [
        f"canarist report -o html on {loops} loops (experiment.yaml {len(text) / 1024:.0f} KiB), "
        f"a fresh process each time, median of {args.repeat}:",
        f"  wall {wall:.2f} s (min {min(walls):.2f}, max {max(walls):.2f}); CPU (user + system) "
        f"{statistics.median(cpus):.2f} s (min {min(cpus):.2f}); output "
        f"{size / 1024:.0f} KiB ({mb:.2f} MB)",
        f"  goal < {REPORT_GOAL_S:g} s: {met(wall < REPORT_GOAL_S)}; "
        f"< {REPORT_GOAL_MB:g} MB: {met(mb < REPORT_GOAL_MB)}",
    ]


# pod -----------------------------------------------------------------------------------------

def tree_memory_kb(root: int) -> tuple[int, int, int]:
    """(RSS, PSS, distinct) of `root` and every descendant in KiB, from /proc. RSS counts the
    pages a forked child shares with its parent twice; PSS divides shared pages between every
    process on the machine that maps them (other Pythons share the interpreter's libraries);
    distinct is the root's RSS plus its descendants' private pages: what a pod's cgroup holds
    when nothing else in it maps the same files."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    rss = pss = distinct = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key == "Rss":
                        rss += int(rest.split()[0])
                        distinct += int(rest.split()[0]) if pid == root else 0
                    elif key == "Pss":
                        pss += int(rest.split()[0])
                    elif key in ("Private_Clean", "Private_Dirty") and pid != root:
                        distinct += int(rest.split()[0])
        except OSError:
            continue
    return rss, pss, distinct


def peak_tree_memory(argv: list[str], env: dict[str, str],
                     cwd: Path) -> tuple[int, int, int, int, float, str]:
    """(peak RSS, PSS and distinct memory of the process tree, largest ru_maxrss of one
    process, all in KiB; CPU seconds, user + system, of it and its children; output)."""
    cpu = children_cpu_s()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    peak_rss = peak_pss = peak_distinct = 0
    while proc.poll() is None:
        rss, pss, distinct = tree_memory_kb(proc.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        peak_distinct = max(peak_distinct, distinct)
        time.sleep(0.01)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{out[-3000:]}")
    # the largest ru_maxrss among the children waited for so far: this command's (the sandbox
    # commands before it are smaller, and it runs last)
    own = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak_rss, peak_pss, peak_distinct, own, children_cpu_s() - cpu, out


TUTORIAL_ISVC = """apiVersion: "serving.kserve.io/v1beta1"
kind: "InferenceService"
metadata:
  name: "sklearn-iris"
spec:
  predictor:
    {canary}model:
      modelFormat:
        name: sklearn
      storageUri: "gs://kfserving-examples/models/sklearn/1.0/{model}"
"""

TUTORIAL_SETS = [
    "tasks={ready,custommetrics,assess}",
    "ready.isvc=sklearn-iris",
    "ready.timeout=180s",
    "custommetrics.templates.kserve-prometheus=kserve-prometheus",
    "custommetrics.values.labels.service_name=sklearn-iris-predictor-default",
    "custommetrics.versionValues[0].labels.revision_name=sklearn-iris-predictor-default-00002",
    "custommetrics.versionValues[1].labels.revision_name=sklearn-iris-predictor-default-00001",
    "custommetrics.values.latencyPercentiles={50,75,90,95}",
    "assess.SLOs.upper.kserve-prometheus/latency-mean=50",
    "assess.SLOs.upper.kserve-prometheus/latency-p90=75",
    "assess.SLOs.upper.kserve-prometheus/error-count=0",
]


def cmd_pod(args: argparse.Namespace) -> list[str]:
    import urllib.request

    state = Path(tempfile.mkdtemp(prefix="canarist-pod-"))
    env = {**os.environ, "CANARIST_SANDBOX_DIR": str(state)}
    work = state / "work"
    work.mkdir()

    def canarist(*argv: str, stdin: str | None = None) -> str:
        proc = subprocess.run([CANARIST, *argv], env=env, cwd=work, input=stdin,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"canarist {' '.join(argv)} exited {proc.returncode}: "
                             f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        return proc.stdout

    canarist("sandbox", "up", "--ports", "auto")
    try:
        info = json.loads(canarist("sandbox", "status", "-o", "json"))
        ports = info["ports"]
        env["KUBECONFIG"] = str(state / "kubeconfig")
        env["CANARIST_PROMETHEUS_URL"] = f"http://127.0.0.1:{ports['prometheus']}/api/v1/query"
        canarist("sandbox", "apply", "--wait", "-f", "-",
                 stdin=TUTORIAL_ISVC.format(canary="", model="model"))
        canarist("sandbox", "apply", "--wait", "-f", "-",
                 stdin=TUTORIAL_ISVC.format(canary="canaryTrafficPercent: 10\n    ",
                                            model="model-2"))
        body = b'{"instances": [[6.8,  2.8,  4.8,  1.4], [6.0,  3.4,  4.5,  1.6]]}'
        for _ in range(100):
            request = urllib.request.Request(
                f"http://127.0.0.1:{ports['http']}/v1/models/sklearn-iris:predict", data=body,
                headers={"Host": "sklearn-iris.default.example.com",
                         "Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=10).read()
            time.sleep(0.05)
        time.sleep(3)
        sets = [x for s in TUTORIAL_SETS for x in ("--set", s)]
        canarist("k", "launch", "-g", "bench", *sets)
        rows = []
        for loop in range(1, args.loops + 1):
            argv = [CANARIST, "k", "run", "--namespace", "default", "--group", "bench", "-l", "info"]
            if loop > 1:
                argv.append("--reuse-result")
            start = time.perf_counter()
            rss, pss, distinct, own, cpu, _out = peak_tree_memory(argv, env, work)
            wall = time.perf_counter() - start
            rows.append((loop, rss, pss, distinct, own, wall, cpu))
            print(f"  k run loop {loop}: tree peak RSS {rss / 1024:.1f} MiB, PSS "
                  f"{pss / 1024:.1f} MiB, distinct {distinct / 1024:.1f} MiB, largest "
                  f"ru_maxrss {own / 1024:.1f} MiB, {wall:.1f} s, CPU {cpu:.1f} s", flush=True)
        report = canarist("k", "report", "-g", "bench")
        if "kserve-prometheus/latency-mean" not in report:
            raise SystemExit(f"the experiment recorded no metrics:\n{report}")
    finally:
        subprocess.run([CANARIST, "sandbox", "down"], env=env, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)
    lines = ["canarist k run (the Job's command) for the KServe tutorial's experiment "
             "(ready, custommetrics, assess) against the sandbox:",
             f"{'loop':>5} {'tree RSS MiB':>13} {'tree PSS MiB':>13} {'distinct MiB':>13} "
             f"{'ru_maxrss MiB':>14} {'wall s':>7} {'CPU s':>6}"]
    lines += [f"{row[0]:>5} {row[1] / 1024:>13.1f} {row[2] / 1024:>13.1f} {row[3] / 1024:>13.1f} "
              f"{row[4] / 1024:>14.1f} {row[5]:>7.1f} {row[6]:>6.1f}" for row in rows]
    lines.append(f"peak: distinct {max(r[3] for r in rows) / 1024:.1f} MiB (RSS of k run plus "
                 f"its children's private pages), RSS {max(r[1] for r in rows) / 1024:.1f} MiB, "
                 f"PSS {max(r[2] for r in rows) / 1024:.1f} MiB; sampled every 10 ms")
    return lines


COMMANDS: dict[str, Callable[[argparse.Namespace], list[str]]] = {
    "judge": cmd_judge, "custommetrics": cmd_custommetrics, "report": cmd_report, "pod": cmd_pod,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    judge = sub.add_parser("judge")
    judge.add_argument("--loops", type=int, default=300)
    judge.add_argument("--repeat", type=int, default=5)
    judge.add_argument("--dir", help="where the looping experiment is run (default: a temp dir)")
    metrics = sub.add_parser("custommetrics")
    metrics.add_argument("--metrics", type=int, default=20)
    metrics.add_argument("--delay-ms", type=float, default=100.0)
    metrics.add_argument("--slowest-ms", type=float, default=400.0)
    metrics.add_argument("--repeat", type=int, default=5)
    report = sub.add_parser("report")
    report.add_argument("--loops", type=int, default=300)
    report.add_argument("--repeat", type=int, default=5)
    report.add_argument("--dir", help="a run directory with experiment.yaml (made if absent)")
    pod = sub.add_parser("pod")
    pod.add_argument("--loops", type=int, default=3)
    args = parser.parse_args(argv)
    before = loadavg()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average before {before}",
          flush=True)
    lines = COMMANDS[args.command](args)
    print("\n" + "\n".join(lines))
    print(f"\nload average before {before}, after {loadavg()} (1, 5, 15 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
