"""The gRPC load generator against the V2 test server (tests/servers/grpc_v2_server.py)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import require, stop_process
from tests.servers.grpc_v2_server import ECHO_PROTO, ThreadedV2Server

from canarist.backends.loadgen.grpc import GrpcLoadSpec, run_grpc_load
from canarist.backends.loadgen.grpc_schema import SHIPPED_INFERENCE_PROTO
from canarist.backends.loadgen.recorder import LoadResult, ProgressSnapshot
from canarist.core.errors import InputError, UnavailableError

INFER = "inference.GRPCInferenceService/ModelInfer"
OK, CANCELLED, DEADLINE = 1000, 1001, 1004
NOT_FOUND, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE = 1005, 1008, 1013, 1014
SERVER_SCRIPT = Path(__file__).resolve().parents[2] / "servers" / "grpc_v2_server.py"


def infer(model: str, rows: int = 2) -> dict[str, Any]:
    return {
        "model_name": model,
        "inputs": [
            {
                "name": "input-0",
                "shape": [rows, 4],
                "datatype": "FP32",
                "contents": {"fp32_contents": [6.8, 2.8, 4.8, 1.4] * rows},
            }
        ],
    }


def run(spec: GrpcLoadSpec, **kw: Any) -> LoadResult:
    return asyncio.run(run_grpc_load(spec, **kw))


@pytest.fixture(scope="module")
def _server() -> Iterator[ThreadedV2Server]:
    with ThreadedV2Server() as srv:
        yield srv


@pytest.fixture
def server(_server: ThreadedV2Server) -> ThreadedV2Server:
    _server.stats.reset()
    return _server


@pytest.fixture(scope="module")
def subprocess_server() -> Iterator[str]:
    """The V2 server in its own process (own GIL), for timing-sensitive tests."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(30)
        if not line or not line[0].startswith(b"PORT "):
            raise RuntimeError(f"the V2 test server did not start: {line!r}")
        yield f"127.0.0.1:{int(line[0].split()[1])}"
    finally:
        stop_process(proc)


# ---------------------------------------------------------------- counts and concurrency


def test_total_is_exact(server: ThreadedV2Server) -> None:
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("iris"), total=537,
                         concurrency=13))  # fmt: skip
    assert r.request_count == 537
    assert r.status_counts == {OK: 537}
    assert r.errors == 0
    assert r.error_rate == 0.0
    assert r.latency.count == r.service_time.count == 537
    assert server.stats.total_calls == 537


def test_defaults_follow_ghz() -> None:
    spec = GrpcLoadSpec(host="127.0.0.1:1", call=INFER)
    assert (spec.total, spec.concurrency, spec.connections, spec.rps) == (200, 50, 1, 0)
    assert (spec.timeout_s, spec.connect_timeout_s, spec.insecure) == (20.0, 10.0, True)
    assert spec.duration_s is None and spec.duration_stop == "close"
    assert GrpcLoadSpec(host="h:1", call=INFER, connect_timeout_s=0).effective_connect_timeout_s == 10


def test_concurrency_is_honoured(server: ThreadedV2Server) -> None:
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("delay-30"), total=64,
                         concurrency=8))  # fmt: skip
    assert r.request_count == 64 and r.errors == 0
    assert server.stats.max_in_flight == 8  # never more at once: 8 rounds of 30 ms at least
    assert r.latency.min_ms >= 30.0


def test_connections_are_separate(server: ThreadedV2Server) -> None:
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("delay-5"), total=60,
                         concurrency=6, connections=3))  # fmt: skip
    assert r.request_count == 60 and r.errors == 0
    assert len(server.stats.peers) == 3


