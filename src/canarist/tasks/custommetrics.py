"""`custommetrics`: metrics per version from Prometheus or any HTTP/JSON API, via provider templates.

For every provider (`templates`: name -> URL, built-in name or file) and every version, the
template is rendered with the version's values into a provider spec; each metric's query is
sent, its jq expression picks the number out of the JSON answer, and the value is recorded
as `<provider>/<metric>`. Queries run concurrently, each with a timeout. A `histogram`
metric's expression yields Prometheus-style buckets instead of a number: a list of
`[upper bound, cumulative count]` pairs (`le` and the count, as strings or numbers), which
relative objectives judge on (see canarist.core.judge).

The task fails when a template URL cannot be fetched (exit 3), when no query of a provider
could reach it at all (every one refused, unresolvable or timed out: exit 3), or when a
template cannot be parsed, executed or decoded, or `startingTime` is not RFC 3339 (bad
input, exit 2; local templates are rendered once before anything runs, so this is found at
launch). A single metric that cannot be had (HTTP error, timeout, answer that is not JSON,
jq error or no output, null, not a number, NaN or infinite, empty Prometheus result) is
recorded as unavailable with the reason, and the task succeeds. An empty Prometheus result
is explained when the template names the series the query reads (`diagnose`): no series
match, or the window is too short (one lookup per distinct series and window, see
canarist.backends.prometheus_series).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pydantic import Field, field_validator, model_validator

from canarist.backends.bounded import Limit, Overrun, evaluate_async, limit_for
from canarist.backends.metrics_http import (
    AuthSource,
    ConnectFailed,
    Credentials,
    HttpQuery,
    MetricsHttpClient,
    QueryTimeout,
    QueryUnavailable,
    load_credentials,
)
from canarist.backends.prometheus_series import EmptyLookup, explain_empty
from canarist.backends.providers.extract import (
    EmptyResult,
    JqOutput,
    MetricUnavailable,
    excerpt,
    jq_outputs,
    read_output,
    to_buckets,
    to_float,
)
from canarist.backends.providers.sources import load_local_template, load_template
from canarist.backends.providers.specs import MetricSpec, ProviderSpec, parse_provider_spec
from canarist.backends.providers.values import template_data
from canarist.backends.templating import execute_bounded, execute_bounded_async
from canarist.core import gotemplate
from canarist.core.durations import parse_duration
from canarist.core.errors import CanaristError, InputError, UnavailableError
from canarist.core.experiment import (
    HistBucket,
    Insights,
    KServeState,
    MetricMeta,
    MetricType,
    VersionName,
)
from canarist.core.fields import Duration
from canarist.core.insights import (
    add_value,
    ensure_insights,
    mark_unavailable,
    register_metric,
    set_histogram,
)
from canarist.core.metrics import MetricCatalog
from canarist.core.redact import path_url
from canarist.core.validation import Location
from canarist.tasks.base import TaskCheck, TaskContext, TaskDefinition, TaskInputs, log

MAX_CONCURRENT_QUERIES: Final = 64
"""Queries in flight at once: every query of a 20-metric, 2-version experiment (a loop costs
one round trip of the slowest query, not a sum of waves). Prometheus runs 20 at once by
default (`--query.max-concurrency`) and queues the rest itself."""
PROMETHEUS_URL_ENV: Final = "CANARIST_PROMETHEUS_URL"


class AuthInputs(TaskInputs):
    """Credentials for the providers' queries, by reference: files and environment variables."""

    bearer_token_file: str | None = Field(default=None, alias="bearerTokenFile")
    bearer_token_env: str | None = Field(default=None, alias="bearerTokenEnv")
    username: str | None = None
    username_env: str | None = Field(default=None, alias="usernameEnv")
    password_file: str | None = Field(default=None, alias="passwordFile")
    password_env: str | None = Field(default=None, alias="passwordEnv")
    ca_file: str | None = Field(default=None, alias="caFile")
    insecure_skip_verify: bool = Field(default=False, alias="insecureSkipVerify")

    @model_validator(mode="after")
    def _one_way(self) -> AuthInputs:
        token = [k for k, v in (("bearerTokenFile", self.bearer_token_file),
                                ("bearerTokenEnv", self.bearer_token_env)) if v is not None]
        user = [k for k, v in (("username", self.username), ("usernameEnv", self.username_env))
                if v is not None]
        password = [k for k, v in (("passwordFile", self.password_file),
                                   ("passwordEnv", self.password_env)) if v is not None]
        for group in (token, user, password):
            if len(group) > 1:
                raise ValueError(f"set only one of {' and '.join(group)}")
        if token and (user or password):
            raise ValueError("use either a bearer token or a username and password, not both")
        if password and not user:
            raise ValueError("a password needs username or usernameEnv")
        return self

    def source(self) -> AuthSource:
        return AuthSource(
            bearer_token_file=self.bearer_token_file, bearer_token_env=self.bearer_token_env,
            username=self.username, username_env=self.username_env,
            password_file=self.password_file, password_env=self.password_env,
            ca_file=self.ca_file, insecure_skip_verify=self.insecure_skip_verify,
        )


