"""The sandbox's ingress: HTTP and gRPC front doors that split traffic between revisions.

* HTTP (default 127.0.0.1:8080): routes by the `Host` header (`<isvc>.<namespace>.example.com`,
  also `<isvc>-predictor-default.<namespace>.example.com`, `....svc.cluster.local`, and the
  tag hosts `prev-`/`latest-<isvc>-predictor-default.<namespace>.example.com`). An unknown
  host is a 404 whose body names the host and the hosts the ingress serves; a known one with
  no ready revision a 503. A body that is JSON but arrives as
  `application/x-www-form-urlencoded` (what `curl -d` sends) is forwarded as
  `application/json`, as the tutorial's curl loop needs.
* gRPC (default 127.0.0.1:8081): forwards every unary call as raw bytes to the chosen
  revision's gRPC port. grpcio does not expose `:authority` to servers, so the route is
  chosen by the `host` metadata entry, else by the model name in the request (the
  InferenceService's name), else the only InferenceService there is.
* Metrics (default 127.0.0.1:9091, `/metrics`): Knative queue-proxy metrics per revision.
  A gRPC call that reached a revision counts as HTTP 200 whatever its gRPC status, as
  Knative's queue-proxy records it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc
from aiohttp import web

from canarist.sandbox.metrics import CONTENT_TYPE, RequestMetrics
from canarist.sandbox.routes import Backend, Route, RouteTable

log = logging.getLogger("canarist.sandbox")

UPSTREAM_TIMEOUT_S = 60.0
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
FORM = "application/x-www-form-urlencoded"
MAX_BODY = 64 * 1024 * 1024


def forwarded_content_type(content_type: str | None, body: bytes) -> str | None:
    """`application/json` for a JSON body sent as a form (curl -d); otherwise unchanged."""
    if content_type is not None and content_type.split(";")[0].strip().lower() != FORM:
        return content_type
    stripped = body.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            json.loads(body)
        except ValueError:
            return content_type
        return "application/json"
    return content_type


async def serve_app(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve an aiohttp app on host:port (0: a free port); returns the runner and the port."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, int(runner.addresses[0][1])


def unknown_host_text(host: str, served: list[str]) -> str:
    """The body of the ingress's 404: the host it does not serve and the ones it does."""
    if not served:
        return (f"no InferenceService serves host {host!r}: none is deployed "
                "(canarist sandbox apply -f isvc.yaml)\n")
    shown = ", ".join(served[:5]) + (f" and {len(served) - 5} more" if len(served) > 5 else "")
    return (f"no InferenceService serves host {host!r}; set the Host header to one this "
            f"ingress serves: {shown}\n")


