"""Compare canarist's gRPC load generator with grpc-go, h2load and a bare grpc.aio loop.

    .venv/bin/python bench/grpc_bench.py [--duration 5] [--concurrency 16,64] [--rounds 5]

Installs golang-go, golang-google-grpc-dev (grpc-go's source) and nghttp2-client (h2load)
with apt-get when missing, builds the Go server and client in bench/grpc_go/ into a
temporary directory (GOPATH mode, offline), and starts the Go server: it answers any unary
call with fixed bytes (a serialized iris `ModelInferResponse`) through a raw-bytes codec, so
no generated code is needed. On a machine with 2+ CPUs the server is pinned to CPU 0 and
every client to CPU 1. Every client sends `inference.GRPCInferenceService/ModelInfer` with
the same serialized iris `ModelInferRequest` over one HTTP/2 connection, closed loop:

* `grpc-go`: bench/grpc_go/client, N goroutines calling `conn.Invoke` (what ghz is built on);
* `h2load`: nghttp2's HTTP/2 benchmark, one connection, N streams, the gRPC-framed request as
  the body (it cannot read trailers, so it only shows what a minimal HTTP/2 client costs);
* `grpc.aio`: a bare loop of N coroutines awaiting a `grpc.aio` unary callable, raw bytes;
* `grpc sync futures`: grpcio's synchronous channel, N chains of `future()` whose done
  callbacks send the next call (no event loop);
* `canarist`: `run_grpc_load` as the grpc task runs it (`duration`, `concurrency`), once per
  engine (`engine`: `h2`, canarist's own HTTP/2 client, and `aio`, grpcio's).

Each Python client is a fresh child process that reports its own CPU time and peak RSS;
grpc-go and h2load are measured by their children's rusage. The tools alternate within each
of `--rounds` rounds, and the table shows each one's median with the spread (min–max) over
the rounds. "calls/CPU-s" is calls per second of client CPU (user + system), the figure
that carries across machines and background load. Then: canarist at a fixed rate (open
loop), canarist sending 10^6 calls for peak RSS, and the Go client, grpc.aio and canarist
against a real KServe ModelServer (the sandbox's iris model, .venv-kserve), where the
Python server is the limit. The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GO_SOURCES = Path(__file__).resolve().parent / "grpc_go"
SERVER_CPU = "0"
CLIENT_CPU = "1"
METHOD = "/inference.GRPCInferenceService/ModelInfer"
CALL = "inference.GRPCInferenceService/ModelInfer"
IRIS_REQUEST = {
    "model_name": "sklearn-iris",
    "inputs": [
        {
            "name": "input-0",
            "shape": [2, 4],
            "datatype": "FP32",
            "contents": {"fp32_contents": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]},
        }
    ],
}
IRIS_RESPONSE = {
    "model_name": "sklearn-iris",
    "id": "2b1d7a4e-6f5c-4d0a-9a55-0c1e5f1f6a11",
    "outputs": [
        {"name": "output-0", "datatype": "INT32", "shape": [2], "contents": {"int_contents": [1, 1]}}
    ],
}


# ---------------------------------------------------------------- set-up


def ensure_tools() -> None:
    need = []
    if shutil.which("go") is None:
        need.append("golang-go")
    if not Path("/usr/share/gocode/src/google.golang.org/grpc").is_dir():
        need.append("golang-google-grpc-dev")
    if shutil.which("h2load") is None:
        need.append("nghttp2-client")
    if not need:
        return
    print(f"installing {' '.join(need)} ...", flush=True)
    cmd = ["apt-get", "install", "-y", *need]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(cmd, env=env, capture_output=True, check=True)


def build_go(out: Path) -> tuple[Path, Path]:
    """Build the Go server and client offline against Debian's grpc-go (GOPATH mode)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "canarist-bench-go"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode",
           "GOCACHE": str(cache), "GOFLAGS": ""}
    bins = []
    for name in ("server", "client"):
        exe = out / f"grpc-go-{name}"
        proc = subprocess.run(["go", "build", "-o", str(exe), "main.go"], cwd=GO_SOURCES / name,
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"go build {name} failed:\n{proc.stderr}")
        bins.append(exe)
    return bins[0], bins[1]


