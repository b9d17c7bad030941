"""Prometheus remote write 1.0 for tests: a hand-encoded protobuf WriteRequest, snappy-compressed.

    push(base_url, [Series({"__name__": "up", "job": "x"}, [(1.0, ts_ms), ...]), ...])

Only the fields remote write 1.0 needs are encoded:

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }   // milliseconds

Labels are sent sorted by name, as the protocol requires.
"""

from __future__ import annotations

import struct
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import cramjam

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    samples: Sequence[tuple[float, int]]  # (value, timestamp in ms)


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 two's complement, as protobuf encodes negative int64
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _label(name: str, value: str) -> bytes:
    return _field(1, _field(1, name.encode()) + _field(2, value.encode()))


def _sample(value: float, timestamp_ms: int) -> bytes:
    body = _varint(1 << 3 | 1) + struct.pack("<d", value) + _varint(2 << 3 | 0) + _varint(timestamp_ms)
    return _field(2, body)


def encode_write_request(series: Iterable[Series]) -> bytes:
    """The uncompressed protobuf bytes of a WriteRequest."""
    out = bytearray()
    for one in series:
        body = b"".join(_label(k, v) for k, v in sorted(one.labels.items()))
        body += b"".join(_sample(v, t) for v, t in one.samples)
        out += _field(1, body)
    return bytes(out)


def push(base_url: str, series: Iterable[Series], *, timeout_s: float = 10.0) -> int:
    """POST the series to `<base_url>/api/v1/write`; returns the status (204 when accepted)."""
    body = bytes(cramjam.snappy.compress_raw(encode_write_request(series)))
    request = urllib.request.Request(
        base_url.rstrip("/") + "/api/v1/write", data=body, method="POST", headers=HEADERS
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        status: int = response.status
    return status
