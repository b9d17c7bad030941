"""HTTP load generation (the engine behind Iter8's `http` task, which embedded fortio).

    result = await run_http_load(HttpLoadSpec(url="http://127.0.0.1:8080/", duration_s=10,
                                              qps=100, connections=4))

Semantics:

* `num_requests` set: exactly that many requests are sent (errors included) and `duration_s`
  is ignored, as in fortio. Neither set: 100 requests (Iter8's default).
* `qps` set and > 0: open loop at that rate, latency corrected for coordinated omission (see
  `_http_engine`). Otherwise closed loop at maximum speed over `connections`.
* Duration mode: no request is sent after the deadline. Requests still in flight then are
  given their own timeout to complete and are recorded like any other (a timeout is a
  `timeout` error); open-loop requests that were due but never sent count as `dropped`, not as
  requests. The call returns within `duration_s + request_timeout_s + ~1 s`.
* Errors: a status inside any inclusive `error_ranges` pair, plus the negative
  connection-level kinds (refused, reset, timeout, TLS, ...), which always are.
* Duration mode also sends one unrecorded request per connection first (fortio's warmup);
  an error there raises `InitialRequestError` (with the status and what the response said)
  unless `allow_initial_errors`.
* Latencies describe successful responses only; errors are counted by status with the
  first message of each (see `recorder`).
* `method` None means GET, or POST when a body or content type is given (Iter8's rule).
  HEAD is not supported (the response parser cannot know a body is absent).
* https:// uses the system trust store, or `ca_file` when given.
* Responses must be delimited by Content-Length or chunked encoding (any HTTP/1.1 server);
  a body that ends only when the server closes the connection is a `connection-closed`
  error.
* Cancelling the call stops the load at once (threads and worker processes included).

Speed: the engine runs on uvloop. When the caller's loop is not uvloop, it runs on a fresh
uvloop loop in a thread and `on_progress` is delivered back on the caller's loop.

Worker processes (`workers`): separate interpreters (see `_http_workers`), each with its own
loop and its share of connections, of `num_requests` and of the rate (schedules interleave:
worker k sends requests k, k+W, ...); their recorders are merged. `workers=None` picks 1
unless the machine has at least 4 CPUs and the load needs more than one core; see
`auto_workers` for the measurements behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from canarist import __version__
from canarist.backends.loadgen._http_engine import Engine, Plan, Target
from canarist.backends.loadgen._http_failures import InitialRequestError, status_text
from canarist.backends.loadgen.recorder import (
    DEFAULT_PERCENTILES,
    HTTP_ERROR_RANGES,
    LoadResult,
    ProgressSnapshot,
    Recorder,
)
from canarist.core.errors import InputError

DEFAULT_NUM_REQUESTS = 100
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_FORBIDDEN_HEADERS = {"content-length", "transfer-encoding"}

ProgressCallback = Callable[[ProgressSnapshot], None]

__all__ = ["HttpLoadSpec", "InitialRequestError", "auto_workers", "prepare", "run_http_load",
           "split_plan", "status_text"]


@dataclass(frozen=True)
class HttpLoadSpec:
    url: str
    method: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str | None = None
    num_requests: int | None = None
    duration_s: float | None = None
    qps: float | None = None
    """None or <= 0: closed loop at maximum speed."""
    connections: int = 4
    request_timeout_s: float = 3.0
    """fortio's default request timeout."""
    error_ranges: tuple[tuple[int | None, int | None], ...] = HTTP_ERROR_RANGES
    allow_initial_errors: bool = False
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES
    workers: int | None = None
    """Worker processes; None chooses (see `auto_workers`)."""
    ca_file: str | None = None


