"""Compare canarist's HTTP load generator with wrk and hey against nginx on this machine.

    .venv/bin/python bench/http_bench.py [--duration 8] [--connections 16,64] [--rounds 5]

Installs nginx-light, wrk and hey with apt-get when missing, starts nginx (1 worker, access
log off, keepalive_requests 1000000, 127.0.0.1, a free port, a temporary prefix) serving a
22-byte JSON, and stops it at exit. On a machine with 2+ CPUs nginx is pinned to CPU 0 and
every client to CPU 1. Each canarist run is a fresh child process, which reports its own
peak RSS.

Runs: closed loop at each connection count (wrk, hey, canarist; --rounds rounds, at least 5
by default, the three tools alternating so background load hits them alike; the table shows
each tool's median over the rounds and the spread, min-max); canarist with 2 worker processes; a
fixed rate of 2000 req/s (canarist open loop; `hey -q` as the other rate-limited client; wrk
has no rate flag, so the latency reference is wrk's closed loop over one connection, i.e.
an unloaded server); 1M requests for peak RSS. Prints one table, the ratios of the medians,
the goal (>= 0.95x wrk's req/s, p50 and p99 no more than 25 % or 100 µs above wrk's at each
connection count) marked met or not from the medians, and the load average before and after.
"client CPU µs/req" is user+system CPU time of the client process per request, which
background load disturbs much less than req/s.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BODY = '{"predictions":[1.0]}\n'
SERVER_CPU = "0"
CLIENT_CPU = "1"


@dataclass
class Row:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    extra: str = ""
    cpu_us: float = math.nan
    """Client CPU (user + system) per request, µs."""


GOAL_RPS = 0.95
"""canarist's req/s at least this share of wrk's (medians)."""
GOAL_LATENCY = (0.25, 0.100)
"""canarist's p50 and p99 no more than 25 % or 100 µs (whichever is larger) above wrk's."""


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


@dataclass
class Summary:
    """One tool's rounds at one connection count: medians and spread."""

    name: str
    rounds: list[Row]

    def values(self, field: str) -> list[float]:
        return [getattr(r, field) for r in self.rounds]

    def median(self, field: str) -> float:
        return statistics.median(self.values(field))

    def spread(self, field: str, fmt: str) -> str:
        vals = self.values(field)
        return f"{format(min(vals), fmt)}-{format(max(vals), fmt)}"

    def row(self) -> Row:
        return Row(self.name, self.median("rps"), self.median("p50_ms"), self.median("p99_ms"),
                   cpu_us=self.median("cpu_us"))


