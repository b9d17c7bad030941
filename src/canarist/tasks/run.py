"""`run`: a bash script, run in the run directory with `TEMP_DIR` set; output is logged."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile

from canarist.core.errors import TaskError
from canarist.tasks.base import TaskContext, TaskDefinition, TaskInputs, log

TRACE_OUTPUT_LIMIT = 64 * 1024


class RunInputs(TaskInputs):
    script: str


async def run(inputs: RunInputs, ctx: TaskContext) -> None:
    env = {**os.environ, "TEMP_DIR": tempfile.gettempdir()}
    try:
        process = await asyncio.create_subprocess_exec(
            "/bin/bash", "-c", inputs.script,
            cwd=ctx.run_dir, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise TaskError(f"cannot start /bin/bash: {exc.strerror or exc}") from None
    try:
        output, _ = await process.communicate()
    except asyncio.CancelledError:
        _kill_group(process)
        await process.wait()
        raise
    text = output.decode("utf-8", errors="replace")[-TRACE_OUTPUT_LIMIT:]
    if process.returncode != 0:
        log.error("%s: script output:\n%s", ctx.log_prefix(), _indent(text))
        raise TaskError(f"script exited with status {process.returncode}")
    if text:
        log.debug("%s: script output:\n%s", ctx.log_prefix(), _indent(text))


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip("\n").splitlines())


TASK = TaskDefinition(name="run", inputs=RunInputs, run=run)
