"""Provider templates for `custommetrics`: the built-in ones, loading, and rendering into specs.

A provider template is a Go text/template (with Sprig) whose output is a YAML provider spec:
the endpoint to query and, per metric, the query parameters and a jq expression that picks
the number out of the JSON answer. Templates are referred to by

* URL (`http://`, `https://`): downloaded, with a timeout; any status but 2xx is an error;
* built-in name (`kserve-prometheus`, `istio-prom`, `kserve-raw`): shipped with canarist;
* file path (`file://` URLs too), relative to a base directory.

Rendering for version i merges `values` and `versionValues[i]` (version values win, maps
merge key by key, lists are replaced, a null removes the key), sets `elapsedTimeSeconds` from
`startingTime` (RFC 3339) or the experiment's start, executes the template with the result
as dot and decodes the output into a `ProviderSpec`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator

from canarist.backends.bounded import Limit, Mark, Overrun, evaluate, evaluate_async, limit_for
from canarist.backends.metrics_http import (
    DEFAULT_TIMEOUT_S,
    MetricsHttpClient,
    QueryUnavailable,
)
from canarist.core import gotemplate
from canarist.core.durations import parse_duration
from canarist.core.errors import InputError, SpecError, TemplateError, UnavailableError, ValuesError
from canarist.core.experiment import LenientModel
from canarist.core.gotemplate.values import Int64
from canarist.core.metrics import is_valid_name
from canarist.core.redact import path_url
from canarist.core.validation import closest, show_value, spell_key, validated
from canarist.core.values import merge_patch
from canarist.core.yamltext import load_yaml
from canarist.stores.files import read_text_bounded

__all__ = [
    "DiagnoseSpec",
    "MetricSpec",
    "ParamSpec",
    "ProviderSpec",
    "TemplateSource",
    "builtin_template",
    "builtin_template_names",
    "elapsed_seconds",
    "execute_bounded",
    "execute_bounded_async",
    "load_local_template",
    "load_template",
    "parse_provider_spec",
    "render_provider",
    "render_provider_specs",
    "render_raw",
    "template_data",
]

_BUILTIN_DIR: Final = ("templates", "custommetrics")
_SUFFIX: Final = ".tpl"
_RFC3339: Final = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$"
)


# ---------------------------------------------------------------------------------------------
# Built-in templates and loading


def _builtin_dir() -> Any:
    return resources.files("canarist").joinpath(*_BUILTIN_DIR)


def builtin_template_names() -> list[str]:
    """Names of the templates shipped with canarist, sorted."""
    return sorted(
        entry.name[: -len(_SUFFIX)] for entry in _builtin_dir().iterdir()
        if entry.name.endswith(_SUFFIX)
    )


def builtin_template(name: str) -> str:
    """The text of a built-in template; InputError naming the known ones if there is none."""
    if name in builtin_template_names():
        text: str = _builtin_dir().joinpath(name + _SUFFIX).read_text(encoding="utf-8")
        return text
    raise InputError(f"unknown built-in template {name!r}; expected one of "
                     + ", ".join(builtin_template_names()))


@dataclass(frozen=True)
class TemplateSource:
    """A template's text and where it came from (`origin` is safe to show)."""

    text: str
    origin: str


