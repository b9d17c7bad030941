"""The gRPC load generator against a real KServe ModelServer (scikit-learn iris model)."""

from __future__ import annotations

import asyncio
import copy
import json
import urllib.request
from typing import Any

import grpc
import pytest
from tests.servers.kserve_fixture import IRIS_V2_GRPC_REQUEST, KServeServer, kserve_server

from canarist.backends.loadgen.grpc import GrpcLoadSpec, run_grpc_load
from canarist.backends.loadgen.grpc_schema import (
    SHIPPED_INFERENCE_PROTO,
    build_requests,
    load_method_from_proto,
)

__all__ = ["kserve_server"]  # the fixture, imported so that pytest finds it

pytestmark = pytest.mark.slow

INFER = "inference.GRPCInferenceService.ModelInfer"


def test_model_infer_with_the_shipped_proto_has_no_errors(kserve_server: KServeServer) -> None:
    spec = GrpcLoadSpec(
        host=kserve_server.grpc_address,
        call=INFER,
        data=IRIS_V2_GRPC_REQUEST,
        total=200,
        concurrency=8,
    )
    assert spec.proto is None  # the shipped proto is used for the inference service
    r = asyncio.run(run_grpc_load(spec))
    assert r.request_count == 200
    assert r.status_counts == {1000: 200}
    assert r.errors == 0
    assert r.latency.count == 200 and r.latency.max_ms < 20_000
    assert 0 < r.latency.min_ms <= r.latency.percentile(50) <= r.latency.max_ms


def test_the_shipped_proto_decodes_kserve_predictions(kserve_server: KServeServer) -> None:
    schema = load_method_from_proto(SHIPPED_INFERENCE_PROTO, INFER)
    [request] = build_requests(schema, IRIS_V2_GRPC_REQUEST)

    async def call() -> Any:
        async with grpc.aio.insecure_channel(kserve_server.grpc_address) as channel:
            infer = channel.unary_unary(
                schema.path,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=schema.response_class.FromString,
            )
            return await infer(request, timeout=20)

    response = asyncio.run(call())
    assert response.model_name == kserve_server.model_name
    [output] = response.outputs
    if response.raw_output_contents:
        values = list(
            int.from_bytes(response.raw_output_contents[0][i : i + 8], "little", signed=True)
            for i in range(0, len(response.raw_output_contents[0]), 8)
        )
    else:
        values = list(output.contents.int64_contents)
    # the two iris rows are versicolor (class 1)
    assert values == [1, 1]
    assert list(output.shape) == [2]


def test_health_rpcs_and_errors(kserve_server: KServeServer) -> None:
    base: dict[str, Any] = {"host": kserve_server.grpc_address, "total": 20, "concurrency": 4}
    ready = asyncio.run(
        run_grpc_load(
            GrpcLoadSpec(
                call="inference.GRPCInferenceService/ModelReady",
                data={"name": kserve_server.model_name},
                **base,
            )
        )
    )
    assert ready.status_counts == {1000: 20}
    live = asyncio.run(run_grpc_load(GrpcLoadSpec(call="inference.GRPCInferenceService/ServerLive", **base)))
    assert live.status_counts == {1000: 20}
    wrong = copy.deepcopy(IRIS_V2_GRPC_REQUEST)
    wrong["model_name"] = "no-such-model"
    missing = asyncio.run(run_grpc_load(GrpcLoadSpec(call=INFER, data=wrong, **base)))
    assert missing.request_count == 20
    assert missing.errors == 20
    assert 1000 not in missing.status_counts


def test_rest_endpoints_answer(kserve_server: KServeServer) -> None:
    request = urllib.request.Request(
        f"{kserve_server.http_url}/v1/models/{kserve_server.model_name}:predict",
        data=json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert json.loads(resp.read()) == {"predictions": [1, 1]}