class CustomMetricsInputs(TaskInputs):
    templates: dict[str, str]
    values: dict[str, Any] = Field(default_factory=dict)
    version_values: list[dict[str, Any] | None] = Field(default_factory=list, alias="versionValues")
    auth: AuthInputs | None = None
    timeout: Duration = "10s"

    @field_validator("templates")
    @classmethod
    def _provider_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name or "/" in name:
                raise ValueError(f"provider name {name!r} must be non-empty and contain no '/'")
        return value

    @field_validator("values", mode="before")
    @classmethod
    def _null_values(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("version_values", mode="before")
    @classmethod
    def _null_version_values(cls, value: Any) -> Any:
        return [] if value is None else value



@dataclass(frozen=True)
class _Query:
    provider: str
    version: int
    spec: ProviderSpec
    metric: MetricSpec

    @property
    def full_name(self) -> str:
        return f"{self.provider}/{self.metric.name}"


@dataclass(frozen=True)
class _Failed:
    """Why a metric is unavailable; `unreachable` when the provider could not be reached."""

    reason: str
    unreachable: bool = False


class _EmptyResults:
    """Explains empty results, looking each distinct (endpoint, series, window) up once."""

    def __init__(self, client: MetricsHttpClient) -> None:
        self._client = client
        self._locks: dict[object, asyncio.Lock] = {}
        self._done: dict[object, str | None] = {}

    async def explain(self, lookup: EmptyLookup) -> str | None:
        key = lookup.key()
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key not in self._done:
                self._done[key] = await explain_empty(self._client, lookup, now=time.time())
            return self._done[key]


def _name_revisions(insights: Insights, inputs: CustomMetricsInputs) -> None:
    """Label unnamed versions by the revision their values select (`labels.revision_name`)."""
    names = list(insights.version_names or [])
    names.extend(VersionName() for _ in range(insights.num_versions - len(names)))
    changed = False
    for index, own in enumerate(inputs.version_values[: insights.num_versions]):
        labels = own.get("labels") if isinstance(own, dict) else None
        revision = labels.get("revision_name") if isinstance(labels, dict) else None
        if isinstance(revision, str) and revision and not names[index].version \
                and not names[index].track:
            names[index] = VersionName(version=revision, track="")
            changed = True
    if changed:
        insights.version_names = names


def with_discovery(inputs: CustomMetricsInputs, found: KServeState | None) -> CustomMetricsInputs:
    """Fill what `kserve.isvc` discovery knows and the user did not set: each version's
    `labels.revision_name`, the `labels.service_name`, and the `window` since the split began."""
    if found is None:
        return inputs
    values = copy.deepcopy(inputs.values)
    labels = values.get("labels")
    if labels is None or isinstance(labels, dict):
        values["labels"] = {"service_name": found.service, **(labels or {})}
    if found.window and "window" not in values:
        values["window"] = found.window
    version_values = inputs.version_values or [
        {"labels": {"revision_name": version.revision}} for version in found.versions]
    return inputs.model_copy(update={"values": values, "version_values": version_values})


async def run(inputs: CustomMetricsInputs, ctx: TaskContext) -> None:
    inputs = with_discovery(inputs, ctx.result.kserve)
    num_versions = len(inputs.version_values) or 1
    insights = ensure_insights(ctx.result, num_versions)
    _name_revisions(insights, inputs)
    if not inputs.templates:
        log.warning("%s: no templates; nothing to measure", ctx.log_prefix())
        return
    credentials = (load_credentials(inputs.auth.source(), base_dir=ctx.run_dir, where="auth")
                   if inputs.auth is not None else Credentials())
    timeout_s = parse_duration(inputs.timeout, field="timeout")
    now = datetime.now(UTC)
    async with MetricsHttpClient(timeout_s=timeout_s, credentials=credentials,
                                 max_concurrency=MAX_CONCURRENT_QUERIES) as client:
        queries = await _render_all(inputs, ctx, client, num_versions, now)
        _register(insights, queries, num_versions)
        empty = _EmptyResults(client)
        answers = await asyncio.gather(*(_fetch(q, client, ctx) for q in queries))
        outputs = await _evaluate(queries, answers, limit_for(ctx.deadline))
        outcomes = await asyncio.gather(*(
            _measure(q, answer, output, client, empty)
            for q, answer, output in zip(queries, answers, outputs, strict=True)))
    for query, outcome in zip(queries, outcomes, strict=True):
        if isinstance(outcome, float):
            add_value(insights, query.version, query.full_name, outcome)
            log.info("%s: %s for version %d: %s", ctx.log_prefix(), query.full_name,
                     query.version, outcome)
        elif isinstance(outcome, list):
            set_histogram(insights, query.version, query.full_name, outcome)
            log.info("%s: %s for version %d: %d observations in %d buckets", ctx.log_prefix(),
                     query.full_name, query.version, sum(b.count for b in outcome), len(outcome))
        else:
            mark_unavailable(insights, query.version, query.full_name, outcome.reason)
            log.warning("%s: %s for version %d is unavailable: %s", ctx.log_prefix(),
                        query.full_name, query.version, outcome.reason)
    _fail_if_unreachable(inputs, queries, outcomes)


def _fail_if_unreachable(inputs: CustomMetricsInputs, queries: list[_Query],
                         outcomes: list[_Outcome]) -> None:
    """UnavailableError when every query of a provider failed to reach it."""
    for provider in inputs.templates:
        failed = [(q, o) for q, o in zip(queries, outcomes, strict=True) if q.provider == provider]
        if failed and all(isinstance(o, _Failed) and o.unreachable for _, o in failed):
            query, outcome = failed[0]
            assert isinstance(outcome, _Failed)
            shown = path_url(query.spec.url)
            cause = outcome.reason.replace(f" ({shown})", "")
            raise UnavailableError(f"templates.{provider}: cannot reach {shown}: {cause}")


async def _render_all(
    inputs: CustomMetricsInputs, ctx: TaskContext, client: MetricsHttpClient, num_versions: int,
    now: datetime,
) -> list[_Query]:
    queries: list[_Query] = []
    values = with_default_prometheus(inputs.values)
    for provider, ref in inputs.templates.items():
        try:
            source = await load_template(ref, base_dir=ctx.run_dir, client=client)
        except UnavailableError as exc:
            raise UnavailableError(f"templates.{provider}: {exc.message}") from None
        except InputError as exc:
            raise InputError(f"templates.{provider}: {exc.message}") from None
        log.debug("%s: provider %s: template from %s", ctx.log_prefix(), provider, source.origin)
        try:
            template = gotemplate.parse(source.text, name=provider)
            datas = [template_data(values, inputs.version_values[version] if
                                   inputs.version_values else None,
                                   start_time=ctx.result.start_time, now=now)
                     for version in range(num_versions)]
            renders = await execute_bounded_async(template, datas, limit_for(ctx.deadline))
            for version, rendered in enumerate(renders):
                spec = parse_provider_spec(rendered, name=provider)
                log.debug("%s: provider %s, version %d: rendered template:\n%s", ctx.log_prefix(),
                          provider, version, client.redact(rendered))
                queries.extend(_Query(provider, version, spec, m) for m in spec.metrics)
        except InputError as exc:
            raise InputError(f"templates.{provider} ({source.origin}): {exc.message}") from None
        if not any(q.provider == provider for q in queries):
            log.warning("%s: provider %s defines no metrics", ctx.log_prefix(), provider)
    return queries


def with_default_prometheus(values: dict[str, Any]) -> dict[str, Any]:
    """`prometheusURL` from `CANARIST_PROMETHEUS_URL` when the values do not set it.

    The built-in templates default to the KServe quick-start Prometheus; a platform (or the
    sandbox) that runs Prometheus elsewhere sets the variable once instead of every experiment.
    """
    default = os.environ.get(PROMETHEUS_URL_ENV)
    if default and "prometheusURL" not in values:
        return {**values, "prometheusURL": default}
    return values


def _register(insights: Insights, queries: list[_Query], num_versions: int) -> None:
    """Declare every metric (so reports list it) and mark where a version does not define it."""
    defined: dict[str, set[int]] = {}
    for query in queries:
        meta = MetricMeta(
            description=query.metric.description,
            type=_METRIC_TYPES[query.metric.type],
            units=query.metric.units or None,
        )
        register_metric(insights, query.full_name, meta)
        defined.setdefault(query.full_name, set()).add(query.version)
    for name, versions in defined.items():
        for version in set(range(num_versions)) - versions:
            mark_unavailable(insights, version, name,
                             "the template does not define this metric for this version")


_METRIC_TYPES: Final = {"counter": MetricType.COUNTER, "gauge": MetricType.GAUGE,
                        "histogram": MetricType.HISTOGRAM}
_Outcome = float | list[HistBucket] | _Failed


async def _fetch(query: _Query, client: MetricsHttpClient, ctx: TaskContext) -> Any:
    """The JSON answer to the metric's query, or why it could not be had."""
    request = HttpQuery(
        method=query.spec.method, url=query.spec.url,
        params=[(p.name, p.value) for p in query.metric.params],
        headers=query.spec.headers, body=query.metric.body,
    )
    log.debug("%s: %s for version %d: %s %s %s", ctx.log_prefix(), query.full_name, query.version,
              request.method, path_url(request.url),
              client.redact(json.dumps(dict(request.params)) if request.params else "(no params)"))
    try:
        return await client.query_json(request)
    except (ConnectFailed, QueryTimeout) as exc:
        return _Failed(exc.reason, unreachable=True)
    except QueryUnavailable as exc:
        return _Failed(exc.reason)


async def _evaluate(queries: list[_Query], answers: list[Any], limit: Limit) -> list[JqOutput]:
    """Every query's jq expression on its answer, in one bounded child (see backends.bounded).

    InputError naming the metric and the expression when they run past `limit` (the task's
    timeout or the default bound) or out of memory.
    """
    jobs = [(answer, query.metric.jq_expression) for query, answer in zip(queries, answers,
                                                                          strict=True)
            if not isinstance(answer, _Failed)]
    if not jobs:
        return [("none", None)] * len(queries)
    try:
        results = iter(await evaluate_async(functools.partial(jq_outputs, jobs), limit))
    except Overrun as exc:
        evaluated = [q for q, a in zip(queries, answers, strict=True) if not isinstance(a, _Failed)]
        raise _overrun(exc, evaluated[exc.at] if exc.at >= 0 else None) from None
    return [("none", None) if isinstance(answer, _Failed) else next(results) for answer in answers]


def _overrun(exc: Overrun, query: _Query | None) -> InputError:
    if query is None:
        return InputError(f"jq evaluation {exc}")
    return InputError(f"{query.full_name} (version {query.version}): jqExpression "
                      f"{excerpt(query.metric.jq_expression, 80, json_text=False)} {exc}")


async def _measure(query: _Query, answer: Any, output: JqOutput, client: MetricsHttpClient,
                   empty: _EmptyResults) -> _Outcome:
    """The metric's value (or buckets), or why it is unavailable."""
    if isinstance(answer, _Failed):
        return answer
    try:
        if query.metric.type == "histogram":
            return to_buckets(answer, read_output(answer, query.metric.jq_expression, output))
        return to_float(answer, read_output(answer, query.metric.jq_expression, output))
    except EmptyResult as exc:
        hint = query.metric.diagnose
        if hint is None:
            return _Failed(exc.reason)
        lookup = EmptyLookup(url=query.spec.url, headers=query.spec.headers, series=hint.series,
                             window_s=hint.window_s)
        explained = await empty.explain(lookup)
        return _Failed(client.redact(f"no data: {explained}") if explained else exc.reason)
    except MetricUnavailable as exc:
        return _Failed(client.redact(exc.reason))


def check(inputs: CustomMetricsInputs, base_dir: Path) -> TaskCheck:
    """Render each local template (built-in or file) now, so a wrong template name, a
    template that fails for these values, or an SLO on a metric it does not define is found
    before anything runs. Templates behind URLs are fetched only when the task runs."""
    names: set[str] = set()
    open_providers: set[str] = set()
    problems: list[tuple[Location, str]] = []
    values = with_default_prometheus(inputs.values)
    now = datetime.now(UTC)
    for provider, ref in inputs.templates.items():
        try:
            source = load_local_template(ref, base_dir)
            if source is None:
                open_providers.add(provider)
                continue
            template = gotemplate.parse(source.text, name=provider)
            datas = [template_data(values, own, start_time=now, now=now)
                     for own in inputs.version_values or [None]]
            for rendered in execute_bounded(template, datas):
                spec = parse_provider_spec(rendered, name=provider)
                names.update(f"{provider}/{metric.name}" for metric in spec.metrics)
        except CanaristError as exc:
            problems.append((("templates", provider), exc.message))
    return TaskCheck(MetricCatalog(frozenset(names), open_providers=frozenset(open_providers)),
                     problems)


TASK = TaskDefinition(name="custommetrics", inputs=CustomMetricsInputs, run=run, check=check)
