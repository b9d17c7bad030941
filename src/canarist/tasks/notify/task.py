"""`notify`: send an HTTP request (a Slack message, a GitHub dispatch, any webhook) about the experiment.

The payload is a Go template executed with `{"Report": {...}}` (Iter8's keys, plus `summary`).
What differs from Iter8, on purpose:

* `Report.experiment` never carries secrets: the `with` blocks of notify tasks are redacted
  (URL paths, headers, query parameters, token sources) and so is every key in the spec that
  looks secret (`token`, `password`, `secret`, `authorization`, `apiKey` ...), as well as
  credentials inside URLs and `Authorization:` lines in strings.
* `Report.summary` adds the verdict: a one-line `text`, `details` lines, `slos` (true, false,
  or null when no SLOs were assessed), per-version SLO verdicts with the violated limits, and
  the failed task.
* Built-in payload templates (`payloadTemplate: slack|github`), a local `payloadTemplateFile`,
  and `tokenEnv`/`tokenFile` (+ `tokenScheme`) to send `Authorization: <scheme> <secret>` read
  at run time, so the token is never written into the experiment.
* `method` is GET or POST (rejected otherwise before anything runs); every request has a
  timeout (`timeout`, default 30s); a template URL answering with a non-2xx status fails.
* Redirects are not followed: the headers (a token, an API key) would go to the host the
  answer names. A 3xx answer is a failed notification naming that host.
* URLs are shown with their path hidden in logs and errors (Slack webhook URLs are secrets).

Failure rules as Iter8: a payload template that cannot be read or executed always fails the
task; a request that cannot be sent or gets a non-2xx answer fails it unless `softFailure`.
A token that cannot be read also always fails the task: the request cannot be built.
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

import aiohttp
from pydantic import Field, StrictBool, field_validator, model_validator
from yarl import URL

from canarist.backends.bounded import limit_for
from canarist.core.durations import parse_duration
from canarist.core.errors import TaskError, TemplateError, UnavailableError
from canarist.core.experiment import Experiment, experiment_to_data
from canarist.core.fields import Duration, header_value_problem, url_problem
from canarist.core.gotemplate import parse
from canarist.core.kserve import rollout_headline
from canarist.core.metrics import scalar_value
from canarist.core.redact import origin_url, redact_spec, redact_text, shown_text
from canarist.core.validation import FieldProblem
from canarist.core.verdict import judge
from canarist.tasks.base import TaskContext, TaskDefinition, TaskInputs, log
from canarist.tasks.templates import execute_bounded_async

BUILTIN_TEMPLATES: Final = ("slack", "github")
DEFAULT_TIMEOUT: Final = "30s"
TEMPLATE_SIZE_LIMIT: Final = 1024 * 1024
BODY_LOG_LIMIT: Final = 2048

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SCHEME_WORD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _text(value: Any, what: str) -> str:
    """A header or parameter value as text; numbers and booleans as Go's JSON would show them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return json.dumps(value)
    raise ValueError(f"{what}: expected text, got {type(value).__name__}")