def messages() -> tuple[bytes, bytes]:
    from canarist.backends.loadgen.grpc_schema import (
        SHIPPED_INFERENCE_PROTO,
        build_requests,
        load_method_from_proto,
    )

    schema = load_method_from_proto(SHIPPED_INFERENCE_PROTO, CALL)
    req = build_requests(schema, IRIS_REQUEST)[0].SerializeToString()
    resp_cls = schema.response_class
    resp = resp_cls()
    from google.protobuf import json_format

    json_format.ParseDict(IRIS_RESPONSE, resp)
    return req, resp.SerializeToString()


def pinned(cpu: str, argv: list[str]) -> list[str]:
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", cpu, *argv]
    return argv


def start_go_server(exe: Path, response: bytes) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(pinned(SERVER_CPU, [str(exe), "-response", response.hex()]),
                            stdout=subprocess.PIPE, text=True)
    atexit.register(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.match(r"PORT (\d+)", line)
    if not m:
        raise SystemExit(f"the Go server did not start: {line!r}")
    return proc, f"127.0.0.1:{m.group(1)}"


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------- one measurement


@dataclass
class Sample:
    calls_s: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    """client CPU µs per call"""
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_cpu_s(self) -> float:
        return 1e6 / self.cpu_us if self.cpu_us else 0.0


def run_go_client(exe: Path, target: str, req_file: Path, conc: int, dur: float) -> Sample:
    argv = [str(exe), "-target", target, "-method", METHOD, "-request", str(req_file),
            "-c", str(conc), "-d", str(dur)]
    cpu = children_cpu_s()
    proc = subprocess.run(pinned(CLIENT_CPU, argv), capture_output=True, text=True)
    cpu = children_cpu_s() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"grpc-go client failed: {proc.stderr.strip()[-1000:]}")
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    calls = d["calls"] + d["errors"]
    return Sample(d["calls"] / d["seconds"], d["p50"], d["p99"], cpu / max(1, calls) * 1e6,
                  d["errors"])


