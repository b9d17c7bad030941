"""bench/judge_bench.py --quick runs and prints the table docs/judge.md shows, with every row
and column, and the goals and costs under it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
JUDGES = ("canarist", "kayenta", "mw-every-look", "iter8")
ROW = re.compile(r"^(?P<scenario>.+?)\s+(?P<size>\d+) (?P<data>exact|buckets|counts)\s+"
                 r"(?P<truth>within|worse|no data)\s+(?P<rates>\|.*)$")


def run_quick() -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, str(REPO / "bench" / "judge_bench.py"), "--quick"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=280, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def test_quick_run_prints_every_scenario_for_every_judge() -> None:
    out = run_quick()
    header = next(line for line in out.splitlines() if line.startswith("scenario"))
    assert [c.strip() for c in header.split("|")[1:]] == [f"{j} fail/pass/inc" for j in JUDGES]
    rows = {}
    for line in out.splitlines():
        if match := ROW.match(line):
            cells = [c.split() for c in match.group("rates").split("|")[1:]]
            rates = [tuple(float(x) for x in cell) for cell in cells]
            assert len(rates) == len(JUDGES) and all(len(r) == 3 for r in rates), line
            assert all(abs(sum(r) - 100) < 0.2 for r in rates), line
            rows[(match.group("scenario"), match.group("size"), match.group("data"))] = (
                match.group("truth"), dict(zip(JUDGES, rates, strict=True)))
    latency = ["no change", "no change, 30 % allowance", "no change, slow path",
               "no change, heavy tail", "variance only (sigma x1.3), p50",
               "+10 % median, 20 % allowance", "+10 % median, 5 % allowance",
               "+20 % p90 only (same median)", "+50 % p90 (slow path)", "+50 % p90 (wider lognormal)"]
    errors = ["errors 1 % -> 1 %", "errors 1 % -> 2 %", "errors 1 % -> 5 %", "errors 0 % -> 0.5 %"]
    expected = {(s, n, d) for s in latency for n in ("600", "30") for d in ("exact", "buckets")}
    expected |= {(s, n, "counts") for s in errors for n in ("600", "30")}
    expected |= {("+50 % p90, < 30 requests", "20", d) for d in ("exact", "buckets")}
    expected |= {("no traffic", "0", d) for d in ("exact", "buckets")}
    expected |= {(s, "1200", d) for s in ("no change", "+50 % p90 (slow path)", "+50 % p90 (wider lognormal)")
                 for d in ("exact", "buckets")} | {("errors 1 % -> 5 %", "1200", "counts")}
    assert set(rows) == expected
    assert rows[("no change", "600", "exact")][0] == "within"
    assert rows[("+50 % p90 (slow path)", "600", "exact")][0] == "worse"
    assert rows[("errors 1 % -> 2 %", "30", "counts")][0] == "worse"
    # No traffic: canarist says neither pass nor fail; Iter8 counts the missing metric as failed.
    truth, judged = rows[("no traffic", "0", "exact")]
    assert truth == "no data"
    assert judged["canarist"] == (0.0, 0.0, 100.0) and judged["iter8"] == (100.0, 0.0, 0.0)
    assert "\nGoals:\n" in out and "false fail at no change <= 5 %" in out
    assert re.search(r"10\^6 exact samples per version, counts already built: [\d.]+ ms", out)
    assert re.search(r"27-bucket histograms \(10\^6 requests each\): \d+ µs", out)
