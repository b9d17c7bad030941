"""The gRPC load generator's schedule on virtual time: when each call starts, what is late,
what is dropped, when a timed run stops and how long it says it took. The calls are stand-ins
that take a set time of the virtual clock; nothing waits on the wall clock.
(tests/backends/loadgen/test_grpc.py runs the same workers against real servers.)"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from canarist.backends.loadgen.grpc import GrpcLoadSpec, _Run
from canarist.backends.loadgen.recorder import LoadResult

MS = 1_000_000
T0 = 7_000 * MS
INFER = "inference.GRPCInferenceService/ModelInfer"


class VirtualTime:
    """A clock (ns) that moves only when a worker sleeps on it or a call takes its time."""

    def __init__(self) -> None:
        self.now = T0

    def clock(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += round(seconds * 1e9)
        await asyncio.sleep(0)


class Channel:
    """Each call records when it started (virtual ns) and takes `takes_ms` of virtual time."""

    def __init__(self, time: VirtualTime, takes_ms: float) -> None:
        self.time = time
        self.takes_ns = int(takes_ms * MS)
        self.starts: list[int] = []

    def unary_unary(self, path: str, **_: Any) -> Any:
        async def call(payload: bytes, **options: Any) -> None:  # timeout, metadata
            self.starts.append(self.time.now)
            self.time.now += self.takes_ns
            await asyncio.sleep(0)

        return call


def run(takes_ms: float, **spec: Any) -> tuple[LoadResult, list[int]]:
    """Run `spec` on one connection whose calls take `takes_ms`; the result and call starts."""
    time = VirtualTime()
    channel = Channel(time, takes_ms)
    schema = SimpleNamespace(path="/" + INFER, response_class=SimpleNamespace(FromString=bytes))
    load = _Run(GrpcLoadSpec(host="127.0.0.1:1", call=INFER, **spec), schema,  # type: ignore[arg-type]
                [channel], [b""], [[]], clock=time.clock, sleep=time.sleep)  # type: ignore[list-item]
    return asyncio.run(load.run(None)), [start - T0 for start in channel.starts]


def test_calls_start_at_the_rate_and_the_count_is_exact() -> None:
    result, starts = run(1, rps=50, total=25, concurrency=1)
    assert starts == [k * 20 * MS for k in range(25)]  # the 25th is due 24/50 s after the first
    assert result.request_count == 25 and result.errors == 0
    assert result.duration_s == pytest.approx(0.481)  # its start, then its 1 ms
    assert result.achieved_rate == pytest.approx(25 / 0.481)
    assert result.late_sends == 0 and result.dropped == 0
    assert result.latency.max_ms == pytest.approx(1.0)  # on time: latency is the service time


def test_a_timed_run_sends_what_is_due_before_its_end() -> None:
    result, starts = run(2, rps=100, duration_s=2.0, concurrency=1)
    assert starts == [k * 10 * MS for k in range(200)]  # none at or after 2 s
    assert result.request_count == 200 and result.dropped == 0
    assert result.duration_s == pytest.approx(1.992)
    assert result.achieved_rate == pytest.approx(200 / 1.992)


def test_a_slow_service_makes_late_sends_drops_and_corrected_latency() -> None:
    # one worker, 50 ms a call: 20 calls/s against 100 asked for
    result, starts = run(50, rps=100, duration_s=1.0, concurrency=1, duration_stop="wait")
    assert starts == [k * 50 * MS for k in range(20)]
    assert result.request_count == 20
    assert result.late_sends == 19  # all but the first left more than 2 ms after their time
    assert result.dropped == 100 - 20  # due before the end, never sent
    assert result.service_time.max_ms == pytest.approx(50.0, rel=1e-3)  # HDR: 3 digits
    # latency counts from the intended time: the 20th was due at 190 ms and ended at 1 s
    assert result.latency.max_ms == pytest.approx(810.0, rel=1e-3)


def test_a_closed_loop_timed_run_ignores_total_and_stops_at_its_end() -> None:
    result, starts = run(5, total=10, duration_s=1.0, concurrency=1)
    assert starts == [k * 5 * MS for k in range(200)]  # back to back until 1 s
    assert result.request_count == 200
    assert result.duration_s == pytest.approx(1.0)
