"""The single-process HTTP/1.1 load engine: keep-alive connections (`_http_conn`, bare
asyncio Protocols) sending one pre-encoded request on one schedule.

Scheduling:

* closed loop (no rate): a connection sends its next request as soon as the previous
  response completes, before that response is recorded; its send time is the previous
  response's completion time (they are under a microsecond apart, and one clock read is
  saved); intended time = send time.
* open loop (rate): request `i` is due at `t0 + i/qps`. Due requests go to idle connections;
  when none is idle they wait, and the first connection to free up sends the oldest due
  request. Latency is measured from the intended time, so that wait is counted (coordinated
  omission correction). The backlog is just `due - issued`: no per-request memory.
  The scheduler wakes at each due time with a `PreciseTimer` (a timerfd on Linux, see
  `_timer`), so sends leave within ~50-100 µs of their intended time without busy-polling.

Failures: a reset, close or parse error with a request in flight is recorded by its
connection (`_http_conn`); a request that has not completed `timeout` after it was sent
(checked by a sweeper every `timeout/10`, at least 5 ms, at most 100 ms) as `TIMEOUT`. The
connection is then re-opened; a failed connect attempt consumes one request, recorded by its
cause (`CONNECTION_REFUSED`, `DNS_ERROR`, `TLS_ERROR`, `TIMEOUT`, ...), and is retried with
exponential backoff (2 ms to 100 ms). Connection-level failures get a message naming the
cause and the target; an error status gets an excerpt of its first response (`new_status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter_ns

from canarist.backends.loadgen._http_conn import ClosedConn, Conn, OpenConn
from canarist.backends.loadgen._http_failures import (
    InitialRequestError,
    connect_error_kind,
    connect_error_text,
    response_excerpt,
)
from canarist.backends.loadgen._timer import PreciseTimer
from canarist.backends.loadgen.recorder import (
    CONNECTION_CLOSED,
    LATE_SEND_THRESHOLD_NS,
    TIMEOUT,
    ErrorRanges,
    ProgressSnapshot,
    Recorder,
    is_error,
)
from canarist.core.errors import UnavailableError

PROGRESS_INTERVAL_S = 1.0
_NO_LIMIT = 1 << 62


@dataclass(frozen=True)
class Target:
    """Where to connect and the pre-encoded request."""

    host: str
    port: int
    use_ssl: bool
    ca_file: str | None
    request: bytes
    label: str
    """`host:port` as shown in messages."""


@dataclass(frozen=True)
class Plan:
    """What one engine (one process) runs."""

    connections: int
    total: int | None
    """Exact number of requests, or None for duration mode."""
    duration_ns: int | None
    qps: float | None
    """This engine's rate; None for closed loop."""
    phase_ns: int
    """Offset of this engine's schedule when several processes interleave one schedule."""
    timeout_ns: int
    warmup: bool
    """Send one unrecorded request per connection first and fail on an error status."""
    error_ranges: ErrorRanges


