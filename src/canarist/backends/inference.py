"""One inference request at a time, to one version of a model, over V1 REST, V2 REST or V2 gRPC.

    async with InferenceClient(timeout_s=5) as client:
        answer = await client.infer(Endpoint("http://127.0.0.1:8080/v1/models/m:predict",
                                             {"Host": "latest-m.default.example.com"}, "v1"),
                                    {"instances": [[6.8, 2.8, 4.8, 1.4]]})

`infer` returns the decoded response (for gRPC, the ModelInferResponse as a V2 REST document:
`{"model_name", "outputs": [{"name", "datatype", "shape", "data"}]}`) or raises `CallFailed`
with a code and a message, as the load generators name failures: the HTTP status (`500`), the
gRPC status name (`NOT_FOUND`), a connection-level kind (`connection-refused`, `timeout`, ...),
or `invalid-response` for an answer that is not JSON. Every call has a timeout.

gRPC requests go to `inference.GRPCInferenceService/ModelInfer` with the V2 proto canarist
ships. A `Host` header becomes the channel's authority (what a cluster's ingress routes by) and
the `host` call metadata (what the sandbox's ingress routes by); other headers are sent as
metadata, lower-cased.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import grpc
from google.protobuf.message import Message

from canarist.backends.httpclient import (
    HttpClient,
    HTTPStatusError,
    RequestFailed,
    RequestTimeout,
    ResponseTooLarge,
    Transport,
    read_up_to,
)
from canarist.backends.loadgen import grpc_schema
from canarist.backends.loadgen._http_failures import connect_error_kind
from canarist.backends.loadgen.recorder import CONNECTION_KINDS
from canarist.core.agreement import Protocol, v2_tensors
from canarist.core.errors import InputError, UnavailableError
from canarist.core.redact import redact_text

MODEL_INFER = f"{grpc_schema.INFERENCE_SERVICE}.ModelInfer"
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
EXCERPT_CHARS = 300

_CONTENTS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}
# Raw little-endian layouts of `raw_output_contents` (KServe's servers answer this way).
_RAW = {"BOOL": "?", "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q", "UINT8": "B",
        "UINT16": "H", "UINT32": "I", "UINT64": "Q", "FP16": "e", "FP32": "f", "FP64": "d"}


@dataclass(frozen=True)
class Endpoint:
    """Where one version answers: a REST URL, or `host:port` for gRPC (`grpcs://` for TLS)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    protocol: Protocol = "v1"
    model: str = ""
    """The model name a gRPC request carries."""


