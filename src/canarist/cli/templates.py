"""`canarist template list|render`: see what a provider template produces without running."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from canarist.backends.providers.render import render_provider_specs, render_raw
from canarist.backends.providers.sources import builtin_template_names, load_template
from canarist.backends.providers.values import template_data
from canarist.cli.common import value_options
from canarist.core.errors import ValuesError
from canarist.core.yamltext import dump_yaml
from canarist.tasks.custommetrics import with_default_prometheus


@click.group()
def template() -> None:
    """Built-in provider templates, and what a template renders to."""


@template.command(name="list")
def list_templates() -> None:
    """Name the built-in custommetrics templates."""
    for name in builtin_template_names():
        click.echo(name)


@template.command()
@click.argument("ref", metavar="NAME|FILE|URL")
@value_options
@click.option("--raw", is_flag=True,
              help="Print what the template executes to, as is, instead of the provider spec "
                   "read from it.")
def render(ref: str, values: dict[str, Any], raw: bool) -> None:
    """Print the provider spec a template renders to, for each version.

    NAME|FILE|URL is a built-in template (see `canarist template list`), a template file, or
    a URL to download it from.

    Values are those of `canarist launch`: `custommetrics.values.*` and
    `custommetrics.versionValues[i].*`, merged per version as the custommetrics task does,
    so a values file written for `launch` works here unchanged.

    With --raw the template may be any Go template: each version's output is printed as is.
    Values without a `custommetrics` key are the template's data themselves
    (`--set labels.a=1` is `.labels.a`), and the output is printed once.
    """
    source = asyncio.run(load_template(ref, base_dir=Path.cwd()))
    if raw and "custommetrics" not in values:
        click.echo(render_raw(source.text, values, name=source.origin), nl=False)
        return
    shared, per_version = _task_values(values)
    shared = with_default_prometheus(shared)  # as the task sees them
    now = datetime.now(UTC)
    if raw:
        for index, own in enumerate(per_version or [None]):
            data = template_data(shared, own, start_time=now, now=now)
            click.echo(f"---\n# version {index}\n"
                       + render_raw(source.text, data, name=source.origin), nl=False)
        return
    specs = render_provider_specs(source.text, shared, per_version, now, name=source.origin)
    for index, spec in specs:
        click.echo(f"---\n# version {index}\n{dump_yaml(spec)}", nl=False)


def _task_values(values: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """`custommetrics.values` and `custommetrics.versionValues`, as the task receives them."""
    task_values = values.get("custommetrics") or {}
    if not isinstance(task_values, dict):
        raise ValuesError("custommetrics: expected a mapping with values and versionValues")
    shared = task_values.get("values") or {}
    per_version = task_values.get("versionValues") or []
    if not isinstance(shared, dict) or not isinstance(per_version, list):
        raise ValuesError("custommetrics.values must be a mapping and "
                          "custommetrics.versionValues a list")
    for index, own in enumerate(per_version):
        if own is not None and not isinstance(own, dict):
            raise ValuesError(f"custommetrics.versionValues[{index}]: expected a mapping of "
                              f"values, got {own!r}")
    return shared, per_version
