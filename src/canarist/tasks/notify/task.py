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

import os
from importlib import resources
from pathlib import Path

from canarist.backends import httpclient as http
from canarist.backends.bounded import limit_for
from canarist.backends.templating import execute_bounded_async
from canarist.core.errors import TaskError, TemplateError, UnavailableError
from canarist.core.gotemplate import parse
from canarist.core.redact import origin_url, redact_text
from canarist.tasks.base import TaskContext, TaskDefinition, log
from canarist.tasks.notify.inputs import BODY_LOG_LIMIT, TEMPLATE_SIZE_LIMIT, NotifyInputs
from canarist.tasks.notify.report import number, report_data

# -- showing URLs without their secrets ------------------------------------------------------


def _hide(text: str, *urls: str | None) -> str:
    for url in urls:
        if url:
            text = text.replace(url, origin_url(url))
    return redact_text(text)


# -- the task -----------------------------------------------------------------------------------


def builtin_template(name: str) -> str:
    return resources.files("canarist").joinpath("templates", "notify", f"{name}.tpl").read_text(
        encoding="utf-8"
    )


async def _fetch_template(url: str, timeout_s: float, transport: http.Transport | None) -> str:
    where = f"payload template {origin_url(url)}"
    try:
        async with http.HttpClient(timeout_s=timeout_s, transport=transport) as client:
            data = await client.fetch(url, limit=TEMPLATE_SIZE_LIMIT)
    except http.HTTPStatusError as exc:
        raise UnavailableError(f"cannot fetch {where}: HTTP {exc.status}") from None
    except http.ResponseTooLarge:
        raise TaskError(f"{where} is larger than {TEMPLATE_SIZE_LIMIT} bytes") from None
    except http.RequestTimeout:
        raise UnavailableError(f"cannot fetch {where}: timed out after {number(timeout_s)}s") from None
    except http.RequestFailed as exc:
        raise UnavailableError(f"cannot fetch {where}: {_hide(_failure(exc), url)}") from None
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


async def _template(inputs: NotifyInputs, ctx: TaskContext,
                    transport: http.Transport | None) -> tuple[str, str] | None:
    """(name, text) of the payload template, or None when the request has no payload."""
    if inputs.payload_template is not None:
        return inputs.payload_template, builtin_template(inputs.payload_template)
    if inputs.payload_template_url is not None:
        url = inputs.payload_template_url
        return origin_url(url), await _fetch_template(url, inputs.timeout_s, transport)
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


def _redirect_target(url: str, location: str | None) -> str:
    """Where a redirect points, as `scheme://host[:port]/…` (relative to `url`)."""
    if not location:
        return "no location (no Location header)"
    target = http.redirect_target(url, location)
    return "an invalid location" if target is None else origin_url(target)


def _failure(exc: http.RequestFailed) -> str:
    """What went wrong, in the words of the library that sent the request."""
    cause: BaseException = exc.cause if exc.cause is not None else exc
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _soft(inputs: NotifyInputs, ctx: TaskContext, message: str) -> None:
    if not inputs.soft_failure:
        raise TaskError(message)
    log.warning("%s: %s (softFailure: continuing)", ctx.log_prefix(), message)


async def run(inputs: NotifyInputs, ctx: TaskContext,
              transport: http.Transport | None = None) -> None:
    """Send the notification (through `transport` when given: tests)."""
    assert inputs.url is not None, "validated"
    payload: bytes | None = None
    template = await _template(inputs, ctx, transport)
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
    url = http.with_params(inputs.url, inputs.params)
    request = http.Request(method, inputs.url, params=list(inputs.params.items()),
                           headers=headers, body=payload, follow_redirects=False)
    try:
        async with http.HttpClient(timeout_s=timeout_s, transport=transport) as client:
            answer = await client.send(request, limit=BODY_LOG_LIMIT, cut=True)
    except http.RequestTimeout:
        _soft(inputs, ctx, f"notification {method} {where}: timed out after {number(timeout_s)}s")
        return
    except http.RequestFailed as exc:
        detail = _hide(_failure(exc), url, inputs.url)
        _soft(inputs, ctx, f"notification {method} {where}: {detail}")
        return
    status, location, body = answer.status, answer.header("Location"), answer.body
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
