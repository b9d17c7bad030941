"""`agreement`: do the candidate and the baseline answer the same way? A paired comparison.

The same requests (JSON lines from `payloadFile` or `payloadURL`, a seeded sample of
`numRequests` of them) go to the baseline and to every candidate at once, rate-limited by
`qps`, and the predictions are compared pair by pair (see `canarist.core.agreement`). With
`noiseFloor` (the default) every request goes to the baseline twice, and the baseline's
agreement with itself is its noise floor: a model that does not answer the same way twice is
not made a regression by its own noise.

Each version's row of the result's insights holds its comparison with the baseline
(`agreement/rate`, `agreed`, `compared`, `error-count`, ...); the baseline's own row holds
its comparison with itself, so `assess.relative.lower.agreement/rate=1%` judges each
candidate against the noise floor, and `assess.SLOs.lower.agreement/rate=0.95` asks every
version to agree that well, judged on the counts (see `canarist.core.judge`). The confusion
tables and the first disagreements are in `result.agreement`.

Versions are reached through KServe discovery (`kserve: true`, which the chart sets when
`kserve.isvc` is set: each version through its tag host) or listed in `versions`, each with
its `url` and `headers`. Requests go to those endpoints only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, NonNegativeInt, PositiveFloat, field_validator, model_validator

from canarist.backends.inference import (
    CallFailed,
    Endpoint,
    InferenceClient,
    fetch_payload,
)
from canarist.core.agreement import (
    DEFAULT_EXAMPLES,
    NonConforming,
    OutputsMode,
    Pair,
    PayloadError,
    PayloadRow,
    Prediction,
    Protocol,
    Tally,
    Tolerance,
    compare,
    confidence_of,
    parse_payload,
    rate_interval,
    request_body,
    sample_rows,
    shown,
    v1_predictions,
    v2_predictions,
)
from canarist.core.chart import CHART_ONLY_KEYS
from canarist.core.durations import parse_duration
from canarist.core.errors import InputError, TaskError
from canarist.core.experiment import (
    AgreementExample,
    AgreementRecord,
    Insights,
    KServeState,
    MetricMeta,
    MetricType,
)
from canarist.core.fields import Duration, PositiveInt, Text
from canarist.core.insights import (
    add_value,
    ensure_insights,
    mark_unavailable,
    record_errors,
    register_metric,
)
from canarist.core.kserve import version_address
from canarist.core.metrics import MetricCatalog
from canarist.core.validation import FieldProblem, Location
from canarist.backends.files import read_bytes_bounded
from canarist.tasks.base import (
    TaskCheck,
    TaskContext,
    TaskDefinition,
    TaskInputs,
)

log = logging.getLogger("canarist")

PROVIDER = "agreement"
DEFAULT_QPS = 10.0
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = "5s"
PAYLOAD_FETCH_TIMEOUT_S = 30.0

COUNTS: dict[str, MetricMeta] = {
    "agreement/request-count": MetricMeta(
        description="requests sent to this version (the baseline: twice each with the noise "
                    "floor)", type=MetricType.COUNTER),
    "agreement/error-count": MetricMeta(
        description="requests to this version that failed or whose answer did not conform to "
                    "the protocol", type=MetricType.COUNTER),
    "agreement/compared": MetricMeta(
        description="predictions compared with the baseline's (the baseline: with its own "
                    "second answer)", type=MetricType.COUNTER),
    "agreement/agreed": MetricMeta(
        description="compared predictions that agree: the same class, or numbers within "
                    "tolerance", type=MetricType.COUNTER),
}
RATES: dict[str, MetricMeta] = {
    "agreement/rate": MetricMeta(
        description="share of compared predictions that agree with the baseline's (the "
                    "baseline: with its own second answer, its noise floor)",
        type=MetricType.GAUGE),
    "agreement/noise-floor": MetricMeta(
        description="share of the baseline's predictions that agree with its own second "
                    "answer to the same request", type=MetricType.GAUGE),
}
NUMERIC: dict[str, MetricMeta] = {
    "agreement/mean-abs-diff": MetricMeta(
        description="mean absolute difference of numeric predictions from the baseline's",
        type=MetricType.GAUGE),
    "agreement/max-abs-diff": MetricMeta(
        description="largest absolute difference of a numeric prediction from the baseline's",
        type=MetricType.GAUGE),
    "agreement/within-tolerance": MetricMeta(
        description="share of numeric predictions within agreement.tolerance of the "
                    "baseline's", type=MetricType.GAUGE),
    "agreement/within-count": MetricMeta(
        description="numeric predictions within agreement.tolerance of the baseline's",
        type=MetricType.COUNTER),
}
METRICS = frozenset({*COUNTS, *RATES, *NUMERIC})


class VersionInput(TaskInputs):
    url: str | None = None
    headers: dict[str, Text] | None = None


def _tolerance(value: Any) -> str:
    try:
        return Tolerance.parse(value).text
    except ValueError as exc:
        raise ValueError(str(exc).replace("a percentage such as 20%", "a percentage such as 1%")
                         .replace("a number such as 5", "a number such as 0.01")) from None


class AgreementInputs(TaskInputs):
    tolerated_keys: ClassVar[frozenset[str]] = CHART_ONLY_KEYS - {"payloadURL"}

    payload_file: str | None = Field(default=None, alias="payloadFile")
    payload_url: str | None = Field(default=None, alias="payloadURL")
    num_requests: PositiveInt | None = Field(default=None, alias="numRequests")
    seed: int = 0
    protocol: Literal["v1", "v2", "grpc"] | None = None
    model: str | None = None
    url: str | None = None
    headers: dict[str, Text] | None = None
    versions: list[VersionInput] | None = None
    baseline: NonNegativeInt | None = None
    noise_floor: bool = Field(default=True, alias="noiseFloor")
    tolerance: str = "0"
    outputs: Literal["auto", "class", "numeric"] = "auto"
    output: str | None = None
    qps: PositiveFloat = DEFAULT_QPS
    concurrency: PositiveInt = DEFAULT_CONCURRENCY
    timeout: Duration = DEFAULT_TIMEOUT
    examples: NonNegativeInt = DEFAULT_EXAMPLES
    kserve: bool = False
    """Compare the versions `kserve.isvc` discovery found, each through its tag host; `url`
    is then the path (REST) or the gRPC address of the ingress."""

    @field_validator("tolerance", mode="before")
    @classmethod
    def _parse_tolerance(cls, value: Any) -> str:
        return _tolerance(value)

    @model_validator(mode="after")
    def _consistent(self) -> AgreementInputs:
        if not self.payload_file and not self.payload_url:
            raise FieldProblem("payloadFile", "required: a JSON-lines file, one request body a "
                               "line (or payloadURL)")
        if self.payload_file and self.payload_url:
            raise FieldProblem("payloadURL", "set payloadFile or payloadURL, not both")
        if self.kserve:
            if self.url and not (self.url.startswith("/") or _is_grpc(self.url)):
                raise FieldProblem("url", "with kserve.isvc, expected the path of every "
                                   "version's URL (/v1/models/sklearn-iris:predict) or the "
                                   "gRPC address of the ingress (grpc://127.0.0.1:8081)")
            return self
        versions = self.versions or []
        if len(versions) < 2:
            raise FieldProblem("versions", "expected at least two versions, each with its url "
                               "(version 1, the baseline, and a candidate), or kserve.isvc")
        for index, version in enumerate(versions):
            if not (version.url or self.url):
                raise FieldProblem(("versions", index, "url"), "required: where this version "
                                   "answers (http://host:port/v1/models/NAME:predict, or "
                                   "grpc://host:port)")
        if self.baseline is not None and self.baseline >= len(versions):
            raise FieldProblem("baseline", f"there is no version {self.baseline}: "
                               f"{len(versions)} versions are listed, numbered from 0")
        protocol = self.resolved_protocol()
        for index, version in enumerate(versions):
            where: Location = ("versions", index, "url") if version.url else ("url",)
            given = version.url or self.url or ""
            if protocol == "grpc" and given.startswith(("http://", "https://")):
                raise FieldProblem(where, f"expected grpc://host:port over gRPC, got {given!r}")
            if protocol != "grpc" and not given.startswith(("http://", "https://")):
                raise FieldProblem(where, "expected an http:// or https:// URL such as "
                                   f"http://127.0.0.1:8080/v1/models/NAME:predict, got {given!r}")
        if protocol == "grpc" and not self.model:
            raise FieldProblem("model", "required over gRPC: the model name each request "
                               "carries (the InferenceService's name)")
        return self

    def urls(self) -> list[str]:
        listed = [v.url or self.url or "" for v in self.versions or []]
        return listed or ([self.url] if self.url else [])

    def resolved_protocol(self) -> Protocol:
        """`protocol`, or what the URLs say: grpc:// is gRPC, a path ending in /infer V2."""
        if self.protocol is not None:
            return self.protocol
        urls = self.urls()
        if any(_is_grpc(u) for u in urls):
            return "grpc"
        if urls and all(urlsplit(u).path.rstrip("/").endswith("/infer") for u in urls):
            return "v2"
        return "v1"


