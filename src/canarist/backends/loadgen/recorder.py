"""Bounded-memory recording of load-test outcomes, shared by the HTTP and gRPC generators.

Every request ends in exactly one `Recorder.record(intended_ns, start_ns, end_ns, status)`:

* `intended_ns`: when the request was *scheduled* to be sent (open loop: `t0 + i/qps`; closed
  loop: the same as `start_ns`). `end - intended` is the latency corrected for coordinated
  omission: time spent waiting for a free connection or a late timer counts.
* `start_ns`: when it was actually written. `end - start` is the service time.
* `status`: the HTTP status code; a gRPC status code `c` as `GRPC_STATUS_BASE + c`
  (OK is 1000, UNAVAILABLE is 1014); or a negative connection-level kind (`TIMEOUT`,
  `CONNECTION_REFUSED`, ... see `CONNECTION_KINDS`). Negative statuses are always errors.
* `message` (optional): why the request failed, e.g. the body of a 404 or a gRPC status's
  details. The first message of each error status is kept (`messages`), so a report can say
  what went wrong, not only how often.

Latencies describe successful requests only. A failed request's time says nothing about
the service's speed (a 404 from a router is fast, a timeout is as long as the timeout), and
letting it in would make a latency SLO look healthy while every call fails. Failed requests
are counted by status (`status_counts`), with their first message; which statuses are
failures is the recorder's `error_ranges`.

All timestamps come from `time.perf_counter_ns()` (CLOCK_MONOTONIC on Linux, so they compare
across processes).

Why two stages. An `hdrh.HdrHistogram.record_value` costs about 2.3 µs on the reference
machine (measured: 200k values in 0.46 s), two per request is ~4.6 µs, more than a third of
the 12.5 µs a request may take at 80k req/s on one core. So `record` only increments a dict
keyed by the value in µs, already rounded to the HDR bucket it will land in (0.29 µs per
value, measured). The dicts are folded into the HDR histograms (mergeable, encodable)
whenever a snapshot, result or encoding is taken, and by generators from a timer. A fold
costs ~2.4 µs per *distinct* value, and a steady load has a few hundred. Memory is bounded
whatever the request count: two HDR histograms (1 µs .. 1 h, 3 significant digits, ~190 kB
each); pending dicts whose keys are HDR bucket values, so at most one entry per bucket
(23,552, and in practice a few hundred between folds); one counter per distinct status, and
for error statuses one message of at most `MESSAGE_CHARS` characters.

Precision: values below 2048 µs are exact to the microsecond; above, to 3 significant
digits (HDR's lowest-equivalent value, error below 0.05 %).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

CONNECTION_ERROR = -1
"""A connection-level failure of no more specific kind."""
CONNECTION_REFUSED = -2
CONNECTION_RESET = -3
"""The connection was reset while a request was in flight."""
CONNECTION_CLOSED = -4
"""The server closed the connection before the response was complete."""
TIMEOUT = -5
"""No response (or no connection) within the request timeout."""
TLS_ERROR = -6
DNS_ERROR = -7
PROTOCOL_ERROR = -8
"""The response was not valid HTTP."""

CONNECTION_KINDS: dict[int, str] = {
    CONNECTION_ERROR: "connection-error",
    CONNECTION_REFUSED: "connection-refused",
    CONNECTION_RESET: "connection-reset",
    CONNECTION_CLOSED: "connection-closed",
    TIMEOUT: "timeout",
    TLS_ERROR: "tls-error",
    DNS_ERROR: "dns-error",
    PROTOCOL_ERROR: "protocol-error",
}
"""Names of the connection-level statuses, as reports show them."""

GRPC_CODE_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
)
"""gRPC status names by code (grpc.StatusCode's names, without importing grpc)."""

MESSAGE_CHARS = 1000
"""Longest message kept per error status (whitespace collapsed). Reports redact and shorten
it further; this only bounds memory."""

GRPC_STATUS_BASE = 1000
"""gRPC status `c` is recorded as `GRPC_STATUS_BASE + c` (0..16 -> 1000..1016)."""

GRPC_ERROR_RANGES: tuple[tuple[int | None, int | None], ...] = (
    (GRPC_STATUS_BASE + 1, GRPC_STATUS_BASE + 16),
)
"""Every gRPC code but OK is an error."""

HTTP_ERROR_RANGES: tuple[tuple[int | None, int | None], ...] = ((400, None),)
"""Iter8's default `errorRanges: [{lower: 400}]`."""

LATE_SEND_THRESHOLD_NS = 2_000_000
"""A send is *late* when it leaves more than 2 ms after its intended time.

Event-loop timers have millisecond granularity, so up to ~1 ms of lateness is the scheduler's
normal jitter and is not counted; more means every connection was busy or the loop was
saturated, i.e. the generator could not keep the requested rate.
"""

HDR_LOWEST_US = 1
HDR_HIGHEST_US = 3_600_000_000
HDR_DIGITS = 3
_SUB_BUCKET_BITS = 11  # 2048 sub-buckets for 3 significant digits: values < 2048 are exact

ErrorRanges = Sequence[tuple[int | None, int | None]]

DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 75.0, 90.0, 95.0, 99.0, 99.9)