def test_data_and_metadata_lists_are_used_in_turn(server: ThreadedV2Server) -> None:
    server.stats.keep_metadata = 100
    r = run(GrpcLoadSpec(host=server.address, call=INFER,
                         data=[infer("a"), infer("b"), infer("c")], total=30, concurrency=1,
                         metadata=[{"X-Tenant": "t1"}, {"X-Tenant": "t2"}]))  # fmt: skip
    assert r.request_count == 30 and r.errors == 0
    assert server.stats.calls == {"a": 10, "b": 10, "c": 10}
    tenants = [m.get("x-tenant") for m in server.stats.metadata]
    assert tenants[:4] == ["t1", "t2", "t1", "t2"]


# ---------------------------------------------------------------- errors


def test_errors_are_classified_by_status_code(server: ThreadedV2Server) -> None:
    data = [infer("ok"), infer("error-unavailable"), infer("missing-model"),
            infer("error-resource_exhausted")]  # fmt: skip
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=data, total=40, concurrency=4))
    assert r.request_count == 40
    assert r.status_counts == {OK: 10, NOT_FOUND: 10, RESOURCE_EXHAUSTED: 10, UNAVAILABLE: 10}
    assert r.errors == 30
    assert r.error_rate == pytest.approx(0.75)
    # the first message of each failing status, by name; latencies of successes only
    assert r.error_kinds() == [("NOT_FOUND", 10, "model missing-model not found"),
                               ("RESOURCE_EXHAUSTED", 10, "error-resource_exhausted"),
                               ("UNAVAILABLE", 10, "error-unavailable")]
    assert r.latency.count == r.service_time.count == 10


def test_some_calls_fail(server: ThreadedV2Server) -> None:
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("every-4-internal"),
                         total=100, concurrency=5))  # fmt: skip
    assert r.status_counts == {OK: 75, INTERNAL: 25}
    assert r.errors == 25
    assert r.latency.count == 75
    assert r.error_kinds() == [("INTERNAL", 25, "every-4-internal")]


def test_deadline_exceeded_is_an_error(server: ThreadedV2Server) -> None:
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("hang"), total=6,
                         concurrency=3, timeout_s=0.2))  # fmt: skip
    assert r.status_counts == {DEADLINE: 6}
    assert r.errors == 6
    # each call ended by its 0.2 s deadline: DEADLINE_EXCEEDED, never a hang
    assert r.duration_s < 30  # a hang guard
    assert r.latency.count == 0
    [(name, count, message)] = r.error_kinds()
    assert (name, count) == ("DEADLINE_EXCEEDED", 6) and "Deadline Exceeded" in message


# ---------------------------------------------------------------- duration


def test_duration_is_honoured_when_the_server_hangs(server: ThreadedV2Server) -> None:
    t = time.perf_counter()
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("hang"), duration_s=1.0,
                         concurrency=4))  # fmt: skip
    elapsed = time.perf_counter() - t
    assert elapsed < 30  # a hang guard; when a timed run stops: test_grpc_schedule.py
    # in-flight calls are cancelled at the end and counted as errors (ghz "close")
    assert r.status_counts == {CANCELLED: 4}
    assert r.errors == 4
    assert r.error_kinds() == [
        ("CANCELLED", 4, "call still in flight when the duration ended (duration-stop: close)")]


def test_duration_stop_ignore_and_wait(server: ThreadedV2Server) -> None:
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("hang"), duration_s=0.5,
                         concurrency=3, duration_stop="ignore"))  # fmt: skip
    assert r.request_count == 0 and r.latency.count == 0
    t = time.perf_counter()
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("hang"), duration_s=0.3,
                         concurrency=3, duration_stop="wait", timeout_s=0.8))  # fmt: skip
    assert r.status_counts == {DEADLINE: 3}  # waited for: each ended by its own deadline
    assert time.perf_counter() - t < 30  # a hang guard


