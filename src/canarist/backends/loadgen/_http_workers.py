"""Running one HTTP load test over several worker processes.

Each worker (spawned, so no event loop or socket is inherited) opens its connections, reports
ready, waits for a common start time `t0` (CLOCK_MONOTONIC is system-wide, so
`perf_counter_ns` values compare across processes), runs its plan and sends back its
encoded `Recorder`. Progress: each worker sends its snapshot about once a second; the parent
reports the sum of counts, errors and rates and the highest of the workers' p99s (an upper
bound of the merged p99, which is only computed at the end).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from time import perf_counter_ns
from typing import Any

from canarist.backends.loadgen._http_engine import Engine, Plan, Target
from canarist.backends.loadgen.recorder import ProgressSnapshot, Recorder
from canarist.core.errors import CanaristError, UnavailableError

_START_DELAY_NS = 100_000_000


def _worker_main(target: Target, plan: Plan, pipe: Connection) -> None:
    import uvloop

    try:
        uvloop.run(_worker(target, plan, pipe))
    except CanaristError as exc:
        pipe.send(("error", exc.message))
    except BaseException as exc:
        pipe.send(("error", f"http: load worker failed: {type(exc).__name__}: {exc}"))
    finally:
        pipe.close()


async def _worker(target: Target, plan: Plan, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    engine = Engine(target, plan, lambda snap: pipe.send(("progress", snap)))
    try:
        await engine.open()
    except BaseException:
        engine.close()
        raise
    pipe.send(("ready",))
    msg = await loop.run_in_executor(None, pipe.recv)
    if msg[0] != "go":
        engine.close()
        return
    recorder, elapsed = await engine.run(msg[1])
    pipe.send(("done", recorder.to_bytes(), elapsed))


async def _recv(pipe: Connection) -> tuple[Any, ...]:
    try:
        msg: tuple[Any, ...] = await asyncio.to_thread(pipe.recv)
    except (EOFError, OSError):
        return ("error", "http: a load worker process exited unexpectedly")
    return msg


async def run_workers(
    target: Target,
    plans: list[Plan],
    on_progress: Callable[[ProgressSnapshot], None] | None,
) -> tuple[Recorder, float]:
    ctx = multiprocessing.get_context("spawn")
    procs = []
    pipes: list[Connection] = []
    try:
        for plan in plans:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(target, plan, child), daemon=True)
            proc.start()
            child.close()
            procs.append(proc)
            pipes.append(parent)
        ready = await asyncio.gather(*(_recv(p) for p in pipes))
        failed = [m for m in ready if m[0] != "ready"]
        if failed:
            for p in pipes:
                with contextlib.suppress(OSError):
                    p.send(("stop",))
            raise UnavailableError(str(failed[0][1]))
        t0 = perf_counter_ns() + _START_DELAY_NS
        for p in pipes:
            p.send(("go", t0))
        latest: dict[int, ProgressSnapshot] = {}
        outcomes = await asyncio.gather(*(_collect(i, p, latest, on_progress) for i, p in enumerate(pipes)))
    finally:
        for proc in procs:
            await asyncio.to_thread(proc.join, 5.0)
            if proc.is_alive():
                proc.kill()
                await asyncio.to_thread(proc.join, 5.0)
        for p in pipes:
            p.close()
    merged = Recorder()
    elapsed = 0.0
    for data, secs in outcomes:
        merged.merge(Recorder.from_bytes(data))
        elapsed = max(elapsed, secs)
    return merged, elapsed


async def _collect(
    index: int,
    pipe: Connection,
    latest: dict[int, ProgressSnapshot],
    on_progress: Callable[[ProgressSnapshot], None] | None,
) -> tuple[bytes, float]:
    while True:
        msg = await _recv(pipe)
        if msg[0] == "done":
            return msg[1], float(msg[2])
        if msg[0] == "error":
            raise UnavailableError(str(msg[1]))
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