def _is_grpc(url: str) -> bool:
    return url.startswith(("grpc://", "grpcs://"))


# -- before anything runs ------------------------------------------------------------------------


def read_payload(inputs: AgreementInputs, base_dir: Path) -> tuple[str, str]:
    """(what to call it, its text) for a payload file; InputError naming the key."""
    assert inputs.payload_file is not None
    path = Path(inputs.payload_file)
    full = path if path.is_absolute() else base_dir / path
    try:
        return inputs.payload_file, read_bytes_bounded(
            full, name=f"agreement.payloadFile {inputs.payload_file}").decode("utf-8")
    except OSError as exc:
        raise InputError(f"agreement.payloadFile: cannot read {inputs.payload_file}: "
                         f"{exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"agreement.payloadFile: {inputs.payload_file} is not UTF-8 "
                         "text") from None


def payload_bodies(text: str, source: str, protocol: Protocol,
                   key: str) -> list[tuple[PayloadRow, dict[str, Any]]]:
    """Every row with the body to send in `protocol`; InputError at `key` for a bad line."""
    try:
        rows = parse_payload(text)
        prepared = []
        for row in rows:
            try:
                prepared.append((row, request_body(row.body, protocol)))
            except PayloadError as exc:
                raise PayloadError(f"line {row.line}: {exc}") from None
    except PayloadError as exc:
        raise InputError(f"{key}: {source} {exc}") from None
    return prepared


