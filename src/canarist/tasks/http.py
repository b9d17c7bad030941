"""`http`: load-test an HTTP endpoint (or several) and record latency and error metrics.

Inputs and metric names follow Iter8's http task (which embedded fortio). Latencies are
corrected for coordinated omission and have microsecond precision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, model_validator

from canarist.backends.loadgen.http import HttpLoadSpec, run_http_load
from canarist.backends.loadgen.recorder import LoadResult, ProgressSnapshot
from canarist.core.durations import parse_duration
from canarist.core.errors import InputError
from canarist.core.fields import Duration, Percentile, PositiveInt, RequestBody, Text
from canarist.core.validation import FieldProblem
from canarist.tasks.base import TaskCheck, TaskContext, TaskDefinition, TaskInputs
from canarist.tasks.loadmetrics import load_check, measure_endpoints

log = logging.getLogger("canarist")

DEFAULT_QPS = 8.0
DEFAULT_CONNECTIONS = 4
DEFAULT_REQUEST_TIMEOUT = "3s"


class ErrorRange(TaskInputs):
    lower: int | None = None
    upper: int | None = None


class HttpEndpoint(TaskInputs):
    url: str | None = None
    headers: dict[str, Text] | None = None
    payload_str: RequestBody | None = Field(default=None, alias="payloadStr")
    payload_file: str | None = Field(default=None, alias="payloadFile")
    content_type: str | None = Field(default=None, alias="contentType")
    num_requests: PositiveInt | None = Field(default=None, alias="numRequests")
    duration: Duration | None = None
    qps: float | None = None
    connections: PositiveInt | None = None
    error_ranges: list[ErrorRange] | None = Field(default=None, alias="errorRanges")
    percentiles: list[Percentile] | None = None
    allow_initial_errors: bool | None = Field(default=None, alias="allowInitialErrors")
    timeout: Duration | None = None


class HttpInputs(HttpEndpoint):
    warmup: bool = False
    endpoints: dict[str, HttpEndpoint] | None = None

    @model_validator(mode="after")
    def _url_somewhere(self) -> HttpInputs:
        if self.endpoints:
            for eid, ep in self.endpoints.items():
                if not (ep.url or self.url):
                    raise FieldProblem(("endpoints", eid, "url"),
                                       "required (or a url for every endpoint at the top level)")
        elif not self.url:
            raise FieldProblem("url", "required: the URL to send requests to (or endpoints, "
                                      "each with its url)")
        return self


def _merged(top: HttpInputs, endpoint: HttpEndpoint | None) -> HttpEndpoint:
    """Fields set on the endpoint win; the rest come from the top level."""
    data = top.model_dump(by_alias=True, exclude={"endpoints", "warmup"}, exclude_none=True)
    if endpoint is not None:
        data.update(endpoint.model_dump(by_alias=True, exclude_none=True))
    return HttpEndpoint.model_validate(data)


def load_spec(ep: HttpEndpoint, run_dir: Path, percentiles: tuple[float, ...]) -> HttpLoadSpec:
    body: bytes | None = None
    if ep.payload_file:
        path = Path(ep.payload_file)
        path = path if path.is_absolute() else run_dir / path
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise InputError(f"payloadFile: cannot read {path}: {exc.strerror or exc}") from None
    elif ep.payload_str:
        body = ep.payload_str.encode()
    num_requests = ep.num_requests
    duration_s = parse_duration(ep.duration, field="duration") if ep.duration else None
    if num_requests is None and duration_s is None:
        num_requests = 100
    if num_requests is not None:
        duration_s = None
    qps: float | None = ep.qps if ep.qps not in (None, 0) else DEFAULT_QPS
    if qps is not None and qps < 0:
        qps = None  # fortio: a negative rate means as fast as possible
    ranges = tuple((r.lower, r.upper) for r in ep.error_ranges) if ep.error_ranges is not None \
        else ((400, None),)
    return HttpLoadSpec(
        url=str(ep.url),
        headers=dict(ep.headers or {}),
        body=body,
        content_type=ep.content_type,
        num_requests=num_requests,
        duration_s=duration_s,
        qps=qps,
        connections=ep.connections or DEFAULT_CONNECTIONS,
        request_timeout_s=parse_duration(ep.timeout or DEFAULT_REQUEST_TIMEOUT, field="timeout"),
        error_ranges=ranges,
        allow_initial_errors=bool(ep.allow_initial_errors),
        percentiles=percentiles,
    )


async def run(inputs: HttpInputs, ctx: TaskContext) -> None:
    targets: list[tuple[str, HttpEndpoint]] = (
        [(f"http-{eid}", _merged(inputs, ep)) for eid, ep in sorted(inputs.endpoints.items())]
        if inputs.endpoints else [("http", _merged(inputs, None))]
    )

    async def load(endpoint: HttpEndpoint, percentiles: tuple[float, ...],
                   progress: Callable[[ProgressSnapshot], None]) -> LoadResult:
        return await run_http_load(load_spec(endpoint, ctx.run_dir, percentiles),
                                   on_progress=progress)

    await measure_endpoints(ctx, targets, load, several=bool(inputs.endpoints),
                            warmup=inputs.warmup, sep="-")


def check(inputs: HttpInputs, base_dir: Path) -> TaskCheck:
    providers = [f"http-{eid}" for eid in inputs.endpoints] if inputs.endpoints else ["http"]
    return load_check(providers, sep="-")


TASK = TaskDefinition(name="http", inputs=HttpInputs, run=run, check=check)