async def load_template(
    ref: str,
    *,
    base_dir: Path,
    client: MetricsHttpClient | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> TemplateSource:
    """Load a template by URL, built-in name or file path (relative paths from `base_dir`).

    UnavailableError when a URL cannot be fetched (any status but 2xx included) or a file
    cannot be read; InputError when `ref` is empty.
    """
    if not ref.strip():
        raise InputError("empty template reference; expected a URL, a file or one of "
                         + ", ".join(builtin_template_names()))
    if ref.startswith(("http://", "https://")):
        return TemplateSource(await _fetch(ref, client, timeout_s), path_url(ref))
    return _load_local(ref, base_dir)


def load_local_template(ref: str, base_dir: Path) -> TemplateSource | None:
    """A built-in or file template without any network access; None for a URL.

    InputError when `ref` names neither a built-in template nor an existing file.
    """
    if ref.startswith(("http://", "https://")):
        return None
    return _load_local(ref, base_dir)


def _load_local(ref: str, base_dir: Path) -> TemplateSource:
    if ref.startswith("file://"):
        return _read_file(Path(ref[len("file://"):]), base_dir)
    if ref in builtin_template_names():
        return TemplateSource(builtin_template(ref), f"built-in template {ref}")
    path = Path(ref).expanduser()
    if not (path if path.is_absolute() else base_dir / path).is_file():
        names = builtin_template_names()
        guess = closest(ref.removesuffix(_SUFFIX), names)
        hint = f"; did you mean {guess}?" if guess else ""
        raise InputError(f"{ref!r} is not a built-in template, a URL or an existing file{hint} "
                         f"(built-in: {', '.join(names)})")
    return _read_file(path, base_dir)


async def _fetch(url: str, client: MetricsHttpClient | None, timeout_s: float) -> str:
    try:
        if client is not None:
            return await client.fetch_text(url)
        async with MetricsHttpClient(timeout_s=timeout_s) as own:
            return await own.fetch_text(url)
    except QueryUnavailable as exc:
        raise UnavailableError(f"cannot fetch template {path_url(url)}: {exc.reason}"
                               + _builtin_hint(url)) from None


def _builtin_hint(url: str) -> str:
    """For a URL whose file name is a built-in template's (`.../kserve-prometheus.tpl`): how to
    use the built-in instead, which needs no download."""
    file_name = PurePosixPath(urlsplit(url).path).name
    name = file_name[: -len(_SUFFIX)] if file_name.endswith(_SUFFIX) else file_name
    if name not in builtin_template_names():
        return ""
    return (f"; the built-in template {name} serves the same metrics without a download: "
            f"name it instead of the URL, as in --set custommetrics.templates.{name}={name}")


def _read_file(path: Path, base_dir: Path) -> TemplateSource:
    full = path if path.is_absolute() else base_dir / path
    try:
        return TemplateSource(read_text_bounded(full, name=f"template {full}"), str(full))
    except OSError as exc:
        raise UnavailableError(f"cannot read template {full}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------
# Values


def _parse_rfc3339(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone == "Z":
        tz: timezone = UTC
    else:
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if zone[0] == "-" else offset)
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int((fraction or "0")[:6].ljust(6, "0")), tzinfo=tz)
    except ValueError:
        return None


def elapsed_seconds(values: Mapping[str, Any], start_time: datetime, now: datetime) -> int:
    """Whole seconds from `startingTime` (when set) or `start_time` to `now`, truncated."""
    start = start_time
    if "startingTime" in values:
        parsed = _parse_rfc3339(values["startingTime"])
        if parsed is None:
            raise ValuesError(
                f"cannot parse startingTime {values['startingTime']!r}: expected an RFC 3339 time "
                "such as 2023-03-01T10:00:00Z")
        start = parsed
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return int((now - start).total_seconds())


def _go_data(value: Any, path: str = "") -> Any:
    """Values as an Iter8 template saw them: decoded by encoding/json into interface{}.

    Every number is a float64 (so `{{ eq .n 7 }}` is Go's "incompatible types" and
    `{{ ne .n 7.0 }}` renders, as in Iter8) and times are RFC 3339 text. An `Int64`, a value
    canarist computes itself with Iter8's type (`elapsedTimeSeconds`), stays an int64.
    """
    if isinstance(value, Mapping):
        return {str(k): _go_data(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_go_data(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool | Int64):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise ValuesError(f"{path or 'value'}: {value} is too large for a number; "
                              "quote it to pass it as text") from None
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def template_data(
    values: Mapping[str, Any],
    version_values: Mapping[str, Any] | None,
    *,
    start_time: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The dot one version's template sees: merged values plus `elapsedTimeSeconds`.

    Numbers have Iter8's types: values are float64, `elapsedTimeSeconds` an int64.
    """
    merged = merge_patch(values, version_values)
    merged["elapsedTimeSeconds"] = Int64(elapsed_seconds(merged, start_time, now))
    data: dict[str, Any] = _go_data(merged)
    return data


# ---------------------------------------------------------------------------------------------
# Provider specs


class _SpecModel(LenientModel):
    """Keys match case-insensitively and unknown keys are ignored, as in Go's decoding."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class ParamSpec(_SpecModel):
    name: str
    value: str = ""

    @field_validator("name", "value", mode="before")
    @classmethod
    def _scalar_text(cls, value: Any) -> Any:
        return _text(value)


class DiagnoseSpec(_SpecModel):
    """What an empty result is explained with: the series the query reads, and its window.

    canarist's own key; Iter8 ignored unknown keys, so templates carrying it work there too.
    """

    series: str = Field(min_length=1)
    window: str

    @field_validator("window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        text = _text(value)
        if isinstance(text, str):
            try:
                seconds = parse_duration(text, field="window")
            except InputError:
                raise ValueError(f"{show_value(text)} is not a Go duration such as 5m") from None
            if seconds <= 0:
                raise ValueError(f"{show_value(text)} must be above zero")
        return text

    @property
    def window_s(self) -> float:
        return parse_duration(self.window, field="window")


class MetricSpec(_SpecModel):
    name: str
    description: str = ""
    type: Literal["counter", "gauge", "histogram"]
    units: str | None = None
    params: list[ParamSpec] = Field(default_factory=list)
    body: str | None = None
    jq_expression: str = Field(alias="jqExpression", min_length=1)
    diagnose: DiagnoseSpec | None = None

    @field_validator("name", "units", "body", mode="before")
    @classmethod
    def _scalar_text(cls, value: Any) -> Any:
        return _text(value)

    @field_validator("type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("params", mode="before")
    @classmethod
    def _null_params(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("description", mode="before")
    @classmethod
    def _null_description(cls, value: Any) -> Any:
        return "" if value is None else _text(value)


class ProviderSpec(_SpecModel):
    url: str = Field(min_length=1)
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    metrics: list[MetricSpec] = Field(default_factory=list)

    @field_validator("headers", mode="before")
    @classmethod
    def _header_text(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            return {str(k): _text(v) for k, v in value.items()}
        return value

    @field_validator("metrics", mode="before")
    @classmethod
    def _null_metrics(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        return "GET" if value in (None, "") else value.upper() if isinstance(value, str) else value


def parse_provider_spec(rendered: str, *, name: str) -> ProviderSpec:
    """Decode a rendered template. SpecError naming `name` (and line:col) if it is not a spec."""
    data = load_yaml(rendered, source=name)
    if data is None:
        raise SpecError(f"{name}: the template rendered no provider spec (empty output)")
    if not isinstance(data, dict):
        raise SpecError(f"{name}: the rendered provider spec must be a map, "
                        f"not {type(data).__name__}")
    spec = validated(ProviderSpec, data,
                     lambda loc: f"{name}: {spell_key('', loc) or '(top level)'}")
    seen: set[str] = set()
    for index, metric in enumerate(spec.metrics):
        if "/" in metric.name or not is_valid_name(f"provider/{metric.name}"):
            raise SpecError(f"{name}: metrics[{index}].name: {metric.name!r} cannot be part of a "
                            "metric name (no '/' and not empty)")
        if metric.name in seen:
            raise SpecError(f"{name}: metrics[{index}].name: metric {metric.name!r} is defined twice")
        seen.add(metric.name)
    return spec


def _execute_each(template: gotemplate.Template, datas: Sequence[object], mark: Mark) -> list[str]:
    outputs: list[str] = []
    for index, data in enumerate(datas):
        mark(index)
        outputs.append(template.execute(data))
    return outputs


def _overrun(template: gotemplate.Template, exc: Overrun, versions: int) -> TemplateError:
    which = f" (version {exc.at})" if versions > 1 and exc.at >= 0 else ""
    return TemplateError(f"{template.name}: executing the template{which} {exc}")


def execute_bounded(template: gotemplate.Template, datas: Sequence[object],
                    limit: Limit | None = None) -> list[str]:
    """Execute `template` with each of `datas` as dot, in a child bounded in time (`limit`,
    by default `backends.bounded.DEFAULT_LIMIT_S`) and memory (see canarist.backends.bounded).

    TemplateError when it does not execute, runs past the limit or out of memory.
    """
    limit = limit or limit_for(None)
    try:
        return evaluate(functools.partial(_execute_each, template, list(datas)), limit)
    except Overrun as exc:
        raise _overrun(template, exc, len(datas)) from None


async def execute_bounded_async(template: gotemplate.Template, datas: Sequence[object],
                                limit: Limit) -> list[str]:
    """`execute_bounded` without blocking the event loop (a task's, with its deadline)."""
    try:
        return await evaluate_async(functools.partial(_execute_each, template, list(datas)),
                                    limit)
    except Overrun as exc:
        raise _overrun(template, exc, len(datas)) from None


def render_raw(template_text: str, values: Mapping[str, Any], *, name: str = "template") -> str:
    """Execute any Go template with `values` as dot and return the text as is.

    TemplateError (with name:line:col) if it does not parse or execute, or runs past the
    default evaluation limit.
    """
    template = gotemplate.parse(template_text, name=name)
    return execute_bounded(template, [_go_data(values)])[0]


def render_provider(
    template: gotemplate.Template,
    data: Mapping[str, Any],
    *,
    name: str,
) -> tuple[str, ProviderSpec]:
    """Execute a parsed provider template with `data` (see `template_data`) and decode it,
    bounded as `execute_bounded` is."""
    rendered = execute_bounded(template, [data])[0]
    return rendered, parse_provider_spec(rendered, name=name)


def render_provider_specs(
    template_text: str,
    values: Mapping[str, Any],
    version_values: Sequence[Mapping[str, Any] | None],
    now: datetime,
    *,
    start_time: datetime | None = None,
    name: str = "template",
) -> list[tuple[int, dict[str, Any]]]:
    """Render a provider template for every version exactly as `custommetrics` does.

    Returns (version index, provider spec) pairs; one pair for version 0 when
    `version_values` is empty. `elapsedTimeSeconds` counts from `startingTime` when the
    values set it, else from `start_time` (default: `now`, so 0). Raises TemplateError,
    SpecError (YAML or spec problems) or ValuesError (bad startingTime), all InputError.
    """
    template = gotemplate.parse(template_text, name=name)
    versions: list[Mapping[str, Any] | None] = list(version_values) or [None]
    datas = [template_data(values, own, start_time=start_time or now, now=now) for own in versions]
    out: list[tuple[int, dict[str, Any]]] = []
    for index, rendered in enumerate(execute_bounded(template, datas)):
        spec = parse_provider_spec(rendered, name=name)
        out.append((index, spec.model_dump(by_alias=True, exclude_none=True)))
    return out
