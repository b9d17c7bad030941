"""The HTTP load generator's open-loop scheduler on an injected clock: which requests are due,
when each leaves, what counts as late, when the timer is set. No server, no wall clock: the
connections and the timer are stand-ins that record what the scheduler asks of them.
(tests/backends/loadgen/test_http_loadgen.py runs the same engine against a real server.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from canarist.backends.loadgen._http_engine import Engine, Plan
from canarist.backends.loadgen.http import HttpLoadSpec, prepare, split_plan
from canarist.backends.loadgen.recorder import LATE_SEND_THRESHOLD_NS

MS = 1_000_000
T0 = 5_000 * MS  # any origin: the scheduler only counts from it


class Clock:
    """Nanoseconds that move only when the test says so."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Connection:
    """Records each send (intended time, actual time); busy until the test frees it."""

    def __init__(self, sent: list[tuple[int, int]]) -> None:
        self.sent = sent

    def send(self, intended: int, start: int) -> None:
        self.sent.append((intended, start))


class Timer:
    def __init__(self) -> None:
        self.wakes: list[int] = []

    def at(self, when_ns: int) -> None:
        self.wakes.append(when_ns)

    def close(self) -> None:
        pass


def quiet(engine: Engine) -> Timer:
    """Give `engine` a stand-in timer (its own is closed unused)."""
    assert engine.timer is not None
    engine.timer.close()
    timer = Timer()
    engine.timer = timer  # type: ignore[assignment]
    return timer


class Scheduler:
    """An engine of `spec` started at T0 on `clock`, with `connections` idle stand-ins."""

    def __init__(self, spec: HttpLoadSpec, connections: int) -> None:
        target, plan = prepare(spec)
        self.clock = Clock(T0)
        self.engine = Engine(target, plan, clock=self.clock)
        self.timer = quiet(self.engine)
        self.sent: list[tuple[int, int]] = []
        self.connections = [Connection(self.sent) for _ in range(connections)]
        self.free()
        self.end = self.engine.schedule(T0)

    def free(self) -> None:
        """Every connection idle again (its response came back)."""
        self.engine.idle = list(self.connections)  # type: ignore[arg-type]

    def tick_at(self, ms: float) -> list[tuple[int, int]]:
        """Move the clock to T0 + `ms`, let the timer fire; the sends it made."""
        before = len(self.sent)
        self.clock.now = T0 + int(ms * MS)
        self.engine._tick()
        return self.sent[before:]


def scheduled(spec: HttpLoadSpec, connections: int,
              steps: Callable[[Scheduler], None]) -> Scheduler:
    async def main() -> Scheduler:
        scheduler = Scheduler(spec, connections)
        steps(scheduler)
        return scheduler

    return asyncio.run(main())


def test_requests_leave_at_their_intended_times_at_the_fixed_rate() -> None:
    spec = HttpLoadSpec(url="http://127.0.0.1:9/rate", qps=200, duration_s=2.0, connections=4)

    def steps(s: Scheduler) -> None:
        assert s.end == T0 + 2_000 * MS
        assert s.engine.limit == 400  # due at T0 + i/200 for t < 2 s
        for ms in range(0, 2_000, 5):  # the timer fires on time: one request each 5 ms
            assert s.tick_at(ms) == [(T0 + ms * MS, T0 + ms * MS)]
            s.free()
        assert s.timer.wakes == [T0 + ms * MS for ms in range(5, 2_000, 5)]
        assert s.tick_at(5_000) == []  # all 400 sent: nothing more, however late it is

    s = scheduled(spec, 4, steps)
    assert len(s.sent) == 400
    assert s.engine.recorder.late_sends == 0
    intended = [i for i, _ in s.sent]
    assert intended == [T0 + i * 5 * MS for i in range(400)]  # 200 per second, exactly


def test_a_late_timer_catches_up_and_counts_late_sends() -> None:
    spec = HttpLoadSpec(url="http://127.0.0.1:9/rate", qps=100, num_requests=50, connections=8)

    def steps(s: Scheduler) -> None:
        assert s.end is None and s.engine.limit == 50
        assert s.tick_at(0) == [(T0, T0)]
        # the loop was held up 33 ms: the three requests due since leave now, in order
        assert s.tick_at(33) == [(T0 + ms * MS, T0 + 33 * MS) for ms in (10, 20, 30)]
        assert s.timer.wakes[-1] == T0 + 40 * MS  # the next one on its own time
        assert s.tick_at(41) == [(T0 + 40 * MS, T0 + 41 * MS)]  # 1 ms late: not late

    s = scheduled(spec, 8, steps)
    assert s.engine.recorder.late_sends == 3
    assert 33 * MS - 30 * MS > LATE_SEND_THRESHOLD_NS >= 1 * MS


def test_nothing_leaves_before_its_time_and_busy_connections_hold_the_backlog() -> None:
    spec = HttpLoadSpec(url="http://127.0.0.1:9/rate", qps=100, num_requests=50, connections=2)

    def steps(s: Scheduler) -> None:
        assert len(s.tick_at(0)) == 1
        assert s.tick_at(9.999) == []  # the next one is due at 10 ms
        assert s.timer.wakes[-1] == T0 + 10 * MS
        # at 50 ms five are due, one connection is idle: one leaves, the rest wait for a
        # connection, and the timer looks again in a millisecond
        assert s.tick_at(50) == [(T0 + 10 * MS, T0 + 50 * MS)]
        assert s.engine.issued == 2
        assert s.timer.wakes[-1] == T0 + 51 * MS
        s.free()
        assert [i for i, _ in s.tick_at(51)] == [T0 + 20 * MS, T0 + 30 * MS]

    scheduled(spec, 2, steps)


def test_an_exact_count_is_paced_by_the_rate() -> None:
    spec = HttpLoadSpec(url="http://127.0.0.1:9/rate", qps=100, num_requests=50, connections=2)

    def steps(s: Scheduler) -> None:
        for ms in range(0, 1_000, 10):
            s.tick_at(ms)
            s.free()

    s = scheduled(spec, 2, steps)
    # 50 requests at 100 per second: the last leaves 490 ms after the first, not sooner
    assert [i for i, _ in s.sent] == [T0 + i * 10 * MS for i in range(50)]
    assert all(start == intended for intended, start in s.sent)  # each on its tick, none early


async def worker_sends(spec: HttpLoadSpec, plan: Plan, until_ms: int) -> list[int]:
    """The intended times one worker's engine sends at, its timer firing every millisecond."""
    target, _ = prepare(spec)
    clock = Clock(T0)
    engine = Engine(target, plan, clock=clock)
    quiet(engine)
    engine.schedule(T0)
    sent: list[tuple[int, int]] = []
    for ms in range(until_ms):
        clock.now = T0 + ms * MS
        engine.idle = [Connection(sent)]  # type: ignore[list-item]
        engine._tick()
    assert all(start >= intended for intended, start in sent)  # none leaves early
    return [intended for intended, _ in sent]


def test_worker_processes_interleave_one_schedule() -> None:
    """Two workers run half the rate each, half a period apart: together, 200 per second."""
    spec = HttpLoadSpec(url="http://127.0.0.1:9/w", qps=200, duration_s=2.0, connections=4)
    _, plan = prepare(spec)
    sent = [intended for part in split_plan(plan, 2)
            for intended in asyncio.run(worker_sends(spec, part, 3_000))]
    assert sorted(sent) == [T0 + i * 5 * MS for i in range(400)]
