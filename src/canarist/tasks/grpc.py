"""`grpc`: load-test a unary gRPC method (or several endpoints) and record Iter8's grpc metrics.

Inputs use ghz's option names, as Iter8's grpc task did. The KServe V2 inference protocol
(`inference.GRPCInferenceService/ModelInfer`) works with no proto file: canarist ships it.
Latencies (`grpc/latency/mean`, `grpc/latency/p95`, ...) are corrected for coordinated
omission when `rps` is set and are kept at microsecond precision.

canarist's `versionValues`, as for `http`: one map of inputs per version of the service over
the shared ones (a canary's own `host`, or `metadata` naming its tag host), every version
loaded at the same time and its metrics recorded for that version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from canarist.backends.loadgen.grpc import GrpcLoadSpec, run_grpc_load
from canarist.backends.loadgen.grpc_schema import metadata_problems
from canarist.backends.loadgen.recorder import LoadResult, ProgressSnapshot
from canarist.core.chart import CHART_ONLY_KEYS
from canarist.core.durations import parse_duration
from canarist.core.fields import Duration, Percentile, PositiveInt, Text, grpc_target_problem
from canarist.core.validation import FieldProblem
from canarist.tasks.base import (
    TaskCheck,
    TaskContext,
    TaskDefinition,
    TaskInputs,
)
from canarist.tasks.loadinputs import every_layer, providers, unset_input, version_targets
from canarist.tasks.loadmetrics import load_check, measure_versions

log = logging.getLogger("canarist")

# ghz options Iter8 stored in its files that canarist does not implement; they are ignored.
UNSUPPORTED_GHZ_KEYS = frozenset({
    "name", "tags", "cpus", "format", "output", "debug", "async", "protoset", "keepalive",
    "count-errors", "max-duration", "lb-strategy", "enable-compression",
    "concurrency-schedule", "concurrency-start", "concurrency-end", "concurrency-step",
    "concurrency-step-duration", "concurrency-max-duration", "load-schedule", "load-start",
    "load-end", "load-step", "load-step-duration", "load-max-duration", "stream-interval",
    "stream-call-duration", "stream-call-count", "stream-dynamic-messages",
    "disable-template-functions", "disable-template-data",
})


class GrpcEndpoint(TaskInputs):
    tolerated_keys: ClassVar[frozenset[str]] = CHART_ONLY_KEYS | UNSUPPORTED_GHZ_KEYS

    host: str | None = None
    call: str | None = None
    proto: str | None = None
    import_paths: list[str] | None = Field(default=None, alias="import-paths")
    data: Any = None
    data_file: str | None = Field(default=None, alias="data-file")
    binary_file: str | None = Field(default=None, alias="binary-file")
    metadata: dict[str, Text] | list[dict[str, Text]] | None = None
    metadata_file: str | None = Field(default=None, alias="metadata-file")
    total: PositiveInt | None = None
    duration: Duration | None = None
    duration_stop: Literal["close", "wait", "ignore"] | None = Field(default=None,
                                                                     alias="duration-stop")
    concurrency: PositiveInt | None = None
    connections: PositiveInt | None = None
    rps: float | None = Field(default=None, ge=0)
    skip_first: int | None = Field(default=None, alias="skipFirst", ge=0)
    timeout: Duration | None = None
    connect_timeout: Duration | None = Field(default=None, alias="connect-timeout")
    insecure: bool | None = None
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    skip_tls: bool | None = Field(default=None, alias="skipTLS")
    cname: str | None = None
    authority: str | None = None
    percentiles: list[Percentile] | None = None
    engine: Literal["auto", "h2", "aio"] | None = None


class GrpcInputs(GrpcEndpoint):
    warmup: bool = False
    endpoints: dict[str, GrpcEndpoint] | None = None
    version_values: list[GrpcEndpoint] | None = Field(default=None, alias="versionValues",
                                                      min_length=1)

    @model_validator(mode="after")
    def _host_and_call(self) -> GrpcInputs:
        for field, form in (("host", "host:port"), ("call", "package.Service.Method")):
            where = unset_input(field, self, self.endpoints, self.version_values)
            if where is None:
                continue
            if where[0] == "versionValues":
                raise FieldProblem(where, f"required, as {form} (for this version, or "
                                          f"at the top level)")
            raise FieldProblem(where, f"required, as {form}")
        for loc, layer in every_layer(self, self.endpoints, self.version_values):
            if layer.host:
                problem = grpc_target_problem(layer.host)
                if problem is not None:
                    raise FieldProblem((*loc, "host"), problem)
            for key_loc, problem in metadata_problems(layer.metadata):
                raise FieldProblem((*loc, "metadata", *key_loc), problem)
        return self


def _path(value: str | None, run_dir: Path) -> str | None:
    if value is None:
        return None
    path = Path(value)
    return str(path if path.is_absolute() else run_dir / path)


def _seconds(value: str | None, field: str) -> float | None:
    return None if value is None else parse_duration(value, field=field)


def load_spec(ep: GrpcEndpoint, run_dir: Path) -> GrpcLoadSpec:
    tls = ep.insecure is False or any(x is not None for x in (ep.cacert, ep.cert, ep.skip_tls))
    return GrpcLoadSpec(
        host=str(ep.host),
        call=str(ep.call),
        proto=_path(ep.proto, run_dir),
        import_paths=tuple(_path(p, run_dir) or p for p in ep.import_paths or ()),
        data=ep.data,
        data_file=_path(ep.data_file, run_dir),
        binary_file=_path(ep.binary_file, run_dir),
        metadata=ep.metadata,
        metadata_file=_path(ep.metadata_file, run_dir),
        total=ep.total or 200,
        duration_s=_seconds(ep.duration, "duration"),
        # In-flight calls finish and count when the time is up: cutting them off (ghz's
        # `close`) would report them as errors that the server never made.
        duration_stop=ep.duration_stop or "wait",
        concurrency=ep.concurrency or 50,
        connections=ep.connections or 1,
        rps=ep.rps or 0.0,
        skip_first=ep.skip_first or 0,
        timeout_s=_seconds(ep.timeout, "timeout") or 20.0,
        connect_timeout_s=_seconds(ep.connect_timeout, "connect-timeout") or 10.0,
        insecure=not tls,
        tls_ca_file=_path(ep.cacert, run_dir),
        tls_cert_file=_path(ep.cert, run_dir),
        tls_key_file=_path(ep.key, run_dir),
        tls_skip_verify=bool(ep.skip_tls),
        cname=ep.cname,
        authority=ep.authority,
        engine=ep.engine or "auto",
    )


async def run(inputs: GrpcInputs, ctx: TaskContext) -> None:
    async def load(endpoint: GrpcEndpoint, percentiles: tuple[float, ...],
                   progress: Callable[[ProgressSnapshot], None]) -> LoadResult:
        return await run_grpc_load(load_spec(endpoint, ctx.run_dir), on_progress=progress)

    versions = version_targets("grpc", GrpcEndpoint, inputs, inputs.endpoints,
                               inputs.version_values)
    await measure_versions(ctx, versions, load, several=bool(inputs.endpoints),
                           warmup=inputs.warmup, sep="/", noun="calls")


def check(inputs: GrpcInputs, base_dir: Path) -> TaskCheck:
    return load_check(providers("grpc", inputs.endpoints), sep="/")


TASK = TaskDefinition(name="grpc", inputs=GrpcInputs, run=run, check=check)
