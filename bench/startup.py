"""How long canarist takes to answer the commands people type and CI calls in loops.

    .venv/bin/python bench/startup.py [--runs 15] [--baseline-src DIR] [--json]

Each command runs as a fresh process (`canarist` as installed next to this Python; `python -m
canarist` where there is none) with stdout and stderr discarded; the figure is the process's
wall time from `subprocess.run` start to exit. The commands run round-robin, one run of each in
turn, so background load falls on all of them alike. Reported per command: the median and the
minimum wall time, the median as a multiple of the floor (`python -c pass` run the same way),
and the median CPU time (user + system of the child), which background load disturbs less.

`report` and `assert` read tests/fixtures/reports/http-two-versions.yaml (a small experiment,
two versions, SLOs) copied into a temporary run directory; `k launch --dry` renders the
Job for an http task there (no cluster is reached). canarist is imported from this
tree's src/ (PYTHONPATH). With `--baseline-src DIR` every canarist command also runs with
PYTHONPATH=DIR (e.g. a checkout of an older commit), interleaved with the others, and the table
gains its median and the ratio between the two. The load average (1, 5, 15 min) is printed
before and after; quote figures taken when it was low.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOOR = "python -c pass"
FIXTURE = ROOT / "tests" / "fixtures" / "reports" / "http-two-versions.yaml"


def canarist_argv() -> list[str]:
    script = Path(sys.executable).parent / "canarist"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "canarist"]


def commands(run_dir: str) -> list[tuple[str, list[str], set[int]]]:
    """(name, argv, acceptable exit codes)."""
    c = canarist_argv()
    rd = ["--run-dir", run_dir]
    return [
        (FLOOR, [sys.executable, "-c", "pass"], {0}),
        ("canarist version", [*c, "version"], {0}),
        ("canarist --help", [*c, "--help"], {0}),
        ("canarist report", [*c, "report", *rd], {0}),
        ("canarist report -o json", [*c, "report", "-o", "json", *rd], {0}),
        ("canarist assert -c completed,nofailure,slos",
         [*c, "assert", "-c", "completed,nofailure,slos", *rd], {0, 1}),
        ("canarist launch --help", [*c, "launch", "--help"], {0}),
        ("canarist report -o html", [*c, "report", "-o", "html", *rd], {0}),
        ("canarist k launch --dry", [*c, "k", "launch", "--dry", "-f",
                                     str(Path(run_dir) / "values.yaml")], {0}),
    ]


def time_once(argv: list[str], ok: set[int], src: Path, cwd: str) -> tuple[float, float]:
    """Wall time and CPU time (user + system, from the child's rusage) of one run, in s, in
    `cwd` (where `k launch --dry` writes its manifest)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=cwd)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}\n{stderr.decode()}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--baseline-src", type=Path, default=None, metavar="DIR",
                        help="also run canarist from this src/ directory, for before/after")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    srcs = {"": ROOT / "src"}
    if args.baseline_src is not None:
        srcs["baseline"] = args.baseline_src.resolve()

    run_dir = tempfile.mkdtemp(prefix="canarist-startup-")
    try:
        shutil.copy(FIXTURE, Path(run_dir) / "experiment.yaml")
        (Path(run_dir) / "values.yaml").write_text(
            "tasks: [http]\nhttp: {url: 'http://127.0.0.1:8080/'}\nrunner: job\n")
        cmds = [(name, argv, ok, label, src) for name, argv, ok in commands(run_dir)
                for label, src in srcs.items() if label == "" or name != FLOOR]
        for _, argv, ok, _, src in cmds:  # warm the page cache and the .pyc files; not counted
            time_once(argv, ok, src, run_dir)
        load_before = os.getloadavg()
        wall: dict[tuple[str, str], list[float]] = {(n, label): [] for n, _, _, label, _ in cmds}
        cpu: dict[tuple[str, str], list[float]] = {(n, label): [] for n, _, _, label, _ in cmds}
        for _ in range(args.runs):
            for name, argv, ok, label, src in cmds:
                w, c = time_once(argv, ok, src, run_dir)
                wall[name, label].append(w)
                cpu[name, label].append(c)
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)

    floor = statistics.median(wall[FLOOR, ""])
    cpu_floor = statistics.median(cpu[FLOOR, ""])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.runs} runs each; "
          f"load average before {_load(load_before)}, after {_load(load_after)}")
    baseline = "baseline" in srcs
    if baseline:
        print(f"baseline: {srcs['baseline']}")
    header = (f"{'command':44} {'wall ms':>8} {'min ms':>7} {'x floor':>7} "
              f"{'cpu ms':>7} {'x floor':>7}")
    if baseline:
        header += f" | {'base wall':>9} {'x floor':>7} {'base cpu':>8} {'new/base':>8}"
    print(header)
    print("-" * len(header))
    rows = []
    for (name, label), samples in wall.items():
        if label:
            continue
        med, cmed = statistics.median(samples), statistics.median(cpu[name, label])
        row: dict[str, Any] = {"command": name, "wall_median_ms": round(med * 1000, 1),
                               "wall_min_ms": round(min(samples) * 1000, 1),
                               "wall_x_floor": round(med / floor, 1),
                               "cpu_median_ms": round(cmed * 1000, 1),
                               "cpu_x_floor": round(cmed / cpu_floor, 1)}
        line = (f"{name:44} {med * 1000:8.1f} {min(samples) * 1000:7.1f} {med / floor:7.1f} "
                f"{cmed * 1000:7.1f} {cmed / cpu_floor:7.1f}")
        if baseline and (name, "baseline") in wall:
            base = statistics.median(wall[name, "baseline"])
            bcpu = statistics.median(cpu[name, "baseline"])
            row.update(baseline_wall_median_ms=round(base * 1000, 1),
                       baseline_wall_x_floor=round(base / floor, 1),
                       baseline_cpu_median_ms=round(bcpu * 1000, 1))
            line += f" | {base * 1000:9.1f} {base / floor:7.1f} {bcpu * 1000:8.1f} {med / base:8.2f}"
        rows.append(row)
        print(line)
    print("new/base: this tree's median wall time over the baseline's")
    if args.json:
        print(json.dumps({"load_before": load_before, "load_after": load_after, "rows": rows}))


def _load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


if __name__ == "__main__":
    main()
