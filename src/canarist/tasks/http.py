"""`http`: load-test an HTTP endpoint (or several) and record latency and error metrics.

Inputs and metric names follow Iter8's http task (which embedded fortio). Latencies are
corrected for coordinated omission and have microsecond precision.

canarist's `versionValues` load each version of the service at once, one map of inputs per
version over the shared ones (a canary's own URL or Host header, say), and record each
version's metrics apart, so that a relative objective can judge the canary against its
baseline on the same traffic at the same time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, model_validator

from canarist.backends.files import read_bytes_bounded
from canarist.backends.loadgen.http import (
    HttpLoadSpec,
    InitialRequestError,
    run_http_load,
    status_text,
)
from canarist.backends.loadgen.recorder import LoadResult, ProgressSnapshot, status_name
from canarist.core.durations import parse_duration
from canarist.core.errors import InputError, TaskError, UnavailableError
from canarist.core.experiment import KServeState
from canarist.core.fields import (
    Duration,
    HeaderName,
    HeaderValue,
    Percentile,
    PositiveInt,
    RequestBody,
    url_problem,
)
from canarist.core.insights import short_message
from canarist.core.kserve import version_address
from canarist.core.validation import FieldProblem, Location
from canarist.tasks.base import TaskCheck, TaskContext, TaskDefinition, TaskInputs
from canarist.tasks.loadinputs import every_layer, providers, unset_input, version_targets
from canarist.tasks.loadmetrics import load_check, measure_versions

log = logging.getLogger("canarist")

DEFAULT_QPS = 8.0
DEFAULT_CONNECTIONS = 4
DEFAULT_REQUEST_TIMEOUT = "3s"


class ErrorRange(TaskInputs):
    lower: int | None = None
    upper: int | None = None


class HttpEndpoint(TaskInputs):
    url: str | None = None
    headers: dict[HeaderName, HeaderValue] | None = None
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
    version_values: list[HttpEndpoint] | None = Field(default=None, alias="versionValues",
                                                      min_length=1)
    kserve: bool = False
    """Load every version `kserve.isvc` discovery found, through its tag host; `url` is then
    the path (default `/v1/models/<isvc>:predict`)."""

    @model_validator(mode="after")
    def _url_somewhere(self) -> HttpInputs:
        if self.kserve:
            if self.url and not self.url.startswith("/"):
                raise FieldProblem("url", "with kserve.isvc, expected the path of every version's "
                                   "URL, such as /v1/models/sklearn-iris:predict")
            return self
        where = unset_input("url", self, self.endpoints, self.version_values)
        if where is None:
            for loc, url in _urls(self):
                problem = url_problem(url)
                if problem is not None:
                    raise FieldProblem(loc, problem)
            return self
        if where[0] == "endpoints":
            raise FieldProblem(where, "required (or a url for every endpoint at the top level)")
        if where[0] == "versionValues":
            raise FieldProblem(where,
                               "required: the URL of this version (or a url at the top level)")
        raise FieldProblem(where, "required: the URL to send requests to (or endpoints, "
                                  "each with its url)")


def _urls(inputs: HttpInputs) -> list[tuple[Location, str]]:
    """Every URL given, at the key it was given at."""
    return [((*loc, "url"), layer.url) for loc, layer in
            every_layer(inputs, inputs.endpoints, inputs.version_values) if layer.url]


def load_spec(ep: HttpEndpoint, run_dir: Path, percentiles: tuple[float, ...]) -> HttpLoadSpec:
    body: bytes | None = None
    if ep.payload_file:
        path = Path(ep.payload_file)
        path = path if path.is_absolute() else run_dir / path
        try:
            body = read_bytes_bounded(path, name=f"payloadFile {path}")
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


_REQUEST_CODES = frozenset({"400", "405", "406", "411", "413", "414", "415", "422"})
_SERVER_CODES = frozenset({"429", "500", "502", "503", "504"})


def hint(code: str) -> str:
    """What to check when the first request fails with `code` (a status or a failure kind)."""
    if code == "404":
        return ("check the URL path and, behind an ingress, the Host header "
                "(--set http.headers.Host=<host the ingress serves>)")
    if code in ("401", "403"):
        return "the service refused the request: check the credentials in http.headers"
    if code in _REQUEST_CODES:
        return ("the service rejected the request: check http.payloadStr or payloadFile, "
                "contentType, and the method they imply (POST)")
    if code in _SERVER_CODES or code.startswith("5"):
        return ("the service failed: if it is still starting, put a `ready` task before "
                "`http`, or set http.allowInitialErrors=true to measure it anyway")
    if code == "connection-refused":
        return "check that the service listens at http.url"
    if code == "dns-error":
        return "check the host name in http.url"
    if code == "timeout":
        return "the service did not answer within http.timeout (3s unless set)"
    if code == "tls-error":
        return "check the server's certificate; https:// URLs use the system trust store"
    return "check http.url and that the service is up"


def initial_request_message(exc: InitialRequestError) -> str:
    """One line: what the first request got, what the response said, and what to check."""
    code = status_name(exc.status)
    got = f"returned {status_text(exc.status)}" if exc.status >= 0 else f"failed ({code})"
    said = short_message(exc.excerpt)
    quoted = f': "{said}"' if said else ""
    return f"the first request to {exc.target} {got}{quoted}; {hint(code)}"


def discovered_versions(inputs: HttpInputs, found: KServeState | None) -> HttpInputs:
    """Each discovered version's URL: the ingress with the version's tag host in `Host`, or
    the tag URL itself. A version without a tag host (not routed) gets no load."""
    if found is None:
        raise TaskError("http.kserve needs the versions of an InferenceService: set kserve.isvc")
    path = inputs.url or f"/v1/models/{found.isvc}:predict"
    versions: list[HttpEndpoint] = []
    for version in found.versions:
        address = version_address(version, found.ingress)
        if address is None:
            log.warning("http: %s %s has no tag host (it is not routed); it gets no load",
                        version.role, version.revision)
            versions.append(HttpEndpoint())
        elif address[1]:
            headers = {**(inputs.headers or {}), "Host": address[1]}
            versions.append(HttpEndpoint(url=address[0] + path, headers=headers))
        else:
            versions.append(HttpEndpoint(url=address[0] + path))
    return inputs.model_copy(update={"version_values": versions, "url": None})


async def run(inputs: HttpInputs, ctx: TaskContext) -> None:
    if inputs.kserve:
        inputs = discovered_versions(inputs, ctx.result.kserve)

    async def load(endpoint: HttpEndpoint, percentiles: tuple[float, ...],
                   progress: Callable[[ProgressSnapshot], None]) -> LoadResult:
        try:
            return await run_http_load(load_spec(endpoint, ctx.run_dir, percentiles),
                                       on_progress=progress)
        except InitialRequestError as exc:
            raise UnavailableError(initial_request_message(exc)) from None

    versions = [[(provider, ep) for provider, ep in targets if ep.url] for targets in
                version_targets("http", HttpEndpoint, inputs, inputs.endpoints,
                                inputs.version_values)]
    await measure_versions(ctx, versions, load, several=bool(inputs.endpoints),
                           warmup=inputs.warmup, sep="-")


def check(inputs: HttpInputs, base_dir: Path) -> TaskCheck:
    return load_check(providers("http", inputs.endpoints), sep="-")


TASK = TaskDefinition(name="http", inputs=HttpInputs, run=run, check=check)
