"""`http`: load-test an HTTP endpoint (or several) and record latency and error metrics.

Inputs and metric names follow Iter8's http task (which embedded fortio). Latencies are
corrected for coordinated omission and have microsecond precision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from canarist.backends.loadgen.http import HttpLoadSpec, run_http_load
from canarist.backends.loadgen.recorder import LoadResult, ProgressSnapshot
from canarist.core.durations import parse_duration
from canarist.core.errors import DurationError, InputError
from canarist.tasks.base import TaskContext, TaskDefinition, TaskInputs
from canarist.tasks.loadmetrics import measure_endpoints

log = logging.getLogger("canarist")

DEFAULT_QPS = 8.0
DEFAULT_CONNECTIONS = 4
DEFAULT_REQUEST_TIMEOUT = "3s"


class ErrorRange(TaskInputs):
    lower: int | None = None
    upper: int | None = None


def check_duration(value: str | None, field: str) -> str | None:
    """A pydantic field check: a positive Go duration (errors become validation errors)."""
    if value is not None:
        try:
            seconds = parse_duration(value, field=field)
        except DurationError as exc:
            raise ValueError(exc.message) from None
        if seconds <= 0:
            raise ValueError(f"must be a positive duration, got {value}")
    return value


class HttpEndpoint(TaskInputs):
    url: str | None = None
    headers: dict[str, str] | None = None
    payload_str: str | None = Field(default=None, alias="payloadStr")
    payload_file: str | None = Field(default=None, alias="payloadFile")
    content_type: str | None = Field(default=None, alias="contentType")
    num_requests: int | None = Field(default=None, alias="numRequests", ge=1)
    duration: str | None = None
    qps: float | None = None
    connections: int | None = Field(default=None, ge=1)
    error_ranges: list[ErrorRange] | None = Field(default=None, alias="errorRanges")
    percentiles: list[float] | None = None
    allow_initial_errors: bool | None = Field(default=None, alias="allowInitialErrors")
    timeout: str | None = None

    @field_validator("duration", "timeout")
    @classmethod
    def _durations(cls, value: str | None) -> str | None:
        return check_duration(value, "duration")

    @field_validator("percentiles")
    @classmethod
    def _percent(cls, value: list[float] | None) -> list[float] | None:
        for p in value or []:
            if not 0 < p <= 100:
                raise ValueError(f"percentiles must be in (0, 100], got {p}")
        return value


class HttpInputs(HttpEndpoint):
    warmup: bool = False
    endpoints: dict[str, HttpEndpoint] | None = None

    @model_validator(mode="after")
    def _url_somewhere(self) -> HttpInputs:
        if self.endpoints:
            missing = [eid for eid, ep in self.endpoints.items() if not (ep.url or self.url)]
            if missing:
                raise ValueError(f'endpoint "{missing[0]}" does not have a url parameter')
        elif not self.url:
            raise ValueError("please set the url parameter or the endpoints parameter")
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


TASK = TaskDefinition(name="http", inputs=HttpInputs, run=run)