class HttpIngress:
    def __init__(self, routes: RouteTable, metrics: RequestMetrics,
                 rng: random.Random | None = None) -> None:
        self.routes = routes
        self.metrics = metrics
        self.rng = rng or random.Random()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT_S, connect=5.0),
            connector=aiohttp.TCPConnector(limit=256), auto_decompress=False)
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve_app(app, host, port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        route = self.routes.lookup(host)
        if route is None:
            return web.Response(status=404, text=unknown_host_text(host, self.routes.main_hosts()))
        backend = route.choose(self.rng)
        if backend is None:
            return web.Response(status=503, text=f"InferenceService {route.namespace}/{route.isvc} "
                                "has no ready revision\n")
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        content_type = forwarded_content_type(request.headers.get("Content-Type"), body)
        headers.pop("Content-Type", None)
        if content_type is not None:
            headers["Content-Type"] = content_type
        url = f"http://127.0.0.1:{backend.http_port}{request.rel_url}"
        started = time.perf_counter()
        assert self._session is not None
        try:
            async with self._session.request(request.method, url, headers=headers, data=body,
                                             allow_redirects=False) as upstream:
                payload = await upstream.read()
                status = upstream.status
                out_headers = {k: v for k, v in upstream.headers.items()
                               if k.lower() not in HOP_BY_HOP}
        except TimeoutError:
            status, payload, out_headers = 504, b"upstream request timeout\n", {}
        except aiohttp.ClientError as exc:
            status, payload, out_headers = 502, f"upstream connect error: {exc}\n".encode(), {}
        self.metrics.observe(backend, status, (time.perf_counter() - started) * 1000.0)
        return web.Response(status=status, body=payload, headers=out_headers)


class MetricsServer:
    """`/metrics` in the Prometheus text format, on its own port (as the queue-proxy's 9091)."""

    def __init__(self, metrics: RequestMetrics) -> None:
        self.metrics = metrics
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        self._runner, self.port = await serve_app(app, host, port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response


# -- gRPC --------------------------------------------------------------------------------

def model_name_field(message: bytes) -> str | None:
    """Field 1 (a string) of a protobuf message: `model_name` of ModelInferRequest, `name` of
    ModelReadyRequest and ModelMetadataRequest. None when absent or not a string."""
    pos = 0
    while pos < len(message):
        key, pos = _varint(message, pos)
        if key is None:
            return None
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(message, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(message, pos)
            if length is None or pos + length > len(message):
                return None
            if number == 1:
                try:
                    return message[pos:pos + length].decode("utf-8")
                except UnicodeDecodeError:
                    return None
            pos += length
        else:
            return None
        if pos is None:
            return None
    return None


def _varint(data: bytes, pos: int) -> tuple[Any, Any]:
    value, shift = 0, 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None, None


Behavior = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


class _Forward(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, ingress: GrpcIngress) -> None:
        self.ingress = ingress

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        metadata = tuple(handler_call_details.invocation_metadata or ())

        async def behavior(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            return await self.ingress.forward(method, metadata, request, context)

        return grpc.unary_unary_rpc_method_handler(behavior)


class GrpcIngress:
    def __init__(self, routes: RouteTable, metrics: RequestMetrics,
                 rng: random.Random | None = None) -> None:
        self.routes = routes
        self.metrics = metrics
        self.rng = rng or random.Random()
        self._server: grpc.aio.Server | None = None
        self._channels: dict[int, grpc.aio.Channel] = {}
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        self._server.add_generic_rpc_handlers([_Forward(self)])
        bound = self._server.add_insecure_port(f"{host}:{port}")
        if bound == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        await self._server.start()
        self.port = bound

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(1.0)
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    def route_for(self, metadata: tuple[Any, ...], request: bytes) -> Route | None:
        for item in metadata:
            key, value = item[0], item[1]
            if key.lower() == "host" and isinstance(value, str):
                return self.routes.lookup(value)
        name = model_name_field(request)
        if name:
            route = self.routes.by_model_name(name)
            if route is not None:
                return route
        return self.routes.only_route()

    def _channel(self, port: int) -> grpc.aio.Channel:
        channel = self._channels.get(port)
        if channel is None:
            channel = self._channels[port] = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        return channel

    async def forward(self, method: str, metadata: tuple[Any, ...], request: bytes,
                      context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        route = self.route_for(metadata, request)
        if route is None:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                "no InferenceService matches: set the `host` metadata to "
                                "<isvc>.<namespace>.example.com")
        assert route is not None
        backend = route.choose(self.rng)
        if backend is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                f"InferenceService {route.namespace}/{route.isvc} has no ready revision")
        assert backend is not None
        return await self._call(backend, method, metadata, request, context)

    async def _call(self, backend: Backend, method: str, metadata: tuple[Any, ...], request: bytes,
                    context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        outgoing = tuple((k, v) for k, v in metadata if k.lower() not in ("host", "user-agent"))
        remaining = context.time_remaining()
        timeout = min(remaining, UPSTREAM_TIMEOUT_S) if remaining is not None else UPSTREAM_TIMEOUT_S
        call = self._channel(backend.grpc_port).unary_unary(method)
        started = time.perf_counter()
        try:
            response: bytes = await call(request, metadata=outgoing, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            reached = exc.code() not in (grpc.StatusCode.UNAVAILABLE,)
            self.metrics.observe(backend, 200 if reached else 503,
                                 (time.perf_counter() - started) * 1000.0)
            await context.abort(exc.code(), exc.details() or "")
            raise
        self.metrics.observe(backend, 200, (time.perf_counter() - started) * 1000.0)
        return response


async def gather_stop(*parts: Any) -> None:
    """Stop several servers, whatever each one raises."""
    for part in parts:
        try:
            await part.stop()
        except Exception:  # stopping must go on for the others
            log.exception("stopping %s failed", type(part).__name__)
    await asyncio.sleep(0)