def check(inputs: AgreementInputs, base_dir: Path) -> TaskCheck:
    problems: list[tuple[Location, str]] = []
    if inputs.payload_file:
        try:
            source, text = read_payload(inputs, base_dir)
            payload_bodies(text, source, inputs.resolved_protocol(), "agreement.payloadFile")
        except InputError as exc:
            problems.append((("payloadFile",), exc.message.split(": ", 1)[1]))
    return TaskCheck(MetricCatalog(METRICS), problems)


# -- where each version answers ------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    endpoints: list[Endpoint | None]
    """One per version; None for a version nothing can reach (an unrouted revision)."""
    baseline: int
    protocol: Protocol


def explicit_targets(inputs: AgreementInputs) -> Targets:
    protocol = inputs.resolved_protocol()
    endpoints: list[Endpoint | None] = []
    for version in inputs.versions or []:
        url = version.url or inputs.url or ""
        headers = {**(inputs.headers or {}), **(version.headers or {})}
        endpoints.append(Endpoint(url, headers, protocol, inputs.model or ""))
    return Targets(endpoints, 1 if inputs.baseline is None else inputs.baseline, protocol)


def discovered_targets(inputs: AgreementInputs, found: KServeState | None) -> Targets:
    """Each discovered version through its tag host: the ingress (or `url`, gRPC's address)
    with the tag host in `Host`, or the tag URL itself."""
    if found is None:
        raise TaskError("agreement.kserve needs the versions of an InferenceService: set "
                        "kserve.isvc")
    protocol = inputs.resolved_protocol()
    model = inputs.model or found.isvc
    path = inputs.url if inputs.url and inputs.url.startswith("/") else (
        f"/v2/models/{model}/infer" if protocol == "v2" else f"/v1/models/{model}:predict")
    endpoints: list[Endpoint | None] = []
    for version in found.versions:
        address = version_address(version, found.ingress)
        if address is None:
            log.warning("agreement: %s %s has no tag host (it is not routed); it is not "
                        "compared", version.role, version.revision)
            endpoints.append(None)
            continue
        base, host = address
        headers = dict(inputs.headers or {})
        if protocol == "grpc":  # the tag host as authority, at the ingress or the tag URL
            target = inputs.url if inputs.url and _is_grpc(inputs.url) else None
            if target is None:  # the tag URL's host and port: HTTP/2 on the same port
                parts = urlsplit(version.url)
                port = parts.port or (443 if parts.scheme == "https" else 80)
                scheme = "grpcs" if parts.scheme == "https" else "grpc"
                target = f"{scheme}://{parts.hostname}:{port}"
            headers["Host"] = version.host
            endpoints.append(Endpoint(target, headers, protocol, model))
        else:
            if host:
                headers["Host"] = host
            endpoints.append(Endpoint(base + path, headers, protocol, model))
    roles = [v.role for v in found.versions]
    baseline = inputs.baseline if inputs.baseline is not None else (
        roles.index("baseline") if "baseline" in roles else 0)
    if baseline >= len(endpoints):
        raise InputError(f"agreement.baseline: there is no version {baseline}; "
                         f"{found.isvc} has {len(endpoints)} version(s)")
    return Targets(endpoints, baseline, protocol)


