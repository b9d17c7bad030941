"""How long canarist takes to answer the commands people type and CI calls in loops.

    .venv/bin/python bench/startup.py [--runs 15] [--json]

Each command runs as a fresh process (`canarist` as installed next to this Python; `python -m
canarist` where there is none) with stdout and stderr discarded; the figure is the process's
wall time from `subprocess.run` start to exit. The commands run round-robin, one run of each in
turn, so background load falls on all of them alike. Reported per command: the median, the
minimum, and the median as a multiple of the floor, `python -c pass` run the same way.

`report` and `assert` read tests/fixtures/reports/http-two-versions.yaml (a small experiment,
two versions, SLOs) copied into a temporary run directory. The load average (1, 5, 15 min) is
printed before and after; quote figures taken when it was low.
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

ROOT = Path(__file__).resolve().parent.parent
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
        ("python -c pass", [sys.executable, "-c", "pass"], {0}),
        ("canarist version", [*c, "version"], {0}),
        ("canarist --help", [*c, "--help"], {0}),
        ("canarist report", [*c, "report", *rd], {0}),
        ("canarist report -o json", [*c, "report", "-o", "json", *rd], {0}),
        ("canarist assert -c completed,nofailure,slos",
         [*c, "assert", "-c", "completed,nofailure,slos", *rd], {0, 1}),
        ("canarist launch --help", [*c, "launch", "--help"], {0}),
        ("canarist report -o html", [*c, "report", "-o", "html", *rd], {0}),
    ]


def time_once(argv: list[str], ok: set[int]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    run_dir = tempfile.mkdtemp(prefix="canarist-startup-")
    try:
        shutil.copy(FIXTURE, Path(run_dir) / "experiment.yaml")
        cmds = commands(run_dir)
        for _, argv, ok in cmds:  # warm the page cache and any .pyc files; not counted
            time_once(argv, ok)
        load_before = os.getloadavg()
        times: dict[str, list[float]] = {name: [] for name, _, _ in cmds}
        for _ in range(args.runs):
            for name, argv, ok in cmds:
                times[name].append(time_once(argv, ok))
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)

    floor = statistics.median(times["python -c pass"])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.runs} runs each; "
          f"load average before {_load(load_before)}, after {_load(load_after)}")
    print(f"{'command':46} {'median ms':>10} {'min ms':>8} {'x floor':>8}")
    print("-" * 75)
    rows = []
    for name, samples in times.items():
        med = statistics.median(samples)
        rows.append({"command": name, "median_ms": round(med * 1000, 1),
                     "min_ms": round(min(samples) * 1000, 1), "x_floor": round(med / floor, 1)})
        print(f"{name:46} {med * 1000:10.1f} {min(samples) * 1000:8.1f} {med / floor:8.1f}")
    if args.json:
        print(json.dumps({"load_before": load_before, "load_after": load_after, "rows": rows}))


def _load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


if __name__ == "__main__":
    main()