class Engine:
    """Runs one `Plan` on the running loop: `await open()` (may raise), then `await run()`."""

    def __init__(
        self,
        target: Target,
        plan: Plan,
        on_progress: Callable[[ProgressSnapshot], None] | None = None,
        *,
        clock: Callable[[], int] = perf_counter_ns,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.clock = clock
        """The scheduler's clock (ns, `perf_counter_ns`'s): when requests are due and sent."""
        self.target = target
        self.plan = plan
        self.request = target.request
        self.recorder = Recorder(plan.error_ranges)
        self.pending_both = self.recorder.pending_both
        self.pending_latency = self.recorder.pending_latency
        self.pending_service = self.recorder.pending_service
        self.status_counts = self.recorder.status_counts
        self.failing = self.recorder.failing
        self.on_progress = on_progress
        conn_type = OpenConn if plan.qps else ClosedConn
        self.conns: list[Conn] = [conn_type(self) for _ in range(plan.connections)]
        self.idle: list[Conn] = []
        self.in_flight = 0
        self.issued = 0
        self.limit = plan.total if plan.total is not None else _NO_LIMIT
        self.stopping = False
        self.closing = False
        self.started = False
        self.t0 = 0
        self.period = 1e9 / plan.qps if plan.qps else 0.0
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.tasks: set[asyncio.Task[None]] = set()
        self.handles: list[asyncio.TimerHandle | asyncio.Handle | None] = [None, None, None, None]
        self.callback_error: BaseException | None = None
        self.timer = PreciseTimer(self.loop, self._tick) if plan.qps else None
        self.ssl_ctx: ssl.SSLContext | None = None
        if target.use_ssl:
            self.ssl_ctx = ssl.create_default_context(cafile=target.ca_file)

    def new_status(self, status: int, head: bytes | None) -> None:
        """A status seen for the first time: classify it; keep an error's message."""
        if self.recorder.classify(status):
            self.recorder.note_message(status, response_excerpt(head, status))

    def timeout_message(self) -> str:
        return f"no response from {self.target.label} within {self.plan.timeout_ns / 1e9:g}s"

    # connections

    async def connect(self, conn: Conn) -> BaseException | None:
        try:
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: conn,
                    self.target.host,
                    self.target.port,
                    ssl=self.ssl_ctx,
                    server_hostname=self.target.host if self.ssl_ctx else None,
                ),
                self.plan.timeout_ns / 1e9,
            )
        except Exception as exc:  # any failure to connect is reported, never raised
            return exc
        return None

    def lost(self, conn: Conn) -> None:
        """A connection closed (or never opened): re-open it once the run has started."""
        if conn in self.idle:
            self.idle.remove(conn)
        if self.started and not self.closing and not conn.reviving:
            conn.reviving = True
            task = self.loop.create_task(self._revive(conn))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        self.check_finish()

    async def _revive(self, conn: Conn) -> None:
        try:
            await self._reconnect(conn)
        finally:
            conn.reviving = False

    async def _reconnect(self, conn: Conn) -> None:
        backoff = 0.0
        while True:
            if backoff:
                await asyncio.sleep(backoff)
            if self.closing or self.stopping or self.issued >= self.limit:
                self.check_finish()
                return
            if self.period:
                now = perf_counter_ns()
                if self.issued >= self._due(now):
                    nxt = self.t0 + int(self.issued * self.period)
                    await asyncio.sleep(max(0, nxt - now) / 1e9)
                    continue
                intended = self.t0 + int(self.issued * self.period)
            self.issued += 1
            self.in_flight += 1
            start = perf_counter_ns()
            if not self.period:
                intended = start
            err = await self.connect(conn)
            self.in_flight -= 1
            if err is None and conn.transport is not None:
                if self.period and start - intended > LATE_SEND_THRESHOLD_NS:
                    self.recorder.late_sends += 1
                conn.send(intended, start)
                return
            status, text = connect_error_kind(err) if err is not None else (
                CONNECTION_CLOSED, "closed at once")
            self.recorder.record(intended, start, perf_counter_ns(), status,
                                 f"cannot connect to {self.target.label}: {text}")
            backoff = min(0.1, max(0.002, backoff * 2))

    # scheduling

    def schedule(self, t0_ns: int) -> int | None:
        """Start the plan's schedule at `t0_ns` (its phase added); return when a timed run ends.

        Open loop, request i is due at `t0 + i / qps`; a timed run sends those due before its
        end, an exact one `total`.
        """
        plan = self.plan
        self.t0 = t0_ns + plan.phase_ns
        if plan.duration_ns is None or plan.total is not None:
            return None
        end = t0_ns + plan.duration_ns
        if self.period:
            span = end - self.t0
            self.limit = max(0, int(-(-span // self.period))) if span > 0 else 0
        return end

    def _due(self, now: int) -> int:
        if now < self.t0:
            return 0
        due = int((now - self.t0) / self.period) + 1
        return due if due < self.limit else self.limit

    def _next_closed(self, conn: Conn) -> None:
        if self.stopping or self.issued >= self.limit:
            self.idle.append(conn)
            if self.in_flight == 0:
                self.check_finish()
            return
        self.issued += 1
        start = self.clock()
        conn.send(start, start)

    def _tick(self) -> None:
        if self.stopping or self.issued >= self.limit:
            self.check_finish()
            return
        clock = self.clock
        now = clock()
        due = self._due(now)
        idle = self.idle
        while self.issued < due and idle:
            conn = idle.pop()
            intended = self.t0 + int(self.issued * self.period)
            self.issued += 1
            start = clock()
            if start - intended > LATE_SEND_THRESHOLD_NS:
                self.recorder.late_sends += 1
            conn.send(intended, start)
        if self.issued >= self.limit:
            return
        assert self.timer is not None
        if self.issued < due:
            # every connection is busy: completions send the backlog; this is a safety net
            self.timer.at(now + 1_000_000)
        else:
            self.timer.at(self.t0 + int(self.issued * self.period))

    # timers

    def _sweep(self) -> None:
        now = perf_counter_ns()
        limit = self.plan.timeout_ns
        for conn in self.conns:
            if conn.busy and now - conn.start > limit:
                conn.busy = False
                self.in_flight -= 1
                self.recorder.record(conn.intended, conn.start, now, TIMEOUT,
                                     self.timeout_message())
                if conn.transport is not None:
                    conn.transport.abort()
        self.handles[1] = self.loop.call_later(self._sweep_interval(), self._sweep)

    def _sweep_interval(self) -> float:
        return min(0.1, max(0.005, self.plan.timeout_ns / 1e9 / 10))

    def _deadline(self) -> None:
        self.stopping = True
        if self.period:
            self.recorder.dropped += max(0, self.limit - self.issued)
        self.check_finish()

    def _progress(self) -> None:
        if self.on_progress is not None:
            elapsed = (perf_counter_ns() - self.t0) / 1e9
            try:
                self.on_progress(self.recorder.snapshot(elapsed))
            except Exception as exc:
                self.callback_error = exc
                self.stopping = True
                self.check_finish()
                return
        self.handles[2] = self.loop.call_later(PROGRESS_INTERVAL_S, self._progress)

    def check_finish(self) -> None:
        if (
            (self.stopping or self.issued >= self.limit)
            and self.in_flight == 0
            and not self.done.done()
        ):
            self.done.set_result(None)

    # run

    async def open(self) -> None:
        """Connect every connection; raise UnavailableError when none connects."""
        errors = await asyncio.gather(*(self.connect(c) for c in self.conns))
        if all(e is not None for e in errors):
            first = next(e for e in errors if e is not None)
            raise UnavailableError(
                f"cannot connect to {self.target.label}: {connect_error_text(first)}"
            )
        if self.plan.warmup:
            await self._warmup()

    async def _warmup(self) -> None:
        live = [c for c in self.conns if c.transport is not None]
        for conn in live:
            conn.warm_status = self.loop.create_future()
            conn.transport.write(self.request)  # type: ignore[union-attr]
        timeout = self.plan.timeout_ns / 1e9
        try:
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(c.warm_status for c in live if c.warm_status)), timeout
            )
        except TimeoutError:
            outcomes = [(TIMEOUT, self.timeout_message())]
        for conn in live:
            conn.warm_status = None
        bad = [(s, m) for s, m in outcomes if is_error(s, self.plan.error_ranges)]
        if bad:
            raise InitialRequestError(self.target.label, *bad[0])

    async def run(self, t0_ns: int | None = None) -> tuple[Recorder, float]:
        """Run the plan from `t0_ns` (default: now); return the recorder and elapsed seconds."""
        loop = self.loop
        start = self.clock()
        end = self.schedule(t0_ns if t0_ns is not None else start)
        if end is not None:
            self.handles[3] = loop.call_later(max(0, end - start) / 1e9, self._deadline)
        if start < self.t0:
            await asyncio.sleep((self.t0 - start) / 1e9)
        self.handles[1] = loop.call_later(self._sweep_interval(), self._sweep)
        self.handles[2] = loop.call_later(PROGRESS_INTERVAL_S, self._progress)
        self.started = True
        try:
            for conn in self.conns:
                if conn.transport is None:
                    self.lost(conn)
            if self.period:
                self.idle.extend(c for c in reversed(self.conns) if c.transport is not None)
                self._tick()
            else:
                for conn in self.conns:
                    if conn.transport is not None:
                        self._next_closed(conn)
            self.check_finish()
            await self._wait()
        finally:
            self.close()
            await asyncio.sleep(0)
        elapsed = (perf_counter_ns() - self.t0) / 1e9
        if self.callback_error is not None:
            raise self.callback_error
        return self.recorder, elapsed

    async def _wait(self) -> None:
        plan = self.plan
        if plan.total is not None or plan.duration_ns is None:
            await self.done
            return
        cap = (plan.duration_ns + plan.timeout_ns) / 1e9 + 1.0
        remaining = cap - (perf_counter_ns() - self.t0) / 1e9
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.done), max(0.0, remaining))
        now = perf_counter_ns()
        for conn in self.conns:
            if conn.busy:
                conn.busy = False
                self.in_flight -= 1
                self.recorder.record(conn.intended, conn.start, now, TIMEOUT,
                                     self.timeout_message())

    def abort(self) -> None:
        """Stop at once (the caller was cancelled): nothing more is sent or awaited."""
        self.close()
        if not self.done.done():
            self.done.set_result(None)

    def close(self) -> None:
        self.closing = True
        self.stopping = True
        if self.timer is not None:
            self.timer.close()
        for h in self.handles:
            if h is not None:
                h.cancel()
        for task in list(self.tasks):
            task.cancel()
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.abort()
        self.recorder.fold()
