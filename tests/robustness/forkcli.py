"""Run many `canarist` commands cheaply: one process imports canarist, then forks each.

    run_commands([{"argv": [...], "cwd": dir, "timeout_s": 60, "file_size_limit": n}, ...])

returns [{"code", "stdout", "stderr"}, ...] in order. Each command is a real process
running `canarist.cli.main` (what `python -m canarist` runs) with its own stdout, stderr
and working directory; only the imports (seconds with numpy and scipy) are shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.robustness.targets import environment

REPO = Path(__file__).resolve().parents[2]


def run_commands(commands: list[dict[str, Any]], *, timeout_s: float = 600) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "tests.robustness.forkcli"], cwd=REPO,
                          input=json.dumps(commands), capture_output=True, text=True,
                          env=environment(), timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"forkcli failed: {done.stderr[-3000:]}")
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def main() -> None:
    from tests.robustness.worker import run_cli

    from canarist.cli import app  # noqa: F401 - import everything once, before forking
    from canarist.runners import engine, kubernetes, local  # noqa: F401
    from canarist.tasks.registry import TASKS

    for name in TASKS:  # every task's module, imported once before forking
        TASKS[name]

    results = []
    for command in json.loads(sys.stdin.read()):
        code, stdout, stderr = run_cli(command["argv"], Path(command["cwd"]),
                                       timeout_s=command.get("timeout_s", 60.0),
                                       file_size_limit=command.get("file_size_limit"))
        results.append({"code": code, "stdout": stdout, "stderr": stderr})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
