"""Bounded evaluation: user programs (jq expressions, Go templates) run in a forked child
under a wall-clock deadline and a memory cap, so a runaway one is stopped.

A task's `timeout` is an asyncio timeout: it cannot interrupt synchronous CPU work in this
process (`def f: f; f` in jq, a template that fans out recursively). A child process can be
killed. `evaluate` (blocking) and `evaluate_async` (awaitable) fork, run `work` in the child
and return what it returns, or re-raise what it raises; when the deadline passes the child is
killed and `Overrun` is raised. The child

* has an empty environment (jq's `$ENV` and `env` see nothing of canarist's),
* writes nothing to the terminal (its stdout and stderr go to /dev/null),
* may map at most `MEMORY_LIMIT` bytes more than canarist already does (RLIMIT_AS),
* dies with canarist (PR_SET_PDEATHSIG), and may use no more CPU time than the deadline
  allows (RLIMIT_CPU), so not even a canarist killed by SIGKILL leaves it running,
* returns at most `RESULT_LIMIT` bytes of result.

The deadline is the task's remaining `timeout` (less `MARGIN_S`, so the evaluation's own
reason, naming what ran away, is recorded rather than a bare "timed out"); without one it is
`DEFAULT_LIMIT_S`. A fork costs a few milliseconds (see docs/custommetrics.md), so callers
evaluate a batch (every jq expression of a task, every version of a template) in one child.
Every child is reaped before `evaluate` returns or raises, cancellation included.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import math
import mmap
import os
import pickle
import resource
import select
import signal
import struct
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from canarist.backends.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "DEFAULT_LIMIT_S",
    "MEMORY_LIMIT",
    "Deadline",
    "Limit",
    "Mark",
    "Overrun",
    "evaluate",
    "evaluate_async",
    "limit_for",
]

DEFAULT_LIMIT_S: Final = 10.0
"""Wall-clock bound of one evaluation when no task `timeout` applies (launch checks,
`canarist template render`, tasks without a timeout)."""
MEMORY_LIMIT: Final = 1 << 30
"""Bytes of address space a child may add to what canarist has mapped when it forks."""
RESULT_LIMIT: Final = 64 << 20
"""Bytes of (pickled) result a child may send back."""
MARGIN_S: Final = 0.1
"""How much before the task's deadline an evaluation is stopped, so its reason wins."""
_PR_SET_PDEATHSIG: Final = 1

T = TypeVar("T")
Mark = Callable[[int], None]
"""Records which item of a batch the child is working on (named when it overruns)."""


@dataclass(frozen=True)
class Deadline:
    """When a task's `timeout` passes (`time.monotonic()`), and the timeout as written."""

    at: float
    shown: str


@dataclass(frozen=True)
class Limit:
    """How long an evaluation may take, and how to name that bound in a reason."""

    seconds: float
    shown: str

    def __str__(self) -> str:
        return self.shown


def _seconds_text(seconds: float) -> str:
    return f"{seconds:g}s"


def limit_for(deadline: Deadline | None, *, clock: Clock = SYSTEM_CLOCK) -> Limit:
    """The time left before `deadline` (the task's timeout), else the default bound."""
    if deadline is None:
        return Limit(DEFAULT_LIMIT_S, f"{_seconds_text(DEFAULT_LIMIT_S)} (evaluation limit)")
    return Limit(max(0.0, deadline.at - clock.monotonic() - MARGIN_S),
                 f"{deadline.shown} (task timeout)")


class Overrun(Exception):
    """The child did not return: it ran past the deadline (`time`), out of memory
    (`memory`), or died (`crash`). `at` is the batch item it was on (see `Mark`), or -1."""

    def __init__(self, kind: Literal["time", "memory", "crash"], limit: Limit, at: int,
                 detail: str = "") -> None:
        super().__init__(kind, limit, at, detail)
        self.kind = kind
        self.limit = limit
        self.at = at
        self.detail = detail

    def __str__(self) -> str:
        if self.kind == "time":
            return f"did not finish within {self.limit}"
        if self.kind == "memory":
            return f"ran out of memory (limit {MEMORY_LIMIT >> 20} MiB)"
        return f"crashed the evaluator: {self.detail}"


# -- the child ---------------------------------------------------------------------------------


def _address_space() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[0]) * mmap.PAGESIZE


