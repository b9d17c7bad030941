"""Runs a batch of robustness cases; started by `harness.run_cases` under resource limits.

    python -m tests.robustness.worker JOB.json START

JOB.json: {"parser", "mode": "inproc"|"cli", "cases": [...], "prometheus": url|null}.
Reports on stdout, one JSON object a line, flushed: {"i": n} before case n, {"i": n,
"fail": text} when case n fails, {"done": true} at the end. The parent kills the worker
when a case takes too long and starts a new one at the next case.

In "cli" mode each case runs `canarist`'s real entry point (`canarist.cli.main`, what
`python -m canarist` calls) in a forked child with its own stdout, stderr and working
directory, so the CLI's exit code and output are what a user would see; forking from a
process that has already imported canarist makes 50 commands cost seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.robustness import targets

CLI_CASE_S = 15.0
_CONTROL = {chr(c) for c in range(32) if chr(c) not in "\n\t"} | {
    "\x7f", "\x9b", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067",
    "\u2068", "\u2069"}


def _say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames)
                  if "/canarist/" in f.filename), "?")
    return f"{type(exc).__name__} at {where}: {str(exc)[:300]}"


def _inproc(parser: str, cases: list[str], start: int, workdir: Path) -> None:
    targets.warm_up(parser, workdir)
    for index in range(start, len(cases)):
        _say(i=index)
        try:
            targets.feed(parser, cases[index], workdir)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            _say(i=index, fail=_describe(exc))


def run_cli(argv: list[str], cwd: Path, *, timeout_s: float = CLI_CASE_S,
            file_size_limit: int | None = None) -> tuple[int, str, str]:
    """Fork, and run `canarist <argv>` in the child (in `cwd`); exit code, stdout, stderr.
    `file_size_limit` (RLIMIT_FSIZE) makes every write beyond it fail, as a full disk does."""
    out, err = cwd / ".stdout", cwd / ".stderr"
    pid = os.fork()
    if pid == 0:  # the child: become `canarist <argv>` in cwd
        code = 70
        try:
            os.chdir(cwd)
            for fd, path in ((1, out), (2, err)):
                handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(handle, fd)
                os.close(handle)
            # The child's own text streams on fds 1 and 2, kept open until os._exit.
            sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace",  # noqa: SIM115
                              closefd=False)
            from canarist.cli import main

            sys.argv = ["canarist", *argv]
            if file_size_limit is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 71
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -1, "", f"still running after {timeout_s:.0f} s"
        time.sleep(0.01)
    code = os.waitstatus_to_exitcode(status)
    read = lambda p: p.read_bytes().decode("utf-8", "backslashreplace")  # noqa: E731
    return code, read(out), read(err)


def check_cli(code: int, stdout: str, stderr: str, allowed: frozenset[int],
              argv: list[str]) -> str | None:
    """Why this command's outcome is unacceptable, or None."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if code not in allowed:
        return f"exit {code} (expected one of {sorted(allowed)}); stderr: {stderr[-400:]!r}"
    if "Traceback" in stderr or "internal error" in stderr:
        return f"traceback or internal error: {stderr[-400:]!r}"
    strays = [line for line in lines if not line.startswith(("Error: ", "time="))]
    if strays:
        return f"stderr lines that are neither Error: nor log lines: {strays[:2]!r}"
    if code == 2 and not any(line.startswith("Error: ") for line in lines):
        return f"exit 2 without an Error: line: {stderr[-300:]!r}"
    if targets.CANARY in stdout + stderr:
        return "the environment leaked into the output"
    shown = stderr + (stdout if "text" in argv or argv[0] == "launch" else "")
    raw = sorted({f"U+{ord(c):04X}" for c in shown if c in _CONTROL})
    if raw:
        return f"raw control/bidi characters on the terminal ({', '.join(raw)}): {stderr[-200:]!r}"
    return None


def _cli(parser: str, cases: list[str], start: int, workdir: Path,
         prometheus: str | None) -> None:
    from canarist.cli import app  # noqa: F401 - import everything once, before forking
    from canarist.reports import html  # noqa: F401
    from canarist.runners import engine, local  # noqa: F401
    from canarist.tasks.registry import TASKS

    for name in TASKS:  # every task's module, imported once before forking
        TASKS[name]

    for index in range(start, len(cases)):
        _say(i=index)
        casedir = workdir / str(index)
        casedir.mkdir()
        argv, allowed = targets.cli_argv(parser, cases[index], casedir, index, prometheus)
        code, stdout, stderr = run_cli(argv, casedir)
        problem = check_cli(code, stdout, stderr, allowed, argv)
        if problem:
            _say(i=index, fail=problem)
        shutil.rmtree(casedir, ignore_errors=True)


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    start = int(sys.argv[2])
    shm = Path("/dev/shm")
    scratch = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="canarist-fuzz-", dir=scratch) as tmp:
        if job["mode"] == "cli":
            _cli(job["parser"], job["cases"], start, Path(tmp), job.get("prometheus"))
        else:
            _inproc(job["parser"], job["cases"], start, Path(tmp))
    _say(done=True)


if __name__ == "__main__":
    main()
