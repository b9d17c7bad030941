"""Recording a load test's outcome as Iter8's built-in metrics (shared by `http` and `grpc`).

Latencies are corrected for coordinated omission: measured from the time a request was due,
so a stalled server shows in the tail instead of silently slowing the generator down. With
no rate set the two are the same. Service time (from the actual send) and late sends are
recorded too, so a report can tell a slow server from a generator that fell behind.

Latencies (`latency-*`, `latency/*`, the `latency` histogram, `service-time-p99`) describe
successful requests only; failed ones are counted (`error-count`, `error-rate`) and
recorded by status with their first message (`insights.errors`, and one log line per
status). When no request succeeded, the latencies are unavailable with a reason naming the
errors, so a latency SLO cannot pass on error responses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from canarist.backends.loadgen.recorder import LoadResult, ProgressSnapshot
from canarist.core.errors import CanaristError, TaskError
from canarist.core.experiment import ErrorCount, HistBucket, Insights, MetricMeta, MetricType
from canarist.core.gofmt import format_value
from canarist.core.insights import (
    add_histogram,
    add_value,
    describe_errors,
    ensure_insights,
    mark_unavailable,
    record_errors,
    register_metric,
)
from canarist.core.metrics import MetricCatalog
from canarist.tasks.base import TaskCheck, TaskContext

log = logging.getLogger("canarist")

MSEC = "msec"
DEFAULT_PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.9)


def with_default_percentiles(extra: Iterable[float] | None) -> tuple[float, ...]:
    """Iter8's rule: 50, 75, 90, 95, 99 and 99.9 are always reported, plus any asked for."""
    return tuple(sorted({*DEFAULT_PERCENTILES, *(float(p) for p in extra or ())}))


def _scalar_names(provider: str, sep: str, percentiles: Iterable[float]) -> dict[str, MetricMeta]:
    def latency(stat: str, what: str) -> tuple[str, MetricMeta]:
        return f"{provider}/latency{sep}{stat}", MetricMeta(
            description=f"{what} of observed latency values (successful requests only)",
            type=MetricType.GAUGE, units=MSEC)

    metrics = {
        f"{provider}/request-count": MetricMeta(description="number of requests sent",
                                                type=MetricType.COUNTER),
        f"{provider}/error-count": MetricMeta(description="number of responses that were errors",
                                              type=MetricType.COUNTER),
        f"{provider}/error-rate": MetricMeta(description="fraction of responses that were errors",
                                             type=MetricType.GAUGE),
    }
    metrics.update([latency("mean", "mean"), latency("stddev", "standard deviation"),
                    latency("min", "minimum"), latency("max", "maximum")])
    for p in percentiles:
        metrics.update([latency(f"p{format_value(p)}", f"{format_value(p)}-th percentile")])
    metrics[f"{provider}/service-time-p99"] = MetricMeta(
        description="99-th percentile of service time (from actual send, not corrected; "
                    "successful requests only)",
        type=MetricType.GAUGE, units=MSEC)
    metrics[f"{provider}/late-sends"] = MetricMeta(
        description="requests sent more than 2 ms after they were due (generator fell behind)",
        type=MetricType.COUNTER)
    return metrics


def load_check(providers: Iterable[str], sep: str) -> TaskCheck:
    """The metrics a load test records under `providers` (any latency percentile on demand)."""
    names: set[str] = set()
    prefixes: set[str] = set()
    for provider in providers:
        names.update(_scalar_names(provider, sep, DEFAULT_PERCENTILES))
        names.add(f"{provider}/latency")  # the histogram
        prefixes.add(f"{provider}/latency{sep}p")
    return TaskCheck(MetricCatalog(frozenset(names), frozenset(prefixes)))