def _tie_to_parent(parent: int) -> None:
    """Die with the parent (Linux): a parent killed by SIGKILL cannot stop its child."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before that took effect
        os._exit(71)


def _confine(parent: int, limit: Limit) -> None:
    """In the child: tied to the parent, no environment, no terminal, no signal handlers of
    the parent's, a memory cap and a CPU-time cap (a backstop if the parent is gone)."""
    _tie_to_parent(parent)
    os.environ.clear()  # also unsets them in the C library's environ, which jq reads
    faulthandler.disable()  # it may hold a copy of the terminal's descriptor
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    with contextlib.suppress(OSError, ValueError):
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = _address_space() + MEMORY_LIMIT
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    with contextlib.suppress(OSError, ValueError):
        cpu = math.ceil(limit.seconds) + 2  # CPU time never exceeds wall time
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard == resource.RLIM_INFINITY or hard > cpu:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _outcome(work: Callable[[Mark], object], progress: mmap.mmap) -> bytes:
    def mark(index: int) -> None:
        progress[:8] = struct.pack("q", index)

    try:
        result: tuple[str, object] = ("ok", work(mark))
    except MemoryError:
        result = ("memory", None)
    except RecursionError:
        result = ("crash", "recursion too deep")
    except BaseException as exc:  # everything goes back to the parent
        result = ("raise", (type(exc), exc.args, dict(vars(exc))))
    try:
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        data = pickle.dumps(("memory", None))
    except Exception as exc:  # an unpicklable result or error
        data = pickle.dumps(("crash", f"cannot return the result: {type(exc).__name__}: {exc}"))
    if len(data) > RESULT_LIMIT:
        data = pickle.dumps(("crash", f"result of {len(data)} bytes is above "
                                      f"{RESULT_LIMIT >> 20} MiB"))
    return data


def _child(work: Callable[[Mark], object], write_fd: int, progress: mmap.mmap, parent: int,
           limit: Limit) -> None:
    code = 0
    try:
        _confine(parent, limit)
        data = _outcome(work, progress)
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view):]
    except BaseException:  # a child never returns into the parent's code
        code = 70
    finally:
        os._exit(code)


# -- the parent --------------------------------------------------------------------------------


@dataclass
class _Child:
    pid: int
    read_fd: int
    progress: mmap.mmap
    limit: Limit
    chunks: list[bytes]
    size: int = 0
    reaped: bool = False

    def read(self) -> bool:
        """Read what is there; True at end of file (the child is done or dead)."""
        try:
            chunk = os.read(self.read_fd, 1 << 20)
        except BlockingIOError:
            return False
        if not chunk:
            return True
        self.size += len(chunk)
        if self.size > RESULT_LIMIT + 4096:
            raise Overrun("crash", self.limit, self.at(), "result too large")
        self.chunks.append(chunk)
        return False

    def at(self) -> int:
        value: int = struct.unpack("q", self.progress[:8])[0]
        return value

    def stop(self) -> int:
        """Kill (if still running) and reap; the wait status."""
        status = 0
        if not self.reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            _, status = os.waitpid(self.pid, 0)
            self.reaped = True
        os.close(self.read_fd)
        self.progress.close()
        return status

    def finish(self) -> object:
        """At end of file: reap, then return the child's result or raise its error."""
        _, status = os.waitpid(self.pid, 0)
        self.reaped = True
        data = b"".join(self.chunks)
        if not data:
            raise Overrun("crash", self.limit, self.at(), _death(status))
        kind, payload = pickle.loads(data)  # our own child's bytes
        if kind == "ok":
            return payload
        if kind == "memory":
            raise Overrun("memory", self.limit, self.at())
        if kind == "crash":
            raise Overrun("crash", self.limit, self.at(), str(payload))
        cls, args, attributes = payload
        error: BaseException = cls.__new__(cls, *args)
        error.args = args
        vars(error).update(attributes)
        raise error


def _death(status: int) -> str:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        name = signal.Signals(signum).name if signum in signal.valid_signals() else str(signum)
        if signum in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS):
            return f"it ran out of memory or stack ({name})"
        return f"killed by {name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _start(work: Callable[[Mark], object], limit: Limit) -> _Child:
    progress = mmap.mmap(-1, 8)
    progress[:8] = struct.pack("q", -1)
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    parent = os.getpid()
    with warnings.catch_warnings():
        # Python 3.12+ warns when a multi-threaded process forks: the child runs only the
        # evaluation (no locks of other threads, no I/O) and ends with os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; it ends in os._exit
        os.close(read_fd)
        _child(work, write_fd, progress, parent, limit)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    return _Child(pid, read_fd, progress, limit, [])


def evaluate(work: Callable[[Mark], T], limit: Limit, *, clock: Clock = SYSTEM_CLOCK) -> T:
    """`work(mark)` in a child, waiting at most `limit.seconds` of `clock` (blocking)."""
    child = _start(work, limit)
    try:
        end = clock.monotonic() + limit.seconds
        while True:
            left = end - clock.monotonic()
            if left <= 0:
                raise Overrun("time", limit, child.at())
            readable, _, _ = select.select([child.read_fd], [], [], left)
            if readable and child.read():
                return child.finish()  # type: ignore[return-value]
    finally:
        child.stop()


async def evaluate_async(work: Callable[[Mark], T], limit: Limit) -> T:
    """`work(mark)` in a child, waiting at most `limit.seconds` without blocking the loop."""
    loop = asyncio.get_running_loop()
    child = _start(work, limit)
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            if child.read() and not done.done():
                done.set_result(None)
        except Overrun as exc:
            if not done.done():
                done.set_exception(exc)

    loop.add_reader(child.read_fd, readable)
    try:
        try:
            async with asyncio.timeout(limit.seconds):
                await done
        except TimeoutError:
            raise Overrun("time", limit, child.at()) from None
        return child.finish()  # type: ignore[return-value]
    finally:
        loop.remove_reader(child.read_fd)
        child.stop()
