"""A gRPC Open Inference Protocol (KServe V2) server for load-generator tests.

Serves `inference.GRPCInferenceService` (all six RPCs, from canarist's shipped proto),
`testing.Echo/Echo` (whose messages import a well-known type) and, unless disabled,
server reflection (v1alpha). It binds 127.0.0.1 only.

How ModelInfer (and ModelReady/ModelMetadata) behave is chosen by the model name:

    anything else        answer at once
    delay-<ms>           answer after <ms> milliseconds (float)
    hang                 never answer (the client's deadline or cancellation ends the call)
    error-<code>         fail with that status, e.g. error-unavailable, error-resource_exhausted
    every-<n>-<code>     every n-th call to this model fails with <code>, the others succeed
    missing-...          fail with NOT_FOUND, like a server without that model
    no-outputs           ModelInfer answers with no output tensor (not a V2 inference answer)

`Behaviour` objects passed to the server override names.

Use it in-process (`V2Server`, or `ThreadedV2Server` on its own thread and event loop) or
as a subprocess:

    python tests/servers/grpc_v2_server.py [--port N] [--no-reflection]

which prints `PORT <n>` on stdout once it listens and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from canarist.backends.loadgen import grpc_schema

ECHO_PROTO = """
syntax = "proto3";
package testing;
import "google/protobuf/struct.proto";
service Echo {
  rpc Echo(EchoRequest) returns (EchoReply) {}
  rpc Chat(stream EchoRequest) returns (stream EchoReply) {}
}
message EchoRequest {
  string text = 1;
  google.protobuf.Struct extra = 2;
  double delay_ms = 3;
}
message EchoReply {
  string text = 1;
  google.protobuf.Struct extra = 2;
  int64 count = 3;
}
"""

INFERENCE = "inference.GRPCInferenceService"
ECHO = "testing.Echo"


@dataclass(frozen=True)
class Behaviour:
    delay_s: float = 0.0
    hang: bool = False
    status: grpc.StatusCode | None = None
    every: int = 1
    """With `status`: fail every n-th call only."""


def behaviour_for(name: str) -> Behaviour:
    if name == "hang":
        return Behaviour(hang=True)
    if name.startswith("delay-"):
        return Behaviour(delay_s=float(name[len("delay-") :]) / 1000.0)
    if name.startswith("missing-"):
        return Behaviour(status=grpc.StatusCode.NOT_FOUND)
    if name.startswith("error-"):
        return Behaviour(status=grpc.StatusCode[name[len("error-") :].upper()])
    if name.startswith("every-"):
        n, _, code = name[len("every-") :].partition("-")
        return Behaviour(status=grpc.StatusCode[code.upper()], every=int(n))
    return Behaviour()


def _build_pool() -> descriptor_pool.DescriptorPool:
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    with tempfile.TemporaryDirectory(prefix="canarist-echo-") as tmp:
        echo = Path(tmp) / "testing_echo.proto"
        echo.write_text(ECHO_PROTO)
        for proto in (grpc_schema.SHIPPED_INFERENCE_PROTO, echo):
            for f in grpc_schema.compile_proto(proto).file:
                files.setdefault(f.name, f)
    pool = descriptor_pool.DescriptorPool()
    for f in files.values():  # protoc lists dependencies first
        pool.Add(f)
    return pool


class Stats:
    """What the server saw; read it after the load has finished."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.peers: set[str] = set()
        self.metadata: list[dict[str, str]] = []
        self.keep_metadata = 50

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


