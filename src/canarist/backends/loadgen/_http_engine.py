"""The single-process HTTP/1.1 load engine: keep-alive connections as bare asyncio Protocols.

Each connection carries one request at a time (no pipelining). Responses are parsed by
`httptools.HttpResponseParser` (llhttp), which handles Content-Length and chunked bodies;
only `on_message_complete` is implemented, so the parser never calls back for headers or
body chunks. The request is pre-encoded once and written as the same `bytes` every time.

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

Failures: a reset, close or parse error with a request in flight records that request as
`CONNECTION_RESET`, `CONNECTION_CLOSED` or `PROTOCOL_ERROR`; a request that has not
completed `timeout` after it was sent (checked by a sweeper every `timeout/10`, at least
5 ms, at most 100 ms) as `TIMEOUT`. The connection is then re-opened; a failed connect
attempt consumes one request, recorded by its cause (`CONNECTION_REFUSED`, `DNS_ERROR`,
`TLS_ERROR`, `TIMEOUT`, ...), and is retried with exponential backoff (2 ms to 100 ms).

Messages: the first response with each error status has its body kept as that status's
message (a short excerpt: what a 404 or a 500 says is usually the cause). The parser does
not copy bodies, so the engine keeps the first `HEAD_BYTES` of each response (`head`: a
reference to the first chunk, which usually is the whole response; later chunks are copied
only while the head is shorter) and parses them again, once per new error status only.
Connection-level failures get a message naming the cause and the target.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter_ns

import httptools

from canarist.backends.loadgen._http_failures import (
    InitialRequestError,
    connect_error_kind,
    connect_error_text,
    lost_connection_kind,
    response_excerpt,
)
from canarist.backends.loadgen._timer import PreciseTimer
from canarist.backends.loadgen.recorder import (
    CONNECTION_CLOSED,
    LATE_SEND_THRESHOLD_NS,
    PROTOCOL_ERROR,
    TIMEOUT,
    ErrorRanges,
    ProgressSnapshot,
    Recorder,
    is_error,
)
from canarist.core.errors import UnavailableError

PROGRESS_INTERVAL_S = 1.0
HEAD_BYTES = 4096
"""How much of each response is kept for an error message: headers and a body excerpt."""
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


class _Conn(asyncio.Protocol):
    """One keep-alive connection. Subclasses implement the per-response hot path."""

    __slots__ = (
        "busy",
        "eng",
        "head",
        "intended",
        "parser",
        "protocol_error",
        "reviving",
        "start",
        "transport",
        "warm_status",
    )

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.busy = False
        self.intended = 0
        self.start = 0
        self.reviving = False
        self.head: bytes | None = None
        """The first chunk of the response being read (for error messages)."""
        self.protocol_error: str | None = None
        self.warm_status: asyncio.Future[tuple[int, str]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.parser = httptools.HttpResponseParser(self)
        self.head = None
        self.protocol_error = None

    def send(self, intended: int, start: int) -> None:
        self.intended = intended
        self.start = start
        self.busy = True
        self.eng.in_flight += 1
        self.transport.write(self.eng.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        head = self.head
        if head is None:
            self.head = data
        elif len(head) < HEAD_BYTES:
            self.head = head + data[:HEAD_BYTES]
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.protocol_error = f"invalid HTTP response from {self.eng.target.label}: {exc}"
            if self.transport is not None:
                self.transport.abort()

    def _warm_complete(self) -> None:
        if self.warm_status is not None and not self.warm_status.done():
            status = self.parser.get_status_code()
            self.warm_status.set_result(
                (status, response_excerpt(self.head, status, reason=False)))
        self.head = None

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        eng = self.eng
        if self.protocol_error is not None:
            status, message = PROTOCOL_ERROR, self.protocol_error
        else:
            status, message = lost_connection_kind(exc, eng.target.label)
        self.head = None
        if self.warm_status is not None and not self.warm_status.done():
            self.warm_status.set_result((status, message))
        if self.busy:
            self.busy = False
            eng.in_flight -= 1
            eng.recorder.record(self.intended, self.start, perf_counter_ns(), status, message)
        eng.lost(self)


class _ClosedConn(_Conn):
    __slots__ = ()

    def on_message_complete(self) -> None:
        end = perf_counter_ns()
        if not self.busy:
            self._warm_complete()
            return
        eng = self.eng
        parser = self.parser
        status = parser.get_status_code()
        took = end - self.start
        # Send the next request before recording this one, so it is in flight meanwhile.
        if parser.should_keep_alive():
            if eng.issued < eng.limit and not eng.stopping:
                eng.issued += 1
                self.start = end
                self.transport.write(eng.request)  # type: ignore[union-attr]
            else:
                self.busy = False
                eng.in_flight -= 1
                eng.idle.append(self)
        else:
            self.busy = False
            eng.in_flight -= 1
            self.transport.close()  # type: ignore[union-attr]
        d = eng.status_counts
        n = d.get(status)
        if n is None:
            d[status] = 1
            eng.new_status(status, self.head)
        else:
            d[status] = n + 1
        self.head = None
        if status not in eng.failing:
            v = (took + 500) // 1000
            if v >= 2048:
                s = v.bit_length() - 11
                v = v >> s << s
            d = eng.pending_both
            d[v] = d.get(v, 0) + 1
        if not self.busy and eng.in_flight == 0:
            eng.check_finish()


class _OpenConn(_Conn):
    __slots__ = ()

    def on_message_complete(self) -> None:
        end = perf_counter_ns()
        if not self.busy:
            self._warm_complete()
            return
        eng = self.eng
        parser = self.parser
        status = parser.get_status_code()
        intended = self.intended
        start = self.start
        if parser.should_keep_alive():
            i = eng.issued
            nxt = eng.t0 + int(i * eng.period)
            if nxt <= end and i < eng.limit and not eng.stopping:
                # the oldest due request goes out on this connection right away
                eng.issued = i + 1
                if end - nxt > LATE_SEND_THRESHOLD_NS:
                    eng.recorder.late_sends += 1
                self.intended = nxt
                self.start = end
                self.transport.write(eng.request)  # type: ignore[union-attr]
            else:
                self.busy = False
                eng.in_flight -= 1
                eng.idle.append(self)
        else:
            self.busy = False
            eng.in_flight -= 1
            self.transport.close()  # type: ignore[union-attr]
        d = eng.status_counts
        n = d.get(status)
        if n is None:
            d[status] = 1
            eng.new_status(status, self.head)
        else:
            d[status] = n + 1
        self.head = None
        if status not in eng.failing:
            v = (end - intended + 500) // 1000
            if v >= 2048:
                s = v.bit_length() - 11
                v = v >> s << s
            d = eng.pending_latency
            d[v] = d.get(v, 0) + 1
            v = (end - start + 500) // 1000
            if v >= 2048:
                s = v.bit_length() - 11
                v = v >> s << s
            d = eng.pending_service
            d[v] = d.get(v, 0) + 1
        if not self.busy and eng.in_flight == 0:
            eng.check_finish()


class Engine:
    """Runs one `Plan` on the running loop: `await open()` (may raise), then `await run()`."""

    def __init__(
        self,
        target: Target,
        plan: Plan,
        on_progress: Callable[[ProgressSnapshot], None] | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
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
        conn_type = _OpenConn if plan.qps else _ClosedConn
        self.conns: list[_Conn] = [conn_type(self) for _ in range(plan.connections)]
        self.idle: list[_Conn] = []
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

    async def connect(self, conn: _Conn) -> BaseException | None:
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

    def lost(self, conn: _Conn) -> None:
        """A connection closed (or never opened): re-open it once the run has started."""
        if conn in self.idle:
            self.idle.remove(conn)
        if self.started and not self.closing and not conn.reviving:
            conn.reviving = True
            task = self.loop.create_task(self._revive(conn))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        self.check_finish()

    async def _revive(self, conn: _Conn) -> None:
        try:
            await self._reconnect(conn)
        finally:
            conn.reviving = False

    async def _reconnect(self, conn: _Conn) -> None:
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

    def _due(self, now: int) -> int:
        if now < self.t0:
            return 0
        due = int((now - self.t0) / self.period) + 1
        return due if due < self.limit else self.limit

    def _next_closed(self, conn: _Conn) -> None:
        if self.stopping or self.issued >= self.limit:
            self.idle.append(conn)
            if self.in_flight == 0:
                self.check_finish()
            return
        self.issued += 1
        start = perf_counter_ns()
        conn.send(start, start)

    def _tick(self) -> None:
        if self.stopping or self.issued >= self.limit:
            self.check_finish()
            return
        now = perf_counter_ns()
        due = self._due(now)
        idle = self.idle
        while self.issued < due and idle:
            conn = idle.pop()
            intended = self.t0 + int(self.issued * self.period)
            self.issued += 1
            start = perf_counter_ns()
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
        plan = self.plan
        start = perf_counter_ns()
        self.t0 = (t0_ns if t0_ns is not None else start) + plan.phase_ns
        if plan.duration_ns is not None and plan.total is None:
            end = self.t0 - plan.phase_ns + plan.duration_ns
            if self.period:
                span = end - self.t0
                self.limit = max(0, int(-(-span // self.period))) if span > 0 else 0
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
