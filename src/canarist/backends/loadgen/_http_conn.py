"""One keep-alive connection of the HTTP/1.1 load engine (`_http_engine`), as a bare asyncio
Protocol.

Each connection carries one request at a time (no pipelining). Responses are parsed by
`httptools.HttpResponseParser` (llhttp), which handles Content-Length and chunked bodies;
only `on_message_complete` is implemented, so the parser never calls back for headers or
body chunks. The request is pre-encoded once and written as the same `bytes` every time.

When a response completes, a closed-loop connection (`ClosedConn`) sends its next request
before recording the response; an open-loop one (`OpenConn`) sends the oldest due request
if there is one, else it goes idle. A reset, close or parse error with a request in flight
records that request as `CONNECTION_RESET`, `CONNECTION_CLOSED` or `PROTOCOL_ERROR`; the
engine then re-opens the connection.

Messages: the first response with each error status has its body kept as that status's
message (a short excerpt: what a 404 or a 500 says is usually the cause). The parser does
not copy bodies, so the connection keeps the first `HEAD_BYTES` of each response (`head`: a
reference to the first chunk, which usually is the whole response; later chunks are copied
only while the head is shorter) and the engine parses them again, once per new error status
only.
"""

from __future__ import annotations

import asyncio
from time import perf_counter_ns
from typing import TYPE_CHECKING

import httptools

from canarist.backends.loadgen._http_failures import lost_connection_kind, response_excerpt
from canarist.backends.loadgen.recorder import LATE_SEND_THRESHOLD_NS, PROTOCOL_ERROR

if TYPE_CHECKING:
    from canarist.backends.loadgen._http_engine import Engine

HEAD_BYTES = 4096
"""How much of each response is kept for an error message: headers and a body excerpt."""


class Conn(asyncio.Protocol):
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


class ClosedConn(Conn):
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


class OpenConn(Conn):
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
