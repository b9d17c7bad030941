"""Method descriptors for the gRPC load generator, loaded at run time.

No generated code is needed. A method's request and response types come from

* a ``.proto`` file, compiled to a ``FileDescriptorSet`` by ``grpc_tools.protoc``
  (package ``grpcio-tools``, the ``canarist[proto]`` extra) in a child process, or
* the server itself, through gRPC server reflection
  (``grpc.reflection.v1alpha.ServerReflection``, the service ghz uses), or
* the Open Inference Protocol (KServe V2) proto shipped in ``proto/inference.proto``,
  used by default for ``inference.GRPCInferenceService`` calls without a proto; it is
  shipped compiled too (``proto/inference.binpb``), so it needs no grpcio-tools.

Requests are built from JSON ``data`` (an object, or a list of objects used in
turn) with ``google.protobuf.json_format``; field names may be the proto names
(``model_name``) or their JSON names (``modelName``).

Every failure raises :class:`~canarist.core.errors.InputError` (bad input: call,
proto, data, metadata) or :class:`~canarist.core.errors.UnavailableError` (the
server or a needed tool cannot be reached), with a one-line message naming the field.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message

from canarist.backends.files import read_bytes_bounded
from canarist.core.errors import InputError, UnavailableError
from canarist.core.extras import MissingExtra, require

__all__ = [
    "INFERENCE_SERVICE",
    "SHIPPED_INFERENCE_DESCRIPTORS",
    "SHIPPED_INFERENCE_PROTO",
    "Metadata",
    "MethodSchema",
    "build_metadata",
    "build_requests",
    "compile_proto",
    "default_proto_for",
    "descriptor_pool_from_proto",
    "load_data_file",
    "load_method_by_reflection",
    "load_method_from_proto",
    "parse_call",
]

SHIPPED_INFERENCE_PROTO = Path(__file__).resolve().parent / "proto" / "inference.proto"
SHIPPED_INFERENCE_DESCRIPTORS = SHIPPED_INFERENCE_PROTO.with_suffix(".binpb")
"""The shipped proto compiled (a FileDescriptorSet), so that it needs no proto compiler."""
INFERENCE_SERVICE = "inference.GRPCInferenceService"

REFLECTION_METHOD = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
PROTOC_TIMEOUT_S = 60.0

Metadata = tuple[tuple[str, str | bytes], ...]


@dataclass(frozen=True)
class MethodSchema:
    """A resolved unary method: its wire path and its message classes."""

    full_name: str
    """``package.Service.Method``."""
    path: str
    """``/package.Service/Method``, the HTTP/2 path of the call."""
    request_class: type[Message]
    response_class: type[Message]
    source: str
    """Where the descriptors came from: a proto file path or ``reflection``."""

    def new_request(self) -> Message:
        return self.request_class()


# ---------------------------------------------------------------- call names


def parse_call(call: str) -> tuple[str, str]:
    """Split ``package.Service.Method`` or ``package.Service/Method`` into (service, method).

    A leading ``/`` (the wire form ``/package.Service/Method``) is accepted too.
    """
    text = call.strip()
    if text.startswith("/"):
        text = text[1:]
    if "/" in text:
        service, _, method = text.rpartition("/")
    else:
        service, _, method = text.rpartition(".")
    if not service or not method or "/" in service or "." in method or " " in text:
        raise InputError(f"call: expected 'package.Service.Method' or 'package.Service/Method', got {call!r}")
    return service, method


def default_proto_for(call: str) -> Path | None:
    """The shipped proto when ``call`` is a method of the KServe V2 inference service."""
    service, _ = parse_call(call)
    return SHIPPED_INFERENCE_PROTO if service == INFERENCE_SERVICE else None


def _method_schema(pool: descriptor_pool.DescriptorPool, call: str, source: str) -> MethodSchema:
    service_name, method_name = parse_call(call)
    try:
        service = pool.FindServiceByName(service_name)
    except KeyError:
        raise InputError(f"call: service {service_name!r} not found in {source}") from None
    method: MethodDescriptor | None = service.methods_by_name.get(method_name)
    if method is None:
        known = ", ".join(sorted(service.methods_by_name)) or "none"
        raise InputError(
            f"call: method {method_name!r} not found in service {service_name!r} (methods: {known})"
        )
    if method.client_streaming or method.server_streaming:
        raise InputError(
            f"call: {service_name}.{method_name} is a streaming method; only unary methods are supported"
        )
    return MethodSchema(
        full_name=f"{service_name}.{method_name}",
        path=f"/{service_name}/{method_name}",
        request_class=_message_class(method.input_type),
        response_class=_message_class(method.output_type),
        source=source,
    )


def _message_class(descriptor: Descriptor) -> type[Message]:
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls


def _pool_from_files(
    files: Sequence[descriptor_pb2.FileDescriptorProto],
) -> descriptor_pool.DescriptorPool:
    """A fresh pool holding ``files``, added dependencies first."""
    by_name = {f.name: f for f in files}
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str, chain: tuple[str, ...]) -> None:
        if name in added:
            return
        if name in chain:
            raise InputError(f"proto: import cycle through {name!r}")
        fdp = by_name.get(name)
        if fdp is None:
            fdp = _well_known_file(name)
        for dep in fdp.dependency:
            add(dep, (*chain, name))
        pool.Add(fdp)
        added.add(name)

    for f in files:
        add(f.name, ())
    return pool


def _well_known_file(name: str) -> descriptor_pb2.FileDescriptorProto:
    """A file the protobuf runtime itself knows (``google/protobuf/*.proto``)."""
    try:
        fd = descriptor_pool.Default().FindFileByName(name)
    except KeyError:
        if name.startswith("google/protobuf/"):
            _import_well_known(name)
            try:
                fd = descriptor_pool.Default().FindFileByName(name)
            except KeyError:
                raise InputError(f"proto: imported file {name!r} is unknown") from None
        else:
            raise InputError(f"proto: imported file {name!r} is unknown") from None
    fdp = descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(fdp)
    return fdp


def _import_well_known(name: str) -> None:
    module = "google.protobuf." + Path(name).stem + "_pb2"
    if importlib.util.find_spec(module) is not None:
        __import__(module)


# ---------------------------------------------------------------- .proto files


_compiled: dict[tuple[str, int, int, tuple[str, ...]], descriptor_pb2.FileDescriptorSet] = {}
_compiled_lock = threading.Lock()


def compile_proto(
    proto: str | os.PathLike[str], import_paths: Sequence[str | os.PathLike[str]] = ()
) -> descriptor_pb2.FileDescriptorSet:
    """Compile ``proto`` (and everything it imports) to a FileDescriptorSet.

    Imports are looked up in ``import_paths``, then in the proto's own folder, then
    in the well-known types shipped with grpcio-tools. Results are cached per file
    (path, modification time, size) and import paths.
    """
    path = Path(proto).expanduser()
    try:
        st = path.resolve(strict=True).stat()
    except OSError:
        raise InputError(f"proto: file not found: {os.fspath(proto)}") from None
    if not path.is_file():
        raise InputError(f"proto: not a file: {os.fspath(proto)}")
    paths: list[str] = []
    for p in import_paths:
        ip = Path(p).expanduser()
        if not ip.is_dir():
            raise InputError(f"import-paths: not a directory: {os.fspath(p)}")
        paths.append(str(ip.resolve()))
    if not paths and path.resolve() == SHIPPED_INFERENCE_PROTO:
        return _shipped_descriptors()
    paths.append(str(path.resolve().parent))
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, tuple(paths))
    with _compiled_lock:
        cached = _compiled.get(key)
    if cached is not None:
        return cached
    fds = _run_protoc(path.resolve(), paths, os.fspath(proto))
    with _compiled_lock:
        _compiled[key] = fds
    return fds


@functools.cache
def _shipped_descriptors() -> descriptor_pb2.FileDescriptorSet:
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(SHIPPED_INFERENCE_DESCRIPTORS.read_bytes())
    return fds


def _run_protoc(path: Path, include_paths: list[str], shown: str) -> descriptor_pb2.FileDescriptorSet:
    require("proto", f"proto: compiling {shown}")  # or leave proto unset: server reflection
    spec = importlib.util.find_spec("grpc_tools")
    if spec is None or spec.origin is None:
        raise MissingExtra(f"proto: compiling {shown}", "proto", "grpc_tools")
    well_known = Path(spec.origin).parent / "_proto"
    includes = [*include_paths]
    if well_known.is_dir():
        includes.append(str(well_known))
    with tempfile.TemporaryDirectory(prefix="canarist-protoc-") as tmp:
        out = Path(tmp) / "set.binpb"
        argv = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            *(f"--proto_path={p}" for p in includes),
            "--include_imports",
            f"--descriptor_set_out={out}",
            str(path),
        ]
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=PROTOC_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise UnavailableError(f"proto: compiling {shown} took more than {PROTOC_TIMEOUT_S:g}s") from None
        except OSError as exc:
            raise UnavailableError(f"proto: cannot run the proto compiler: {exc}") from None
        if proc.returncode != 0 or not out.exists():
            line = _first_line(proc.stderr)
            where = str(path)
            line = shown + line[len(where) :] if line.startswith(where) else f"{shown}: {line}"
            raise InputError(f"proto: {line}")
        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(out.read_bytes())
    return fds


def _first_line(stderr: bytes) -> str:
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.strip() and not line.lower().startswith("warning"):
            return line.strip()
    return "the proto compiler failed"


def descriptor_pool_from_proto(
    proto: str | os.PathLike[str], import_paths: Sequence[str | os.PathLike[str]] = ()
) -> descriptor_pool.DescriptorPool:
    """A fresh descriptor pool holding ``proto`` and everything it imports."""
    return _pool_from_files(list(compile_proto(proto, import_paths).file))


def load_method_from_proto(
    proto: str | os.PathLike[str],
    call: str,
    import_paths: Sequence[str | os.PathLike[str]] = (),
) -> MethodSchema:
    """Resolve ``call`` against a ``.proto`` file (compiled at run time)."""
    parse_call(call)
    pool = descriptor_pool_from_proto(proto, import_paths)
    return _method_schema(pool, call, f"proto {os.fspath(proto)}")


# ---------------------------------------------------------------- reflection


def _reflection_messages() -> tuple[type[Message], type[Message]]:
    try:
        reflection_pb2 = importlib.import_module("grpc_reflection.v1alpha.reflection_pb2")
    except ImportError:
        raise UnavailableError(
            "proto: using server reflection needs the 'grpcio-reflection' package; install it, or set proto"
        ) from None
    req: type[Message] = reflection_pb2.ServerReflectionRequest
    resp: type[Message] = reflection_pb2.ServerReflectionResponse
    return req, resp


async def load_method_by_reflection(
    channel: grpc.aio.Channel,
    call: str,
    *,
    host: str,
    timeout_s: float = 10.0,
    metadata: Metadata = (),
) -> MethodSchema:
    """Resolve ``call`` with the server's reflection service (v1alpha).

    Fetches the file that defines the service, then every file it imports that the
    server also serves; well-known types the server leaves out come from the protobuf
    runtime. Each question is its own call carrying one request (the reflection
    service answers each request in turn and ends when the client stops sending):
    writing to an open stream that a server without reflection has already ended
    would report INTERNAL instead of the server's UNIMPLEMENTED.
    """
    service_name, _ = parse_call(call)
    req_cls, resp_cls = _reflection_messages()
    ask_one = channel.unary_stream(
        REFLECTION_METHOD,
        request_serializer=req_cls.SerializeToString,
        response_deserializer=resp_cls.FromString,
    )
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    async def ask(**field: str) -> Any:
        rpc = ask_one(req_cls(**field), timeout=timeout_s, metadata=metadata or None)
        try:
            resp = await rpc.read()
        finally:
            rpc.cancel()
        if resp is grpc.aio.EOF:
            raise UnavailableError(f"host: {host}: server reflection gave no answer")
        return resp

    def keep(resp: Any) -> None:
        for raw in resp.file_descriptor_response.file_descriptor_proto:
            fdp = descriptor_pb2.FileDescriptorProto()
            fdp.ParseFromString(raw)
            files.setdefault(fdp.name, fdp)

    try:
        async with asyncio.timeout(timeout_s):
            resp = await ask(file_containing_symbol=service_name)
            if resp.HasField("error_response"):
                raise InputError(
                    f"call: service {service_name!r} not found on {host} (server reflection: "
                    f"{resp.error_response.error_message or resp.error_response.error_code})"
                )
            keep(resp)
            missing = _missing_dependencies(files)
            while missing:
                name = missing.pop()
                resp = await ask(file_by_filename=name)
                if resp.HasField("error_response"):
                    files[name] = _well_known_file(name)
                else:
                    keep(resp)
                missing = _missing_dependencies(files)
    except grpc.aio.AioRpcError as exc:
        raise _reflection_error(exc.code(), exc.details() or "", host) from None
    except TimeoutError:
        raise UnavailableError(
            f"host: {host}: server reflection did not answer within {timeout_s:g}s"
        ) from None
    return _method_schema(_pool_from_files(list(files.values())), call, f"reflection on {host}")


def _missing_dependencies(files: Mapping[str, descriptor_pb2.FileDescriptorProto]) -> list[str]:
    return sorted({d for f in files.values() for d in f.dependency if d not in files})


def _reflection_error(code: grpc.StatusCode, details: str, host: str) -> InputError | UnavailableError:
    detail = details.splitlines()[0] if details.strip() else code.name
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return InputError(
            f"proto: {host} does not serve gRPC reflection (grpc.reflection.v1alpha); set proto"
        )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return UnavailableError(f"host: {host} unreachable for server reflection: {detail}")
    return UnavailableError(f"host: {host}: server reflection failed: {code.name}: {detail}")


# ---------------------------------------------------------------- data and metadata


def load_data_file(path: str | os.PathLike[str], field: str = "data-file") -> Any:
    """Read a JSON data file (an object or a list of objects)."""
    try:
        text = read_bytes_bounded(Path(path).expanduser(), name=field).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{field}: {os.fspath(path)} is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{field}: cannot read {os.fspath(path)}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{field}: {os.fspath(path)} is not JSON: {exc.msg} at line {exc.lineno}") from None


def build_requests(schema: MethodSchema, data: Any, field: str = "data") -> list[Message]:
    """Request messages from JSON ``data``: None (one empty message), an object, or a list."""
    if data is None:
        return [schema.new_request()]
    items: list[Any]
    if isinstance(data, Mapping):
        items = [data]
    elif isinstance(data, list):
        if not data:
            raise InputError(f"{field}: the list of messages is empty")
        items = data
    else:
        raise InputError(
            f"{field}: expected a JSON object or a list of objects for "
            f"{schema.request_class.DESCRIPTOR.full_name}, got {type(data).__name__}"
        )
    messages: list[Message] = []
    for i, item in enumerate(items):
        where = field if len(items) == 1 and isinstance(data, Mapping) else f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise InputError(f"{where}: expected a JSON object, got {type(item).__name__}")
        msg = schema.new_request()
        try:
            json_format.ParseDict(dict(item), msg)
        except json_format.ParseError as exc:
            one_line = " ".join(str(exc).split())
            raise InputError(
                f"{where}: not a valid {schema.request_class.DESCRIPTOR.full_name}: {one_line}"
            ) from None
        messages.append(msg)
    return messages


def _metadata_problem(key: str, value: Any) -> str | None:
    """What gRPC would refuse in one metadata entry (it fails every call, not the launch)."""
    lowered = key.lower()
    if not lowered or not all(c in "abcdefghijklmnopqrstuvwxyz0123456789-_." for c in lowered):
        return "not a valid gRPC metadata key (letters, digits, '-', '_' and '.')"
    if not isinstance(value, str | int | float | bool):
        return f"expected a string, got {type(value).__name__}"
    if isinstance(value, str) and not lowered.endswith("-bin") \
            and not all(" " <= c <= "~" for c in value):
        return (f"expected printable ASCII on one line (no line breaks or control characters; "
                f"a key ending in -bin carries bytes), got {json.dumps(value)[:80]}")
    return None


def metadata_problems(metadata: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Each metadata entry gRPC would refuse, at its key (`("key",)` or `(0, "key")`)."""
    if metadata is None:
        return []
    maps = metadata if isinstance(metadata, list) else [metadata]
    found: list[tuple[tuple[str | int, ...], str]] = []
    for index, entries in enumerate(maps):
        if not isinstance(entries, Mapping):
            continue
        for key, value in entries.items():
            problem = _metadata_problem(str(key), value)
            if problem is not None:
                found.append(((index, str(key)) if isinstance(metadata, list) else (str(key),),
                              problem))
    return found


def build_metadata(metadata: Any, field: str = "metadata") -> list[Metadata]:
    """Call metadata from a map of strings, or a list of such maps used in turn.

    Keys are lower-cased (gRPC requires it); values of ``-bin`` keys are sent as bytes.
    """
    if metadata is None:
        return [()]
    maps: list[Any] = metadata if isinstance(metadata, list) else [metadata]
    if not maps:
        return [()]
    result: list[Metadata] = []
    for i, m in enumerate(maps):
        where = f"{field}[{i}]" if isinstance(metadata, list) else field
        if not isinstance(m, Mapping):
            raise InputError(f"{where}: expected a map of strings, got {type(m).__name__}")
        pairs: list[tuple[str, str | bytes]] = []
        for k, v in m.items():
            if not isinstance(k, str) or not k:
                raise InputError(f"{where}: keys must be non-empty strings")
            key = k.lower()
            problem = _metadata_problem(k, v)
            if problem is not None:
                raise InputError(f"{where}.{k}: {problem}")
            value = v if isinstance(v, str) else json.dumps(v)
            pairs.append((key, value.encode() if key.endswith("-bin") else value))
        result.append(tuple(pairs))
    return result