class V2Server:
    def __init__(
        self,
        behaviours: Mapping[str, Behaviour] | None = None,
        *,
        port: int = 0,
        reflection: bool = True,
        tls: tuple[bytes, bytes] | None = None,
        options: tuple[tuple[str, Any], ...] = (),
    ) -> None:
        self.behaviours = dict(behaviours or {})
        self.options = options
        """grpc server options, e.g. `(("grpc.max_concurrent_streams", 2),)`."""
        self.requested_port = port
        self.reflection = reflection
        self.tls = tls
        self.port = 0
        self.stats = Stats()
        self._server: grpc.aio.Server | None = None
        pool = _build_pool()
        self._pool = pool

        def cls(name: str) -> Any:
            return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))

        self.pb = {
            n: cls(f"inference.{n}")
            for n in (
                "ServerLiveResponse",
                "ServerReadyResponse",
                "ModelReadyResponse",
                "ServerMetadataResponse",
                "ModelMetadataResponse",
                "ModelInferResponse",
                "InferTensorContents",
            )
        }
        self.requests = {
            m: cls(pool.FindServiceByName(INFERENCE).methods_by_name[m].input_type.full_name)
            for m in (
                "ServerLive",
                "ServerReady",
                "ModelReady",
                "ServerMetadata",
                "ModelMetadata",
                "ModelInfer",
            )
        }
        self.echo_request = cls("testing.EchoRequest")
        self.echo_reply = cls("testing.EchoReply")

    # ---- behaviour

    def _behaviour(self, model: str) -> Behaviour:
        return self.behaviours.get(model) or behaviour_for(model)

    async def _act(self, model: str, context: grpc.aio.ServicerContext) -> None:
        s = self.stats
        n = s.calls.get(model, 0) + 1
        s.calls[model] = n
        s.peers.add(context.peer())
        if len(s.metadata) < s.keep_metadata:
            s.metadata.append({k: str(v) for k, v in context.invocation_metadata() or ()})
        b = self._behaviour(model)
        if b.hang:
            await asyncio.Event().wait()
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if b.status is not None and n % b.every == 0:
            detail = f"model {model} not found" if b.status == grpc.StatusCode.NOT_FOUND else model
            await context.abort(b.status, detail)

    async def _tracked(self, model: str, context: grpc.aio.ServicerContext) -> None:
        s = self.stats
        s.in_flight += 1
        s.max_in_flight = max(s.max_in_flight, s.in_flight)
        try:
            await self._act(model, context)
        finally:
            s.in_flight -= 1

    # ---- handlers

    async def server_live(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self.pb["ServerLiveResponse"](live=True)

    async def server_ready(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self.pb["ServerReadyResponse"](ready=True)

    async def model_ready(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._tracked(request.name, context)
        return self.pb["ModelReadyResponse"](ready=True)

    async def server_metadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self.pb["ServerMetadataResponse"](
            name="canarist-test-v2", version="1", extensions=["model_repository"]
        )

    async def model_metadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._tracked(request.name, context)
        resp = self.pb["ModelMetadataResponse"](name=request.name, versions=["1"], platform="test")
        t = resp.inputs.add()
        t.name, t.datatype = "input-0", "FP32"
        t.shape.extend([-1, 4])
        o = resp.outputs.add()
        o.name, o.datatype = "output-0", "INT64"
        o.shape.append(-1)
        return resp

    async def model_infer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._tracked(request.model_name, context)
        resp = self.pb["ModelInferResponse"](model_name=request.model_name, model_version="1", id=request.id)
        if request.model_name == "no-outputs":
            return resp
        rows = request.inputs[0].shape[0] if request.inputs and request.inputs[0].shape else 1
        out = resp.outputs.add()
        out.name, out.datatype = "output-0", "INT64"
        out.shape.append(rows)
        out.contents.int64_contents.extend([1] * rows)
        return resp

    async def echo(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        s = self.stats
        s.calls[ECHO] = s.calls.get(ECHO, 0) + 1
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000.0)
        reply = self.echo_reply(text=request.text, count=s.calls[ECHO])
        reply.extra.CopyFrom(request.extra)
        return reply

    async def chat(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        async for request in request_iterator:
            yield self.echo_reply(text=request.text)

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        def unary(fn: Any, req: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn,
                request_deserializer=req.FromString,
                response_serializer=lambda m: m.SerializeToString(),
            )

        r = self.requests
        inference = grpc.method_handlers_generic_handler(
            INFERENCE,
            {
                "ServerLive": unary(self.server_live, r["ServerLive"]),
                "ServerReady": unary(self.server_ready, r["ServerReady"]),
                "ModelReady": unary(self.model_ready, r["ModelReady"]),
                "ServerMetadata": unary(self.server_metadata, r["ServerMetadata"]),
                "ModelMetadata": unary(self.model_metadata, r["ModelMetadata"]),
                "ModelInfer": unary(self.model_infer, r["ModelInfer"]),
            },
        )
        echo = grpc.method_handlers_generic_handler(
            ECHO,
            {
                "Echo": unary(self.echo, self.echo_request),
                "Chat": grpc.stream_stream_rpc_method_handler(
                    self.chat,
                    request_deserializer=self.echo_request.FromString,
                    response_serializer=lambda m: m.SerializeToString(),
                ),
            },
        )
        return [inference, echo]

    # ---- lifecycle

    async def start(self) -> int:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0), *self.options])
        server.add_generic_rpc_handlers(self._handlers())
        if self.reflection:
            from grpc_reflection.v1alpha import reflection

            reflection.enable_server_reflection(
                (INFERENCE, ECHO, reflection.SERVICE_NAME), server, pool=self._pool
            )
        address = f"127.0.0.1:{self.requested_port}"
        if self.tls is not None:
            creds = grpc.ssl_server_credentials([(self.tls[0], self.tls[1])])
            self.port = server.add_secure_port(address, creds)
        else:
            self.port = server.add_insecure_port(address)
        await server.start()
        self._server = server
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class ThreadedV2Server:
    """A `V2Server` on its own thread and event loop; a context manager."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.server = V2Server(*args, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="v2-test-server", daemon=True)

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def stats(self) -> Stats:
        return self.server.stats

    def _main(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.server.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self._stop.wait()
            await self.server.stop(None)

        asyncio.run(serve())

    def start(self) -> ThreadedV2Server:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the V2 test server did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def __enter__(self) -> ThreadedV2Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-reflection", action="store_true")
    args = parser.parse_args(argv)

    async def serve() -> None:
        server = V2Server(port=args.port, reflection=not args.no_reflection)
        await server.start()
        print(f"PORT {server.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop(None)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
