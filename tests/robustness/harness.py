"""Run robustness cases in worker processes under a memory cap and a time cap per case.

The worker (tests/robustness/worker.py) is started with RLIMIT_AS set, so an input that
makes canarist allocate without bound fails with MemoryError (or kills the worker) instead
of taking the machine down; the parent waits for the worker's next line for at most
`case_s` seconds, so an input that never finishes is killed, recorded as a hang, and the
batch goes on from the next input in a fresh worker.
"""

from __future__ import annotations

import json
import os
import re
import resource
import selectors
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.robustness.targets import environment

REPO = Path(__file__).resolve().parents[2]
MEMORY_CAP = 2 * 1024**3
"""Address space a worker may use (imports included: about 0.9 GB with numpy and scipy)."""


def seed() -> int:
    """CI runs the same inputs every time (as the hypothesis profile `ci` does); elsewhere
    every run explores new ones. CANARIST_FUZZ_SEED replays a run."""
    if os.environ.get("CANARIST_FUZZ_SEED"):
        return int(os.environ["CANARIST_FUZZ_SEED"])
    if os.environ.get("CI"):
        return 0
    return int.from_bytes(os.urandom(4), "big")


@dataclass
class Outcome:
    parser: str
    total: int
    ran: int = 0
    """Inputs started (a failing input counts once here and once in `failures`)."""
    failures: list[tuple[int, str]] = field(default_factory=list)
    restarts: int = 0
    seconds: float = 0.0

    def classes(self) -> dict[str, list[tuple[int, str]]]:
        """Failures grouped by kind: the message without numbers and quoted input."""
        groups: dict[str, list[tuple[int, str]]] = {}
        for index, why in self.failures:
            shown = re.sub(r"/\S+/", "/…/", re.split(r"['\"]", why, maxsplit=1)[0])
            key = re.sub(r"[0-9]+", "N", shown)[:90]
            groups.setdefault(key, []).append((index, why))
        return groups

    def describe(self, cases: list[str], seed: int) -> str:
        lines = [f"{self.parser}: {len(self.failures)} failing of {self.ran} inputs run, "
                 f"of {self.total} (seed {seed}; replay with "
                 f"CANARIST_FUZZ_SEED={seed})"]
        for key, group in self.classes().items():
            index, why = group[0]
            lines.append(f"  [{len(group)}x] {key}\n    e.g. #{index} {cases[index][:160]!r}"
                         f"\n      -> {why[:400]}")
        return "\n".join(lines)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_cases(parser: str, cases: list[str], *, mode: str = "inproc", case_s: float = 20.0,
              max_restarts: int = 6, prometheus: str | None = None, workers: int = 2) -> Outcome:
    """Run `cases` through `parser`. Failing inputs are all recorded, but after
    `max_restarts` inputs that hang or kill the worker (each costs up to `case_s` and a
    fresh worker) the rest of the batch is skipped."""
    max_restarts = int(os.environ.get("CANARIST_FUZZ_MAX_RESTARTS", max_restarts))
    outcome = Outcome(parser, len(cases))
    started = time.monotonic()
    size = -(-len(cases) // workers)
    chunks = [(i, cases[i:i + size]) for i in range(0, len(cases), size)]

    def run_chunk(offset: int, chunk: list[str]) -> Outcome:
        part = Outcome(parser, len(chunk))
        with tempfile.TemporaryDirectory(prefix="canarist-fuzz-job-") as tmp:
            job = Path(tmp) / "job.json"
            job.write_text(json.dumps({"parser": parser, "mode": mode, "cases": chunk,
                                       "prometheus": prometheus}), encoding="utf-8")
            start = 0
            while start < len(chunk) and part.restarts < -(-max_restarts // workers):
                start = _one_worker(job, start, part, case_s)
        part.failures = [(offset + i, why) for i, why in part.failures]
        return part

    with ThreadPoolExecutor(workers) as pool:
        for part in pool.map(lambda c: run_chunk(*c), chunks):
            outcome.ran += part.ran
            outcome.failures += part.failures
            outcome.restarts += part.restarts
    outcome.seconds = time.monotonic() - started
    return outcome


def _one_worker(job: Path, start: int, outcome: Outcome, case_s: float) -> int:
    """Run a worker from `start`; return where the next worker must start."""
    errors = job.with_name("stderr")
    with errors.open("wb") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.robustness.worker", str(job), str(start)],
            cwd=REPO, env=environment(), stdout=subprocess.PIPE, stderr=err_file,
            preexec_fn=_limit_memory)
    assert proc.stdout is not None
    current = start - 1
    buffer = b""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    # The first line comes after the imports: allow them longer than one case.
    deadline = time.monotonic() + max(case_s, 60.0)
    try:
        while True:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                proc.kill()
                proc.wait()
                if current >= start:
                    outcome.failures.append((current, f"no answer within {case_s:.0f} s "
                                                      "(killed)"))
                    outcome.restarts += 1
                    return current + 1
                raise RuntimeError(f"worker did not start: {errors.read_bytes()[-2000:]!r}")
            chunk = os.read(proc.stdout.fileno(), 1 << 16)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                message = json.loads(line)
                if message.get("done"):
                    proc.wait()
                    return len(json.loads(job.read_text(encoding="utf-8"))["cases"])
                current = message["i"]
                if "fail" in message:
                    outcome.failures.append((current, message["fail"]))
                else:
                    outcome.ran += 1
                deadline = time.monotonic() + case_s
        # The worker died in the middle of a case (abort, segfault, out of memory).
        code = proc.wait()
        err = errors.read_bytes().decode("utf-8", "replace").strip().splitlines()
        if current < start:
            raise RuntimeError(f"worker died before the first case: exit {code}: {err[-5:]}")
        outcome.failures.append((current, f"the process died (exit {code}): "
                                          f"{' | '.join(err[-3:])[:300]}"))
        outcome.restarts += 1
        return current + 1
    finally:
        selector.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