# -- sending ------------------------------------------------------------------------------------


@dataclass
class Answers:
    """What every version answered to one request body: predictions, or the failure."""

    row: PayloadRow
    sent: dict[str, Any]
    first: list[list[Prediction] | CallFailed | None]
    second: list[Prediction] | CallFailed | None = None
    """The baseline's second answer (the noise floor)."""


def predictions(answer: Any, protocol: Protocol, expected: int,
                output: str | None) -> list[Prediction]:
    try:
        if protocol == "v1":
            return v1_predictions(answer, expected)
        return v2_predictions(answer, expected, output)
    except NonConforming as exc:
        raise CallFailed("invalid-response", str(exc)) from None


class Sender:
    """Sends each body to every version at once (and to the baseline a second time), at
    most `qps` bodies a second and `concurrency` bodies in flight, and hands each body's
    answers to `done` as they come in."""

    def __init__(self, inputs: AgreementInputs, targets: Targets, client: InferenceClient,
                 done: Callable[[Answers], None]) -> None:
        self.inputs, self.targets, self.client, self.done = inputs, targets, client, done

    async def one(self, endpoint: Endpoint | None, row: PayloadRow,
                  body: dict[str, Any]) -> list[Prediction] | CallFailed | None:
        if endpoint is None:
            return None
        try:
            answer = await self.client.infer(endpoint, body)
            return predictions(answer, endpoint.protocol, row.instances, self.inputs.output)
        except CallFailed as exc:
            return exc

    async def row(self, row: PayloadRow, body: dict[str, Any], limit: asyncio.Semaphore) -> None:
        try:
            calls = [self.one(e, row, body) for e in self.targets.endpoints]
            if self.inputs.noise_floor:
                calls.append(self.one(self.targets.endpoints[self.targets.baseline], row, body))
            found = await asyncio.gather(*calls)
        finally:
            limit.release()
        answers = Answers(row, body, list(found[: len(self.targets.endpoints)]))
        if self.inputs.noise_floor:
            answers.second = found[-1]
        self.done(answers)

    async def send(self, bodies: list[tuple[PayloadRow, dict[str, Any]]]) -> None:
        """Each body when it is due, none before a slot is free; tasks are made as they go,
        so a long payload costs no more than `concurrency` bodies in flight."""
        limit = asyncio.Semaphore(self.inputs.concurrency)
        started = time.monotonic()
        try:
            async with asyncio.TaskGroup() as group:
                for k, (row, body) in enumerate(bodies):
                    await limit.acquire()
                    delay = started + k / self.inputs.qps - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    group.create_task(self.row(row, body, limit))
        except BaseExceptionGroup as failed:  # a bug, or an input only met now (FP16 on gRPC)
            raise failed.exceptions[0] from None


# -- counting ------------------------------------------------------------------------------------


