"""The wire formats of canarist's own gRPC client (`_grpc_h2`): HTTP/2 frames, the HPACK
header blocks of requests and the decoding of responses', gRPC status codes.

* Requests: the HEADERS block of each metadata map is HPACK-encoded once, statelessly
  (static-table names, literals never added to the table, no Huffman), so its bytes are valid
  in any HPACK state; past 16 KiB (the frame size every peer accepts) it continues in
  CONTINUATION frames. `grpc-timeout` carries the deadline to the server.
* Responses: header blocks are decoded with `hpack`, except that a block already seen is
  answered from a cache while the decoder's dynamic table is unchanged (servers send the same
  indexed bytes for every response).
* Statuses: gRPC's codes as recorded statuses. When a response has no `grpc-status`, the HTTP
  status maps to a code as gRPC's spec says (`HTTP_CODES`); RST_STREAM codes map as grpc-go
  maps them (`RST_CODES`).
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Sequence

import hpack

from canarist.backends.loadgen.recorder import GRPC_STATUS_BASE

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

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_SID = 2**31 - 1

# frame types and flags
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINUPD, CONT = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20

# RST_STREAM error code -> gRPC code (as grpc-go's http2ErrConvTab)
RST_CODES = {0: INTERNAL, 1: INTERNAL, 2: INTERNAL, 3: INTERNAL, 4: INTERNAL, 5: INTERNAL,
             6: INTERNAL, 7: UNAVAILABLE, 8: CANCELLED, 9: INTERNAL, 10: INTERNAL,
             11: RESOURCE_EXHAUSTED, 12: PERMISSION_DENIED, 13: INTERNAL}
# HTTP status -> gRPC code when a response has no grpc-status (gRPC's http-grpc-status-mapping)
HTTP_CODES = {400: INTERNAL, 401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: UNIMPLEMENTED,
              429: UNAVAILABLE, 502: UNAVAILABLE, 503: UNAVAILABLE, 504: UNAVAILABLE}

HEAD = struct.Struct(">BHBBI")  # frame head: 24-bit length (8 + 16 bits), type, flags, stream id


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return HEAD.pack(n >> 16, n & 0xFFFF, ftype, flags, sid) + payload


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


def header_parts(block: bytes) -> list[tuple[bytes, bytes]]:
    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)] or [b""]
    parts = []
    for i, chunk in enumerate(chunks):
        ftype = HEADERS if i == 0 else CONT
        flags = END_HEADERS if i == len(chunks) - 1 else 0
        n = len(chunk)
        parts.append((HEAD.pack(n >> 16, n & 0xFFFF, ftype, flags, 0)[:5], chunk))
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