# Histogram edges in ms: fortio's (0-12 by 1, 14-20 by 2, 25-50 by 5, 60-100 by 10,
# 120-200 by 20, 250-500 by 50, 600-1000 by 100, then 2000 .. 100000), with the first
# millisecond split in 0.1 ms steps so fast local targets still get a useful shape.
HISTOGRAM_EDGES_MS: tuple[float, ...] = tuple(float(e) for e in (
    *(i / 10 for i in range(10)),
    *range(1, 13),
    *range(14, 21, 2),
    *range(25, 51, 5),
    *range(60, 101, 10),
    *range(120, 201, 20),
    *range(250, 501, 50),
    *range(600, 1001, 100),
    2000, 3000, 4000, 5000, 7500, 10000, 20000, 30000, 40000, 50000, 75000, 100000,
))  # fmt: skip


def bucket_us(value_us: int) -> int:
    """Round a value in µs down to its HDR bucket (lowest equivalent value)."""
    if value_us >= 2048:
        shift = value_us.bit_length() - _SUB_BUCKET_BITS
        return value_us >> shift << shift
    return value_us if value_us > 0 else 0


def status_name(status: int) -> str:
    """How reports name a status: `404`, `NOT_FOUND`, `connection-refused`."""
    if status < 0:
        return CONNECTION_KINDS.get(status, CONNECTION_KINDS[CONNECTION_ERROR])
    if GRPC_STATUS_BASE <= status < GRPC_STATUS_BASE + len(GRPC_CODE_NAMES):
        return GRPC_CODE_NAMES[status - GRPC_STATUS_BASE]
    return str(status)


def clip_message(text: str) -> str:
    """A message as recorded: whitespace collapsed to single spaces, at most MESSAGE_CHARS."""
    return " ".join(text[: MESSAGE_CHARS * 2].split())[:MESSAGE_CHARS]


def is_error(status: int, error_ranges: ErrorRanges) -> bool:
    """Negative statuses are always errors; others when inside any inclusive range."""
    if status < 0:
        return True
    for lower, upper in error_ranges:
        if (lower is None or status >= lower) and (upper is None or status <= upper):
            return True
    return False


def count_errors(status_counts: dict[int, int], error_ranges: ErrorRanges) -> int:
    return sum(n for s, n in status_counts.items() if is_error(s, error_ranges))