def test_duration_ignores_total(server: ThreadedV2Server) -> None:
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("delay-5"), total=10,
                         duration_s=1.0, concurrency=4))  # fmt: skip
    assert r.request_count > 10
    assert r.request_count <= 4 * 1.0 / 0.005 + 4
    assert r.duration_s < 30  # a hang guard; when a timed run stops: test_grpc_schedule.py
    # only the calls in flight at the end fail: cancelled (ghz's duration-stop "close")
    assert set(r.status_counts) <= {OK, CANCELLED}
    assert r.errors == r.status_counts.get(CANCELLED, 0) <= 4


# ---------------------------------------------------------------- open loop


def test_rps_is_accurate(subprocess_server: str) -> None:
    r = run(GrpcLoadSpec(host=subprocess_server, call=INFER, data=infer("delay-2"), rps=100,
                         duration_s=2.0, concurrency=10))  # fmt: skip
    assert 180 <= r.request_count <= 201
    # never ahead of the schedule (its timing on a virtual clock: test_grpc_schedule.py)
    assert r.achieved_rate <= 200 / 1.98
    # A call still in flight when the duration ends is cut off (ghz's duration-stop: close);
    # on a busy machine one may be. Nothing else may fail.
    assert set(r.status_counts) <= {1000, 1001} and r.status_counts.get(1001, 0) <= 2
    assert r.dropped == 0


def test_rps_with_total(subprocess_server: str) -> None:
    r = run(GrpcLoadSpec(host=subprocess_server, call=INFER, data=infer("ok"), rps=50,
                         total=25, concurrency=5))  # fmt: skip
    assert r.request_count == 25
    # the 25th call is due 24/50 s after the first, and not sent sooner
    assert r.achieved_rate <= 25 / 0.47
    assert r.duration_s < 30  # a hang guard


def test_open_loop_corrects_coordinated_omission(subprocess_server: str) -> None:
    # one worker, 50 ms per call: at most 20 calls/s against 100 asked for
    r = run(GrpcLoadSpec(host=subprocess_server, call=INFER, data=infer("delay-50"), rps=100,
                         duration_s=1.0, concurrency=1, duration_stop="wait"))  # fmt: skip
    assert 8 <= r.request_count <= 22  # about 20 on an idle machine; fewer when it is busy
    assert r.dropped >= 70
    assert r.late_sends >= r.request_count - 2
    assert r.service_time.max_ms < 200
    # latency counts from the intended send time: the last calls waited most of the second
    assert r.latency.max_ms > 600
    assert r.latency.mean_ms > 3 * r.service_time.mean_ms


def test_latencies_have_microsecond_precision(subprocess_server: str) -> None:
    r = run(GrpcLoadSpec(host=subprocess_server, call=INFER, data=infer("ok"), total=300,
                         concurrency=2))  # fmt: skip
    assert r.errors == 0
    sub_ms = [v for v, _ in r.latency.values if v % 1000]
    assert len(sub_ms) > len(r.latency.values) // 2
    assert r.latency.min_ms != int(r.latency.min_ms) or r.latency.mean_ms != int(r.latency.mean_ms)
    assert r.latency.mean_ms < 50


# ---------------------------------------------------------------- descriptors


def test_reflection_path(server: ThreadedV2Server) -> None:
    r = run(GrpcLoadSpec(host=server.address, call="testing.Echo.Echo",
                         data={"text": "hi", "extra": {"k": [1, "two"]}}, total=20,
                         concurrency=2))  # fmt: skip
    assert r.request_count == 20 and r.errors == 0
    assert server.stats.calls == {"testing.Echo": 20}


def test_reflection_unknown_method_and_service(server: ThreadedV2Server) -> None:
    with pytest.raises(InputError, match=r"^call: method 'Shout' not found .*Echo"):
        run(GrpcLoadSpec(host=server.address, call="testing.Echo/Shout"))
    with pytest.raises(InputError, match=r"^call: service 'testing.Nope' not found on 127"):
        run(GrpcLoadSpec(host=server.address, call="testing.Nope/Echo"))
    with pytest.raises(InputError, match=r"^call: testing.Echo.Chat is a streaming method"):
        run(GrpcLoadSpec(host=server.address, call="testing.Echo/Chat"))
    with pytest.raises(InputError, match=r"^data: not a valid testing.EchoRequest"):
        run(GrpcLoadSpec(host=server.address, call="testing.Echo/Echo", data={"txt": 1}))
    assert server.stats.total_calls == 0


