"""`canarist template list|render`: see what a provider template produces without running."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from canarist.cli.common import value_options
from canarist.core.errors import ValuesError
from canarist.core.yamltext import dump_yaml
from canarist.tasks.templates import (
    builtin_template_names,
    load_template,
    render_provider_specs,
    render_raw,
)


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
              help="Execute any Go template with the values as its data; print the text as is.")
def render(ref: str, values: dict[str, Any], raw: bool) -> None:
    """Print the provider spec REF renders to for each version.

    Values are those of `canarist launch`: `custommetrics.values.*` and
    `custommetrics.versionValues[i].*`, merged per version as the custommetrics task does.
    """
    source = asyncio.run(load_template(ref, base_dir=Path.cwd()))
    if raw:
        click.echo(render_raw(source.text, values, name=source.origin), nl=False)
        return
    task_values = values.get("custommetrics") or {}
    if not isinstance(task_values, dict):
        raise ValuesError("custommetrics: expected a mapping with values and versionValues")
    shared = task_values.get("values") or {}
    per_version = task_values.get("versionValues") or []
    if not isinstance(shared, dict) or not isinstance(per_version, list):
        raise ValuesError("custommetrics.values must be a mapping and "
                          "custommetrics.versionValues a list")
    specs = render_provider_specs(source.text, shared, per_version, datetime.now(UTC),
                                  name=source.origin)
    for index, spec in specs:
        click.echo(f"---\n# version {index}\n{dump_yaml(spec)}", nl=False)