def _http_url(value: str | None, key: str) -> str | None:
    if value is None:
        return None
    try:
        url = URL(value)
    except (ValueError, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{key}: expected an http:// or https:// URL with a host")
    problem = url_problem(value, echo=False)
    if problem is not None:
        raise ValueError(f"{key}: {problem}")
    return value


def _has_user_info(url: str) -> bool:
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return False
    return parsed.user is not None or parsed.password is not None


class NotifyInputs(TaskInputs):
    url: str | None = None
    method: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    payload_template: str | None = Field(default=None, alias="payloadTemplate")
    payload_template_url: str | None = Field(default=None, alias="payloadTemplateURL")
    payload_template_file: str | None = Field(default=None, alias="payloadTemplateFile")
    soft_failure: StrictBool = Field(default=False, alias="softFailure")
    token_env: str | None = Field(default=None, alias="tokenEnv")
    token_file: str | None = Field(default=None, alias="tokenFile")
    token_scheme: str | None = Field(default=None, alias="tokenScheme")
    timeout: Duration = DEFAULT_TIMEOUT

    @field_validator("params", "headers", mode="before")
    @classmethod
    def _text_values(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            return value
        return {str(k): _text(v, str(k)) for k, v in value.items()}

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            problem = header_value_problem(text)
            if problem is not None:
                raise ValueError(f"header {name}: {problem}")
        return value

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str | None) -> str | None:
        if value is None:
            return None
        method = value.upper()
        if method not in ("GET", "POST"):
            raise ValueError(f"method: expected GET or POST, got {value!r}")
        return method

    @field_validator("payload_template")
    @classmethod
    def _builtin(cls, value: str | None) -> str | None:
        if value is not None and value not in BUILTIN_TEMPLATES:
            raise ValueError(
                f"payloadTemplate: unknown built-in template {value!r}; expected one of "
                + ", ".join(BUILTIN_TEMPLATES)
            )
        return value

    @field_validator("token_scheme")
    @classmethod
    def _scheme_word(cls, value: str | None) -> str | None:
        if value is not None and not _SCHEME_WORD.fullmatch(value):
            raise ValueError("tokenScheme: expected one word such as Bearer or token")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NotifyInputs:
        if not self.url:
            raise ValueError("no URL was provided for notify task")
        _http_url(self.url, "url")
        _http_url(self.payload_template_url, "payloadTemplateURL")
        given = [key for key, value in (
            ("payloadTemplate", self.payload_template),
            ("payloadTemplateURL", self.payload_template_url),
            ("payloadTemplateFile", self.payload_template_file),
        ) if value is not None]
        if len(given) > 1:
            raise ValueError(f"set only one of {', '.join(given)}")
        if self.token_env is not None and self.token_file is not None:
            raise ValueError("set only one of tokenEnv, tokenFile")
        if self.token_env == "" or self.token_file == "":
            raise ValueError("tokenEnv and tokenFile must not be empty")
        has_token = self.token_env is not None or self.token_file is not None
        if self.token_scheme is not None and not has_token:
            raise ValueError("tokenScheme needs tokenEnv or tokenFile")
        has_header = any(name.lower() == "authorization" for name in self.headers)
        if has_token and has_header:
            raise ValueError("an Authorization header and tokenEnv/tokenFile both set it; keep one")
        if _has_user_info(self.url) and (has_token or has_header):
            # the user:password@ in the URL is sent as Authorization too: one would be lost
            raise FieldProblem("url", "user info (user:password@) and "
                               + ("tokenEnv/tokenFile" if has_token else "an Authorization header")
                               + " both set the Authorization header; keep one")
        return self

    @property
    def timeout_s(self) -> float:
        return parse_duration(self.timeout, field="timeout")

    @property
    def has_template(self) -> bool:
        return any(v is not None for v in (
            self.payload_template, self.payload_template_url, self.payload_template_file))

    @property
    def effective_method(self) -> str:
        return self.method or ("POST" if self.has_template else "GET")


# -- showing URLs without their secrets ------------------------------------------------------


def _hide(text: str, *urls: str | None) -> str:
    for url in urls:
        if url:
            text = text.replace(url, origin_url(url))
    return redact_text(text)


# -- redaction of the experiment -------------------------------------------------------------


def redacted_experiment(experiment: Experiment) -> dict[str, Any]:
    """The experiment as plain data (Iter8's keys) with every secret in the spec hidden."""
    data = experiment_to_data(experiment)
    data["spec"] = redact_spec(data.get("spec", []))
    return data


# -- the report --------------------------------------------------------------------------------


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _version_verdicts(experiment: Experiment) -> list[dict[str, Any]]:
    result = experiment.result
    insights = result.insights if result else None
    if insights is None:
        return []
    slos = insights.slos
    assessed = slos is not None and not slos.is_empty()
    versions: list[dict[str, Any]] = []
    for j in range(insights.num_versions):
        entry: dict[str, Any] = {"index": j, "name": insights.version_label(j), "slos": None,
                                 "violations": []}
        versions.append(entry)
        if not assessed or slos is None:
            continue
        satisfied = insights.slos_satisfied
        for bound, rows, verdict_rows in (
            ("upper", slos.upper, satisfied.upper if satisfied else []),
            ("lower", slos.lower, satisfied.lower if satisfied else []),
        ):
            for i, slo in enumerate(rows):
                row = verdict_rows[i] if i < len(verdict_rows) else []
                if j < len(row) and row[j]:
                    continue
                found = scalar_value(insights, j, slo.metric)
                entry["violations"].append({
                    "metric": slo.metric, "bound": bound, "limit": slo.limit,
                    "value": found.value,
                    "reason": shown_text(found.reason) if found.value is None else None,
                })
        entry["slos"] = not entry["violations"]
    return versions


def _violation_text(violation: dict[str, Any]) -> str:
    metric, limit, value = violation["metric"], violation["limit"], violation["value"]
    if value is None:
        reason = violation["reason"] or "no value"
        return f"{metric} is unavailable ({reason})"
    side = "above the upper" if violation["bound"] == "upper" else "below the lower"
    return f"{metric} is {_number(value)}, {side} limit {_number(limit)}"


def report_summary(experiment: Experiment) -> dict[str, Any]:
    """canarist's verdict for notifications: text, detail lines, SLO verdicts, failed task."""
    result = experiment.result
    failed = result.failed_task if result else None
    versions = _version_verdicts(experiment)
    assessed = [v for v in versions if v["slos"] is not None]
    slos: bool | None = all(v["slos"] for v in assessed) if assessed else None
    details: list[str] = []
    for version in assessed:
        if version["slos"]:
            details.append(f"{version['name']}: SLOs satisfied")
        else:
            problems = "; ".join(_violation_text(v) for v in version["violations"])
            details.append(f"{version['name']}: SLOs not satisfied: {problems}")
    if failed is not None:
        details.insert(0, f"task {failed.number} ({failed.name}) failed: "
                          f"{shown_text(failed.reason)}")
    judged = judge(experiment)
    record = result.rollout if result else None
    if record is not None:
        details.insert(0, rollout_headline(record))
    return {
        "text": f"{judged.icon} {judged.headline}: {judged.summary}",
        "verdict": judged.outcome,
        "reason": judged.reason,
        "details": details,
        "slos": slos,
        "versions": versions,
        "failedTask": None if failed is None else {
            "number": failed.number, "name": failed.name, "reason": shown_text(failed.reason),
        },
    }


def _go_time_string(moment: datetime) -> str:
    """Go's `time.Time.String()` (without the monotonic clock reading), in UTC."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"


def report_data(experiment: Experiment, *, now: datetime | None = None) -> dict[str, Any]:
    """The payload template's data: `{"Report": {...}}`."""
    result = experiment.result
    return {
        "Report": {
            "timeStamp": _go_time_string(now or datetime.now(UTC)),
            "completed": experiment.completed(),
            "noTaskFailures": experiment.no_failure(),
            "numTasks": len(experiment.spec),
            "numCompletedTasks": result.num_completed_tasks if result else 0,
            "numLoops": result.num_loops if result else 0,
            "experiment": redacted_experiment(experiment),
            "summary": report_summary(experiment),
        }
    }


# -- the task -----------------------------------------------------------------------------------


def builtin_template(name: str) -> str:
    return resources.files("canarist").joinpath("templates", "notify", f"{name}.tpl").read_text(
        encoding="utf-8"
    )


async def _fetch_template(url: str, timeout_s: float) -> str:
    where = f"payload template {origin_url(url)}"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(url) as response,
        ):
            if not 200 <= response.status < 300:
                raise UnavailableError(f"cannot fetch {where}: HTTP {response.status}")
            data = await response.content.read(TEMPLATE_SIZE_LIMIT + 1)
    except TimeoutError:
        raise UnavailableError(f"cannot fetch {where}: timed out after {_number(timeout_s)}s") from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise UnavailableError(f"cannot fetch {where}: {_hide(_describe(exc), url)}") from None
    return _decode_template(data, where)