def record_load(
    insights: Insights,
    provider: str,
    result: LoadResult,
    percentiles: Iterable[float],
    *,
    sep: str,
    histogram: str,
    noun: str = "requests",
    version: int = 0,
) -> list[ErrorCount]:
    """Record `result` for `version` under `provider`; return its errors as recorded.

    `sep` joins `latency` and the statistic: `-` for http (`http/latency-p99`), `/` for grpc
    (`grpc/latency/p99`, Iter8's aggregation names, here recorded at microsecond precision).
    `noun` names what was sent (`requests`, `calls`) in reasons.
    """
    pcts = tuple(percentiles)
    metas = _scalar_names(provider, sep, pcts)
    for name, meta in metas.items():
        register_metric(insights, name, meta)
    register_metric(insights, histogram, MetricMeta(
        description="Latency Histogram (successful requests only)",
        type=MetricType.HISTOGRAM, units=MSEC))
    errors = record_errors(insights, version, provider, result.error_kinds())
    latency = result.latency
    values: dict[str, float] = {
        f"{provider}/request-count": result.request_count,
        f"{provider}/error-count": result.errors,
        f"{provider}/late-sends": result.late_sends,
    }
    if result.error_rate is not None:
        values[f"{provider}/error-rate"] = result.error_rate
    else:
        mark_unavailable(insights, version, f"{provider}/error-rate", "no requests were sent")
    if latency.count:
        values.update({
            f"{provider}/latency{sep}mean": latency.mean_ms,
            f"{provider}/latency{sep}stddev": latency.stddev_ms,
            f"{provider}/latency{sep}min": latency.min_ms,
            f"{provider}/latency{sep}max": latency.max_ms,
            f"{provider}/service-time-p99": result.service_time.percentile(99.0),
        })
        for p in pcts:
            values[f"{provider}/latency{sep}p{format_value(p)}"] = latency.percentile(p)
        add_histogram(insights, version, histogram,
                      [HistBucket(lower=lo, upper=hi, count=n) for lo, hi, n in latency.buckets])
    else:
        reason = (f"all {result.request_count} {noun} failed: {describe_errors(errors)}"
                  if result.request_count and errors else "no responses were received")
        for name, meta in metas.items():
            if meta.units == MSEC:
                mark_unavailable(insights, version, name, reason)
        mark_unavailable(insights, version, histogram, reason)
    for name, value in values.items():
        add_value(insights, version, name, float(value))
    return errors


def error_log_lines(errors: list[ErrorCount], total: int, noun: str) -> list[str]:
    """One line per error status: `50 of 50 calls failed: NOT_FOUND ×50: "…"`."""
    failed = sum(e.count for e in errors)
    head = f"{failed} of {total} {noun} failed"
    return [f"{head}: {e.code} ×{e.count}" + (f": \"{e.message}\"" if e.message else "")
            for e in errors]


def mark_endpoint_unavailable(
    insights: Insights, provider: str, percentiles: Iterable[float], *, sep: str, reason: str,
    version: int = 0,
) -> None:
    """An endpoint that could not be load-tested: every metric is unavailable, with the reason."""
    for name, meta in _scalar_names(provider, sep, tuple(percentiles)).items():
        register_metric(insights, name, meta)
        mark_unavailable(insights, version, name, reason)


def slo_percentiles(spec_slos: Iterable[str], provider: str, sep: str) -> list[float]:
    """Percentiles that SLOs ask of this provider (`http/latency-p97.5` -> 97.5), so any
    percentile an SLO names is measured without listing it twice."""
    prefix = f"{provider}/latency{sep}p"
    found = []
    for metric in spec_slos:
        if metric.startswith(prefix):
            try:
                value = float(metric[len(prefix):])
            except ValueError:
                continue
            if 0 < value <= 100:
                found.append(value)
    return found


def assess_slo_metrics(spec: Iterable[object]) -> list[str]:
    """Every metric named by an `assess` task's SLOs in an experiment spec."""
    names: list[str] = []
    for entry in spec:
        if getattr(entry, "task", None) != "assess":
            continue
        slos = {k.lower(): v for k, v in getattr(entry, "with_", {}).items()}.get("slos") or {}
        if not isinstance(slos, dict):
            continue
        for bound in slos.values():
            if isinstance(bound, list):
                names.extend(str(item.get("metric", "")) for item in bound if isinstance(item, dict))
    return names


class Endpoint(Protocol):
    @property
    def percentiles(self) -> list[float] | None: ...