def test_reflection_unavailable() -> None:
    with ThreadedV2Server(reflection=False) as srv:
        with pytest.raises(InputError, match=r"^proto: .* does not serve gRPC reflection"):
            run(GrpcLoadSpec(host=srv.address, call="testing.Echo/Echo"))
        assert srv.stats.total_calls == 0


def test_explicit_proto_with_imports(server: ThreadedV2Server, tmp_path: Path) -> None:
    proto = tmp_path / "echo.proto"
    proto.write_text(ECHO_PROTO)
    r = run(GrpcLoadSpec(host=server.address, call="testing.Echo/Echo", proto=str(proto),
                         data={"text": "x", "extra": {"a": None}}, total=10,
                         concurrency=2))  # fmt: skip
    assert r.request_count == 10 and r.errors == 0


def test_shipped_proto_is_used_without_reflection() -> None:
    with ThreadedV2Server(reflection=False) as srv:
        r = run(GrpcLoadSpec(host=srv.address, call="inference.GRPCInferenceService.ServerReady",
                             total=5, concurrency=1))  # fmt: skip
        r2 = run(GrpcLoadSpec(host=srv.address, call=INFER, proto=str(SHIPPED_INFERENCE_PROTO),
                              data=infer("m"), total=5, concurrency=1))  # fmt: skip
    assert r.status_counts == {OK: 5} and r2.status_counts == {OK: 5}


def test_bad_input_fails_before_any_connection(tmp_path: Path) -> None:
    nowhere = "127.0.0.1:9"  # nothing listens; bad input must be reported first
    with pytest.raises(InputError, match=r"^call: method 'Predict' not found"):
        run(GrpcLoadSpec(host=nowhere, call="inference.GRPCInferenceService/Predict"))
    bad = tmp_path / "bad.proto"
    bad.write_text('syntax = "proto3";\nservice S { rpc M(A) returns (A); }\n')
    with pytest.raises(InputError, match=r"^proto: .*bad.proto:2:\d+: .*A"):
        run(GrpcLoadSpec(host=nowhere, call="S/M", proto=str(bad)))
    with pytest.raises(InputError, match=r"^proto: file not found"):
        run(GrpcLoadSpec(host=nowhere, call="S/M", proto=str(tmp_path / "missing.proto")))
    with pytest.raises(InputError, match=r"^data: not a valid inference.ModelInferRequest"):
        run(GrpcLoadSpec(host=nowhere, call=INFER, data={"model": "x"}))


def test_unreachable_host_is_unavailable() -> None:
    t = time.perf_counter()
    with pytest.raises(UnavailableError, match=r"^host: cannot connect to 127.0.0.1:9 within 0.5s"):
        run(GrpcLoadSpec(host="127.0.0.1:9", call=INFER, connect_timeout_s=0.5))
    assert time.perf_counter() - t < 3.0
    with pytest.raises(UnavailableError, match=r"^host: cannot connect"):
        run(GrpcLoadSpec(host="127.0.0.1:9", call="testing.Echo/Echo", connect_timeout_s=0.3))


# ---------------------------------------------------------------- inputs