def tally_answers(answers: Answers, tallies: list[Tally], baseline: int, mode: OutputsMode,
                  tolerance: Tolerance, examples: int) -> None:
    """Add one body's answers to every version's tally."""
    first = answers.first
    reference = first[baseline]
    for index, found in enumerate(first):
        if found is None:
            continue
        tallies[index].requests += 1
        if isinstance(found, CallFailed):
            tallies[index].error(found.code, found.message)
    if answers.second is not None:
        tallies[baseline].requests += 1
        if isinstance(answers.second, CallFailed):
            tallies[baseline].error(answers.second.code, answers.second.message)
    if not isinstance(reference, list):
        return
    for index, found in enumerate(first):
        other = answers.second if index == baseline else found
        if not isinstance(other, list):
            continue
        try:
            pairs = [compare(b, c, mode, tolerance) for b, c in zip(reference, other, strict=True)]
        except NonConforming as exc:
            tallies[index].error("invalid-response", str(exc))
            continue
        for instance, (pair, b, c) in enumerate(zip(pairs, reference, other, strict=True)):
            tallies[index].add(pair, _example(answers, instance, b, c, pair), examples)


def _example(answers: Answers, instance: int, baseline: Prediction, candidate: Prediction,
             pair: Pair) -> AgreementExample | None:
    if pair.agree:
        return None
    return AgreementExample(line=answers.row.line, instance=instance,
                            request=shown(answers.row.body), baseline=shown_prediction(baseline),
                            candidate=shown_prediction(candidate))


def shown_prediction(prediction: Prediction) -> str:
    return shown(json.loads(prediction.shown))


def record(insights: Insights, tallies: list[Tally], targets: Targets, noise_floor: bool,
           labels: list[str]) -> None:
    """Every version's metrics: its comparison with the baseline; the baseline's with itself."""
    for name, meta in (COUNTS | RATES).items():
        register_metric(insights, name, meta)
    baseline = targets.baseline
    floor = tallies[baseline]
    numeric = any(t.all_numeric for t in tallies)
    if numeric:
        for name, meta in NUMERIC.items():
            register_metric(insights, name, meta)
    for index, tally in enumerate(tallies):
        if targets.endpoints[index] is None:
            reason = "not routed: discovery found no tag host for this version"
            for name in METRICS:
                mark_unavailable(insights, index, name, reason)
            continue
        add_value(insights, index, "agreement/request-count", tally.requests)
        add_value(insights, index, "agreement/error-count", tally.error_count)
        record_errors(insights, index, PROVIDER,
                      [(code, count, message) for code, (count, message) in tally.errors.items()])
        if index == baseline and not noise_floor:
            reason = ("not measured: agreement.noiseFloor is false, so the baseline was not "
                      "compared with itself")
            for name in (*RATES, "agreement/compared", "agreement/agreed", *NUMERIC):
                mark_unavailable(insights, index, name, reason)
            continue
        add_value(insights, index, "agreement/compared", tally.compared)
        add_value(insights, index, "agreement/agreed", tally.agreed)
        reason = _nothing_compared(tally, tallies[baseline], labels[baseline], index == baseline)
        if tally.rate is None:
            mark_unavailable(insights, index, "agreement/rate", reason)
        else:
            add_value(insights, index, "agreement/rate", tally.rate)
        _record_numeric(insights, index, tally, reason)
    for index in range(len(tallies)):
        if targets.endpoints[index] is None:
            continue
        if not noise_floor:
            mark_unavailable(insights, index, "agreement/noise-floor",
                             "not measured: agreement.noiseFloor is false")
        elif floor.rate is None:
            mark_unavailable(insights, index, "agreement/noise-floor",
                             _nothing_compared(floor, floor, labels[baseline], True))
        else:
            add_value(insights, index, "agreement/noise-floor", floor.rate)


def _record_numeric(insights: Insights, index: int, tally: Tally, reason: str) -> None:
    if tally.all_numeric:
        add_value(insights, index, "agreement/mean-abs-diff",
                  tally.diff_sum / tally.diff_count if tally.diff_count else 0.0)
        add_value(insights, index, "agreement/max-abs-diff", tally.diff_max)
        add_value(insights, index, "agreement/within-tolerance", tally.within / tally.numeric)
        add_value(insights, index, "agreement/within-count", tally.within)
        return
    why = reason if not tally.compared else "the predictions are classes, not numbers"
    for name in NUMERIC:
        mark_unavailable(insights, index, name, why)