def run_h2load(target: str, body_file: Path, conc: int, dur: float, tmp: Path) -> Sample:
    log = tmp / "h2load.log"
    argv = ["h2load", "-c1", "-t1", f"-m{conc}", f"-D{int(dur)}", "-d", str(body_file),
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            "--log-file", str(log), f"http://{target}{METHOD}"]
    cpu = children_cpu_s()
    proc = subprocess.run(pinned(CLIENT_CPU, argv), capture_output=True, text=True)
    cpu = children_cpu_s() - cpu
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed",
                  proc.stdout)
    if proc.returncode != 0 or not m:
        raise SystemExit(f"h2load failed: {proc.stdout[-1000:]}{proc.stderr[-1000:]}")
    lats = sorted(int(line.split()[2]) for line in log.read_text().splitlines() if line.strip())
    done = int(m.group(1))
    return Sample(done / dur, lats[len(lats) // 2] / 1000, lats[int(len(lats) * 0.99)] / 1000,
                  cpu / max(1, done) * 1e6, int(m.group(3)))


def run_child(kind: str, params: dict[str, Any], pin: bool = True) -> Sample:
    argv = [sys.executable, __file__, "--child", kind, json.dumps(params)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(pinned(CLIENT_CPU, argv) if pin else argv, capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed: {proc.stderr.strip()[-2000:]}")
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    return Sample(d["calls_s"], d["p50"], d["p99"], d["cpu_us"], d["errors"], d)


# ---------------------------------------------------------------- the Python clients (children)


def vm_kb(field: str) -> int:
    """A /proc/self/status figure in kB (VmHWM: this process's peak RSS since exec;
    `ru_maxrss` would include the parent's, kept across fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child_result(calls: int, errors: int, wall: float, lats_ms: list[float],
                  ru0: resource.struct_rusage, **extra: Any) -> dict[str, Any]:
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
    lats_ms.sort()
    n = len(lats_ms)
    return {
        "calls_s": (calls - errors) / wall,
        "errors": errors,
        "p50": lats_ms[n // 2] if n else 0.0,
        "p99": lats_ms[int(n * 0.99)] if n else 0.0,
        "cpu_us": cpu / max(1, calls) * 1e6,
        "rss_peak_kb": vm_kb("VmHWM"),
        **extra,
    }


def child_bare_aio(p: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    import grpc

    payload = bytes.fromhex(p["request"])

    async def main() -> dict[str, Any]:
        ch = grpc.aio.insecure_channel(p["target"])
        await ch.channel_ready()
        call = ch.unary_unary(METHOD)
        lats: list[float] = []
        errors = 0
        clock = time.perf_counter
        end = clock() + p["duration"]

        async def worker() -> None:
            nonlocal errors
            while (t := clock()) < end:
                try:
                    await call(payload)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                lats.append((clock() - t) * 1e3)

        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = clock()
        await asyncio.gather(*(worker() for _ in range(p["concurrency"])))
        wall = clock() - t0
        await ch.close()
        return _child_result(len(lats) + errors, errors, wall, lats, ru0)

    return asyncio.run(main())


def child_sync_futures(p: dict[str, Any]) -> dict[str, Any]:
    import threading

    import grpc

    payload = bytes.fromhex(p["request"])
    ch = grpc.insecure_channel(p["target"])
    grpc.channel_ready_future(ch).result(timeout=10)
    call = ch.unary_unary(METHOD)
    lats: list[float] = []
    errors = [0]
    clock = time.perf_counter
    live = [p["concurrency"]]
    done = threading.Event()
    end = 0.0

    def send() -> None:
        t = clock()
        if t >= end:
            live[0] -= 1
            if live[0] == 0:
                done.set()
            return
        f = call.future(payload)
        f.add_done_callback(lambda fut: finished(fut, t))

    def finished(fut: Any, t: float) -> None:
        if fut.exception() is None:
            lats.append((clock() - t) * 1e3)
        else:
            errors[0] += 1
        send()

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = clock()
    end = t0 + p["duration"]
    for _ in range(p["concurrency"]):
        send()
    done.wait()
    wall = clock() - t0
    ch.close()
    return _child_result(len(lats) + errors[0], errors[0], wall, lats, ru0)


def child_canarist(p: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    from canarist.backends.loadgen.grpc import GrpcLoadSpec, run_grpc_load

    spec = GrpcLoadSpec(**p["spec"])
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    rss_before = vm_kb("VmHWM")
    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        r = runner.run(run_grpc_load(spec))
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
    return {
        "calls_s": (r.request_count - r.errors) / r.duration_s,
        "count": r.request_count,
        "errors": r.errors,
        "status": {str(k): v for k, v in r.status_counts.items()},
        "p50": r.latency.percentile(50),
        "p99": r.latency.percentile(99),
        "svc_p50": r.service_time.percentile(50),
        "svc_p99": r.service_time.percentile(99),
        "late": r.late_sends,
        "dropped": r.dropped,
        "duration": r.duration_s,
        "cpu_us": cpu / max(1, r.request_count) * 1e6,
        "rss_import_kb": rss_before,
        "rss_peak_kb": vm_kb("VmHWM"),
    }


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "aio": child_bare_aio,
    "sync-futures": child_sync_futures,
    "canarist": child_canarist,
}


# ---------------------------------------------------------------- report


@dataclass
class Series:
    name: str
    samples: list[Sample] = field(default_factory=list)

    def med(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)

    def spread(self, attr: str, fmt: str) -> str:
        vals = [getattr(s, attr) for s in self.samples]
        if len(vals) < 2:
            return ""
        return f"{format(min(vals), fmt)}–{format(max(vals), fmt)}"


def series_line(s: Series) -> str:
    return (
        f"{s.name:<30} {s.med('calls_s'):>8,.0f} ({s.spread('calls_s', ',.0f'):>13}) "
        f"{s.med('p50_ms'):>7.3f} {s.med('p99_ms'):>7.3f} {s.med('cpu_us'):>7.1f} "
        f"{s.med('per_cpu_s'):>9,.0f} ({s.spread('per_cpu_s', ',.0f'):>13}) "
        f"{sum(x.errors for x in s.samples):>4}"
    )


HEADER = (
    f"{'client':<30} {'calls/s':>8} {'(min–max)':>15} {'p50 ms':>7} {'p99 ms':>7} "
    f"{'CPU µs':>7} {'calls/CPU-s':>9} {'(min–max)':>15} {'errs':>4}"
)


def canarist_spec(target: str, conc: int, dur: float, engine: str, **kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": target, "call": CALL, "data": IRIS_REQUEST,
                            "concurrency": conc, "duration_s": dur, "duration_stop": "wait",
                            "engine": engine, **kw}
    return {"spec": spec}


def closed_loops(clients: dict[str, Callable[[int], Sample]], concurrency: list[int],
                 rounds: int) -> dict[int, list[Series]]:
    out: dict[int, list[Series]] = {}
    for conc in concurrency:
        series = {name: Series(f"{name} c={conc}") for name in clients}
        for r in range(rounds):
            names = list(clients)
            if r % 2:
                names.reverse()
            for name in names:
                s = clients[name](conc)
                series[name].samples.append(s)
                print(f"  round {r + 1} c={conc} {name:<22} {s.calls_s:>8,.0f} calls/s "
                      f"p50 {s.p50_ms:.3f} p99 {s.p99_ms:.3f} CPU {s.cpu_us:.1f} µs/call "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
        out[conc] = list(series.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--million-engines", default="h2", help="h2, aio or h2,aio")
    parser.add_argument("--kserve-rounds", type=int, default=1)
    parser.add_argument("--skip", default="", help="comma-separated: options,rate,million,kserve")
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(CHILDREN[args.child[0]](json.loads(args.child[1]))))
        return
    skip = set(filter(None, args.skip.split(",")))
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="canarist-grpc-bench-"))
    atexit.register(shutil.rmtree, tmp, True)
    go_server, go_client = build_go(tmp)
    req, resp = messages()
    req_file = tmp / "request.bin"
    req_file.write_bytes(req)
    body_file = tmp / "request.grpc"
    body_file.write_bytes(b"\0" + len(req).to_bytes(4, "big") + req)
    server, target = start_go_server(go_server, resp)
    dur = args.duration
    conc_list = [int(c) for c in args.concurrency.split(",")]
    load_before = loadavg()
    print(f"grpc-go server {target} (GOMAXPROCS=1, CPU {SERVER_CPU}), clients on CPU "
          f"{CLIENT_CPU}, {os.cpu_count()} CPUs, runs of {dur:g} s, {args.rounds} rounds; "
          f"request {len(req)} B, response {len(resp)} B; load average before: {load_before}",
          flush=True)
    child = {"target": target, "request": req.hex(), "duration": dur}
    clients: dict[str, Callable[[int], Sample]] = {
        "grpc-go": lambda c: run_go_client(go_client, target, req_file, c, dur),
        "h2load": lambda c: run_h2load(target, body_file, c, dur, tmp),
        "grpc.aio bare loop": lambda c: run_child("aio", {**child, "concurrency": c}),
        "canarist (h2)": lambda c: run_child("canarist", canarist_spec(target, c, dur, "h2")),
    }
    if "options" not in skip:
        clients["grpc sync futures"] = lambda c: run_child("sync-futures",
                                                           {**child, "concurrency": c})
        clients["canarist (aio)"] = lambda c: run_child("canarist",
                                                        canarist_spec(target, c, dur, "aio"))
    results = closed_loops(clients, conc_list, args.rounds)
    lines = [HEADER, "-" * len(HEADER)]
    verdicts = []
    for conc, series in results.items():
        lines += [series_line(s) for s in series]
        by = {s.name.rsplit(" c=", 1)[0]: s for s in series}
        go, can = by["grpc-go"], by["canarist (h2)"]
        ratio = can.med("per_cpu_s") / go.med("per_cpu_s")
        p50 = can.med("p50_ms") / go.med("p50_ms") - 1
        verdicts.append(
            f"c={conc}: canarist/grpc-go calls per CPU-s x{ratio:.2f} (goal >= 0.5: "
            f"{'met' if ratio >= 0.5 else 'NOT met'}); "
            f"calls/s x{can.med('calls_s') / go.med('calls_s'):.2f}; "
            f"p50 {p50 * 100:+.0f} % (goal within 50 %: {'met' if p50 <= 0.5 else 'NOT met'})"
        )

    if "rate" not in skip:
        for engine in ("h2", "aio"):
            d = run_child("canarist", canarist_spec(target, 16, dur, engine, rps=args.rate)).extra
            expected = int(dur * args.rate)
            verdicts.append(
                f"fixed rate {args.rate:g}/s, c=16, engine {engine}: {d['count']} of {expected} "
                f"calls, achieved {d['count'] / d['duration']:.1f}/s "
                f"({(d['count'] / d['duration'] / args.rate - 1) * 100:+.2f} %), late sends "
                f"{d['late']}, dropped {d['dropped']}, latency p50/p99 {d['p50']:.3f}/"
                f"{d['p99']:.3f} ms, service time {d['svc_p50']:.3f}/{d['svc_p99']:.3f} ms, "
                f"CPU {d['cpu_us']:.1f} µs/call"
            )
            print(verdicts[-1], flush=True)
        one = run_go_client(go_client, target, req_file, 1, dur)
        verdicts.append(f"  grpc-go c=1 (unloaded server): p50/p99 {one.p50_ms:.3f}/"
                        f"{one.p99_ms:.3f} ms")

    if "million" not in skip:
        for engine in args.million_engines.split(","):
            d = run_child("canarist", {"spec": {"host": target, "call": CALL, "data": IRIS_REQUEST,
                                                "concurrency": 16, "total": args.million,
                                                "engine": engine}}).extra
            verdicts.append(
                f"{args.million:,} calls, c=16, engine {engine}: {d['count']:,} calls, "
                f"{d['calls_s']:,.0f}/s, errors {d['errors']}, peak RSS "
                f"{d['rss_peak_kb'] / 1024:.1f} MB (after imports {d['rss_import_kb'] / 1024:.1f} MB)"
            )
            print(verdicts[-1], flush=True)
    server.kill()
    server.wait()

    kserve_lines: list[str] = []
    if "kserve" not in skip:
        kserve_lines = run_kserve(go_client, tmp, req_file, dur, conc_list, args.kserve_rounds)

    load_after = loadavg()
    print("\nclosed loop, one connection, grpc-go server; medians over "
          f"{args.rounds} rounds (min–max); load average before {load_before}, "
          f"after {load_after}")
    print("\n".join(lines))
    print("\n" + "\n".join(verdicts))
    if kserve_lines:
        print("\n" + "\n".join(kserve_lines))


def run_kserve(go_client: Path, tmp: Path, req_file: Path, dur: float, conc_list: list[int],
               rounds: int) -> list[str]:
    sys.path.insert(0, str(REPO))
    from tests.servers.kserve_fixture import kserve_python, running_kserve_server

    python = kserve_python()
    if python is None:
        return ["kserve: not installed (./scripts/setup creates .venv-kserve); skipped"]
    # The server's own process is pinned to the server CPU through its interpreter.
    wrapper = tmp / "kserve-python"
    wrapper.write_text(f"#!/bin/sh\nexec {' '.join(pinned(SERVER_CPU, [python]))} \"$@\"\n")
    wrapper.chmod(0o755)
    with running_kserve_server(str(wrapper), tmp) as srv:
        target = srv.grpc_address
        print(f"kserve ModelServer {target} (CPU {SERVER_CPU}); load {loadavg()}", flush=True)
        child = {"target": target, "request": req_file.read_bytes().hex(), "duration": dur}
        clients: dict[str, Callable[[int], Sample]] = {
            "grpc-go": lambda c: run_go_client(go_client, target, req_file, c, dur),
            "grpc.aio bare loop": lambda c: run_child("aio", {**child, "concurrency": c}),
            "canarist (h2)": lambda c: run_child("canarist", canarist_spec(target, c, dur, "h2")),
            "canarist (aio)": lambda c: run_child("canarist", canarist_spec(target, c, dur, "aio")),
        }
        results = closed_loops(clients, conc_list, rounds)
    lines = [f"against a kserve ModelServer (sklearn iris, Python, CPU {SERVER_CPU}), "
             f"{rounds} round(s); load {loadavg()}", HEADER, "-" * len(HEADER)]
    for series in results.values():
        lines += [series_line(s) for s in series]
    return lines


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