def test_data_file_binary_file_and_metadata_file(server: ThreadedV2Server, tmp_path: Path) -> None:
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps([infer("f1"), infer("f2")]))
    md_file = tmp_path / "md.json"
    md_file.write_text('{"authorization": "Bearer t"}')
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data_file=str(data_file),
                         metadata_file=str(md_file), total=10, concurrency=2))  # fmt: skip
    assert r.status_counts == {OK: 10}
    assert server.stats.calls == {"f1": 5, "f2": 5}
    assert server.stats.metadata[0]["authorization"] == "Bearer t"

    from canarist.backends.loadgen.grpc_schema import build_requests, load_method_from_proto

    schema = load_method_from_proto(SHIPPED_INFERENCE_PROTO, INFER)
    binary = tmp_path / "req.bin"
    binary.write_bytes(build_requests(schema, infer("bin"))[0].SerializeToString())
    r = run(GrpcLoadSpec(host=server.address, call=INFER, binary_file=str(binary), total=4,
                         concurrency=1))  # fmt: skip
    assert r.status_counts == {OK: 4}
    assert server.stats.calls["bin"] == 4
    binary.write_bytes(b"\xff\xff\xff")
    with pytest.raises(InputError, match=r"^binary-file: .* is not a serialized"):
        run(GrpcLoadSpec(host=server.address, call=INFER, binary_file=str(binary)))


def test_skip_first(server: ThreadedV2Server) -> None:
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("ok"), total=50,
                         concurrency=2, skip_first=10))  # fmt: skip
    assert r.request_count == 40
    assert server.stats.total_calls == 50


def test_progress_is_reported(server: ThreadedV2Server) -> None:
    seen: list[ProgressSnapshot] = []
    r = run(GrpcLoadSpec(host=server.address, call=INFER, data=infer("every-10-internal"),
                         duration_s=1.0, concurrency=2, progress_interval_s=0.2),
            on_progress=seen.append)  # fmt: skip
    assert len(seen) >= 4
    counts = [s.request_count for s in seen]
    assert counts == sorted(counts)
    assert seen[-1].request_count == r.request_count
    assert seen[-1].error_count == r.errors > 0


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"total": 0}, r"^total: must be an integer >= 1"),
        ({"concurrency": 2, "connections": 3}, r"^connections: 3 is more than concurrency 2"),
        ({"rps": -1}, r"^rps: must be a number >= 0"),
        ({"timeout_s": float("nan")}, r"^timeout: "),
        ({"duration_s": 0}, r"^duration: must be > 0"),
        ({"duration_stop": "later"}, r"^duration-stop: "),
        ({"data": {}, "data_file": "x.json"}, r"^data-file: cannot be combined with data"),
        ({"metadata": {}, "metadata_file": "m.json"}, r"^metadata-file: cannot be combined"),
        ({"tls_cert_file": "c.pem"}, r"^cert: "),
        ({"call": "nope"}, r"^call: expected"),
        ({"host": ""}, r"^host: required"),
    ],
)
def test_spec_validation(kwargs: dict[str, Any], pattern: str) -> None:
    args: dict[str, Any] = {"host": "127.0.0.1:1", "call": INFER, **kwargs}
    with pytest.raises(InputError, match=pattern):
        GrpcLoadSpec(**args)


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    require(openssl is not None, "openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=canarist-test", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with ThreadedV2Server(tls=(key.read_bytes(), cert.read_bytes())) as srv:
        base: dict[str, Any] = {"host": srv.address, "call": INFER, "data": infer("ok"),
                                "total": 10, "concurrency": 2, "insecure": False}  # fmt: skip
        r = run(GrpcLoadSpec(**base, tls_ca_file=str(cert)))
        assert r.status_counts == {OK: 10}
        r = run(GrpcLoadSpec(**base, tls_skip_verify=True))
        assert r.status_counts == {OK: 10}
        r = run(GrpcLoadSpec(**base, tls_ca_file=str(cert), cname="localhost"))
        assert r.status_counts == {OK: 10}
        # an untrusted certificate never connects
        with pytest.raises(UnavailableError, match=r"^host: cannot connect"):
            run(GrpcLoadSpec(**base, connect_timeout_s=0.5))
        with pytest.raises(InputError, match=r"^cacert: cannot read"):
            run(GrpcLoadSpec(**base, tls_ca_file=str(cert) + ".missing"))
