"""SIGKILL `canarist run --reuse-result` (or `k run`) at random moments, many times.

    python -m tests.robustness.killdriver SPEC.json

SPEC.json: {"store": "file"|"secret", "argv": [...], "run_dir": path (file store),
"kubeconfig", "namespace", "group" (Secret store), "kills": n, "seed": n}.

A first run goes to its end to time a whole run; each later run is killed at a random
moment within 1.1 times that, until `kills` kills have landed (at most 3 x `kills` runs),
except every tenth run, which goes to its end.

The driver imports canarist once and forks each run from itself (a real process running
`canarist.cli.main`, what `python -m canarist` runs), so a hundred runs cost seconds of
imports, not minutes. After each run, killed or finished, it reads the experiment back
through the store and checks: it parses; `numLoops` never goes down and rises by at most
one per run; a run that finished (exit 0) left its loop complete. One JSON line a run on
stdout: {"killed", "exit", "loops", "tasks", "problem"}.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any


def _reader(spec: dict[str, Any]) -> Any:
    if spec["store"] == "file":
        from canarist.stores.file import FileStore

        return FileStore(Path(spec["run_dir"]))
    from canarist.backends.kube import ClusterCalls, KubeClient
    from canarist.stores.secret import SecretStore

    calls = ClusterCalls(KubeClient.connect(spec["kubeconfig"]))
    return SecretStore(calls, spec["namespace"], spec["group"])


def _fork_run(argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            from canarist.cli import main

            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            os._exit(code)
    return pid


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    from canarist.cli import app  # noqa: F401 - import everything before forking
    from canarist.runners import engine, kubernetes, local  # noqa: F401
    from canarist.tasks.registry import TASKS

    for name in TASKS:  # every task's module, imported once before forking
        TASKS[name]

    store = _reader(spec)
    rng = random.Random(spec["seed"])
    loops = store.read().result.num_loops if store.read().result else 0
    spec_len = len(store.read().spec)
    window = None
    landed = runs = 0
    while landed < spec["kills"] and runs < 3 * spec["kills"]:
        runs += 1
        started = time.monotonic()
        pid = _fork_run(spec["argv"])
        # Every tenth run goes to its end, so finished runs do not hinge on the machine's load.
        whole = window is None or runs % 10 == 0
        deadline = started + (3600.0 if whole else rng.uniform(0.0, window or 0.0))
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            status = None
            time.sleep(0.002)
        killed = status is None
        if killed:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            landed += 1
        elif window is None:
            window = 1.1 * (time.monotonic() - started)
        code = os.waitstatus_to_exitcode(status)
        problem = None
        try:
            experiment = store.read()
        except Exception as exc:  # the point: nothing a kill leaves may fail to read
            problem = f"unreadable after the kill: {type(exc).__name__}: {exc}"
            print(json.dumps({"killed": killed, "exit": code, "problem": problem}), flush=True)
            continue
        result = experiment.result
        now = result.num_loops if result else 0
        tasks = result.num_completed_tasks if result else 0
        if now not in (loops, loops + 1):
            problem = f"numLoops went from {loops} to {now} in one run"
        elif not killed and code == 0 and (now != loops + 1 or tasks != spec_len):
            problem = f"a finished run left numLoops {now} (was {loops}), {tasks} tasks done"
        elif not killed and code != 0:
            problem = f"a run that was not killed exited {code}"
        loops = now
        print(json.dumps({"killed": killed, "exit": code, "loops": now, "tasks": tasks,
                          "problem": problem}), flush=True)


if __name__ == "__main__":
    main()