def _nothing_compared(tally: Tally, baseline: Tally, baseline_label: str, is_baseline: bool) -> str:
    if tally.compared:
        return ""
    if tally.errors:
        failures = ", ".join(f"{code} ×{count}" for code, (count, _) in tally.errors.items())
        return f"no prediction could be compared: {tally.error_count} of {tally.requests} " \
               f"requests failed ({failures})"
    if baseline.errors and not is_baseline:
        return (f"no prediction could be compared: the baseline {baseline_label} answered none "
                "of the requests")
    return "no prediction was compared"


# -- the task ------------------------------------------------------------------------------------


async def load_rows(inputs: AgreementInputs, ctx: TaskContext,
                    protocol: Protocol) -> tuple[str, list[tuple[PayloadRow, dict[str, Any]]]]:
    if inputs.payload_url:
        text = await fetch_payload(inputs.payload_url, PAYLOAD_FETCH_TIMEOUT_S)
        return inputs.payload_url, payload_bodies(text, inputs.payload_url, protocol,
                                                  "agreement.payloadURL")
    source, text = read_payload(inputs, ctx.run_dir)
    return source, payload_bodies(text, source, protocol, "agreement.payloadFile")


async def run(inputs: AgreementInputs, ctx: TaskContext) -> None:
    targets = (discovered_targets(inputs, ctx.result.kserve) if inputs.kserve
               else explicit_targets(inputs))
    source, rows = await load_rows(inputs, ctx, targets.protocol)
    chosen = sample_rows(len(rows), inputs.num_requests, inputs.seed)
    num_versions = len(targets.endpoints)
    insights = ensure_insights(ctx.result, num_versions)
    labels = [insights.version_label(j) for j in range(num_versions)]
    tolerance = Tolerance.parse(inputs.tolerance)
    tallies = [Tally() for _ in range(num_versions)]
    timeout_s = parse_duration(inputs.timeout, field="timeout")
    if num_versions == 1:
        log.info("%s: only %s was found: it is compared with itself (its noise floor)",
                 ctx.log_prefix(), labels[0])
    answered = 0

    def done(answers: Answers) -> None:
        nonlocal answered
        answered += 1
        tally_answers(answers, tallies, targets.baseline, inputs.outputs, tolerance,
                      inputs.examples)
        ctx.progress(f"agreement: {answered} of {len(chosen)} requests answered")

    async with InferenceClient(timeout_s=timeout_s) as client:
        await client.prepare([e for e in targets.endpoints if e is not None])
        await Sender(inputs, targets, client, done).send([rows[i] for i in chosen])
    record(insights, tallies, targets, inputs.noise_floor, labels)
    ctx.result.agreement = AgreementRecord(
        source=source, protocol=targets.protocol, outputs=inputs.outputs,
        tolerance=tolerance.text, rows=len(rows), sent=len(chosen), seed=inputs.seed,
        baseline=targets.baseline, noiseFloor=inputs.noise_floor,
        versions=[tally.record(j, "" if targets.endpoints[j] is not None else "not routed")
                  for j, tally in enumerate(tallies)])
    _log_summary(ctx, tallies, targets, labels, inputs.noise_floor,
                 confidence_of(ctx.experiment.spec))


def _log_summary(ctx: TaskContext, tallies: list[Tally], targets: Targets, labels: list[str],
                 noise_floor: bool, confidence: float) -> None:
    baseline = targets.baseline
    for index, tally in enumerate(tallies):
        if targets.endpoints[index] is None:
            continue
        for code, (count, message) in tally.errors.items():
            log.warning("%s: %s: %d of %d requests failed: %s ×%d: \"%s\"", ctx.log_prefix(),
                        labels[index], tally.error_count, tally.requests, code, count, message)
        if index == baseline and not noise_floor:
            continue
        against = "itself (noise floor)" if index == baseline else labels[baseline]
        if not tally.compared:
            log.warning("%s: %s against %s: no prediction could be compared", ctx.log_prefix(),
                        labels[index], against)
            continue
        low, high = rate_interval(tally.agreed, tally.compared, confidence)
        log.info("%s: %s agrees with %s on %d of %d predictions (%.1f %%; %.1f %% to %.1f %% at "
                 "%g %% confidence)", ctx.log_prefix(), labels[index], against, tally.agreed,
                 tally.compared, 100 * tally.agreed / tally.compared, 100 * low, 100 * high,
                 100 * confidence)


TASK = TaskDefinition(name="agreement", inputs=AgreementInputs, run=run, check=check)
