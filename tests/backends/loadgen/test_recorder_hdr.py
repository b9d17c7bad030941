"""Recorder: statistics, error classification, merge and serialisation, bounded memory."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from canarist.backends.loadgen.recorder import (
    CONNECTION_ERROR,
    CONNECTION_REFUSED,
    GRPC_ERROR_RANGES,
    GRPC_STATUS_BASE,
    HTTP_ERROR_RANGES,
    MESSAGE_CHARS,
    TIMEOUT,
    LatencyStats,
    Recorder,
    bucket_us,
    is_error,
    status_name,
)

MS = 1_000_000


def _fill(rec: Recorder, latencies_us: list[int], status: int = 200, queue_us: int = 0) -> None:
    for i, lat in enumerate(latencies_us):
        start = i * 10 * MS
        rec.record(start - queue_us * 1000, start, start + lat * 1000, status)


def test_statistics_exact_below_two_ms() -> None:
    rec = Recorder()
    _fill(rec, [100, 200, 300, 400, 1000], queue_us=50)
    res = rec.result(2.0)
    assert res.request_count == 5
    assert res.achieved_rate == 2.5
    svc = res.service_time
    assert (svc.min_ms, svc.max_ms, svc.mean_ms) == (0.1, 1.0, 0.4)
    assert svc.stddev_ms == pytest.approx(0.31623, abs=1e-5)
    assert svc.percentile(50) == 0.3
    assert svc.percentile(80) == 0.4
    assert svc.percentile(81) == 1.0
    assert svc.percentile(0) == 0.1 and svc.percentile(100) == 1.0
    lat = res.latency
    assert (lat.min_ms, lat.max_ms) == (0.15, 1.05)


def test_large_values_keep_three_significant_digits() -> None:
    rec = Recorder()
    _fill(rec, [123_456, 2_999_999])
    stats = rec.result(1.0).service_time
    assert stats.min_ms == pytest.approx(123.456, rel=1e-3)
    assert stats.max_ms == pytest.approx(3000.0, rel=1e-3)
    assert bucket_us(2047) == 2047
    assert bucket_us(2049) == 2048
    assert bucket_us(-5) == 0


def test_error_ranges_are_inclusive_and_negative_is_always_error() -> None:
    ranges = [(400, 499), (None, 199)]
    assert is_error(400, ranges) and is_error(499, ranges) and is_error(100, ranges)
    assert not is_error(500, ranges) and not is_error(200, ranges)
    assert is_error(CONNECTION_ERROR, [])
    assert is_error(503, HTTP_ERROR_RANGES) and not is_error(302, HTTP_ERROR_RANGES)
    assert not is_error(GRPC_STATUS_BASE, GRPC_ERROR_RANGES)
    assert is_error(GRPC_STATUS_BASE + 14, GRPC_ERROR_RANGES)


def test_result_counts_errors_and_statuses() -> None:
    rec = Recorder([(500, 599)])
    _fill(rec, [100] * 6, status=200)
    _fill(rec, [100] * 3, status=503)
    _fill(rec, [100] * 1, status=CONNECTION_ERROR)
    rec.note_late(2)
    rec.note_dropped(4)
    res = rec.result(1.0)
    assert res.status_counts == {-1: 1, 200: 6, 503: 3}
    assert res.errors == 4
    assert res.error_rate == 0.4
    assert (res.late_sends, res.dropped) == (2, 4)
    assert Recorder().result(1.0).error_rate is None


def test_latencies_are_of_successful_requests_only() -> None:
    rec = Recorder()
    _fill(rec, [100] * 4, status=200)
    _fill(rec, [9000] * 2, status=404)  # fast or slow, a failure says nothing of the speed
    _fill(rec, [3_000_000], status=TIMEOUT)
    res = rec.result(1.0)
    assert res.request_count == 7 and res.errors == 3
    assert res.latency.count == res.service_time.count == 4
    assert res.latency.max_ms == 0.1
    assert rec.snapshot(1.0).error_count == 3 and rec.snapshot(1.0).p99_ms == 0.1
    none_ok = Recorder(GRPC_ERROR_RANGES)
    _fill(none_ok, [100] * 5, status=GRPC_STATUS_BASE + 5)
    assert none_ok.result(1.0).latency.count == 0


def test_first_message_of_each_error_status_in_bounded_memory() -> None:
    rec = Recorder()
    for i in range(1000):
        rec.record(0, 0, 1000, 404, f"model m{i} not found")
        rec.record(0, 0, 1000, 200, "fine")
    rec.record(0, 0, 1000, CONNECTION_REFUSED, "cannot connect: connection refused")
    rec.record(0, 0, 1000, 503)  # no message
    rec.record(0, 0, 1000, 503, "  late\n  message  ")
    assert rec.messages == {404: "model m0 not found", CONNECTION_REFUSED:
                            "cannot connect: connection refused", 503: "late message"}
    rec.record(0, 0, 1000, 500, "x" * 50_000)
    assert rec.messages[500] == "x" * MESSAGE_CHARS
    assert rec.result(1.0).error_kinds() == [
        ("404", 1000, "model m0 not found"),
        ("503", 2, "late message"),
        ("500", 1, "x" * MESSAGE_CHARS),
        ("connection-refused", 1, "cannot connect: connection refused"),
    ]


def test_status_names() -> None:
    assert status_name(404) == "404"
    assert status_name(GRPC_STATUS_BASE + 5) == "NOT_FOUND"
    assert status_name(GRPC_STATUS_BASE + 14) == "UNAVAILABLE"
    assert status_name(CONNECTION_REFUSED) == "connection-refused"
    assert status_name(TIMEOUT) == "timeout"
    assert status_name(-99) == "connection-error"


def test_histogram_buckets_cover_every_sample() -> None:
    rec = Recorder()
    values = [50, 150, 950, 1500, 11_500, 13_000, 250_000, 3_000_000]
    _fill(rec, values)
    stats = rec.result(1.0).latency
    assert sum(c for _, _, c in stats.buckets) == len(values)
    assert stats.buckets[0][0] == stats.min_ms == 0.05
    assert stats.buckets[-1][1] == stats.max_ms
    for lower, upper, count in stats.buckets:
        assert lower <= upper and count > 0
    assert (1.0, 1.5, 0) not in stats.buckets
    assert (11.0, 12.0, 1) in stats.buckets
    assert (12.0, 14.0, 1) in stats.buckets


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(7)
    values = [rng.randint(1, 5_000_000) for _ in range(5000)]
    statuses = [rng.choice([200, 200, 200, 404, 503, CONNECTION_ERROR]) for _ in values]
    whole, a, b = Recorder(), Recorder(), Recorder()
    for i, (v, s) in enumerate(zip(values, statuses, strict=True)):
        for rec in (whole, a if i % 3 else b):
            rec.record(i * 1000, i * 1000 + 7000, i * 1000 + 7000 + v * 1000, s, f"m{s}")
    a.note_late(3)
    b.note_late(4)
    b.note_dropped(5)
    whole.note_late(7)
    whole.note_dropped(5)
    a.merge(b)
    assert a.result(3.0) == whole.result(3.0)


def test_serialisation_round_trip_is_exact() -> None:
    rng = random.Random(3)
    rec = Recorder()
    for i in range(3000):
        v = rng.randint(10, 40_000_000)
        rec.record(i, i + 3000, i + 3000 + v, rng.choice([200, 500, CONNECTION_ERROR]))
    rec.note_late(11)
    rec.note_dropped(2)
    rec.record(0, 1, 2, 500, "boom")
    copy = Recorder.from_bytes(rec.to_bytes())
    assert copy.result(1.5) == rec.result(1.5)
    assert copy.messages == {500: "boom"}
    ranged = Recorder([(None, 199)])
    ranged.record(0, 1, 2, 100, "informational")
    assert Recorder.from_bytes(ranged.to_bytes()).result(1.0) == ranged.result(1.0)
    merged = Recorder.from_bytes(rec.to_bytes())
    merged.merge(Recorder.from_bytes(rec.to_bytes()))
    res = merged.result(1.0)
    assert res.request_count == 6002 and res.late_sends == 22
    with pytest.raises(ValueError):
        Recorder.from_bytes(b'{"v": 99}')


@pytest.mark.slow
def test_memory_is_bounded_by_the_histogram_not_the_request_count() -> None:
    rng = random.Random(1)

    def grow(rec: Recorder, n: int) -> None:
        for i in range(n):
            v = int(rng.lognormvariate(12, 1.5))  # ~160 µs .. seconds, in ns
            rec.record(i, i, i + v, 200 if i % 50 else 503)

    rec = Recorder()
    grow(rec, 150_000)
    assert len(rec.pending_latency) < 23_552  # one key per HDR bucket at most
    rec.fold()
    size = len(rec.to_bytes())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        grow(rec, 50_000)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 1_000_000
    assert len(rec.to_bytes()) < size * 1.2
    assert rec.result(1.0).request_count == 200_000


def test_snapshot_reports_progress() -> None:
    rec = Recorder()
    _fill(rec, [100] * 98 + [5000, 9000], status=200)
    _fill(rec, [100] * 10, status=500)
    snap = rec.snapshot(2.0)
    assert snap.request_count == 110 and snap.error_count == 10 and snap.rate == 55.0
    assert snap.p99_ms == 5.0


def test_empty_stats() -> None:
    stats = LatencyStats.from_values([])
    assert stats.count == 0 and stats.percentile(99) == 0.0 and stats.buckets == ()