def _read_template_file(path: Path) -> str:
    where = f"payload template file {path}"
    try:
        with path.open("rb") as handle:
            data = handle.read(TEMPLATE_SIZE_LIMIT + 1)
    except OSError as exc:
        raise UnavailableError(f"cannot read {where}: {exc.strerror or exc}") from None
    return _decode_template(data, where)


def _decode_template(data: bytes, where: str) -> str:
    if len(data) > TEMPLATE_SIZE_LIMIT:
        raise TaskError(f"{where} is larger than {TEMPLATE_SIZE_LIMIT} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TaskError(f"{where} is not UTF-8 text") from None


async def _template(inputs: NotifyInputs, ctx: TaskContext) -> tuple[str, str] | None:
    """(name, text) of the payload template, or None when the request has no payload."""
    if inputs.payload_template is not None:
        return inputs.payload_template, builtin_template(inputs.payload_template)
    if inputs.payload_template_url is not None:
        url = inputs.payload_template_url
        return origin_url(url), await _fetch_template(url, inputs.timeout_s)
    if inputs.payload_template_file is not None:
        path = ctx.run_dir / inputs.payload_template_file
        return path.name, _read_template_file(path)
    return None


def _read_token(inputs: NotifyInputs, ctx: TaskContext) -> str | None:
    if inputs.token_env is not None:
        token = os.environ.get(inputs.token_env, "").strip()
        if not token:
            raise UnavailableError(f"environment variable {inputs.token_env} (tokenEnv) is not set "
                                   "or empty")
    elif inputs.token_file is not None:
        path = ctx.run_dir / inputs.token_file
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UnavailableError(f"cannot read tokenFile {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UnavailableError(f"tokenFile {path} is not UTF-8 text") from None
        if not token:
            raise UnavailableError(f"tokenFile {path} is empty")
    else:
        return None
    if "\r" in token or "\n" in token:
        raise UnavailableError("the token must be a single line")
    return token


def _redirect_target(url: URL, location: str | None) -> str:
    """Where a redirect points, as `scheme://host[:port]/…` (relative to `url`)."""
    if not location:
        return "no location (no Location header)"
    try:
        return origin_url(str(url.join(URL(location))))
    except (ValueError, TypeError):
        return "an invalid location"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _soft(inputs: NotifyInputs, ctx: TaskContext, message: str) -> None:
    if not inputs.soft_failure:
        raise TaskError(message)
    log.warning("%s: %s (softFailure: continuing)", ctx.log_prefix(), message)


async def run(inputs: NotifyInputs, ctx: TaskContext) -> None:
    assert inputs.url is not None, "validated"
    payload: bytes | None = None
    template = await _template(inputs, ctx)
    if template is not None:
        name, text = template
        try:
            # executed in a child bounded by the task's timeout (see canarist.backends.bounded)
            payload = (await execute_bounded_async(
                parse(text, name=name), [report_data(ctx.experiment)],
                limit_for(ctx.deadline)))[0].encode("utf-8")
        except TemplateError as exc:
            raise TaskError(f"payload template: {exc.message}") from None
    token = _read_token(inputs, ctx)

    headers = dict(inputs.headers)
    if token is not None:
        headers["Authorization"] = f"{inputs.token_scheme or 'Bearer'} {token}"
    if payload is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    method = inputs.effective_method
    where = origin_url(inputs.url)
    timeout_s = inputs.timeout_s
    url = URL(inputs.url)
    if inputs.params:
        url = url.extend_query(inputs.params)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.request(method, url, headers=headers, data=payload,
                            allow_redirects=False) as response,
        ):
            status = response.status
            location = response.headers.get("Location")
            body = await response.content.read(BODY_LOG_LIMIT)
    except TimeoutError:
        _soft(inputs, ctx, f"notification {method} {where}: timed out after {_number(timeout_s)}s")
        return
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        detail = _hide(_describe(exc), str(url), inputs.url)
        _soft(inputs, ctx, f"notification {method} {where}: {detail}")
        return
    log.debug("%s: response body (HTTP %d, at most %d bytes): %s", ctx.log_prefix(), status,
              BODY_LOG_LIMIT, body.decode("utf-8", errors="replace"))
    if 300 <= status < 400:
        # Not followed: the headers (a token, an API key) would go to whatever host the
        # answer names, and the payload would not reach the URL that was configured.
        _soft(inputs, ctx, f"notification {method} {where}: HTTP {status}: redirect to "
                           f"{_redirect_target(url, location)} not followed")
        return
    if not 200 <= status < 300:
        _soft(inputs, ctx, f"notification {method} {where}: HTTP {status}")
        return
    log.info("%s: notification sent: %s %s: HTTP %d", ctx.log_prefix(), method, where, status)


TASK = TaskDefinition(name="notify", inputs=NotifyInputs, run=run)
