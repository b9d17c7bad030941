"""Running one HTTP load test over several worker processes.

Each worker is a fresh interpreter (`python -m canarist.backends.loadgen._http_workers`), not
a `multiprocessing` child: spawn-style multiprocessing re-imports the parent's `__main__`,
which is unsafe for programs started as `python -m canarist`, and fork would inherit the
running event loop. Parent and worker exchange length-prefixed pickles: the worker reads its
`(Target, Plan)` on stdin, opens its connections, reports `ready`, waits for a common start
time `t0` (CLOCK_MONOTONIC is system-wide, so `perf_counter_ns` values compare across
processes), runs, and writes `progress` snapshots (~1/s) and finally its encoded `Recorder`
on stdout.

Progress: the parent reports the sum of counts, errors and rates and the highest of the
workers' p99s (an upper bound of the merged p99, which is only computed at the end).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from time import perf_counter_ns
from typing import IO, Any

from canarist.backends.loadgen._http_engine import Engine, Plan, Target
from canarist.backends.loadgen._http_failures import InitialRequestError
from canarist.backends.loadgen.recorder import ProgressSnapshot, Recorder
from canarist.core.errors import CanaristError, UnavailableError

_START_DELAY_NS = 100_000_000
_SRC_ROOT = str(Path(__file__).resolve().parents[3])
_HEADER = struct.Struct("!I")
_EXITED = ("error", "a load worker process exited unexpectedly")


def _pack(obj: object) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


# worker side


def _read_message(stream: IO[bytes]) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return ("stop",)
    (size,) = _HEADER.unpack(head)
    return pickle.loads(stream.read(size))


async def _worker(target: Target, plan: Plan, out: IO[bytes]) -> None:
    loop = asyncio.get_running_loop()

    def send(obj: object) -> None:
        out.write(_pack(obj))
        out.flush()

    engine = Engine(target, plan, lambda snap: send(("progress", snap)))
    try:
        await engine.open()
    except BaseException:
        engine.close()
        raise
    send(("ready",))
    msg = await loop.run_in_executor(None, _read_message, sys.stdin.buffer)
    if msg[0] != "go":
        engine.close()
        return
    recorder, elapsed = await engine.run(msg[1])
    send(("done", recorder.to_bytes(), elapsed))


def worker_main() -> None:
    import uvloop

    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # keep the message channel clean
    target, plan = _read_message(sys.stdin.buffer)
    try:
        uvloop.run(_worker(target, plan, out))
    except InitialRequestError as exc:
        out.write(_pack(("initial", exc.target, exc.status, exc.excerpt)))
    except CanaristError as exc:
        out.write(_pack(("error", exc.message)))
    except Exception as exc:
        out.write(_pack(("error", f"load worker failed: {type(exc).__name__}: {exc}")))
    out.flush()


# parent side


async def _spawn(target: Target, plan: Plan) -> asyncio.subprocess.Process:
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": _SRC_ROOT + (os.pathsep + path if path else "")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "canarist.backends.loadgen._http_workers",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(_pack((target, plan)))
    await proc.stdin.drain()
    return proc


async def _recv(proc: asyncio.subprocess.Process) -> tuple[Any, ...]:
    assert proc.stdout is not None
    try:
        (size,) = _HEADER.unpack(await proc.stdout.readexactly(_HEADER.size))
        msg: tuple[Any, ...] = pickle.loads(await proc.stdout.readexactly(size))
    except (asyncio.IncompleteReadError, ConnectionError):
        return _EXITED
    return msg


async def _send(proc: asyncio.subprocess.Process, obj: object) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(ConnectionError):
        proc.stdin.write(_pack(obj))
        await proc.stdin.drain()


async def run_workers(
    target: Target,
    plans: list[Plan],
    on_progress: Callable[[ProgressSnapshot], None] | None,
) -> tuple[Recorder, float]:
    procs: list[asyncio.subprocess.Process] = []
    finished = False
    try:
        for plan in plans:
            procs.append(await _spawn(target, plan))
        ready = await asyncio.gather(*(_recv(p) for p in procs))
        failed = [m for m in ready if m[0] != "ready"]
        if failed:
            raise _worker_error(failed[0])
        t0 = perf_counter_ns() + _START_DELAY_NS
        for p in procs:
            await _send(p, ("go", t0))
        latest: dict[int, ProgressSnapshot] = {}
        outcomes = await asyncio.gather(
            *(_collect(i, p, latest, on_progress) for i, p in enumerate(procs))
        )
        finished = True
    finally:
        for p in procs:
            if finished:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(p.wait()), 5.0)
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
            await p.wait()
    merged = Recorder(plans[0].error_ranges)
    elapsed = 0.0
    for data, secs in outcomes:
        merged.merge(Recorder.from_bytes(data))
        elapsed = max(elapsed, secs)
    return merged, elapsed


def _worker_error(msg: tuple[Any, ...]) -> UnavailableError:
    if msg[0] == "initial":
        return InitialRequestError(str(msg[1]), int(msg[2]), str(msg[3]))
    return UnavailableError(str(msg[1]))


async def _collect(
    index: int,
    proc: asyncio.subprocess.Process,
    latest: dict[int, ProgressSnapshot],
    on_progress: Callable[[ProgressSnapshot], None] | None,
) -> tuple[bytes, float]:
    while True:
        msg = await _recv(proc)
        if msg[0] == "done":
            return msg[1], float(msg[2])
        if msg[0] in ("error", "initial"):
            raise _worker_error(msg)
        if msg[0] == "progress":
            latest[index] = msg[1]
            if index == 0 and on_progress is not None:
                snaps = list(latest.values())
                on_progress(
                    ProgressSnapshot(
                        elapsed_s=max(s.elapsed_s for s in snaps),
                        request_count=sum(s.request_count for s in snaps),
                        error_count=sum(s.error_count for s in snaps),
                        rate=sum(s.rate for s in snaps),
                        p99_ms=max(s.p99_ms for s in snaps),
                    )
                )


if __name__ == "__main__":
    worker_main()