def ensure_tools() -> None:
    missing = [t for t in ("nginx", "wrk", "hey") if shutil.which(t) is None]
    if Path("/usr/sbin/nginx").exists() and "nginx" in missing:
        missing.remove("nginx")
    if not missing:
        return
    pkgs = ["nginx-light" if t == "nginx" else t for t in missing]
    print(f"installing {' '.join(pkgs)} ...", flush=True)
    cmd = ["apt-get", "install", "-y", *pkgs]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(cmd, env=env, capture_output=True, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pinned(cpu: str, argv: list[str]) -> list[str]:
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", cpu, *argv]
    return argv


def start_nginx() -> tuple[subprocess.Popen[bytes], str]:
    prefix = Path(tempfile.mkdtemp(prefix="canarist-bench-nginx-"))
    port = free_port()
    (prefix / "logs").mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{BODY.strip()}\\n';
        }}
    }}
}}
"""
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen(pinned(SERVER_CPU, [nginx, "-p", str(prefix), "-c", str(conf)]))

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(prefix, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if BODY.encode() in s.recv(4096):
                    return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nginx did not start")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_wrk(url: str, conns: int, duration: float) -> Row:
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{int(duration)}s", "--latency", url]
    cpu = children_cpu_s()
    out = subprocess.run(pinned(CLIENT_CPU, argv), capture_output=True, text=True).stdout
    cpu = children_cpu_s() - cpu
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for pct, val, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[pct] = float(val) * _UNITS[unit]
    cpu_us = cpu / (rps * duration) * 1e6
    return Row(f"wrk -c{conns}", rps, lat["50"], lat["99"], f"{cpu_us:.1f}", cpu_us)


def run_hey(url: str, conns: int, duration: float, qps_per_worker: float = 0) -> Row:
    argv = ["hey", "-c", str(conns), "-z", f"{int(duration)}s"]
    if qps_per_worker:
        argv += ["-q", str(qps_per_worker)]
    cpu = children_cpu_s()
    out = subprocess.run(pinned(CLIENT_CPU, [*argv, url]), capture_output=True, text=True).stdout
    cpu = children_cpu_s() - cpu
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {p: float(v) * 1e3 for p, v in re.findall(r"(50|99)%+ in ([\d.]+) secs", out)}
    name = f"hey -c{conns}" + (f" -q{qps_per_worker:g}" if qps_per_worker else "")
    cpu_us = cpu / (rps * duration) * 1e6
    return Row(name, rps, lat["50"], lat["99"], f"{cpu_us:.1f}", cpu_us)


def child_main(args: list[str]) -> None:
    """Run one canarist load in this (fresh) process and print JSON."""
    import resource

    import uvloop

    from canarist.backends.loadgen.http import HttpLoadSpec, run_http_load

    params: dict[str, Any] = json.loads(args[0])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    spec = HttpLoadSpec(**params)
    t = time.perf_counter()
    who = resource.RUSAGE_CHILDREN if spec.workers and spec.workers > 1 else resource.RUSAGE_SELF
    ru0 = resource.getrusage(who)
    result = uvloop.run(run_http_load(spec))
    ru1 = resource.getrusage(who)
    wall = time.perf_counter() - t
    n = max(1, result.request_count)
    out = {
        "rps": result.achieved_rate,
        "count": result.request_count,
        "errors": result.errors,
        "late": result.late_sends,
        "dropped": result.dropped,
        "duration": result.duration_s,
        "wall": wall,
        "p50": result.latency.percentile(50),
        "p99": result.latency.percentile(99),
        "svc_p50": result.service_time.percentile(50),
        "svc_p99": result.service_time.percentile(99),
        "user_us": (ru1.ru_utime - ru0.ru_utime) / n * 1e6,
        "sys_us": (ru1.ru_stime - ru0.ru_stime) / n * 1e6,
        "rss_import_kb": rss_before,
        "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(json.dumps(out))


NGINX_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 27 Nov 2026 00:50:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: 22\r\nConnection: keep-alive\r\n\r\n"
    + BODY.encode()
)


def micro_hot_path(n: int = 200_000) -> dict[str, float]:
    """CPU µs per response spent in canarist's Python code, without sockets.

    Feeds a recorded nginx response to one connection whose transport discards writes:
    parse, record and send the next request, as in a real run minus the event loop and the
    kernel. Also the two ways of recording a value (HDR directly vs the bucketed dict).
    """

    import uvloop
    from hdrh.histogram import HdrHistogram

    from canarist.backends.loadgen._http_engine import Engine
    from canarist.backends.loadgen.http import HttpLoadSpec, prepare
    from canarist.backends.loadgen.recorder import Recorder

    class Sink:
        def write(self, data: bytes) -> None:
            pass

    async def per_response(qps: float | None) -> float:
        target, plan = prepare(HttpLoadSpec(url="http://127.0.0.1:1/", num_requests=10**9, qps=qps))
        engine = Engine(target, plan)
        conn = engine.conns[0]
        conn.connection_made(Sink())  # type: ignore[arg-type]
        engine.t0 = time.perf_counter_ns() - 10**12
        conn.send(0, 0)
        feed = conn.data_received
        t = time.process_time()
        for _ in range(n):
            feed(NGINX_RESPONSE)
        return (time.process_time() - t) / n * 1e6

    out = {
        "closed loop": uvloop.run(per_response(None)),
        "open loop": uvloop.run(per_response(1e9)),
    }
    hdr = HdrHistogram(1, 3_600_000_000, 3)
    t = time.process_time()
    for i in range(n):
        hdr.record_value(100 + i % 300)
    out["HdrHistogram.record_value"] = (time.process_time() - t) / n * 1e6
    rec = Recorder()
    t = time.process_time()
    for i in range(n):
        rec.record(0, 0, (100 + i % 300) * 1000, 200)
    out["Recorder.record (2 values)"] = (time.process_time() - t) / n * 1e6
    return out


def run_canarist(pin: bool = True, **params: Any) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", json.dumps(params)]
    proc = subprocess.run(pinned(CLIENT_CPU, argv) if pin else argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"canarist run failed: {proc.stderr.strip()[-2000:]}")
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def canarist_row(name: str, d: dict[str, Any]) -> Row:
    extra = (
        f"{d['user_us'] + d['sys_us']:.1f}; service time p50 {d['svc_p50']:.3f} "
        f"p99 {d['svc_p99']:.3f}; errors {d['errors']}"
    )
    return Row(name, d["rps"], d["p50"], d["p99"], extra, d["user_us"] + d["sys_us"])


def fmt(row: Row) -> str:
    return f"{row.name:<34} {row.rps:>10,.0f} {row.p50_ms:>9.3f} {row.p99_ms:>9.3f}  {row.extra}"


def ratio_line(a: Row, b: Row) -> str:
    return (
        f"  canarist/{b.name.split()[0]}: req/s x{a.rps / b.rps:.3f}, "
        f"p50 {a.p50_ms - b.p50_ms:+.3f} ms ({(a.p50_ms / b.p50_ms - 1) * 100:+.0f} %), "
        f"p99 {a.p99_ms - b.p99_ms:+.3f} ms ({(a.p99_ms / b.p99_ms - 1) * 100:+.0f} %)"
    )


def goal_lines(conns: int, can: Row, wrk: Row) -> list[str]:
    """The goal at one connection count, met or not, from the medians."""
    share = can.rps / wrk.rps
    out = [f"  c={conns} req/s {can.rps:,.0f} vs wrk {wrk.rps:,.0f}: x{share:.3f} "
           f"(>= x{GOAL_RPS}): {'met' if share >= GOAL_RPS else 'NOT met'}"]
    for label, mine, theirs in (("p50", can.p50_ms, wrk.p50_ms), ("p99", can.p99_ms, wrk.p99_ms)):
        allowed = max(GOAL_LATENCY[0] * theirs, GOAL_LATENCY[1])
        over = mine - theirs
        out.append(f"  c={conns} {label} {mine:.3f} ms vs wrk {theirs:.3f} ms: "
                   f"{over * 1e3:+.0f} µs ({(mine / theirs - 1) * 100:+.0f} %; at most "
                   f"+{allowed * 1e3:.0f} µs): {'met' if over <= allowed else 'NOT met'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", default="16,64")
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child is not None:
        child_main([args.child])
        return
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    load_before = loadavg()
    micro = micro_hot_path()
    print("CPU µs per response in canarist's Python code (no sockets):")
    for name, value in micro.items():
        print(f"  {name:<28} {value:6.2f}")
    ensure_tools()
    nginx, url = start_nginx()
    dur = args.duration
    print(
        f"target {url} (nginx 1 worker), {os.cpu_count()} CPUs, runs of {dur:g} s, "
        f"median of {args.rounds} alternating rounds; load average before: {load_before}",
        flush=True,
    )
    closed = [
        f"{'closed loop':<16} {'req/s median (min-max)':>26} {'p50 ms (min-max)':>21} "
        f"{'p99 ms (min-max)':>23} {'CPU µs/req (min-max)':>22}"
    ]
    closed.append("-" * len(closed[0]))
    header = f"{'run':<34} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9}  client CPU µs/req"
    lines = [header, "-" * len(header)]
    ratios = []
    goals: list[str] = []
    for conns in (int(c) for c in args.connections.split(",")):
        runs: dict[str, Summary] = {}
        for _ in range(args.rounds):
            for row in (
                run_wrk(url, conns, dur),
                run_hey(url, conns, dur),
                canarist_row(
                    f"canarist -c{conns}",
                    run_canarist(url=url, duration_s=dur, connections=conns),
                ),
            ):
                print("  round: " + fmt(row), flush=True)
                runs.setdefault(row.name, Summary(row.name, [])).rounds.append(row)
        for summary in runs.values():
            closed.append(
                f"{summary.name:<16} {summary.median('rps'):>9,.0f} "
                f"({summary.spread('rps', ',.0f'):>15}) "
                f"{summary.median('p50_ms'):>7.3f} ({summary.spread('p50_ms', '.3f'):>11}) "
                f"{summary.median('p99_ms'):>7.3f} ({summary.spread('p99_ms', '.3f'):>13}) "
                f"{summary.median('cpu_us'):>7.1f} ({summary.spread('cpu_us', '.1f'):>12})"
            )
        wrk, hey, can = (s.row() for s in runs.values())
        ratios += [f"c={conns} (medians):", ratio_line(can, wrk), ratio_line(can, hey)]
        goals += goal_lines(conns, can, wrk)
    conns = int(args.connections.split(",")[-1])
    for workers in (1, 2):
        row = canarist_row(
            f"canarist -c{conns} workers={workers} unpinned",
            run_canarist(pin=False, url=url, duration_s=dur, connections=conns, workers=workers),
        )
        lines.append(fmt(row))
        print(lines[-1], flush=True)

    rate = args.rate
    fixed = run_canarist(url=url, duration_s=dur, connections=16, qps=rate)
    fixed_row = canarist_row(f"canarist -c16 qps={rate:g}", fixed)
    hey_rate = run_hey(url, 16, dur, qps_per_worker=rate / 16)
    wrk_one = run_wrk(url, 1, dur)
    wrk_one.name = "wrk -c1 (closed loop, unloaded)"
    lines += [fmt(fixed_row), fmt(hey_rate), fmt(wrk_one)]
    print("\n".join(lines[-3:]), flush=True)
    expected = int(dur * rate)
    rate_err = (fixed["rps"] / rate - 1) * 100
    ratios += [
        f"fixed rate {rate:g}/s: sent {fixed['count']} of {expected} scheduled, achieved "
        f"{fixed['rps']:.1f}/s ({rate_err:+.2f} %), late sends {fixed['late']}, "
        f"dropped {fixed['dropped']}; hey -q achieved {hey_rate.rps:.1f}/s "
        f"({(hey_rate.rps / rate - 1) * 100:+.2f} %)",
        ratio_line(fixed_row, wrk_one),
    ]

    million = run_canarist(url=url, num_requests=args.million, connections=16)
    lines.append(
        fmt(canarist_row(f"canarist -n{args.million} -c16", million))
        + f"; peak RSS {million['rss_peak_kb'] / 1024:.1f} MB"
        f" (after imports {million['rss_import_kb'] / 1024:.1f} MB)"
    )
    print(lines[-1], flush=True)
    load_after = loadavg()
    print(f"\nload average before {load_before}, after {load_after} (1, 5, 15 min)")
    print("\n" + "\n".join(closed))
    print("\n" + "\n".join(lines))
    print("\n" + "\n".join(ratios))
    print("\ngoal, from the medians (>= 0.95x wrk's req/s; p50, p99 at most 25 % or 100 µs "
          "above wrk's):")
    print("\n".join(goals))
    nginx.send_signal(signal.SIGQUIT)


if __name__ == "__main__":
    main()
