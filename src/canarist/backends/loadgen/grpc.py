"""gRPC load generator: unary calls over grpc.aio, ghz's options and defaults.

`run_grpc_load(spec)` sends `spec.total` calls (or calls for `spec.duration_s`) from
`spec.concurrency` workers over `spec.connections` HTTP/2 connections and returns a
`LoadResult` built by the shared `Recorder`. Statuses are recorded as
`GRPC_STATUS_BASE + code` (OK is 1000); every code but OK is an error, deadline exceeded
included. The first failed call of each code keeps its status details as that code's message
(e.g. NOT_FOUND: "Model with name x does not exist."). Latencies describe successful calls
only.

* Closed loop (`rps == 0`): each worker sends its next call as soon as the previous one
  ends. Latency and service time are the same.
* Open loop (`rps > 0`): call `k` is due at `t0 + k / rps`. A worker takes the next due
  call, waits for its time and sends it; latency is measured from the due time, so time
  spent waiting for a free worker counts (coordinated omission corrected), while the
  service time is measured from the actual send. Calls due before the end of a timed run
  that no worker could send are reported as `dropped`.
* Timed runs (`duration_s`) stop sending at the end; calls still in flight are cancelled
  and counted as CANCELLED errors (`duration_stop="close"`, ghz's default), cancelled
  without being counted (`"ignore"`), or awaited (`"wait"`).

Descriptors come from `proto` (compiled at run time), the shipped Open Inference Protocol
proto for `inference.GRPCInferenceService` calls, or server reflection.
"""

from __future__ import annotations

import asyncio
import math
import os
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import grpc

from canarist.backends.files import read_bytes_bounded
from canarist.backends.loadgen import grpc_schema
from canarist.backends.loadgen.grpc_schema import Metadata, MethodSchema
from canarist.backends.loadgen.recorder import (
    GRPC_ERROR_RANGES,
    GRPC_STATUS_BASE,
    LATE_SEND_THRESHOLD_NS,
    LoadResult,
    ProgressSnapshot,
    Recorder,
)
from canarist.core.errors import InputError, UnavailableError

__all__ = ["GrpcLoadSpec", "ProgressCallback", "run_grpc_load"]

ProgressCallback = Callable[[ProgressSnapshot], None]

_OK = GRPC_STATUS_BASE + grpc.StatusCode.OK.value[0]
_CANCELLED = GRPC_STATUS_BASE + grpc.StatusCode.CANCELLED.value[0]
_UNKNOWN = GRPC_STATUS_BASE + grpc.StatusCode.UNKNOWN.value[0]

DurationStop = Literal["close", "wait", "ignore"]