class CallFailed(Exception):
    """A request that got no usable answer: `code` as reports name failures, and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def grpc_target(url: str) -> tuple[str, bool]:
    """`grpc://h:p`, `grpcs://h:p` or `h:p` -> (`h:p`, TLS?)."""
    if url.startswith("grpcs://"):
        return url.removeprefix("grpcs://").rstrip("/"), True
    return url.removeprefix("grpc://").rstrip("/"), False


class InferenceClient:
    """An aiohttp session and gRPC channels (one per target and authority), closed on exit."""

    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._channels: dict[tuple[str, bool, str], grpc.aio.Channel] = {}
        self._schema: grpc_schema.MethodSchema | None = None

    async def __aenter__(self) -> InferenceClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(limit=0), trust_env=False)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(ch.close(grace=None) for ch in channels), return_exceptions=True)

    async def prepare(self, endpoints: list[Endpoint]) -> None:
        """Load what gRPC needs (the shipped V2 proto) before the first request."""
        if any(e.protocol == "grpc" for e in endpoints) and self._schema is None:
            self._schema = await asyncio.to_thread(
                grpc_schema.load_method_from_proto, grpc_schema.SHIPPED_INFERENCE_PROTO,
                MODEL_INFER)

    async def infer(self, endpoint: Endpoint, body: dict[str, Any]) -> Any:
        if endpoint.protocol == "grpc":
            return await self._grpc(endpoint, body)
        return await self._rest(endpoint, body)

    async def _rest(self, endpoint: Endpoint, body: dict[str, Any]) -> Any:
        if self._session is None:
            raise RuntimeError("use InferenceClient as an async context manager")
        headers = {"Content-Type": "application/json", **endpoint.headers}
        try:
            async with self._session.post(endpoint.url, data=json.dumps(body).encode(),
                                          headers=headers, allow_redirects=False) as response:
                data = await read_up_to(response.content, MAX_RESPONSE_BYTES + 1)
                status = response.status
        except TimeoutError:
            raise CallFailed("timeout", f"no answer within {self.timeout_s:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            kind, text = connect_error_kind(exc.os_error)
            raise CallFailed(CONNECTION_KINDS.get(kind, "connection-error"), text) from None
        except aiohttp.ServerDisconnectedError:
            raise CallFailed("connection-closed", "the server closed the connection") from None
        except aiohttp.ClientError as exc:
            raise CallFailed("connection-error", str(exc) or type(exc).__name__) from None
        text = data[:MAX_RESPONSE_BYTES].decode("utf-8", errors="replace")
        if not 200 <= status < 300:
            raise CallFailed(str(status), _excerpt(text))
        if len(data) > MAX_RESPONSE_BYTES:
            raise CallFailed("invalid-response", f"larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise CallFailed("invalid-response",
                             f"not JSON: {_excerpt(text) or 'an empty body'}") from None

    def _channel(self, target: str, tls: bool, authority: str) -> grpc.aio.Channel:
        key = (target, tls, authority)
        channel = self._channels.get(key)
        if channel is None:
            options: list[tuple[str, Any]] = [("grpc.enable_retries", 0),
                                              ("grpc.max_receive_message_length",
                                               MAX_RESPONSE_BYTES)]
            if authority:
                options.append(("grpc.default_authority", authority))
            channel = (grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(), options)
                       if tls else grpc.aio.insecure_channel(target, options))
            self._channels[key] = channel
        return channel

    async def _grpc(self, endpoint: Endpoint, body: dict[str, Any]) -> dict[str, Any]:
        assert self._schema is not None, "prepare() loads the V2 proto first"
        target, tls = grpc_target(endpoint.url)
        host = next((v for k, v in endpoint.headers.items() if k.lower() == "host"), "")
        metadata = tuple((k.lower(), v) for k, v in endpoint.headers.items())
        request = model_infer_request(self._schema, endpoint.model, body)
        call = self._channel(target, tls, host).unary_unary(self._schema.path)
        try:
            raw: bytes = await call(request.SerializeToString(), metadata=metadata,
                                    timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise CallFailed("timeout", f"no answer within {self.timeout_s:g}s") from None
            raise CallFailed(exc.code().name, _excerpt(exc.details() or "")) from None
        try:
            response = self._schema.response_class.FromString(raw)
        except Exception:  # protobuf raises DecodeError, or worse for garbage
            raise CallFailed("invalid-response", "not a ModelInferResponse") from None
        return model_infer_response(response)


def model_infer_request(schema: grpc_schema.MethodSchema, model: str,
                        body: dict[str, Any]) -> Message:
    """A ModelInferRequest from a V2 body (V1 bodies are converted by the caller)."""
    request = schema.new_request()
    request.model_name = model
    for tensor in v2_tensors(body):
        sent = request.inputs.add()
        sent.name, sent.datatype = tensor.name, tensor.datatype
        sent.shape.extend(tensor.shape)
        values = list(tensor.data)
        if tensor.datatype == "BYTES":
            values = [v.encode() if isinstance(v, str) else bytes(v) for v in values]
        elif tensor.datatype == "FP16":
            raise InputError("agreement: FP16 inputs cannot be sent over gRPC's typed contents; "
                             "use FP32")
        getattr(sent.contents, _CONTENTS[tensor.datatype]).extend(values)
    return request


def model_infer_response(response: Any) -> dict[str, Any]:
    """A ModelInferResponse as a V2 REST document (typed contents or raw little-endian)."""
    outputs = []
    raw = list(response.raw_output_contents)
    for index, output in enumerate(response.outputs):
        shape = [int(d) for d in output.shape]
        if raw:
            if index >= len(raw):
                raise CallFailed("invalid-response", f"no raw contents for output {output.name}")
            data = _decode_raw(output.datatype, raw[index])
        else:
            name = _CONTENTS.get(output.datatype)
            if name is None:
                raise CallFailed("invalid-response", f"output {output.name} has datatype "
                                 f"{output.datatype!r}")
            data = list(getattr(output.contents, name))
            if output.datatype == "BYTES":
                data = [v.decode("utf-8", errors="replace") for v in data]
        outputs.append({"name": output.name, "datatype": output.datatype, "shape": shape,
                        "data": data})
    return {"model_name": response.model_name, "outputs": outputs}


def _decode_raw(datatype: str, data: bytes) -> list[Any]:
    if datatype == "BYTES":
        values, at = [], 0
        while at + 4 <= len(data):
            (size,) = struct.unpack_from("<I", data, at)
            values.append(data[at + 4:at + 4 + size].decode("utf-8", errors="replace"))
            at += 4 + size
        return values
    code = _RAW.get(datatype)
    if code is None:
        raise CallFailed("invalid-response", f"raw output of datatype {datatype!r}")
    size = struct.calcsize(code)
    if len(data) % size:
        raise CallFailed("invalid-response", f"{len(data)} bytes of raw {datatype} data")
    return list(struct.unpack(f"<{len(data) // size}{code}", data))


def _excerpt(text: str) -> str:
    """The start of a response on one line (KServe's `{"error": "..."}` as its message)."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        text = doc["error"]
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


async def fetch_payload(url: str, timeout_s: float, transport: Transport | None = None) -> str:
    """GET a payload file from `url` (http or https), as UTF-8 text (through `transport`
    when given: tests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"agreement.payloadURL: expected an http:// or https:// URL, got {url!r}")
    try:
        async with HttpClient(timeout_s=timeout_s, transport=transport) as client:
            data = await client.fetch(url, limit=MAX_PAYLOAD_BYTES)
    except HTTPStatusError as exc:
        raise UnavailableError(f"agreement.payloadURL: HTTP {exc.status} from {url}") from None
    except ResponseTooLarge:
        raise InputError(f"agreement.payloadURL: {url} is larger than {MAX_PAYLOAD_BYTES} bytes"
                         ) from None
    except RequestTimeout:
        raise UnavailableError(f"agreement.payloadURL: no answer from {url} within "
                               f"{timeout_s:g}s") from None
    except RequestFailed as exc:
        cause = exc.cause if exc.cause is not None else exc
        raise UnavailableError(redact_text(f"agreement.payloadURL: cannot fetch {url}: "
                                           f"{str(cause) or type(cause).__name__}")) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"agreement.payloadURL: {url} is not UTF-8 text") from None


__all__ = ["CallFailed", "Endpoint", "InferenceClient", "fetch_payload", "grpc_target",
           "model_infer_request", "model_infer_response"]