def auto_workers(spec: HttpLoadSpec, cpu_count: int | None = None) -> int:
    """How many processes to use when `spec.workers` is None.

    Measured on the 2-core reference machine against nginx on the same host (see
    docs/benchmarks.md): one process reaches the server's limit at 16 and 64 connections, and
    two processes only take CPU from the server. A process is worth adding only when there
    is a spare core for it *and* the load exceeds what one process can drive: about
    60k req/s in open loop, or a closed loop over 128+ connections.
    """
    cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    if cpus < 4:
        return 1
    per_process_qps = 60_000.0
    if spec.qps is not None and spec.qps > 0:
        wanted = int(spec.qps // per_process_qps) + 1
    else:
        wanted = spec.connections // 128 + 1
    return max(1, min(wanted, cpus // 2, spec.connections))


def _fail(field_name: str, problem: str) -> InputError:
    return InputError(f"{field_name}: {problem}")


def _check_numbers(spec: HttpLoadSpec) -> None:
    if spec.connections < 1:
        raise _fail("connections", f"must be at least 1, got {spec.connections}")
    if spec.num_requests is not None and spec.num_requests < 1:
        raise _fail("numRequests", f"must be at least 1, got {spec.num_requests}")
    if spec.duration_s is not None and not spec.duration_s > 0:
        raise _fail("duration", f"must be positive, got {spec.duration_s}")
    if not spec.request_timeout_s > 0:
        raise _fail("timeout", f"must be positive, got {spec.request_timeout_s}")
    if spec.workers is not None and spec.workers < 1:
        raise _fail("workers", f"must be at least 1, got {spec.workers}")
    for lower, upper in spec.error_ranges:
        if lower is not None and upper is not None and lower > upper:
            raise _fail("errorRanges", f"lower {lower} is above upper {upper}")


def _encode_request(spec: HttpLoadSpec, host_header: str, target: str) -> bytes:
    method = spec.method or ("POST" if spec.body or spec.content_type else "GET")
    method = method.upper()
    if not _TOKEN.match(method):
        raise _fail("method", f"invalid HTTP method {method!r}")
    if method == "HEAD":
        raise _fail("method", "HEAD is not supported")
    lines = [f"{method} {target} HTTP/1.1"]
    given = {k.lower() for k in spec.headers}
    if "host" not in given:
        lines.append(f"Host: {host_header}")
    if "user-agent" not in given:
        lines.append(f"User-Agent: canarist/{__version__}")
    if "accept" not in given:
        lines.append("Accept: */*")
    if spec.content_type and "content-type" not in given:
        lines.append(f"Content-Type: {spec.content_type}")
    for name, value in spec.headers.items():
        if not _TOKEN.match(name) or name.lower() in _FORBIDDEN_HEADERS:
            raise _fail("headers", f"header name {name!r} is not allowed")
        if any(ch in str(value) for ch in "\r\n\0"):
            raise _fail("headers", f"header {name!r} has a line break in its value")
        lines.append(f"{name}: {value}")
    body = spec.body or b""
    if spec.body is not None or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    try:
        encoded = head.encode("latin-1")
    except UnicodeEncodeError:
        raise _fail("headers", "header values must be Latin-1 text") from None
    return encoded + body


def prepare(spec: HttpLoadSpec) -> tuple[Target, Plan]:
    """Validate the spec; raise InputError naming the field at fault."""
    _check_numbers(spec)
    if spec.content_type is not None and any(ch in spec.content_type for ch in "\r\n\0"):
        raise _fail("contentType", "has a line break")
    url = spec.url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _fail("url", f"invalid URL {url!r} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        shown = f"{scheme!r}" if scheme else "none"
        raise _fail("url", f"unsupported scheme {shown} in {url!r} (expected http or https)")
    host = parts.hostname
    if not host:
        raise _fail("url", f"missing host in {url!r}")
    if port is None:
        port = 443 if scheme == "https" else 80
    host_for_header = f"[{host}]" if ":" in host else host
    if (scheme, port) not in {("http", 80), ("https", 443)}:
        host_for_header = f"{host_for_header}:{port}"
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    request = _encode_request(spec, host_for_header, path)
    label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    target = Target(
        host=host,
        port=port,
        use_ssl=scheme == "https",
        ca_file=spec.ca_file,
        request=request,
        label=label,
    )
    total = spec.num_requests
    if total is None and spec.duration_s is None:
        total = DEFAULT_NUM_REQUESTS
    qps = spec.qps if spec.qps is not None and spec.qps > 0 else None
    plan = Plan(
        connections=spec.connections,
        total=total,
        duration_ns=None if total is not None else int(spec.duration_s * 1e9),  # type: ignore[operator]
        qps=qps,
        phase_ns=0,
        timeout_ns=int(spec.request_timeout_s * 1e9),
        warmup=total is None and not spec.allow_initial_errors,
        error_ranges=tuple(spec.error_ranges),
    )
    return target, plan


def split_plan(plan: Plan, workers: int) -> list[Plan]:
    """One plan per worker process: shares of connections, requests and the rate."""
    plans = []
    for k in range(workers):
        conns = plan.connections // workers + (1 if k < plan.connections % workers else 0)
        total = None
        if plan.total is not None:
            total = plan.total // workers + (1 if k < plan.total % workers else 0)
        plans.append(
            Plan(
                connections=conns,
                total=total,
                duration_ns=plan.duration_ns,
                qps=plan.qps / workers if plan.qps else None,
                phase_ns=int(k * 1e9 / plan.qps) if plan.qps else 0,
                timeout_ns=plan.timeout_ns,
                warmup=plan.warmup,
                error_ranges=plan.error_ranges,
            )
        )
    return [p for p in plans if p.connections > 0 and (p.total is None or p.total > 0)]


async def run_http_load(
    spec: HttpLoadSpec, *, on_progress: ProgressCallback | None = None
) -> LoadResult:
    """Run one HTTP load test; see the module docstring for the semantics."""
    target, plan = prepare(spec)
    workers = spec.workers if spec.workers is not None else auto_workers(spec)
    workers = min(workers, plan.connections, plan.total or workers)
    if workers > 1:
        from canarist.backends.loadgen._http_workers import run_workers

        recorder, elapsed = await run_workers(target, split_plan(plan, workers), on_progress)
    else:
        recorder, elapsed = await _run_local(target, plan, on_progress)
    return recorder.result(elapsed, spec.percentiles)


async def run_engine(
    target: Target,
    plan: Plan,
    on_progress: ProgressCallback | None,
    started: Callable[[Engine], None] | None = None,
) -> tuple[Recorder, float]:
    engine = Engine(target, plan, on_progress)
    if started is not None:
        started(engine)
    try:
        await engine.open()
    except BaseException:
        engine.close()
        await asyncio.sleep(0)
        raise
    return await engine.run()


async def _run_local(
    target: Target, plan: Plan, on_progress: ProgressCallback | None
) -> tuple[Recorder, float]:
    loop = asyncio.get_running_loop()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return await run_engine(target, plan, on_progress)
    if isinstance(loop, uvloop.Loop):
        return await run_engine(target, plan, on_progress)

    forward: ProgressCallback | None = None
    if on_progress is not None:
        callback = on_progress

        def forward(snapshot: ProgressSnapshot) -> None:
            loop.call_soon_threadsafe(callback, snapshot)

    engines: list[Engine] = []

    def in_thread() -> tuple[Recorder, float]:
        result: tuple[Recorder, float] = uvloop.run(
            run_engine(target, plan, forward, engines.append)
        )
        return result

    job = asyncio.ensure_future(asyncio.to_thread(in_thread))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        # A thread cannot be cancelled: stop its engine, wait for it, then pass it on.
        for engine in engines:
            with contextlib.suppress(RuntimeError):
                engine.loop.call_soon_threadsafe(engine.abort)
        with contextlib.suppress(BaseException):
            await job
        raise