@dataclass(frozen=True, kw_only=True)
class GrpcLoadSpec:
    """One gRPC load test. Names follow ghz's options (`import-paths` -> `import_paths`).

    Durations are in seconds. `timeout_s == 0` means no per-call deadline;
    `connect_timeout_s == 0` means the default 10 s (as Iter8 forces).
    """

    host: str
    """`host:port` (any gRPC target, e.g. `dns:///name:port`, is accepted)."""
    call: str
    """`package.Service.Method` or `package.Service/Method`."""
    proto: str | None = None
    """A .proto file. None: the shipped proto for `inference.GRPCInferenceService` calls,
    otherwise server reflection."""
    import_paths: tuple[str, ...] = ()
    data: Any = None
    """A JSON object, or a list of objects sent in turn."""
    data_file: str | None = None
    binary_file: str | None = None
    """One request message, already serialized."""
    metadata: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    """Call metadata: a map of strings, or a list of maps used in turn."""
    metadata_file: str | None = None
    reflect_metadata: Mapping[str, Any] | None = None
    """Metadata for the reflection calls; `metadata` when unset."""
    total: int = 200
    duration_s: float | None = None
    """When set, `total` is ignored."""
    duration_stop: DurationStop = "close"
    concurrency: int = 50
    connections: int = 1
    rps: float = 0.0
    skip_first: int = 0
    """Leave the first N completed calls out of the result."""
    timeout_s: float = 20.0
    connect_timeout_s: float = 10.0
    insecure: bool = True
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_skip_verify: bool = False
    """Trust whatever certificate the server presents (checked against `cname` or host)."""
    cname: str | None = None
    """Server name to check the certificate against (TLS only)."""
    authority: str | None = None
    """The `:authority` header, e.g. a virtual host behind a gateway."""
    max_recv_message_size: int | None = None
    max_send_message_size: int | None = None
    progress_interval_s: float = 1.0
    channel_options: tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise InputError("host: required, as host:port")
        if not isinstance(self.call, str) or not self.call.strip():
            raise InputError("call: required, as package.Service.Method")
        grpc_schema.parse_call(self.call)
        _positive_int("total", self.total)
        _positive_int("concurrency", self.concurrency)
        _positive_int("connections", self.connections)
        if self.connections > self.concurrency:
            raise InputError(f"connections: {self.connections} is more than concurrency {self.concurrency}")
        if self.skip_first < 0:
            raise InputError(f"skip-first: must be >= 0, got {self.skip_first}")
        _non_negative("rps", self.rps)
        _non_negative("timeout", self.timeout_s)
        _non_negative("connect-timeout", self.connect_timeout_s)
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise InputError(f"duration: must be > 0, got {self.duration_s}")
        if self.duration_stop not in ("close", "wait", "ignore"):
            raise InputError(f"duration-stop: expected close, wait or ignore, got {self.duration_stop!r}")
        given = [
            name
            for name, v in (
                ("data", self.data),
                ("data-file", self.data_file),
                ("binary-file", self.binary_file),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise InputError(f"{given[1]}: cannot be combined with {given[0]}")
        if self.metadata is not None and self.metadata_file is not None:
            raise InputError("metadata-file: cannot be combined with metadata")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise InputError("cert: a client certificate needs both cert and key")
        if self.progress_interval_s <= 0:
            raise InputError("progress interval: must be > 0")

    @property
    def effective_connect_timeout_s(self) -> float:
        return self.connect_timeout_s or 10.0


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name}: must be an integer >= 1, got {value!r}")


def _non_negative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InputError(f"{name}: must be a number >= 0, got {value!r}")


# ---------------------------------------------------------------- set-up


def _load_schema_from_files(spec: GrpcLoadSpec) -> MethodSchema | None:
    """The schema from `proto` or the shipped proto; None when reflection is needed."""
    proto: str | os.PathLike[str] | None = spec.proto
    if proto is None:
        proto = grpc_schema.default_proto_for(spec.call)
    if proto is None:
        return None
    return grpc_schema.load_method_from_proto(proto, spec.call, spec.import_paths)


def _request_payloads(spec: GrpcLoadSpec, schema: MethodSchema) -> list[bytes]:
    if spec.binary_file is not None:
        try:
            raw = read_bytes_bounded(Path(spec.binary_file).expanduser(), name="binary-file")
        except OSError as exc:
            raise InputError(f"binary-file: cannot read {spec.binary_file}: {exc.strerror}") from None
        try:
            schema.request_class.FromString(raw)
        except Exception:
            raise InputError(
                f"binary-file: {spec.binary_file} is not a serialized "
                f"{schema.request_class.DESCRIPTOR.full_name}"
            ) from None
        return [raw]
    if spec.data_file is not None:
        data = grpc_schema.load_data_file(spec.data_file)
        messages = grpc_schema.build_requests(schema, data, field="data-file")
    else:
        messages = grpc_schema.build_requests(schema, spec.data)
    return [m.SerializeToString() for m in messages]


def _call_metadata(spec: GrpcLoadSpec) -> list[Metadata]:
    if spec.metadata_file is not None:
        doc = grpc_schema.load_data_file(spec.metadata_file, field="metadata-file")
        return grpc_schema.build_metadata(doc, field="metadata-file")
    return grpc_schema.build_metadata(spec.metadata)


def _split_host_port(host: str) -> tuple[str, int]:
    target = host.split("///", 1)[-1]
    name, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return target, 443
    return name.strip("[]"), int(port)


async def _fetch_server_certificate(spec: GrpcLoadSpec) -> bytes:
    name, port = _split_host_port(spec.host)
    timeout = spec.effective_connect_timeout_s

    def fetch() -> bytes:
        try:
            pem = ssl.get_server_certificate((name, port), timeout=timeout)
        except OSError as exc:
            raise UnavailableError(f"host: cannot fetch the TLS certificate of {spec.host}: {exc}") from None
        return pem.encode()

    return await asyncio.to_thread(fetch)


def _read_file(field_name: str, path: str) -> bytes:
    try:
        return read_bytes_bounded(Path(path).expanduser(), name=field_name)
    except OSError as exc:
        raise InputError(f"{field_name}: cannot read {path}: {exc.strerror}") from None


async def _credentials(spec: GrpcLoadSpec) -> grpc.ChannelCredentials | None:
    if spec.insecure:
        return None
    if spec.tls_skip_verify:
        roots: bytes | None = await _fetch_server_certificate(spec)
    elif spec.tls_ca_file is not None:
        roots = _read_file("cacert", spec.tls_ca_file)
    else:
        roots = None
    key = _read_file("key", spec.tls_key_file) if spec.tls_key_file else None
    chain = _read_file("cert", spec.tls_cert_file) if spec.tls_cert_file else None
    creds: grpc.ChannelCredentials = grpc.ssl_channel_credentials(
        root_certificates=roots, private_key=key, certificate_chain=chain
    )
    return creds


def _channel_options(spec: GrpcLoadSpec) -> list[tuple[str, Any]]:
    opts: list[tuple[str, Any]] = [
        # One TCP connection per channel, even to the same target.
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.enable_retries", 0),
    ]
    if spec.authority:
        opts.append(("grpc.default_authority", spec.authority))
    if spec.cname and not spec.insecure:
        opts.append(("grpc.ssl_target_name_override", spec.cname))
    if spec.max_recv_message_size is not None:
        opts.append(("grpc.max_receive_message_length", spec.max_recv_message_size))
    if spec.max_send_message_size is not None:
        opts.append(("grpc.max_send_message_length", spec.max_send_message_size))
    opts.extend(spec.channel_options)
    return opts


async def _open_channels(spec: GrpcLoadSpec) -> list[grpc.aio.Channel]:
    creds = await _credentials(spec)
    options = _channel_options(spec)
    channels: list[grpc.aio.Channel] = []
    for _ in range(spec.connections):
        if creds is None:
            channels.append(grpc.aio.insecure_channel(spec.host, options=options))
        else:
            channels.append(grpc.aio.secure_channel(spec.host, creds, options=options))
    timeout = spec.effective_connect_timeout_s
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(ch.channel_ready() for ch in channels))
    except TimeoutError:
        await _close_channels(channels)
        raise UnavailableError(
            f"host: cannot connect to {spec.host} within {timeout:g}s (connect-timeout)"
        ) from None
    except BaseException:
        await _close_channels(channels)
        raise
    return channels


