"""Provider specs: what a rendered template decodes into.

A provider spec names the endpoint to query and, per metric, the query parameters and a jq
expression that picks the number out of the JSON answer. Keys match case-insensitively and
unknown keys are ignored, as Go's decoding into Iter8's structs did.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from canarist.core.durations import parse_duration
from canarist.core.errors import InputError, SpecError
from canarist.core.experiment import LenientModel
from canarist.core.fields import scalar_text
from canarist.core.metrics import is_valid_name
from canarist.core.validation import show_value, spell_key, validated
from canarist.core.yamltext import load_yaml

__all__ = ["DiagnoseSpec", "MetricSpec", "ParamSpec", "ProviderSpec", "parse_provider_spec"]


class _SpecModel(LenientModel):
    """Keys match case-insensitively and unknown keys are ignored, as in Go's decoding."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)




class ParamSpec(_SpecModel):
    name: str
    value: str = ""

    @field_validator("name", "value", mode="before")
    @classmethod
    def _scalar_text(cls, value: Any) -> Any:
        return scalar_text(value)


class DiagnoseSpec(_SpecModel):
    """What an empty result is explained with: the series the query reads, and its window.

    canarist's own key; Iter8 ignored unknown keys, so templates carrying it work there too.
    """

    series: str = Field(min_length=1)
    window: str

    @field_validator("window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        text = scalar_text(value)
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
        return scalar_text(value)

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
        return "" if value is None else scalar_text(value)


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
            return {str(k): scalar_text(v) for k, v in value.items()}
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
