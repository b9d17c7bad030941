"""One HTTP/2 connection of canarist's own gRPC client (`_grpc_h2`), as an asyncio Protocol.

* Sending: a call writes the engine's pre-encoded HEADERS fragments and DATA frame with its
  stream id.
* Receiving: frames are parsed in `data_received`; header blocks are decoded with
  `_h2_wire.HeaderDecoder`; a stream's response headers, message and trailers go to the
  engine, which makes them the call's status. A response message whose 5-byte prefix
  announces more than `max_recv_message_size` is reset as soon as the prefix arrives.
* Flow control: the client announces 2^31-1 bytes of stream window and grows the connection
  window as data arrives; sends respect the server's windows and frame size (a request that
  does not fit waits for WINDOW_UPDATE). MAX_CONCURRENT_STREAMS is honoured by queueing.
  PING is answered, SETTINGS acknowledged, GOAWAY fails the streams the server will not
  process (UNAVAILABLE) and the connection is replaced once its last stream ends.
* A lost connection fails its calls with UNAVAILABLE; the engine re-opens it.

Every frame produced while handling one read is written with one `write`.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from time import perf_counter_ns
from typing import TYPE_CHECKING, cast

from canarist.backends.loadgen._h2_wire import (
    ACK,
    CONT,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEAD,
    HEADERS,
    INTERNAL,
    MAX_SID,
    PADDED,
    PING,
    PREFACE,
    PRIO,
    PUSH,
    RESOURCE_EXHAUSTED,
    RST,
    RST_CODES,
    SETTINGS,
    UNAVAILABLE,
    WINUPD,
    HeaderDecoder,
    frame,
)

if TYPE_CHECKING:
    from canarist.backends.loadgen._grpc_h2 import H2Engine

_WINDOW = 2**31 - 1  # the stream window the client announces, and its connection window


class Stream:
    __slots__ = ("block", "body", "conn", "data", "end_headers", "headers", "http_status",
                 "intended", "sid", "start", "window")

    def __init__(self, conn: Conn, sid: int, intended: int, start: int, window: int) -> None:
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


class Conn(asyncio.Protocol):
    def __init__(self, eng: H2Engine) -> None:
        self.eng = eng
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.out: list[bytes] = []
        self.in_read = False
        self.blocked: deque[Stream] = deque()
        self._fresh_connection_state()
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

    def _fresh_connection_state(self) -> None:
        """What a new HTTP/2 connection starts with (RFC 9113 defaults until SETTINGS)."""
        self.streams: dict[int, Stream] = {}
        self.next_sid = 1
        self.decoder = HeaderDecoder()
        self.send_window = 65535
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.peer_max_streams = 1 << 31
        self.recv_unacked = 0
        self.blocked.clear()

    # ------------------------------------------------------------ connection events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.buf = b""
        self._fresh_connection_state()
        self.goaway = False
        settings = struct.pack(">HIHIHI", 2, 0, 4, _WINDOW, 6, 1 << 24)  # no push, windows
        transport.write(PREFACE + frame(SETTINGS, 0, 0, settings)
                        + frame(WINUPD, 0, 0, struct.pack(">I", _WINDOW - 65535)))

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
            eng.finish(Stream(self, 0, intended, start, 0), now, UNAVAILABLE, reason,
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
        return self.transport is not None and not self.goaway and self.next_sid < MAX_SID

    def send_call(self, k: int, intended: int, start: int) -> None:
        """Start call number `k` on this connection (a slot is free here)."""
        if len(self.streams) >= self.peer_max_streams:
            self.waiting.append((k, intended, start))
            return
        eng = self.eng
        sid = self.next_sid
        self.next_sid = sid + 2
        st = Stream(self, sid, intended, start, self.peer_initial_window)
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
                self.out.append(frame(DATA, END_STREAM if last else 0, st.sid, bytes(body[:n])))
                self.send_window -= n
                st.window -= n
                body = body[n:]
            st.body = None
            blocked.popleft()

    def reset(self, st: Stream, code: int = 8) -> None:
        """RST_STREAM (CANCEL by default) and forget the stream."""
        self.streams.pop(st.sid, None)
        self.out.append(frame(RST, 0, st.sid, code.to_bytes(4, "big")))
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
            unpack = HEAD.unpack_from
            streams = self.streams
            while n - pos >= 9:
                hi, lo, ftype, flags, sid = unpack(data, pos)
                end = pos + 9 + (hi << 16 | lo)
                if end > n:
                    break
                sid &= 0x7FFFFFFF
                if ftype == DATA:
                    self.recv_unacked += end - pos - 9
                    st = streams.get(sid)
                    if st is not None:
                        payload = data[pos + 9:end]
                        if flags & PADDED and payload:
                            payload = payload[1:len(payload) - payload[0]]
                        st.data = st.data + payload if st.data else payload
                        if flags & END_STREAM:
                            self.eng.complete(st, None)
                        elif len(st.data) >= 5:
                            self._check_size(st)
                elif ftype == HEADERS:
                    payload = data[pos + 9:end]
                    if flags & PADDED:
                        payload = payload[1:len(payload) - payload[0]]
                    if flags & PRIO:
                        payload = payload[5:]
                    self._headers(sid, payload, flags)
                elif ftype == CONT:
                    self._continuation(sid, data[pos + 9:end], flags)
                else:
                    self._control(ftype, flags, sid, data[pos + 9:end])
                pos = end
            if pos < n:
                self.buf = data[pos:]
            if self.recv_unacked > 1 << 24:
                self.out.append(frame(WINUPD, 0, 0, self.recv_unacked.to_bytes(4, "big")))
                self.recv_unacked = 0
        finally:
            self.in_read = False
        self.flush()

    def _check_size(self, st: Stream) -> None:
        size = int.from_bytes(st.data[1:5], "big")
        limit = self.eng.max_recv
        if size > limit:
            self.reset(st)
            self.eng.finish(st, perf_counter_ns(), RESOURCE_EXHAUSTED,
                            f"CLIENT: Received message larger than max ({size} vs. {limit})")

    def _headers(self, sid: int, block: bytes, flags: int) -> None:
        st = self.streams.get(sid)
        if not flags & END_HEADERS:
            if st is None:  # decode it anyway once complete: the HPACK state depends on it
                st = Stream(self, sid, 0, 0, 0)
                self.streams[sid] = st
                st.conn = None  # type: ignore[assignment]
            st.block = block
            st.end_headers = bool(flags & END_STREAM)
            return
        headers = self.decoder.decode(block)
        if st is not None:
            self._got_headers(st, headers, bool(flags & END_STREAM))

    def _continuation(self, sid: int, fragment: bytes, flags: int) -> None:
        st = self.streams.get(sid)
        if st is None or st.block is None:
            self.protocol_error("CONTINUATION without HEADERS")
            return
        st.block += fragment
        if flags & END_HEADERS:
            block, st.block = st.block, None
            headers = self.decoder.decode(block)
            if st.conn is None:  # a stream we had already given up
                self.streams.pop(sid, None)
                return
            self._got_headers(st, headers, st.end_headers)

    def _got_headers(self, st: Stream, headers: dict[str, str], end_stream: bool) -> None:
        if st.http_status is None:
            st.http_status = headers.get(":status", "")
            if not end_stream:
                return
        self.eng.complete(st, headers)

    def _control(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        if ftype == SETTINGS:
            if not flags & ACK:
                self._settings(payload)
        elif ftype == WINUPD:
            inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if sid == 0:
                self.send_window += inc
            else:
                target = self.streams.get(sid)
                if target is not None:
                    target.window += inc
            self._send_blocked()
        elif ftype == PING:
            if not flags & ACK:
                self.out.append(frame(PING, ACK, 0, payload))
        elif ftype == RST:
            st = self.streams.pop(sid, None)
            if st is not None:
                code = int.from_bytes(payload[:4], "big")
                self.eng.finish(st, perf_counter_ns(), RST_CODES.get(code, INTERNAL),
                                f"Received RST_STREAM with error code {code}")
        elif ftype == GOAWAY:
            self._goaway(payload)
        elif ftype == PUSH:
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
        self.out.append(frame(SETTINGS, ACK, 0))
        if self.settings_seen is not None and not self.settings_seen.done():
            self.settings_seen.set_result(None)
        self._send_blocked()
        self.dispatch_waiting()

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
        self.out.append(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 1)))
        self.flush()
        if self.transport is not None:
            self.transport.abort()

    def maybe_retire(self) -> None:
        """Close a connection that takes no new streams once its last stream ended."""
        if (self.goaway or self.next_sid >= MAX_SID) and not self.streams \
                and self.transport is not None:
            self.flush()
            self.transport.close()

    def dispatch_waiting(self) -> None:
        while self.waiting and len(self.streams) < self.peer_max_streams and self.usable():
            k, intended, start = self.waiting.popleft()
            self.send_call(k, intended, start)