def _new_hdr() -> HdrHistogram:
    return HdrHistogram(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_DIGITS)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one distribution, in milliseconds (µs precision).

    `values` holds the distinct recorded values in µs (HDR lowest-equivalent) with their
    counts, ascending; it is bounded by the histogram's resolution, not the request count.
    `percentile(p)` is nearest-rank: the smallest value with at least p % of the samples at
    or below it; p <= 0 gives the min and p >= 100 the max.
    """

    count: int
    mean_ms: float
    stddev_ms: float
    min_ms: float
    max_ms: float
    percentiles: dict[float, float]
    buckets: tuple[tuple[float, float, int], ...]
    values: tuple[tuple[int, int], ...] = field(repr=False)

    def percentile(self, p: float) -> float:
        return _percentile_us(self.values, self.count, p) / 1000.0

    @classmethod
    def from_values(
        cls, values: Sequence[tuple[int, int]], percentiles: Iterable[float] = DEFAULT_PERCENTILES
    ) -> LatencyStats:
        vals = tuple(values)
        count = sum(c for _, c in vals)
        if count == 0:
            return cls(0, 0.0, 0.0, 0.0, 0.0, {}, (), ())
        total = sum(v * c for v, c in vals)
        mean = total / count
        var = sum(c * (v - mean) ** 2 for v, c in vals) / count
        pcts = {p: _percentile_us(vals, count, p) / 1000.0 for p in sorted(set(percentiles))}
        return cls(
            count=count,
            mean_ms=round(mean / 1000.0, 6),
            stddev_ms=round(math.sqrt(var) / 1000.0, 6),
            min_ms=vals[0][0] / 1000.0,
            max_ms=vals[-1][0] / 1000.0,
            percentiles=pcts,
            buckets=_buckets(vals),
            values=vals,
        )


def _percentile_us(values: Sequence[tuple[int, int]], count: int, p: float) -> int:
    if count == 0:
        return 0
    if p <= 0:
        return values[0][0]
    if p >= 100:
        return values[-1][0]
    rank = max(1, math.ceil(p / 100.0 * count - 1e-9))
    seen = 0
    for v, c in values:
        seen += c
        if seen >= rank:
            return v
    return values[-1][0]


def _buckets(values: Sequence[tuple[int, int]]) -> tuple[tuple[float, float, int], ...]:
    """Non-empty buckets; the first starts at the min and the last ends at the max (fortio)."""
    edges = HISTOGRAM_EDGES_MS
    counts: dict[int, int] = {}
    for v, c in values:
        i = bisect_right(edges, v / 1000.0) - 1
        counts[i] = counts.get(i, 0) + c
    lo_val, hi_val = values[0][0] / 1000.0, values[-1][0] / 1000.0
    out: list[tuple[float, float, int]] = []
    for i in sorted(counts):
        lower = max(edges[i], lo_val)
        upper = min(edges[i + 1], hi_val) if i + 1 < len(edges) else hi_val
        out.append((lower, upper, counts[i]))
    return tuple(out)


@dataclass(frozen=True)
class ProgressSnapshot:
    """What a running load test reports about once a second."""

    elapsed_s: float
    request_count: int
    error_count: int
    rate: float
    """Completed requests per second since the start."""
    p99_ms: float
    """99th percentile of the corrected latency so far."""


@dataclass(frozen=True)
class LoadResult:
    """The outcome of one load test.

    `latency` is corrected for coordinated omission (end - intended send time); in closed
    loop it equals `service_time` (end - actual send time). Both describe successful
    requests only. `request_count` counts every request that was sent, errors included;
    `dropped` counts requests that were due before the deadline but never sent because no
    connection was free in time (open loop only). `messages` holds the first message of
    each error status that had one.
    """

    request_count: int
    status_counts: dict[int, int]
    errors: int
    duration_s: float
    achieved_rate: float
    late_sends: int
    dropped: int
    latency: LatencyStats
    service_time: LatencyStats
    messages: dict[int, str] = field(default_factory=dict)
    error_ranges: ErrorRanges = HTTP_ERROR_RANGES

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.request_count if self.request_count else None

    def error_kinds(self) -> list[tuple[str, int, str]]:
        """`(name, count, first message)` of each error status, most frequent first."""
        kinds = [(status_name(s), n, self.messages.get(s, ""))
                 for s, n in self.status_counts.items() if is_error(s, self.error_ranges)]
        return sorted(kinds, key=lambda k: (-k[1], k[0]))


class Recorder:
    """Counts outcomes into bounded histograms; see the module docstring for the design.

    `error_ranges` says which statuses are failures: they are counted, and their first
    message kept, but their times stay out of the latency histograms.
    """

    __slots__ = (
        "_lat_hdr",
        "_svc_hdr",
        "dropped",
        "error_ranges",
        "failing",
        "late_sends",
        "messages",
        "pending_both",
        "pending_latency",
        "pending_service",
        "status_counts",
    )

    def __init__(self, error_ranges: ErrorRanges = HTTP_ERROR_RANGES) -> None:
        # Hot-path state. Generators in this package may increment these directly: keys are
        # µs values already rounded with `bucket_us`; `pending_both` holds samples whose
        # latency equals their service time (closed loop) and counts for both. A status seen
        # for the first time must go through `classify` before its latency is recorded.
        self.pending_latency: dict[int, int] = {}
        self.pending_service: dict[int, int] = {}
        self.pending_both: dict[int, int] = {}
        self._lat_hdr = _new_hdr()
        self._svc_hdr = _new_hdr()
        self.error_ranges: tuple[tuple[int | None, int | None], ...] = tuple(error_ranges)
        self.status_counts: dict[int, int] = {}
        self.failing: set[int] = set()
        """The error statuses seen so far."""
        self.messages: dict[int, str] = {}
        self.late_sends = 0
        self.dropped = 0

    def classify(self, status: int) -> bool:
        """Whether `status` is an error; remembered in `failing`. Call once per new status."""
        if is_error(status, self.error_ranges):
            self.failing.add(status)
            return True
        return False

    def note_message(self, status: int, message: str) -> None:
        """Keep `message` as the first message of error status `status` (later ones are dropped)."""
        if status not in self.messages and status in self.failing:
            self.messages[status] = clip_message(message)

    def record(
        self, intended_ns: int, start_ns: int, end_ns: int, status: int, message: str | None = None
    ) -> None:
        sc = self.status_counts
        n = sc.get(status)
        if n is None:
            sc[status] = 1
            self.classify(status)
        else:
            sc[status] = n + 1
        if status in self.failing:
            if message is not None and status not in self.messages:
                self.messages[status] = clip_message(message)
            return
        lat = (end_ns - intended_ns + 500) // 1000
        if lat >= 2048:
            s = lat.bit_length() - _SUB_BUCKET_BITS
            lat = lat >> s << s
        d = self.pending_latency
        d[lat] = d.get(lat, 0) + 1
        svc = (end_ns - start_ns + 500) // 1000
        if svc >= 2048:
            s = svc.bit_length() - _SUB_BUCKET_BITS
            svc = svc >> s << s
        d = self.pending_service
        d[svc] = d.get(svc, 0) + 1

    def note_late(self, n: int = 1) -> None:
        self.late_sends += n

    def note_dropped(self, n: int = 1) -> None:
        self.dropped += n

    @property
    def request_count(self) -> int:
        return sum(self.status_counts.values())

    def fold(self) -> None:
        """Move pending counts into the HDR histograms."""
        both = self.pending_both
        for pending, hdr in (
            (self.pending_latency, self._lat_hdr),
            (self.pending_service, self._svc_hdr),
            (both, self._lat_hdr),
            (both, self._svc_hdr),
        ):
            if pending:
                top = hdr.highest_trackable_value
                for v, c in pending.items():
                    hdr.record_value(min(max(v, 0), top), c)
                if pending is not both:
                    pending.clear()
        both.clear()

    def merge(self, other: Recorder) -> None:
        self.fold()
        other.fold()
        self._lat_hdr.add(other._lat_hdr)
        self._svc_hdr.add(other._svc_hdr)
        for s, n in other.status_counts.items():
            if s not in self.status_counts:
                self.classify(s)
            self.status_counts[s] = self.status_counts.get(s, 0) + n
        for s, m in other.messages.items():
            self.messages.setdefault(s, m)
        self.late_sends += other.late_sends
        self.dropped += other.dropped

    def to_bytes(self) -> bytes:
        self.fold()
        doc = {
            "v": 2,
            "ranges": [list(r) for r in self.error_ranges],
            "status": [[s, n] for s, n in sorted(self.status_counts.items())],
            "messages": [[s, m] for s, m in sorted(self.messages.items())],
            "late": self.late_sends,
            "dropped": self.dropped,
            "lat": self._lat_hdr.encode().decode("ascii"),
            "svc": self._svc_hdr.encode().decode("ascii"),
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Recorder:
        doc = json.loads(data)
        if doc.get("v") != 2:
            raise ValueError(f"unsupported recorder encoding version {doc.get('v')!r}")
        rec = cls(tuple((lo, hi) for lo, hi in doc["ranges"]))
        rec.status_counts = {int(s): int(n) for s, n in doc["status"]}
        for s in rec.status_counts:
            rec.classify(s)
        rec.messages = {int(s): str(m) for s, m in doc["messages"]}
        rec.late_sends = int(doc["late"])
        rec.dropped = int(doc["dropped"])
        rec._lat_hdr.decode_and_add(doc["lat"].encode("ascii"))
        rec._svc_hdr.decode_and_add(doc["svc"].encode("ascii"))
        return rec

    def latency_values(self) -> list[tuple[int, int]]:
        """Distinct corrected-latency values in µs with counts, ascending."""
        self.fold()
        return _hdr_values(self._lat_hdr)

    def service_values(self) -> list[tuple[int, int]]:
        self.fold()
        return _hdr_values(self._svc_hdr)

    def snapshot(self, elapsed_s: float) -> ProgressSnapshot:
        self.fold()
        n = self._lat_hdr.get_total_count()
        p99 = _percentile_us(_hdr_values(self._lat_hdr), n, 99.0) / 1000.0 if n else 0.0
        return ProgressSnapshot(
            elapsed_s=elapsed_s,
            request_count=self.request_count,
            error_count=sum(self.status_counts[s] for s in self.failing),
            rate=self.request_count / elapsed_s if elapsed_s > 0 else 0.0,
            p99_ms=p99,
        )

    def result(
        self, duration_s: float, percentiles: Iterable[float] = DEFAULT_PERCENTILES
    ) -> LoadResult:
        pcts = tuple(percentiles)
        count = self.request_count
        return LoadResult(
            request_count=count,
            status_counts=dict(sorted(self.status_counts.items())),
            errors=count_errors(self.status_counts, self.error_ranges),
            duration_s=duration_s,
            achieved_rate=count / duration_s if duration_s > 0 else 0.0,
            late_sends=self.late_sends,
            dropped=self.dropped,
            latency=LatencyStats.from_values(self.latency_values(), pcts),
            service_time=LatencyStats.from_values(self.service_values(), pcts),
            messages=dict(sorted(self.messages.items())),
            error_ranges=self.error_ranges,
        )


def _hdr_values(hdr: HdrHistogram) -> list[tuple[int, int]]:
    """Non-empty buckets of an HDR histogram as (lowest equivalent value, count)."""
    out: list[tuple[int, int]] = []
    if hdr.get_total_count() == 0:
        return out
    top = hdr.get_counts_array_index(hdr.get_max_value())
    counts = hdr.counts[: top + 1]
    for i, c in enumerate(counts):
        if c:
            out.append((hdr.get_lowest_equivalent_value(hdr.get_value_from_index(i)), c))
    return out
