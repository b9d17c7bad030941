"""Rendering provider templates into provider specs, one per version.

A provider template is a Go text/template (with Sprig) whose output is a YAML provider spec
(see canarist.backends.providers.specs), executed with the version's values as dot (see
canarist.backends.providers.values), bounded in time and memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from canarist.backends.providers.specs import ProviderSpec, parse_provider_spec
from canarist.backends.providers.values import go_data, template_data
from canarist.backends.templating import execute_bounded
from canarist.core import gotemplate

__all__ = ["render_provider", "render_provider_specs", "render_raw"]


def render_raw(template_text: str, values: Mapping[str, Any], *, name: str = "template") -> str:
    """Execute any Go template with `values` as dot and return the text as is.

    TemplateError (with name:line:col) if it does not parse or execute, or runs past the
    default evaluation limit.
    """
    template = gotemplate.parse(template_text, name=name)
    return execute_bounded(template, [go_data(values)])[0]


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