async def _close_channels(channels: Sequence[grpc.aio.Channel]) -> None:
    await asyncio.gather(*(ch.close(grace=None) for ch in channels), return_exceptions=True)


# ---------------------------------------------------------------- the run


class _Run:
    """Shared state of the workers of one run (single event loop, no locks needed)."""

    def __init__(
        self,
        spec: GrpcLoadSpec,
        schema: MethodSchema,
        channels: Sequence[grpc.aio.Channel],
        payloads: list[bytes],
        metadata: list[Metadata],
    ) -> None:
        self.spec = spec
        self.recorder = Recorder(GRPC_ERROR_RANGES)
        self.callables = [
            ch.unary_unary(
                schema.path,
                request_serializer=None,
                response_deserializer=schema.response_class.FromString,
            )
            for ch in channels
        ]
        self.payloads = payloads
        self.metadata: list[Metadata | None] = [m or None for m in metadata]
        self.timeout: float | None = spec.timeout_s or None
        self.total: int | None = None if spec.duration_s is not None else spec.total
        self.period_ns: float = 1e9 / spec.rps if spec.rps > 0 else 0.0
        self.t0 = 0
        self.end_ns: int | None = None
        self.next_index = 0
        self.completed = 0
        self.stopping = False

    def record(
        self, intended: int, start: int, end: int, status: int, message: str | None = None
    ) -> None:
        self.completed += 1
        if self.completed > self.spec.skip_first:
            self.recorder.record(intended, start, end, status, message)

    async def worker(self, wid: int) -> None:
        call = self.callables[wid % len(self.callables)]
        payloads, metadata = self.payloads, self.metadata
        n_payloads, n_metadata = len(payloads), len(metadata)
        total, end_ns, period = self.total, self.end_ns, self.period_ns
        timeout = self.timeout
        clock = time.perf_counter_ns
        while not self.stopping:
            k = self.next_index
            if total is not None and k >= total:
                return
            if period:
                intended = self.t0 + int(k * period)
                now = clock()
                if end_ns is not None and (intended >= end_ns or now >= end_ns):
                    return
                self.next_index = k + 1
                if intended > now:
                    await asyncio.sleep((intended - now) / 1e9)
                start = clock()
                if start - intended > LATE_SEND_THRESHOLD_NS:
                    self.recorder.note_late()
            else:
                start = clock()
                if end_ns is not None and start >= end_ns:
                    return
                self.next_index = k + 1
                intended = start
            status = _OK
            message: str | None = None
            try:
                await call(payloads[k % n_payloads], timeout=timeout, metadata=metadata[k % n_metadata])
            except grpc.aio.AioRpcError as exc:
                status = GRPC_STATUS_BASE + exc.code().value[0]
                if status not in self.recorder.messages:
                    message = exc.details() or ""
            except asyncio.CancelledError:
                if self.stopping and self.spec.duration_stop == "close":
                    self.record(intended, start, clock(), _CANCELLED,
                                "call still in flight when the duration ended (duration-stop: close)")
                raise
            except Exception as exc:
                status = _UNKNOWN
                message = f"{type(exc).__name__}: {exc}"
            self.record(intended, start, clock(), status, message)

    async def progress(self, on_progress: ProgressCallback) -> None:
        interval = self.spec.progress_interval_s
        while True:
            await asyncio.sleep(interval)
            elapsed = (time.perf_counter_ns() - self.t0) / 1e9
            on_progress(self.recorder.snapshot(elapsed))

    async def run(self, on_progress: ProgressCallback | None) -> LoadResult:
        spec = self.spec
        self.t0 = time.perf_counter_ns()
        if spec.duration_s is not None:
            self.end_ns = self.t0 + int(spec.duration_s * 1e9)
        tasks = [asyncio.create_task(self.worker(i)) for i in range(spec.concurrency)]
        ticker = asyncio.create_task(self.progress(on_progress)) if on_progress else None
        try:
            if self.end_ns is not None and spec.duration_stop != "wait":
                remaining = max(0.0, (self.end_ns - time.perf_counter_ns()) / 1e9)
                _, pending = await asyncio.wait(tasks, timeout=remaining)
                if pending:
                    self.stopping = True
                    for t in pending:
                        t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        except BaseException:
            self.stopping = True
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r
        finished = time.perf_counter_ns()
        if self.end_ns is not None and self.period_ns:
            due = math.ceil((self.end_ns - self.t0) / self.period_ns)
            if due > self.next_index:
                self.recorder.note_dropped(due - self.next_index)
        result = self.recorder.result((finished - self.t0) / 1e9)
        if on_progress is not None:
            on_progress(self.recorder.snapshot(result.duration_s))
        return result


async def run_grpc_load(spec: GrpcLoadSpec, *, on_progress: ProgressCallback | None = None) -> LoadResult:
    """Run one gRPC load test and return its result.

    Raises `InputError` for a bad call, proto, data or metadata and `UnavailableError`
    when the server cannot be reached (before any load is sent). Failed calls during
    the run are results, not exceptions.
    """
    schema = await asyncio.to_thread(_load_schema_from_files, spec)
    metadata = _call_metadata(spec)
    payloads = _request_payloads(spec, schema) if schema is not None else None
    channels = await _open_channels(spec)
    try:
        if schema is None:
            reflect_md = (
                grpc_schema.build_metadata(spec.reflect_metadata, field="reflect-metadata")[0]
                if spec.reflect_metadata is not None
                else metadata[0]
            )
            schema = await grpc_schema.load_method_by_reflection(
                channels[0],
                spec.call,
                host=spec.host,
                timeout_s=spec.effective_connect_timeout_s,
                metadata=reflect_md,
            )
            payloads = _request_payloads(spec, schema)
        assert payloads is not None
        return await _Run(spec, schema, channels, payloads, metadata).run(on_progress)
    finally:
        await _close_channels(channels)
