"""canarist's own gRPC client for unary calls: HTTP/2 over cleartext TCP as asyncio Protocols.

grpcio spends 110-140 µs of client CPU per call (its core, a poller thread, the asyncio
bridge); this engine spends a fraction of that. It implements what a unary gRPC call needs
of HTTP/2 (RFC 9113) and of the gRPC wire protocol, and no more:

* Requests: the HEADERS block of each metadata map is HPACK-encoded once, statelessly
  (static-table names, literals never added to the table, no Huffman), and the DATA frame
  of each payload is framed once (5-byte gRPC prefix); a call joins them with its stream id.
  `grpc-timeout` carries the deadline to the server.
* Responses: frames are parsed in `data_received`; header blocks are decoded with `hpack`,
  except that a block already seen is answered from a cache while the decoder's dynamic
  table is unchanged (servers send the same indexed bytes for every response). A call's
  status is `grpc-status` from the trailers (or a trailers-only response); without it, the
  HTTP status maps to a code as gRPC's spec says, RST_STREAM codes map as grpc-go maps them.
  The response message is parsed with the method's response class: a message that does not
  parse is INTERNAL, one above `max_recv_message_size` (4 MiB by default) RESOURCE_EXHAUSTED.
* Flow control: the client announces 2^31-1 bytes of stream window and grows the connection
  window as data arrives; sends respect the server's windows and frame size (a request that
  does not fit waits for WINDOW_UPDATE). MAX_CONCURRENT_STREAMS is honoured by queueing.
  PING is answered, SETTINGS acknowledged, GOAWAY fails the streams the server will not
  process (UNAVAILABLE) and the connection is replaced once its last stream ends.
* Deadlines: a sweeper every `timeout/10` (5-100 ms) cancels calls older than the timeout
  (RST_STREAM CANCEL; recorded as DEADLINE_EXCEEDED, "Deadline Exceeded").
* A lost connection fails its calls with UNAVAILABLE and is re-opened; a failed connect
  attempt takes one call, recorded as UNAVAILABLE, and is retried with backoff (2-100 ms).

Scheduling is the HTTP engine's (`_http_engine`): `concurrency` slots spread over
`connections`; closed loop sends a slot's next call as soon as its previous one ends, before
recording it; open loop sends call k at `t0 + k/rps` (a `PreciseTimer`), latency counted from
then. Every frame produced while handling one read is written with one `write`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import struct
from collections import deque
from collections.abc import Callable, Sequence
from time import perf_counter_ns
from typing import Any, cast
from urllib.parse import unquote

import hpack

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

# gRPC status codes (grpc.StatusCode values), as recorded statuses
OK = GRPC_STATUS_BASE + 0
CANCELLED = GRPC_STATUS_BASE + 1
UNKNOWN = GRPC_STATUS_BASE + 2
DEADLINE_EXCEEDED = GRPC_STATUS_BASE + 4
PERMISSION_DENIED = GRPC_STATUS_BASE + 7
RESOURCE_EXHAUSTED = GRPC_STATUS_BASE + 8
UNIMPLEMENTED = GRPC_STATUS_BASE + 12
INTERNAL = GRPC_STATUS_BASE + 13
UNAVAILABLE = GRPC_STATUS_BASE + 14
UNAUTHENTICATED = GRPC_STATUS_BASE + 16

DEFAULT_MAX_RECV = 4 * 1024 * 1024
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_WINDOW = 2**31 - 1
_MAX_SID = 2**31 - 1

# frame types and flags
_DATA, _HEADERS, _PRIORITY, _RST, _SETTINGS, _PUSH, _PING, _GOAWAY, _WINUPD, _CONT = range(10)
_END_STREAM, _ACK, _END_HEADERS, _PADDED, _PRIO = 0x1, 0x1, 0x4, 0x8, 0x20

# RST_STREAM error code -> gRPC code (as grpc-go's http2ErrConvTab)
_RST_CODES = {0: INTERNAL, 1: INTERNAL, 2: INTERNAL, 3: INTERNAL, 4: INTERNAL, 5: INTERNAL,
              6: INTERNAL, 7: UNAVAILABLE, 8: CANCELLED, 9: INTERNAL, 10: INTERNAL,
              11: RESOURCE_EXHAUSTED, 12: PERMISSION_DENIED, 13: INTERNAL}
# HTTP status -> gRPC code when a response has no grpc-status (gRPC's http-grpc-status-mapping)
_HTTP_CODES = {400: INTERNAL, 401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: UNIMPLEMENTED,
               429: UNAVAILABLE, 502: UNAVAILABLE, 503: UNAVAILABLE, 504: UNAVAILABLE}

_head = struct.Struct(">BHBBI")


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _head.pack(n >> 16, n & 0xFFFF, ftype, flags, sid) + payload


def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_str(data: bytes) -> bytes:
    return _hpack_int(len(data), 7, 0) + data


def _literal(name: bytes | int, value: bytes) -> bytes:
    """A literal header field never indexed: the same bytes are valid in any HPACK state."""
    if isinstance(name, int):
        return _hpack_int(name, 4, 0x10) + _hpack_str(value)
    return b"\x10" + _hpack_str(name) + _hpack_str(value)


def grpc_timeout(seconds: float) -> bytes:
    """The `grpc-timeout` value: at most 8 digits and a unit."""
    for unit, scale in (("n", 1e9), ("u", 1e6), ("m", 1e3), ("S", 1.0), ("M", 1 / 60), ("H", 1 / 3600)):
        v = math.ceil(seconds * scale)
        if v < 10**8:
            return f"{v}{unit}".encode()
    return b"99999999H"


def header_block(path: str, authority: str, timeout_s: float | None,
                 metadata: Sequence[tuple[str, str | bytes]]) -> bytes:
    parts = [
        b"\x83",  # :method POST (static 3)
        b"\x86",  # :scheme http (static 6)
        _literal(4, path.encode()),  # :path
        _literal(1, authority.encode()),  # :authority
        _literal(31, b"application/grpc"),  # content-type
        _literal(b"te", b"trailers"),
        _literal(58, b"canarist-grpc"),  # user-agent
    ]
    if timeout_s:
        parts.append(_literal(b"grpc-timeout", grpc_timeout(timeout_s)))
    for key, value in metadata:
        raw = base64.b64encode(value).rstrip(b"=") if isinstance(value, bytes) else value.encode()
        parts.append(_literal(key.encode(), raw))
    return b"".join(parts)


def _header_parts(block: bytes) -> list[tuple[bytes, bytes]]:
    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)] or [b""]
    parts = []
    for i, chunk in enumerate(chunks):
        ftype = _HEADERS if i == 0 else _CONT
        flags = _END_HEADERS if i == len(chunks) - 1 else 0
        n = len(chunk)
        parts.append((_head.pack(n >> 16, n & 0xFFFF, ftype, flags, 0)[:5], chunk))
    return parts


class HeaderDecoder:
    """`hpack.Decoder` with a cache for blocks that leave the dynamic table unchanged."""

    __slots__ = ("cache", "decoder", "table")

    def __init__(self) -> None:
        self.decoder = hpack.Decoder()
        self.table = self.decoder.header_table.dynamic_entries
        self.cache: dict[bytes, dict[str, str]] = {}

    def decode(self, block: bytes) -> dict[str, str]:
        got = self.cache.get(block)
        if got is not None:
            return got
        table = self.table
        before = (len(table), table[0] if table else None, self.decoder.header_table.maxsize)
        headers = {}
        for name, value in self.decoder.decode(block):
            headers[str(name)] = str(value)
        after = (len(table), table[0] if table else None, self.decoder.header_table.maxsize)
        if before[0] != after[0] or before[1] is not after[1] or before[2] != after[2]:
            self.cache.clear()  # indices moved: cached blocks may mean something else now
        elif len(self.cache) < 64:
            self.cache[block] = headers
        return headers


class _Stream:
    __slots__ = ("block", "body", "conn", "data", "end_headers", "headers", "http_status",
                 "intended", "sid", "start", "window")

    def __init__(self, conn: _Conn, sid: int, intended: int, start: int, window: int) -> None:
        self.conn = conn
        self.sid = sid
        self.intended = intended
        self.start = start
        self.window = window
        self.http_status: str | None = None
        self.data: bytes = b""
        self.block: bytes | None = None
        """Header block fragments waiting for CONTINUATION."""
        self.end_headers = False
        """Whether the END_STREAM flag came with the pending header block."""
        self.headers: dict[str, str] | None = None
        self.body: memoryview | None = None
        """Request bytes not yet sent (flow control)."""


class _Conn(asyncio.Protocol):
    def __init__(self, eng: H2Engine) -> None:
        self.eng = eng
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.out: list[bytes] = []
        self.in_read = False
        self.streams: dict[int, _Stream] = {}
        self.next_sid = 1
        self.decoder = HeaderDecoder()
        self.send_window = 65535
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.peer_max_streams = 1 << 31
        self.recv_unacked = 0
        self.blocked: deque[_Stream] = deque()
        self.waiting: deque[tuple[int, int, int]] = deque()
        """(k, intended, start) of calls waiting for a stream (MAX_CONCURRENT_STREAMS)."""
        self.settings_seen: asyncio.Future[None] | None = None
        self.goaway = False
        self.slots = 0
        """Concurrency slots bound to this connection."""
        self.parked = 0
        """Slots waiting for this connection to be re-opened."""
        self.reviving = False
        self.lost_reason = ""

    # ------------------------------------------------------------ connection events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.buf = b""
        self.streams = {}
        self.next_sid = 1
        self.decoder = HeaderDecoder()
        self.send_window = 65535
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.peer_max_streams = 1 << 31
        self.recv_unacked = 0
        self.blocked.clear()
        self.goaway = False
        settings = struct.pack(">HIHIHI", 2, 0, 4, _WINDOW, 6, 1 << 24)  # no push, windows
        transport.write(PREFACE + frame(_SETTINGS, 0, 0, settings)
                        + frame(_WINUPD, 0, 0, struct.pack(">I", _WINDOW - 65535)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.settings_seen is not None and not self.settings_seen.done():
            self.settings_seen.set_exception(
                ConnectionError(str(exc) if exc else "the server closed the connection"))
        reason = self.lost_reason or (f"Connection lost: {exc}" if exc else "Socket closed")
        self.lost_reason = ""
        streams, self.streams = self.streams, {}
        self.blocked.clear()
        eng = self.eng
        now = perf_counter_ns()
        for st in streams.values():
            eng.finish(st, now, UNAVAILABLE, reason, reuse=False)
        waiting = list(self.waiting)
        self.waiting.clear()
        for _, intended, start in waiting:
            eng.finish(_Stream(self, 0, intended, start, 0), now, UNAVAILABLE, reason,
                       reuse=False)
        eng.lost(self)

    def eof_received(self) -> bool:
        return False

    def flush(self) -> None:
        if self.out:
            if self.transport is not None:
                self.transport.write(b"".join(self.out))
            self.out.clear()

    # ------------------------------------------------------------ sending

    def usable(self) -> bool:
        return self.transport is not None and not self.goaway and self.next_sid < _MAX_SID

    def send_call(self, k: int, intended: int, start: int) -> None:
        """Start call number `k` on this connection (a slot is free here)."""
        if len(self.streams) >= self.peer_max_streams:
            self.waiting.append((k, intended, start))
            return
        eng = self.eng
        sid = self.next_sid
        self.next_sid = sid + 2
        st = _Stream(self, sid, intended, start, self.peer_initial_window)
        self.streams[sid] = st
        sid4 = sid.to_bytes(4, "big")
        i = k % eng.n_bodies
        if eng.oversize and i in eng.oversize:
            self.streams.pop(sid)
            size = len(eng.bodies[i]) - 5
            eng.loop.call_soon(eng.finish, st, perf_counter_ns(), RESOURCE_EXHAUSTED,
                               f"CLIENT: Sent message larger than max ({size} vs. {eng.max_send})")
            return
        body = eng.bodies[i]
        out = self.out
        for head, fragment in eng.header_parts[k % eng.n_blocks]:
            out.append(head)
            out.append(sid4)
            out.append(fragment)
        n = len(body)
        if n <= self.send_window and n <= st.window and n <= self.peer_max_frame:
            self.send_window -= n
            st.window -= n
            out.append(eng.data_frames[i])
            out.append(sid4)
            out.append(body)
        else:
            st.body = memoryview(body)
            self.blocked.append(st)
            self._send_blocked()
        if not self.in_read:
            self.flush()

    def _send_blocked(self) -> None:
        blocked = self.blocked
        while blocked:
            st = blocked[0]
            if st.body is None or st.sid not in self.streams:
                blocked.popleft()
                continue
            body = st.body
            while body:
                n = min(len(body), self.send_window, st.window, self.peer_max_frame)
                if n <= 0:
                    st.body = body
                    return
                last = n == len(body)
                self.out.append(frame(_DATA, _END_STREAM if last else 0, st.sid, bytes(body[:n])))
                self.send_window -= n
                st.window -= n
                body = body[n:]
            st.body = None
            blocked.popleft()

    def reset(self, st: _Stream, code: int = 8) -> None:
        """RST_STREAM (CANCEL by default) and forget the stream."""
        self.streams.pop(st.sid, None)
        self.out.append(frame(_RST, 0, st.sid, code.to_bytes(4, "big")))
        if not self.in_read:
            self.flush()

    # ------------------------------------------------------------ receiving

    def data_received(self, data: bytes) -> None:
        try:
            self._receive(data)
        except Exception as exc:  # a frame this client cannot make sense of
            self.in_read = False
            self.protocol_error(f"{type(exc).__name__}: {exc}")

    def _receive(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        self.in_read = True
        try:
            pos = 0
            n = len(data)
            unpack = _head.unpack_from
            streams = self.streams
            while n - pos >= 9:
                hi, lo, ftype, flags, sid = unpack(data, pos)
                end = pos + 9 + (hi << 16 | lo)
                if end > n:
                    break
                sid &= 0x7FFFFFFF
                if ftype == _DATA:
                    self.recv_unacked += end - pos - 9
                    st = streams.get(sid)
                    if st is not None:
                        payload = data[pos + 9:end]
                        if flags & _PADDED and payload:
                            payload = payload[1:len(payload) - payload[0]]
                        st.data = st.data + payload if st.data else payload
                        if flags & _END_STREAM:
                            self.eng.complete(st, None)
                        elif len(st.data) >= 5:
                            self._check_size(st)
                elif ftype == _HEADERS:
                    payload = data[pos + 9:end]
                    if flags & _PADDED:
                        payload = payload[1:len(payload) - payload[0]]
                    if flags & _PRIO:
                        payload = payload[5:]
                    self._headers(sid, payload, flags)
                elif ftype == _CONT:
                    self._continuation(sid, data[pos + 9:end], flags)
                else:
                    self._control(ftype, flags, sid, data[pos + 9:end])
                pos = end
            if pos < n:
                self.buf = data[pos:]
            if self.recv_unacked > 1 << 24:
                self.out.append(frame(_WINUPD, 0, 0, self.recv_unacked.to_bytes(4, "big")))
                self.recv_unacked = 0
        finally:
            self.in_read = False
        self.flush()

    def _check_size(self, st: _Stream) -> None:
        size = int.from_bytes(st.data[1:5], "big")
        limit = self.eng.max_recv
        if size > limit:
            self.reset(st)
            self.eng.finish(st, perf_counter_ns(), RESOURCE_EXHAUSTED,
                            f"CLIENT: Received message larger than max ({size} vs. {limit})")

    def _headers(self, sid: int, block: bytes, flags: int) -> None:
        st = self.streams.get(sid)
        if not flags & _END_HEADERS:
            if st is None:  # decode it anyway once complete: the HPACK state depends on it
                st = _Stream(self, sid, 0, 0, 0)
                self.streams[sid] = st
                st.conn = None  # type: ignore[assignment]
            st.block = block
            st.end_headers = bool(flags & _END_STREAM)
            return
        headers = self.decoder.decode(block)
        if st is not None:
            self._got_headers(st, headers, bool(flags & _END_STREAM))

    def _continuation(self, sid: int, fragment: bytes, flags: int) -> None:
        st = self.streams.get(sid)
        if st is None or st.block is None:
            self.protocol_error("CONTINUATION without HEADERS")
            return
        st.block += fragment
        if flags & _END_HEADERS:
            block, st.block = st.block, None
            headers = self.decoder.decode(block)
            if st.conn is None:  # a stream we had already given up
                self.streams.pop(sid, None)
                return
            self._got_headers(st, headers, st.end_headers)

    def _got_headers(self, st: _Stream, headers: dict[str, str], end_stream: bool) -> None:
        if st.http_status is None:
            st.http_status = headers.get(":status", "")
            if not end_stream:
                return
        self.eng.complete(st, headers)

    def _control(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        if ftype == _SETTINGS:
            if not flags & _ACK:
                self._settings(payload)
        elif ftype == _WINUPD:
            inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if sid == 0:
                self.send_window += inc
            else:
                target = self.streams.get(sid)
                if target is not None:
                    target.window += inc
            self._send_blocked()
        elif ftype == _PING:
            if not flags & _ACK:
                self.out.append(frame(_PING, _ACK, 0, payload))
        elif ftype == _RST:
            st = self.streams.pop(sid, None)
            if st is not None:
                code = int.from_bytes(payload[:4], "big")
                self.eng.finish(st, perf_counter_ns(), _RST_CODES.get(code, INTERNAL),
                                f"Received RST_STREAM with error code {code}")
        elif ftype == _GOAWAY:
            self._goaway(payload)
        elif ftype == _PUSH:
            self.protocol_error("PUSH_PROMISE although push is disabled")

    def _settings(self, payload: bytes) -> None:
        for i in range(0, len(payload) - 5, 6):
            key, value = struct.unpack_from(">HI", payload, i)
            if key == 3:
                self.peer_max_streams = value
            elif key == 4:
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for st in self.streams.values():
                    st.window += delta
            elif key == 5:
                self.peer_max_frame = value
        self.out.append(frame(_SETTINGS, _ACK, 0))
        if self.settings_seen is not None and not self.settings_seen.done():
            self.settings_seen.set_result(None)
        self._send_blocked()
        self._dispatch_waiting()

    def _goaway(self, payload: bytes) -> None:
        last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
        code = int.from_bytes(payload[4:8], "big")
        debug = payload[8:].decode("utf-8", "replace")
        self.goaway = True
        self.lost_reason = f"GOAWAY received (error code {code}){': ' + debug if debug else ''}"
        now = perf_counter_ns()
        for st in [s for s in self.streams.values() if s.sid > last]:
            del self.streams[st.sid]
            if st.conn is not None:
                self.eng.finish(st, now, UNAVAILABLE, self.lost_reason, reuse=False)
                self.eng.park(self)
        self.maybe_retire()

    def protocol_error(self, what: str) -> None:
        self.lost_reason = f"HTTP/2 protocol error: {what}"
        self.out.append(frame(_GOAWAY, 0, 0, struct.pack(">II", 0, 1)))
        self.flush()
        if self.transport is not None:
            self.transport.abort()

    def maybe_retire(self) -> None:
        """Close a connection that takes no new streams once its last stream ended."""
        if (self.goaway or self.next_sid >= _MAX_SID) and not self.streams \
                and self.transport is not None:
            self.flush()
            self.transport.close()

    def _dispatch_waiting(self) -> None:
        while self.waiting and len(self.streams) < self.peer_max_streams and self.usable():
            k, intended, start = self.waiting.popleft()
            self.send_call(k, intended, start)


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
        self.data_frames = [_head.pack(len(b) >> 16, len(b) & 0xFFFF, _DATA, _END_STREAM, 0)[:5]
                            for b in self.bodies]
        blocks = [header_block(path, authority, timeout_s, md) for md in metadata]
        # HEADERS (+ CONTINUATION past 16 KiB, the frame size every peer accepts), as
        # (frame head without stream id, fragment) pairs
        self.header_parts = [_header_parts(b) for b in blocks]
        self.n_blocks = len(blocks)
        self.oversize = frozenset(i for i, p in enumerate(payloads)
                                  if self.max_send is not None and len(p) > self.max_send)
        self.conns = [_Conn(self) for _ in range(connections)]
        for i in range(concurrency):
            self.conns[i % connections].slots += 1
        self.idle: list[_Conn] = []
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

    async def connect(self, conn: _Conn, limit_s: float) -> BaseException | None:
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

    def lost(self, conn: _Conn) -> None:
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

    def park(self, conn: _Conn) -> None:
        conn.maybe_retire()

    async def _revive(self, conn: _Conn) -> None:
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

    def next_on(self, conn: _Conn, now: int) -> None:
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

    def complete(self, st: _Stream, trailers: dict[str, str] | None) -> None:
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
                status = _HTTP_CODES.get(int(http) if http.isdigit() else 0, UNKNOWN)
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

    def finish(self, st: _Stream, now: int, status: int, message: str | None,
               reuse: bool = True) -> None:
        """Record `st` and free its slot (send the next call on it when `reuse`)."""
        conn = st.conn
        if conn is None:
            return
        st.conn = None  # type: ignore[assignment]
        self.in_flight -= 1
        if reuse:
            if conn.waiting:
                conn._dispatch_waiting()
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
                    self.finish(_Stream(conn, 0, intended, start, 0), now, DEADLINE_EXCEEDED,
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
                        self.finish(_Stream(conn, 0, intended, start, 0), now, CANCELLED,
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
                    conn.transport.write(frame(_GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
                conn.transport.close()
