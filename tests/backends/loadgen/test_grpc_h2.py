"""The h2 engine (canarist's own HTTP/2 gRPC client) against grpcio's server: what it must
share with the grpc.aio engine, and the HTTP/2 it has to get right on its own."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.servers.grpc_v2_server import ThreadedV2Server

from canarist.backends.loadgen.grpc import GrpcLoadSpec, h2_unsupported, run_grpc_load
from canarist.backends.loadgen.recorder import LoadResult
from canarist.core.errors import InputError

INFER = "inference.GRPCInferenceService/ModelInfer"
OK, CANCELLED, DEADLINE = 1000, 1001, 1004
NOT_FOUND, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE = 1005, 1008, 1013, 1014


def infer(model: str) -> dict[str, Any]:
    return {"model_name": model, "inputs": [{"name": "input-0", "shape": [1, 4],
                                             "datatype": "FP32",
                                             "contents": {"fp32_contents": [6.8, 2.8, 4.8, 1.4]}}]}


def run(spec: GrpcLoadSpec) -> LoadResult:
    return asyncio.run(run_grpc_load(spec))


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedV2Server]:
    with ThreadedV2Server() as srv:
        yield srv


def test_auto_picks_h2_for_cleartext_and_aio_for_tls() -> None:
    assert h2_unsupported(GrpcLoadSpec(host="127.0.0.1:1", call=INFER)) is None
    assert h2_unsupported(GrpcLoadSpec(host="dns:///localhost:1", call=INFER)) is None
    assert h2_unsupported(GrpcLoadSpec(host="[::1]:1", call=INFER)) is None
    assert h2_unsupported(GrpcLoadSpec(host="h:1", call=INFER, insecure=False)) == "does not do TLS"
    assert "cannot dial" in str(h2_unsupported(GrpcLoadSpec(host="unix:/tmp/s", call=INFER)))
    with pytest.raises(InputError, match=r"^engine: h2 does not do TLS; use aio"):
        GrpcLoadSpec(host="h:1", call=INFER, insecure=False, engine="h2")
    with pytest.raises(InputError, match=r"^engine: expected auto, h2 or aio, got 'fast'"):
        GrpcLoadSpec(host="h:1", call=INFER, engine="fast")  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ["h2", "aio"])
def test_both_engines_record_the_same(server: ThreadedV2Server, engine: str) -> None:
    data = [infer("ok"), infer("error-unavailable"), infer("missing-model"), infer("every-2-internal")]
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=data, total=80, concurrency=4,
                         engine=engine))  # type: ignore[arg-type]
    assert r.status_counts == {OK: 30, NOT_FOUND: 20, INTERNAL: 10, UNAVAILABLE: 20}
    assert sorted(r.error_kinds()) == [("INTERNAL", 10, "every-2-internal"),
                                       ("NOT_FOUND", 20, "model missing-model not found"),
                                       ("UNAVAILABLE", 20, "error-unavailable")]
    assert r.latency.count == 30


@pytest.mark.parametrize("engine", ["h2", "aio"])
def test_response_larger_than_the_limit(server: ThreadedV2Server, engine: str) -> None:
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("ok"), total=6,
                         concurrency=2, max_recv_message_size=8, engine=engine))  # type: ignore[arg-type]
    assert r.status_counts == {RESOURCE_EXHAUSTED: 6}
    [(_, _, message)] = r.error_kinds()
    assert "larger than max" in message
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("ok"), total=4,
                         concurrency=2, max_send_message_size=8, engine=engine))  # type: ignore[arg-type]
    assert r.status_counts == {RESOURCE_EXHAUSTED: 4}


def test_large_and_binary_metadata() -> None:
    # a 40 kB value does not fit one 16 kB frame: HEADERS + CONTINUATION
    big = "x" * 40_000
    with ThreadedV2Server(options=(("grpc.max_metadata_size", 1 << 20),)) as srv:
        r = run(GrpcLoadSpec(host=srv.address, call=INFER, data=infer("ok"), total=5,
                             concurrency=1, metadata={"x-big": big, "trace-bin": "hi"},
                             engine="h2"))
        assert r.status_counts == {OK: 5}
        assert srv.stats.metadata[0]["x-big"] == big
        assert srv.stats.metadata[0]["trace-bin"] == str(b"hi")
        assert srv.stats.metadata[0]["user-agent"].startswith("canarist-grpc")


def test_max_concurrent_streams_is_honoured() -> None:
    with ThreadedV2Server(options=(("grpc.max_concurrent_streams", 2),)) as srv:
        t = time.perf_counter()
        r = run(GrpcLoadSpec(host=srv.address, call=INFER, data=infer("delay-20"), total=24,
                             concurrency=8, engine="h2"))
        elapsed = time.perf_counter() - t
        assert srv.stats.max_in_flight == 2
        # grpcio's server refuses (REFUSED_STREAM) a stream opened right after the previous
        # one's trailers now and then, although the count is within its limit; grpcio's own
        # client, retries disabled, sees as many. Without queueing, six of every eight would.
        assert set(r.status_counts) <= {OK, UNAVAILABLE}
        assert r.status_counts[OK] >= 6
        assert elapsed >= r.status_counts[OK] / 2 * 0.020


def test_goaway_moves_calls_to_a_new_connection() -> None:
    options = (("grpc.max_connection_age_ms", 300), ("grpc.max_connection_age_grace_ms", 1000))
    with ThreadedV2Server(options=options) as srv:
        r = run(GrpcLoadSpec(host=srv.address, call=INFER, data=infer("delay-2"),
                             duration_s=1.5, concurrency=4, duration_stop="wait", engine="h2"))
        assert r.status_counts.get(OK, 0) > 100
        assert set(r.status_counts) <= {OK, UNAVAILABLE}
        assert r.status_counts.get(UNAVAILABLE, 0) <= 4 * len(srv.stats.peers)
        # the server closed connections every 300 ms; the load went on over new ones
        assert len(srv.stats.peers) >= 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_restarted_server_gets_the_load_back() -> None:
    port = _free_port()
    first = ThreadedV2Server(port=port).start()
    second: list[ThreadedV2Server] = []

    def restart() -> None:
        time.sleep(0.5)
        first.stop()
        time.sleep(0.3)
        second.append(ThreadedV2Server(port=port).start())

    mover = threading.Thread(target=restart)
    mover.start()
    try:
        r = run(GrpcLoadSpec(host=f"127.0.0.1:{port}", call=INFER, data=infer("delay-2"),
                             duration_s=2.0, concurrency=2, duration_stop="wait", engine="h2"))
    finally:
        mover.join()
        for srv in second:
            srv.stop()
    assert second and second[0].stats.total_calls > 20
    assert r.status_counts.get(OK, 0) > first.stats.total_calls - 2 > 20
    assert set(r.status_counts) <= {OK, UNAVAILABLE, CANCELLED}
    assert r.status_counts.get(UNAVAILABLE, 0) > 0
    # a failed reconnect spends one call and backs off (2-100 ms): a bounded count
    assert r.status_counts.get(UNAVAILABLE, 0) < 200
    message = dict((n, m) for n, _, m in r.error_kinds())["UNAVAILABLE"]
    assert message


def test_calls_queued_for_a_stream_have_the_same_deadline() -> None:
    with ThreadedV2Server(options=(("grpc.max_concurrent_streams", 1),)) as srv:
        t = time.perf_counter()
        r = run(GrpcLoadSpec(host=srv.address, call=INFER, data=infer("hang"), total=4,
                             concurrency=4, timeout_s=0.3, engine="h2"))
        elapsed = time.perf_counter() - t
    # one call on the wire, three queued behind it: all four end at their own deadline,
    # not one after the other
    assert r.status_counts == {DEADLINE: 4}
    assert elapsed < 1.1
