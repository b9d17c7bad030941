"""Run-time gRPC descriptors: the shipped V2 proto, call names, JSON data and metadata."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from canarist.backends.loadgen import grpc_schema as gs
from canarist.core.errors import InputError
from canarist.core.extras import MissingExtra

IRIS = {
    "model_name": "sklearn-iris",
    "inputs": [
        {
            "name": "input-0",
            "shape": [2, 4],
            "datatype": "FP32",
            "contents": {"fp32_contents": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]},
        }
    ],
}


@pytest.fixture(scope="module")
def pool() -> descriptor_pool.DescriptorPool:
    return gs.descriptor_pool_from_proto(gs.SHIPPED_INFERENCE_PROTO)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("inference.GRPCInferenceService.ModelInfer", ("inference.GRPCInferenceService", "ModelInfer")),
        ("inference.GRPCInferenceService/ModelInfer", ("inference.GRPCInferenceService", "ModelInfer")),
        ("/inference.GRPCInferenceService/ModelInfer", ("inference.GRPCInferenceService", "ModelInfer")),
        ("Svc.M", ("Svc", "M")),
    ],
)
def test_parse_call(call: str, expected: tuple[str, str]) -> None:
    assert gs.parse_call(call) == expected


@pytest.mark.parametrize("call", ["", "ModelInfer", "a/b/", "/M", "a b.C", "pkg.Svc/Meth.od"])
def test_parse_call_rejects(call: str) -> None:
    with pytest.raises(InputError, match=r"^call: "):
        gs.parse_call(call)


def test_default_proto_only_for_the_inference_service() -> None:
    assert gs.default_proto_for("inference.GRPCInferenceService.ModelInfer") == (gs.SHIPPED_INFERENCE_PROTO)
    assert gs.default_proto_for("inference.GRPCInferenceService/ServerReady") is not None
    assert gs.default_proto_for("other.Service/ModelInfer") is None
    assert gs.SHIPPED_INFERENCE_PROTO.is_file()


def test_shipped_proto_has_the_full_service(pool: descriptor_pool.DescriptorPool) -> None:
    svc = pool.FindServiceByName("inference.GRPCInferenceService")
    assert sorted(svc.methods_by_name) == sorted(
        ["ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"]
    )
    for m in svc.methods:
        assert not m.client_streaming and not m.server_streaming
        assert m.input_type.full_name == f"inference.{m.name}Request"
        assert m.output_type.full_name == f"inference.{m.name}Response"


def _numbers(pool: descriptor_pool.DescriptorPool, message: str) -> dict[str, int]:
    return {f.name: f.number for f in pool.FindMessageTypeByName(message).fields}


def test_shipped_proto_field_numbers_match_the_protocol(
    pool: descriptor_pool.DescriptorPool,
) -> None:
    assert _numbers(pool, "inference.ModelInferRequest") == {
        "model_name": 1,
        "model_version": 2,
        "id": 3,
        "parameters": 4,
        "inputs": 5,
        "outputs": 6,
        "raw_input_contents": 7,
    }
    assert _numbers(pool, "inference.ModelInferResponse") == {
        "model_name": 1,
        "model_version": 2,
        "id": 3,
        "parameters": 4,
        "outputs": 5,
        "raw_output_contents": 6,
    }
    assert _numbers(pool, "inference.ModelInferRequest.InferInputTensor") == {
        "name": 1,
        "datatype": 2,
        "shape": 3,
        "parameters": 4,
        "contents": 5,
    }
    assert _numbers(pool, "inference.ModelInferRequest.InferRequestedOutputTensor") == {
        "name": 1,
        "parameters": 2,
    }
    assert _numbers(pool, "inference.InferTensorContents") == {
        "bool_contents": 1,
        "int_contents": 2,
        "int64_contents": 3,
        "uint_contents": 4,
        "uint64_contents": 5,
        "fp32_contents": 6,
        "fp64_contents": 7,
        "bytes_contents": 8,
    }
    assert _numbers(pool, "inference.InferParameter") == {
        "bool_param": 1,
        "int64_param": 2,
        "string_param": 3,
        "double_param": 4,
        "uint64_param": 5,
    }
    assert _numbers(pool, "inference.ModelMetadataResponse") == {
        "name": 1,
        "versions": 2,
        "platform": 3,
        "inputs": 4,
        "outputs": 5,
    }
    assert _numbers(pool, "inference.ModelMetadataResponse.TensorMetadata") == {
        "name": 1,
        "datatype": 2,
        "shape": 3,
    }
    assert _numbers(pool, "inference.ServerMetadataResponse") == {
        "name": 1,
        "version": 2,
        "extensions": 3,
    }
    assert _numbers(pool, "inference.ModelReadyRequest") == {"name": 1, "version": 2}
    assert _numbers(pool, "inference.ModelMetadataRequest") == {"name": 1, "version": 2}
    assert _numbers(pool, "inference.ServerLiveResponse") == {"live": 1}
    assert _numbers(pool, "inference.ServerReadyResponse") == {"ready": 1}
    assert _numbers(pool, "inference.ModelReadyResponse") == {"ready": 1}


def test_iris_request_encodes_like_the_protocol() -> None:
    schema = gs.load_method_from_proto(
        gs.SHIPPED_INFERENCE_PROTO, "inference.GRPCInferenceService.ModelInfer"
    )
    assert schema.path == "/inference.GRPCInferenceService/ModelInfer"
    [msg] = gs.build_requests(schema, IRIS)
    raw = msg.SerializeToString()
    # field 1 (model_name), length-delimited: tag 0x0a
    assert raw.startswith(b"\x0a\x0csklearn-iris")
    again = schema.request_class.FromString(raw)
    assert list(again.inputs[0].shape) == [2, 4]  # type: ignore[attr-defined]
    assert len(again.inputs[0].contents.fp32_contents) == 8  # type: ignore[attr-defined]


def test_json_names_are_accepted_too() -> None:
    schema = gs.load_method_from_proto(
        gs.SHIPPED_INFERENCE_PROTO, "inference.GRPCInferenceService/ModelReady"
    )
    [a] = gs.build_requests(schema, {"name": "m", "version": "2"})
    schema2 = gs.load_method_from_proto(
        gs.SHIPPED_INFERENCE_PROTO, "inference.GRPCInferenceService/ModelInfer"
    )
    [b] = gs.build_requests(schema2, {"modelName": "m"})
    assert a.name == "m"  # type: ignore[attr-defined]
    assert b.model_name == "m"  # type: ignore[attr-defined]


def test_data_list_gives_one_message_each_and_none_gives_an_empty_one() -> None:
    schema = gs.load_method_from_proto(
        gs.SHIPPED_INFERENCE_PROTO, "inference.GRPCInferenceService/ModelReady"
    )
    msgs = gs.build_requests(schema, [{"name": "a"}, {"name": "b"}, {"name": "c"}])
    assert [m.name for m in msgs] == ["a", "b", "c"]  # type: ignore[attr-defined]
    [empty] = gs.build_requests(schema, None)
    assert empty.SerializeToString() == b""


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"nmae": "x"}, r"^data: not a valid inference.ModelReadyRequest: .*nmae"),
        ([{"name": "a"}, {"name": 3.5}], r"^data\[1\]: not a valid"),
        ([{"name": "a"}, "b"], r"^data\[1\]: expected a JSON object"),
        ("text", r"^data: expected a JSON object or a list of objects"),
        ([], r"^data: the list of messages is empty"),
    ],
)
def test_bad_data_is_an_input_error(data: object, pattern: str) -> None:
    schema = gs.load_method_from_proto(
        gs.SHIPPED_INFERENCE_PROTO, "inference.GRPCInferenceService/ModelReady"
    )
    with pytest.raises(InputError, match=pattern) as err:
        gs.build_requests(schema, data)
    assert "\n" not in str(err.value)


def test_unknown_method_and_service() -> None:
    with pytest.raises(InputError, match=r"^call: method 'Predict' not found .*ModelInfer"):
        gs.load_method_from_proto(gs.SHIPPED_INFERENCE_PROTO, "inference.GRPCInferenceService/Predict")
    with pytest.raises(InputError, match=r"^call: service 'inference.Nope' not found"):
        gs.load_method_from_proto(gs.SHIPPED_INFERENCE_PROTO, "inference.Nope/ModelInfer")


def test_bad_and_missing_proto(tmp_path: Path) -> None:
    bad = tmp_path / "bad.proto"
    bad.write_text('syntax = "proto3";\nmessage A { int32 x = 1 }\n')
    with pytest.raises(InputError, match=r"^proto: .*bad.proto:2:\d+: ") as err:
        gs.load_method_from_proto(bad, "A.S/M")
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"^proto: file not found: .*nope.proto"):
        gs.load_method_from_proto(tmp_path / "nope.proto", "A.S/M")
    with pytest.raises(InputError, match=r"^import-paths: not a directory"):
        gs.load_method_from_proto(bad, "A.S/M", [tmp_path / "nodir"])


def test_missing_import_is_an_input_error(tmp_path: Path) -> None:
    p = tmp_path / "svc.proto"
    p.write_text('syntax = "proto3";\nimport "other/msgs.proto";\n')
    with pytest.raises(InputError, match=r"^proto: .*other/msgs.proto"):
        gs.load_method_from_proto(p, "a.S/M")


def test_imports_resolve_through_import_paths_and_well_known_types(tmp_path: Path) -> None:
    lib = tmp_path / "lib" / "shop"
    lib.mkdir(parents=True)
    (lib / "items.proto").write_text(
        'syntax = "proto3";\npackage shop;\nimport "google/protobuf/timestamp.proto";\n'
        "message Item { string sku = 1; google.protobuf.Timestamp at = 2; }\n"
    )
    svc_dir = tmp_path / "svc"
    svc_dir.mkdir()
    (svc_dir / "svc.proto").write_text(
        'syntax = "proto3";\npackage shop;\nimport "shop/items.proto";\n'
        "service Store { rpc Get(Item) returns (Item); rpc Watch(Item) returns (stream Item); }\n"
    )
    schema = gs.load_method_from_proto(svc_dir / "svc.proto", "shop.Store.Get", [tmp_path / "lib"])
    [msg] = gs.build_requests(schema, {"sku": "x1", "at": "2024-01-02T03:04:05Z"})
    assert msg.at.seconds == 1704164645  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="streaming method"):
        gs.load_method_from_proto(svc_dir / "svc.proto", "shop.Store.Watch", [tmp_path / "lib"])


def test_compile_is_cached() -> None:
    a = gs.compile_proto(gs.SHIPPED_INFERENCE_PROTO)
    b = gs.compile_proto(gs.SHIPPED_INFERENCE_PROTO)
    assert a is b


def test_the_shipped_descriptors_are_the_shipped_proto_compiled(tmp_path: Path) -> None:
    copy = tmp_path / "inference.proto"  # not the shipped file: compiled by protoc
    copy.write_bytes(gs.SHIPPED_INFERENCE_PROTO.read_bytes())
    compiled = gs.compile_proto(copy)
    assert gs.compile_proto(copy) is compiled
    shipped = descriptor_pb2.FileDescriptorSet.FromString(gs.SHIPPED_INFERENCE_DESCRIPTORS.read_bytes())
    assert [f.name for f in shipped.file] == ["inference.proto"]
    assert shipped == compiled, (
        "proto/inference.binpb is stale; regenerate it in src/canarist/backends/loadgen/proto with: "
        "python -m grpc_tools.protoc --proto_path=. --include_imports "
        "--descriptor_set_out=inference.binpb inference.proto")


def test_without_grpcio_tools_the_shipped_proto_loads_and_a_users_proto_names_the_extra(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "grpc_tools", None)  # as if canarist[proto] were not installed
    schema = gs.load_method_from_proto(gs.SHIPPED_INFERENCE_PROTO,
                                       "inference.GRPCInferenceService/ModelInfer")
    assert schema.path == "/inference.GRPCInferenceService/ModelInfer"
    assert schema.request_class.DESCRIPTOR.full_name == "inference.ModelInferRequest"
    user = tmp_path / "echo.proto"
    user.write_text('syntax = "proto3";\npackage echo;\nmessage M { string s = 1; }\n'
                    "service E { rpc Say(M) returns (M); }\n")
    with pytest.raises(MissingExtra) as caught:
        gs.load_method_from_proto(user, "echo.E.Say")
    assert caught.value.exit_code == 2
    assert caught.value.message == (
        f"proto: compiling {user} needs canarist[proto], which is not installed (no module "
        "'grpc_tools'); install it with: pip install 'canarist[proto]'")


def test_metadata() -> None:
    assert gs.build_metadata(None) == [()]
    assert gs.build_metadata({"X-Token": "abc", "n": 3, "trace-bin": "zz"}) == [
        (("x-token", "abc"), ("n", "3"), ("trace-bin", b"zz"))
    ]
    assert gs.build_metadata([{"a": "1"}, {"a": "2"}]) == [(("a", "1"),), (("a", "2"),)]
    with pytest.raises(InputError, match=r"^metadata: expected a map of strings"):
        gs.build_metadata("a=b")
    with pytest.raises(InputError, match=r"^metadata\.a b: not a valid gRPC metadata key"):
        gs.build_metadata({"a b": "x"})
    with pytest.raises(InputError, match=r"^metadata\.k: expected a string"):
        gs.build_metadata({"k": {"nested": 1}})


def test_data_file(tmp_path: Path) -> None:
    f = tmp_path / "d.json"
    f.write_text('[{"name": "a"}]')
    assert gs.load_data_file(f) == [{"name": "a"}]
    f.write_text("{nope")
    with pytest.raises(InputError, match=r"^data-file: .*d.json is not JSON"):
        gs.load_data_file(f)
    with pytest.raises(InputError, match=r"^data-file: cannot read"):
        gs.load_data_file(tmp_path / "missing.json")
