"""canarist's own gRPC client for unary calls: HTTP/2 over cleartext TCP as asyncio Protocols.

grpcio spends 110-140 µs of client CPU per call (its core, a poller thread, the asyncio
bridge); this engine spends a fraction of that. It implements what a unary gRPC call needs
of HTTP/2 (RFC 9113) and of the gRPC wire protocol, and no more. `_h2_wire` holds the wire
formats (frames, HPACK, status codes), `_h2_conn` one HTTP/2 connection (framing, flow
control, SETTINGS, PING, GOAWAY); this module is the engine that runs calls over them:

* Requests: the HEADERS block of each metadata map is HPACK-encoded once, and the DATA frame
  of each payload is framed once (5-byte gRPC prefix); a call joins them with its stream id.
* Responses: a call's status is `grpc-status` from the trailers (or a trailers-only
  response); without it, the HTTP status maps to a code as gRPC's spec says, RST_STREAM
  codes map as grpc-go maps them. The response message is parsed with the method's response
  class: a message that does not parse is INTERNAL, one above `max_recv_message_size`
  (4 MiB by default) RESOURCE_EXHAUSTED.
* Deadlines: a sweeper every `timeout/10` (5-100 ms) cancels calls older than the timeout
  (RST_STREAM CANCEL; recorded as DEADLINE_EXCEEDED, "Deadline Exceeded").
* A lost connection fails its calls with UNAVAILABLE and is re-opened; a failed connect
  attempt takes one call, recorded as UNAVAILABLE, and is retried with backoff (2-100 ms).

Scheduling is the HTTP engine's (`_http_engine`): `concurrency` slots spread over
`connections`; closed loop sends a slot's next call as soon as its previous one ends, before
recording it; open loop sends call k at `t0 + k/rps` (a `PreciseTimer`), latency counted from
then.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
from collections.abc import Callable, Sequence
from time import perf_counter_ns
from typing import Any
from urllib.parse import unquote

from canarist.backends.loadgen._h2_conn import Conn, Stream
from canarist.backends.loadgen._h2_wire import (
    CANCELLED,
    DATA,
    DEADLINE_EXCEEDED,
    END_STREAM,
    GOAWAY,
    HEAD,
    HTTP_CODES,
    INTERNAL,
    OK,
    UNAVAILABLE,
    UNIMPLEMENTED,
    UNKNOWN,
    frame,
    header_block,
    header_parts,
)
from canarist.backends.loadgen._timer import PreciseTimer
from canarist.backends.loadgen.recorder import (
    GRPC_ERROR_RANGES,
    GRPC_STATUS_BASE,
    LATE_SEND_THRESHOLD_NS,
    LoadResult,
    ProgressSnapshot,
    Recorder,
)
from canarist.core.errors import UnavailableError

DEFAULT_MAX_RECV = 4 * 1024 * 1024


class H2Engine:
    """One run: `await open()` (raises UnavailableError), then `await run()`."""

    def __init__(
        self,
        *,
        address: tuple[str, int],
        label: str,
        authority: str,
        path: str,
        payloads: Sequence[bytes],
        metadata: Sequence[Sequence[tuple[str, str | bytes]]],
        response_parser: Callable[[bytes], Any],
        concurrency: int,
        connections: int,
        total: int | None,
        duration_s: float | None,
        duration_stop: str,
        rps: float,
        skip_first: int,
        timeout_s: float | None,
        connect_timeout_s: float,
        max_recv: int | None,
        max_send: int | None,
        progress_interval_s: float,
        on_progress: Callable[[ProgressSnapshot], None] | None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.address = address
        self.label = label
        self.parse_response = response_parser
        self.recorder = Recorder(GRPC_ERROR_RANGES)
        self.concurrency = concurrency
        self.total = total
        self.limit = total if total is not None else 1 << 62
        self.duration_s = duration_s
        self.duration_stop = duration_stop
        self.period = 1e9 / rps if rps > 0 else 0.0
        self.skip_first = skip_first
        self.timeout_ns = int(timeout_s * 1e9) if timeout_s else 0
        self.connect_timeout_s = connect_timeout_s
        self.max_recv = (DEFAULT_MAX_RECV if max_recv is None
                         else max_recv if max_recv >= 0 else 1 << 62)
        self.max_send = max_send if max_send is not None and max_send >= 0 else None
        self.progress_interval_s = progress_interval_s
        self.on_progress = on_progress
        self.bodies = [b"\0" + len(p).to_bytes(4, "big") + p for p in payloads]
        self.n_bodies = len(self.bodies)
        self.data_frames = [HEAD.pack(len(b) >> 16, len(b) & 0xFFFF, DATA, END_STREAM, 0)[:5]
                            for b in self.bodies]
        blocks = [header_block(path, authority, timeout_s, md) for md in metadata]
        # HEADERS (+ CONTINUATION past 16 KiB, the frame size every peer accepts), as
        # (frame head without stream id, fragment) pairs
        self.header_parts = [header_parts(b) for b in blocks]
        self.n_blocks = len(blocks)
        self.oversize = frozenset(i for i, p in enumerate(payloads)
                                  if self.max_send is not None and len(p) > self.max_send)
        self.conns = [Conn(self) for _ in range(connections)]
        for i in range(concurrency):
            self.conns[i % connections].slots += 1
        self.idle: list[Conn] = []
        self.in_flight = 0
        self.issued = 0
        self.completed = 0
        self.stopping = False
        self.closing = False
        self.started = False
        self.t0 = 0
        self.end_ns: int | None = None
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.handles: list[asyncio.TimerHandle | None] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.timer: PreciseTimer | None = None
        self.callback_error: BaseException | None = None

    # ------------------------------------------------------------ connections

    async def connect(self, conn: Conn, limit_s: float) -> BaseException | None:
        conn.settings_seen = self.loop.create_future()
        try:
            async with asyncio.timeout(limit_s):
                await self.loop.create_connection(lambda: conn, *self.address)
                await conn.settings_seen
        except Exception as exc:  # reported, never raised
            if conn.transport is not None:
                conn.transport.abort()
            return exc
        finally:
            conn.settings_seen = None
        return None

    async def open(self) -> None:
        deadline = self.loop.time() + self.connect_timeout_s
        pending = list(self.conns)
        while pending:
            left = deadline - self.loop.time()
            errors = await asyncio.gather(*(self.connect(c, max(0.001, left)) for c in pending))
            pending = [c for c, e in zip(pending, errors, strict=True) if e is not None]
            if pending and self.loop.time() + 0.05 >= deadline:
                self.close()
                raise UnavailableError(
                    f"host: cannot connect to {self.label} within "
                    f"{self.connect_timeout_s:g}s (connect-timeout)")
            if pending:
                await asyncio.sleep(0.05)

    def lost(self, conn: Conn) -> None:
        """A connection closed: its slots wait for it to be re-opened."""
        idle = [c for c in self.idle if c is not conn]
        conn.parked += len(self.idle) - len(idle)
        self.idle = idle
        if self.started and not self.closing and not conn.reviving:
            conn.reviving = True
            task = self.loop.create_task(self._revive(conn))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        self.check_finish()

    def park(self, conn: Conn) -> None:
        conn.maybe_retire()

    async def _revive(self, conn: Conn) -> None:
        try:
            backoff = 0.0
            while True:
                if backoff:
                    await asyncio.sleep(backoff)
                if self.closing or self.stopping or self.issued >= self.limit:
                    return
                err = await self.connect(conn, self.connect_timeout_s)
                if err is None and conn.transport is not None:
                    parked, conn.parked = conn.parked, 0
                    conn.in_read = True
                    now = perf_counter_ns()
                    for _ in range(parked):
                        self.next_on(conn, now)
                    conn.in_read = False
                    conn.flush()
                    return
                # one call is spent on the failed attempt, as grpc fails calls fast meanwhile
                if self.issued < self.limit and not self.stopping:
                    self.issued += 1
                    now = perf_counter_ns()
                    self.record(now, now, now, UNAVAILABLE,
                                f"failed to connect to {self.label}: {err}")
                backoff = min(0.1, max(0.002, backoff * 2))
        finally:
            conn.reviving = False
            self.check_finish()

    # ------------------------------------------------------------ calls

    def record(self, intended: int, start: int, end: int, status: int,
               message: str | None = None) -> None:
        self.completed += 1
        if self.completed > self.skip_first:
            self.recorder.record(intended, start, end, status, message)

    def next_on(self, conn: Conn, now: int) -> None:
        """A slot of `conn` is free at `now`: send the next call on it, or idle it."""
        if self.stopping or self.issued >= self.limit:
            return
        if not conn.usable():
            conn.parked += 1
            conn.maybe_retire()
            return
        if self.period:
            nxt = self.t0 + int(self.issued * self.period)
            if nxt > now or (self.end_ns is not None and nxt >= self.end_ns):
                self.idle.append(conn)
                return
            if now - nxt > LATE_SEND_THRESHOLD_NS:
                self.recorder.late_sends += 1
            intended = nxt
        else:
            if self.end_ns is not None and now >= self.end_ns:
                return
            intended = now
        k = self.issued
        self.issued = k + 1
        self.in_flight += 1
        conn.send_call(k, intended, now)

    def complete(self, st: Stream, trailers: dict[str, str] | None) -> None:
        """The server ended stream `st` (trailers None: it ended with DATA, no trailers)."""
        conn = st.conn
        conn.streams.pop(st.sid, None)
        now = perf_counter_ns()
        if trailers is not None:
            code = trailers.get("grpc-status")
        else:
            code = None
            trailers = {}
        if code is None:
            http = st.http_status or trailers.get(":status", "")
            if http != "200":
                status = HTTP_CODES.get(int(http) if http.isdigit() else 0, UNKNOWN)
                self.finish(st, now, status, f"Received http2 header with status: {http}")
            else:
                self.finish(st, now, INTERNAL, "server closed the stream without sending trailers")
            return
        status = GRPC_STATUS_BASE + int(code) if code.isdigit() else UNKNOWN
        if status != OK:
            message = trailers.get("grpc-message", "")
            self.finish(st, now, status, unquote(message) if "%" in message else message)
            return
        data = st.data
        if len(data) < 5 or data[0] != 0 or int.from_bytes(data[1:5], "big") != len(data) - 5:
            if len(data) >= 5 and data[0] == 1:
                self.finish(st, now, INTERNAL,
                            "compressed message without grpc-encoding from the server")
            else:
                self.finish(st, now, INTERNAL if data else UNIMPLEMENTED,
                            "not one response message in a unary call" if data
                            else "no response message in a unary call")
            return
        try:
            self.parse_response(data[5:])
        except Exception:
            self.finish(st, now, INTERNAL, "Exception deserializing response!")
            return
        self.finish(st, now, OK, None)

    def finish(self, st: Stream, now: int, status: int, message: str | None,
               reuse: bool = True) -> None:
        """Record `st` and free its slot (send the next call on it when `reuse`)."""
        conn = st.conn
        if conn is None:
            return
        st.conn = None  # type: ignore[assignment]
        self.in_flight -= 1
        if reuse:
            if conn.waiting:
                conn.dispatch_waiting()
            self.next_on(conn, now)
        elif not self.stopping and self.issued < self.limit:
            conn.parked += 1
        self.record(st.intended, st.start, now, status, message)
        if self.in_flight == 0:
            self.check_finish()

    # ------------------------------------------------------------ timers

    def _tick(self) -> None:
        try:
            if self.stopping or self.issued >= self.limit:
                return
            now = perf_counter_ns()
            idle = self.idle
            while idle and not self.stopping and self.issued < self.limit:
                nxt = self.t0 + int(self.issued * self.period)
                if nxt > now or (self.end_ns is not None and nxt >= self.end_ns):
                    break
                conn = idle.pop()
                self.next_on(conn, perf_counter_ns())
            if self.issued >= self.limit:
                return
            nxt = self.t0 + int(self.issued * self.period)
            if self.end_ns is not None and nxt >= self.end_ns:
                return
            assert self.timer is not None
            self.timer.at(nxt if nxt > now else now + 1_000_000)
        except BaseException as exc:
            self._fail(exc)

    def _sweep(self) -> None:
        try:
            now = perf_counter_ns()
            limit = self.timeout_ns
            for conn in self.conns:
                expired = [st for st in conn.streams.values()
                           if st.conn is not None and now - st.start > limit]
                for st in expired:
                    conn.reset(st)
                    self.finish(st, now, DEADLINE_EXCEEDED, "Deadline Exceeded")
                while conn.waiting and now - conn.waiting[0][2] > limit:
                    _, intended, start = conn.waiting.popleft()
                    self.finish(Stream(conn, 0, intended, start, 0), now, DEADLINE_EXCEEDED,
                                "Deadline Exceeded")
                conn.flush()
            self.handles.append(self.loop.call_later(self._sweep_interval(), self._sweep))
        except BaseException as exc:
            self._fail(exc)

    def _sweep_interval(self) -> float:
        return min(0.1, max(0.005, self.timeout_ns / 1e9 / 10))

    def _progress(self) -> None:
        assert self.on_progress is not None
        elapsed = (perf_counter_ns() - self.t0) / 1e9
        self.on_progress(self.recorder.snapshot(elapsed))
        self.handles.append(self.loop.call_later(self.progress_interval_s, self._progress))

    def _end(self) -> None:
        """The duration is over: send nothing more; in-flight calls per duration-stop."""
        self.stopping = True
        if self.duration_stop != "wait":
            now = perf_counter_ns()
            for conn in self.conns:
                for st in list(conn.streams.values()):
                    if st.conn is None:
                        continue
                    conn.reset(st)
                    if self.duration_stop == "close":
                        self.finish(st, now, CANCELLED, "call still in flight when the duration "
                                                        "ended (duration-stop: close)")
                    else:
                        st.conn = None  # type: ignore[assignment]
                        self.in_flight -= 1
                waiting = list(conn.waiting)
                conn.waiting.clear()
                for _, intended, start in waiting:
                    if self.duration_stop == "close":
                        self.finish(Stream(conn, 0, intended, start, 0), now, CANCELLED,
                                    "call still in flight when the duration ended "
                                    "(duration-stop: close)")
                    else:
                        self.in_flight -= 1
                conn.flush()
        self.check_finish()

    def _fail(self, exc: BaseException) -> None:
        self.callback_error = exc
        if not self.done.done():
            self.done.set_result(None)

    def check_finish(self) -> None:
        if self.done.done() or not self.started:
            return
        if self.in_flight:
            return
        if self.stopping or self.issued >= self.limit or (
                not self.idle and not self.tasks
                and not any(c.transport is not None for c in self.conns)):
            self.done.set_result(None)

    # ------------------------------------------------------------ the run

    async def run(self) -> LoadResult:
        loop = self.loop
        self.t0 = perf_counter_ns()
        self.started = True
        if self.duration_s is not None:
            self.end_ns = self.t0 + int(self.duration_s * 1e9)
            self.handles.append(loop.call_later(self.duration_s, self._end))
        if self.timeout_ns:
            self.handles.append(loop.call_later(self._sweep_interval(), self._sweep))
        if self.on_progress is not None:
            self.handles.append(loop.call_later(self.progress_interval_s, self._progress))
        if self.period:
            self.timer = PreciseTimer(loop, self._tick)
        try:
            now = perf_counter_ns()
            for i in range(self.concurrency):
                conn = self.conns[i % len(self.conns)]
                conn.in_read = True
                self.next_on(conn, now)
            for conn in self.conns:
                conn.in_read = False
                conn.flush()
            if self.period:
                self._tick()
            self.check_finish()
            await self.done
            if self.callback_error is not None:
                raise self.callback_error
        finally:
            self.close()
        finished = perf_counter_ns()
        if self.end_ns is not None and self.period:
            due = math.ceil((self.end_ns - self.t0) / self.period)
            if due > self.issued:
                self.recorder.note_dropped(due - self.issued)
        result = self.recorder.result((finished - self.t0) / 1e9)
        if self.on_progress is not None:
            self.on_progress(self.recorder.snapshot(result.duration_s))
        return result

    def close(self) -> None:
        self.closing = True
        for h in self.handles:
            if h is not None:
                h.cancel()
        self.handles.clear()
        if self.timer is not None:
            self.timer.close()
        for task in list(self.tasks):
            task.cancel()
        for conn in self.conns:
            if conn.transport is not None:
                with contextlib.suppress(Exception):
                    conn.transport.write(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
                conn.transport.close()
