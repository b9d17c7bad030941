"""HTTP load generator against a real server on 127.0.0.1 (tests/servers/http_target.py)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.helpers import require
from tests.servers.http_target import clear_stats, get_stats, target_process

from canarist.backends.loadgen.http import (
    HttpLoadSpec,
    InitialRequestError,
    auto_workers,
    prepare,
    run_http_load,
    split_plan,
)
from canarist.backends.loadgen.recorder import (
    CONNECTION_CLOSED,
    CONNECTION_RESET,
    TIMEOUT,
    LoadResult,
    ProgressSnapshot,
)
from canarist.core.errors import InputError, UnavailableError


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with target_process() as url:
        yield url


def load(spec: HttpLoadSpec, **kwargs: Any) -> LoadResult:
    return asyncio.run(run_http_load(spec, **kwargs))


def test_exact_request_count(target: str) -> None:
    clear_stats(target)
    res = load(HttpLoadSpec(url=target + "/exact", num_requests=537, connections=7))
    assert res.request_count == 537
    assert res.status_counts == {200: 537}
    assert res.errors == 0 and res.dropped == 0
    assert get_stats(target)["by_path"] == {"/exact": 537}
    # closed loop: no queueing, so corrected latency is the service time
    assert res.latency == res.service_time


def test_default_is_100_requests(target: str) -> None:
    assert load(HttpLoadSpec(url=target + "/")).request_count == 100


@pytest.mark.parametrize(
    ("query", "ranges", "errors"),
    [
        ("status=503", ((400, None),), 40),
        ("status=404", ((500, 599),), 0),
        ("status=200", ((None, 299),), 40),
        ("status=302", ((300, 302), (500, None)), 40),
        ("status=201", ((400, None),), 0),
    ],
)
def test_status_classification(
    target: str, query: str, ranges: tuple[tuple[int | None, int | None], ...], errors: int
) -> None:
    res = load(HttpLoadSpec(url=f"{target}/s?{query}", num_requests=40, error_ranges=ranges))
    status = int(query.split("=")[1])
    assert res.status_counts == {status: 40}
    assert res.errors == errors


def test_post_body_and_headers_reach_the_server(target: str) -> None:
    clear_stats(target)
    body = b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}'
    res = load(
        HttpLoadSpec(
            url=target + "/v1/models/m:predict?x=1",
            body=body,
            content_type="application/json",
            headers={"X-Canary": "yes", "Authorization": "Bearer t"},
            num_requests=5,
            connections=2,
        )
    )
    assert res.status_counts == {200: 5}
    last = get_stats(target)["last"]
    assert last["method"] == "POST"
    assert last["path"] == "/v1/models/m:predict?x=1"
    assert last["body"] == body.decode()
    assert last["headers"]["Content-Type"] == "application/json"
    assert last["headers"]["X-Canary"] == "yes"
    assert last["headers"]["Authorization"] == "Bearer t"
    assert last["headers"]["Content-Length"] == str(len(body))
    assert last["headers"]["Host"] == target.removeprefix("http://")


def test_explicit_method_without_body(target: str) -> None:
    clear_stats(target)
    load(HttpLoadSpec(url=target + "/d", method="delete", num_requests=1, connections=1))
    assert get_stats(target)["last"]["method"] == "DELETE"


def test_fixed_rate_is_kept(target: str) -> None:
    # When each request leaves is the scheduler's, on its clock: test_http_schedule.py.
    res = load(HttpLoadSpec(url=target + "/rate", qps=200, duration_s=2.0, connections=4))
    assert res.request_count == 400  # due at t0 + i/200 for t < 2 s, all sent
    assert res.dropped == 0
    assert res.status_counts == {200: 400}
    # never ahead of the schedule: the 400th leaves 1.995 s after the first, not sooner
    assert res.achieved_rate <= 400 / 1.99


def test_rate_with_exact_count(target: str) -> None:
    res = load(HttpLoadSpec(url=target + "/rate", qps=100, num_requests=50, connections=2))
    assert res.request_count == 50
    assert res.status_counts == {200: 50}
    assert res.achieved_rate <= 50 / 0.48  # paced: the 50th leaves 490 ms after the first


@pytest.mark.slow
def test_coordinated_omission_is_corrected() -> None:
    # The server stalls for 200 ms once; requests due meanwhile wait for a free connection.
    with target_process() as fresh:
        url = fresh + "/co?stall_after=300&stall_ms=200"
        res = load(HttpLoadSpec(url=url, qps=500, duration_s=3.0, connections=4))
    assert res.errors == 0
    lat, svc = res.latency, res.service_time
    detail = f"latency {lat.percentiles}, service time {svc.percentiles}"
    assert lat.percentile(99) > 100.0, detail
    assert lat.max_ms >= 180.0, detail
    assert svc.percentile(99) < lat.percentile(99) / 2, detail
    assert svc.max_ms >= 150.0, detail  # the requests in flight during the stall saw it
    assert res.late_sends >= 20


def test_duration_is_honoured_against_a_hanging_server(target: str) -> None:
    t = time.monotonic()
    res = load(
        HttpLoadSpec(
            url=target + "/h?hang=1",
            duration_s=1.0,
            request_timeout_s=0.4,
            connections=3,
            allow_initial_errors=True,
        )
    )
    elapsed = time.monotonic() - t
    assert elapsed < 1.0 + 0.4 + 1.5
    assert res.request_count >= 3
    assert set(res.status_counts) == {TIMEOUT}
    assert res.errors == res.request_count


def test_duration_is_honoured_in_open_loop_against_a_hanging_server(target: str) -> None:
    t = time.monotonic()
    res = load(
        HttpLoadSpec(
            url=target + "/h?hang=1",
            duration_s=1.0,
            qps=50,
            request_timeout_s=0.3,
            connections=2,
            allow_initial_errors=True,
        )
    )
    assert time.monotonic() - t < 1.0 + 0.3 + 1.5
    assert set(res.status_counts) == {TIMEOUT}
    assert res.request_count + res.dropped == 50
    assert res.dropped > 0


def test_initial_errors_fail_duration_runs_unless_allowed(target: str) -> None:
    with pytest.raises(InitialRequestError) as err:
        load(HttpLoadSpec(url=target + "/e?status=503&body=warming up", duration_s=0.5,
                          connections=2))  # fmt: skip
    assert (err.value.status, err.value.excerpt) == (503, "warming up")
    host = target.removeprefix("http://")
    assert str(err.value) == f"the first request to {host} returned 503 Service Unavailable: warming up"
    res = load(
        HttpLoadSpec(
            url=target + "/e?status=503", duration_s=0.3, connections=2, allow_initial_errors=True
        )
    )
    assert res.errors == res.request_count > 0


def test_request_timeout_is_a_timeout_error(target: str) -> None:
    t = time.monotonic()
    res = load(
        HttpLoadSpec(
            url=target + "/slow?delay_ms=600", num_requests=4, connections=2, request_timeout_s=0.1
        )
    )
    assert res.status_counts == {TIMEOUT: 4}
    assert time.monotonic() - t < 30  # a hang guard: each request is cut at 0.1 s
    host = target.removeprefix("http://")
    assert res.error_kinds() == [("timeout", 4, f"no response from {host} within 0.1s")]
    assert res.latency.count == 0  # a timeout is not a latency of the service


def test_resets_are_connection_errors_and_reconnect(target: str) -> None:
    res = load(HttpLoadSpec(url=target + "/r?reset=1", num_requests=30, connections=3))
    # an RST usually arrives as a reset; when it races the read, as a closed connection
    assert set(res.status_counts) <= {CONNECTION_RESET, CONNECTION_CLOSED}
    assert res.request_count == res.errors == 30
    assert all(name.startswith("connection-") and "before the response was complete" in message
               for name, _, message in res.error_kinds())
    clear_stats(target)
    res = load(HttpLoadSpec(url=target + "/r2?reset_every=2", num_requests=40, connections=1))
    assert res.status_counts[200] == 20 and res.request_count == 40
    assert res.errors == 20
    assert res.latency.count == 20


def test_first_message_of_each_error_status(target: str) -> None:
    body = "model sklearn-irs does not exist"
    res = load(HttpLoadSpec(url=f"{target}/m?status=404&body={body}&reset_every=4",
                            num_requests=40, connections=1))  # fmt: skip
    kinds = res.error_kinds()
    assert kinds[0] == ("404", 30, body)
    assert sum(k[1] for k in kinds[1:]) == 10
    assert all(k[0] in ("connection-reset", "connection-closed") for k in kinds[1:])
    assert res.latency.count == 0 and res.errors == 40
    assert len(res.messages) == len(res.status_counts)  # one message per status, not per request


def test_error_messages_from_bodies(target: str) -> None:
    page = ("<html><head><title>404 Not Found</title><style>body{color:red}</style></head>"
            "<body><h1>404 Not Found</h1><hr>nginx</body></html>")
    res = load(HttpLoadSpec(url=f"{target}/n?status=404&body={page}", num_requests=3))
    assert res.error_kinds() == [("404", 3, "404 Not Found 404 Not Found nginx")]
    res = load(HttpLoadSpec(url=f"{target}/c?status=500&chunked=1&body=upstream exploded",
                            num_requests=3))  # fmt: skip
    assert res.error_kinds() == [("500", 3, "upstream exploded")]
    res = load(HttpLoadSpec(url=f"{target}/e?status=503&size=0", num_requests=3))
    assert res.error_kinds() == [("503", 3, "Service Unavailable")]  # no body: the reason
    long = "x" * 5000
    res = load(HttpLoadSpec(url=f"{target}/l?status=500&body={long}", num_requests=2))
    assert res.messages[500] == "x" * 1000  # bounded
    # statuses that are not errors keep no message
    res = load(HttpLoadSpec(url=f"{target}/ok?body=fine", num_requests=2))
    assert res.messages == {} and res.error_kinds() == []


def test_connection_close_responses_reconnect_without_errors(target: str) -> None:
    res = load(HttpLoadSpec(url=target + "/c?close=1", num_requests=30, connections=3))
    assert res.status_counts == {200: 30}


@pytest.mark.parametrize("size", [0, 5, 100_000])
def test_chunked_and_large_bodies(target: str, size: int) -> None:
    res = load(HttpLoadSpec(url=f"{target}/k?chunked=1&size={size}", num_requests=20))
    assert res.status_counts == {200: 20}
    res = load(HttpLoadSpec(url=f"{target}/k?size={size}", num_requests=20))
    assert res.status_counts == {200: 20}


def test_progress_is_reported(target: str) -> None:
    seen: list[ProgressSnapshot] = []
    res = load(
        HttpLoadSpec(url=target + "/p", duration_s=2.3, qps=100, connections=2),
        on_progress=seen.append,
    )
    assert 1 <= len(seen) <= 3
    assert seen[0].request_count > 50 and seen[0].error_count == 0
    first = seen[0]
    assert first.rate == pytest.approx(first.request_count / first.elapsed_s)
    assert first.request_count <= 100 * first.elapsed_s + 1  # never ahead of the schedule
    assert seen[-1].request_count <= res.request_count


def test_worker_processes_merge_exactly(target: str) -> None:
    clear_stats(target)
    res = load(HttpLoadSpec(url=target + "/w", num_requests=301, connections=4, workers=2))
    assert res.request_count == 301
    assert get_stats(target)["by_path"] == {"/w": 301}
    assert res.latency.count == res.service_time.count == 301


@pytest.mark.slow
def test_worker_processes_share_the_rate(target: str) -> None:
    seen: list[ProgressSnapshot] = []
    res = load(
        HttpLoadSpec(
            url=target + "/w?status=500",
            qps=200,
            duration_s=2.0,
            connections=4,
            workers=2,
            allow_initial_errors=True,
        ),
        on_progress=seen.append,
    )
    assert res.request_count + res.dropped == 400
    assert res.request_count >= 360
    assert res.errors == res.request_count
    # never ahead of the shared schedule: each worker's last leaves 1.99 s after its first
    assert res.achieved_rate <= 400 / 1.98
    assert seen and seen[0].error_count > 0
    assert res.latency.count == 0


def test_worker_processes_keep_the_first_messages(target: str) -> None:
    res = load(HttpLoadSpec(url=f"{target}/wm?status=404&body=no such model", num_requests=40,
                            connections=4, workers=2))  # fmt: skip
    assert res.error_kinds() == [("404", 40, "no such model")]
    assert res.latency.count == 0


def test_plan_split_interleaves_the_schedule() -> None:
    _, plan = prepare(HttpLoadSpec(url="http://h/", qps=1000, num_requests=10, connections=5))
    parts = split_plan(plan, 3)
    assert [p.connections for p in parts] == [2, 2, 1]
    assert [p.total for p in parts] == [4, 3, 3]
    assert [p.phase_ns for p in parts] == [0, 1_000_000, 2_000_000]
    assert all(p.qps == pytest.approx(1000 / 3) for p in parts)
    assert auto_workers(HttpLoadSpec(url="http://h/", connections=64), cpu_count=2) == 1
    assert auto_workers(HttpLoadSpec(url="http://h/", connections=512), cpu_count=8) == 4


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_unreachable_host_is_unavailable() -> None:
    port = _closed_port()
    with pytest.raises(UnavailableError) as err:
        load(HttpLoadSpec(url=f"http://127.0.0.1:{port}/", num_requests=5))
    assert str(err.value) == f"cannot connect to 127.0.0.1:{port}: connection refused"


def test_unreachable_host_with_workers_is_unavailable() -> None:
    port = _closed_port()
    with pytest.raises(UnavailableError, match="connection refused"):
        load(
            HttpLoadSpec(url=f"http://127.0.0.1:{port}/", num_requests=5, connections=2, workers=2)
        )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (HttpLoadSpec(url="ftp://127.0.0.1/"), "url"),
        (HttpLoadSpec(url="127.0.0.1:8080/x"), "url"),
        (HttpLoadSpec(url="http:///nohost"), "url"),
        (HttpLoadSpec(url="http://127.0.0.1:99999/"), "url"),
        (HttpLoadSpec(url="http://h/", connections=0), "connections"),
        (HttpLoadSpec(url="http://h/", num_requests=0), "numRequests"),
        (HttpLoadSpec(url="http://h/", duration_s=-1), "duration"),
        (HttpLoadSpec(url="http://h/", request_timeout_s=0), "timeout"),
        (HttpLoadSpec(url="http://h/", headers={"X": "a\r\nInjected: 1"}), "headers"),
        (HttpLoadSpec(url="http://h/", headers={"Bad Name": "a"}), "headers"),
        (HttpLoadSpec(url="http://h/", method="HEAD"), "method"),
        (HttpLoadSpec(url="http://h/", error_ranges=((500, 400),)), "errorRanges"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(spec: HttpLoadSpec, field: str) -> None:
    with pytest.raises(InputError) as err:
        load(spec)
    message = str(err.value)
    assert message.startswith(f"{field}: ")
    assert "\n" not in message


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    require(shutil.which("openssl") is not None, "openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_https_with_a_trusted_certificate(self_signed: tuple[str, str]) -> None:
    with target_process(tls=self_signed) as url:
        res = load(HttpLoadSpec(url=url + "/tls", num_requests=30, connections=3,
                                ca_file=self_signed[0]))  # fmt: skip
        assert res.status_counts == {200: 30}
        with pytest.raises(UnavailableError, match="TLS error"):
            load(HttpLoadSpec(url=url + "/tls", num_requests=3))


def test_runs_inline_on_a_uvloop_loop(target: str) -> None:
    import uvloop

    seen: list[ProgressSnapshot] = []
    res = uvloop.run(
        run_http_load(HttpLoadSpec(url=target + "/uv", duration_s=1.2, qps=50), on_progress=seen.append)
    )
    assert res.request_count == 60 and len(seen) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_cancelling_stops_the_load_at_once(target: str, workers: int) -> None:
    async def cancel_midway() -> float:
        spec = HttpLoadSpec(url=target + "/x", duration_s=30, qps=100, workers=workers)
        task = asyncio.create_task(run_http_load(spec))
        await asyncio.sleep(1.5)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(cancel_midway()) < 2.0


def test_precise_timer_fires_once_at_the_time_set() -> None:
    from time import perf_counter_ns

    from canarist.backends.loadgen._timer import PreciseTimer

    async def measure() -> list[int]:
        loop = asyncio.get_running_loop()
        fired: list[int] = []
        done = loop.create_future()

        def callback() -> None:
            fired.append(perf_counter_ns())
            if len(fired) == 2:
                done.set_result(None)
            else:
                timer.at(perf_counter_ns() + 3_000_000)

        timer = PreciseTimer(loop, callback)
        start = perf_counter_ns()
        timer.at(start + 2_000_000)
        await asyncio.wait_for(done, 5)
        timer.close()
        return [t - start for t in fired]

    first, second = asyncio.run(measure())
    assert first >= 2_000_000 and second >= 5_000_000
    assert second < 1_000_000_000