E = TypeVar("E", bound=Endpoint)


def progress_logger(ctx: TaskContext, label: str) -> Callable[[ProgressSnapshot], None]:
    def report(snapshot: ProgressSnapshot) -> None:
        ok = snapshot.request_count > snapshot.error_count
        p99 = f"p99 {snapshot.p99_ms:.3f} ms" if ok else "no successful responses"
        ctx.progress(f"{label}: {snapshot.request_count} requests, {snapshot.error_count} errors, "
                     f"{snapshot.rate:.0f} req/s, {p99}")
    return report


async def measure_endpoints(
    ctx: TaskContext,
    targets: list[tuple[str, E]],
    load: Callable[[E, tuple[float, ...], Callable[[ProgressSnapshot], None]],
                   Awaitable[LoadResult]],
    *,
    several: bool,
    warmup: bool,
    sep: str,
    noun: str = "requests",
    version: int = 0,
    num_versions: int = 1,
) -> None:
    """Load-test each (provider, endpoint) in turn and record the metrics for `version`.

    With several endpoints, one that fails is logged and its metrics are unavailable with
    the reason; the task fails only if all of them fail. A warmup records nothing. Failed
    requests are logged at the end, one warning per status with its first message.
    """
    slo_metrics = assess_slo_metrics(ctx.experiment.spec)
    outcomes: list[tuple[str, LoadResult | None, str, tuple[float, ...]]] = []
    def where(provider: str) -> str:
        return provider if num_versions == 1 else f"{provider} (version {version})"

    for provider, endpoint in targets:
        percentiles = with_default_percentiles(
            [*(endpoint.percentiles or []), *slo_percentiles(slo_metrics, provider, sep)])
        try:
            result = await load(endpoint, percentiles, progress_logger(ctx, where(provider)))
        except CanaristError as exc:
            if not several:
                raise
            log.error("%s: endpoint %s: %s", ctx.log_prefix(), where(provider), exc.message)
            outcomes.append((provider, None, exc.message, percentiles))
            continue
        outcomes.append((provider, result, "", percentiles))
    if warmup:
        log.info("%s: warmup done; results discarded", ctx.log_prefix())
        return
    if all(outcome is None for _, outcome, _, _ in outcomes):
        raise TaskError("every endpoint failed: " + "; ".join(f"{p}: {r}" for p, _, r, _ in outcomes))
    insights = ensure_insights(ctx.result, num_versions)
    for provider, outcome, reason, percentiles in outcomes:
        if outcome is None:
            mark_endpoint_unavailable(insights, provider, percentiles, sep=sep, reason=reason,
                                      version=version)
            record_errors(insights, version, provider, ())
            continue
        errors = record_load(insights, provider, outcome, percentiles, sep=sep,
                             histogram=f"{provider}/latency", noun=noun, version=version)
        prefix = (f"{ctx.log_prefix()}: endpoint {where(provider)}"
                  if several or num_versions > 1 else ctx.log_prefix())
        for line in error_log_lines(errors, outcome.request_count, noun):
            log.warning("%s: %s", prefix, line)


async def measure_versions(
    ctx: TaskContext,
    versions: list[list[tuple[str, E]]],
    load: Callable[[E, tuple[float, ...], Callable[[ProgressSnapshot], None]],
                   Awaitable[LoadResult]],
    *,
    several: bool,
    warmup: bool,
    sep: str,
    noun: str = "requests",
) -> None:
    """`measure_endpoints` for each version's targets, every version under load at the same
    time (so a canary and its baseline see the same conditions), each recorded for its
    version; a version without targets gets no load. The first version's error to occur
    fails the task, and stops the others."""
    try:
        async with asyncio.TaskGroup() as group:
            for version, targets in enumerate(versions):
                if not targets:  # a version nothing can reach (an unrouted revision)
                    continue
                group.create_task(measure_endpoints(
                    ctx, targets, load, several=several, warmup=warmup, sep=sep, noun=noun,
                    version=version, num_versions=len(versions)))
    except BaseExceptionGroup as failed:
        raise _first(failed) from None


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of a version's load, as the engine expects a single one."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
