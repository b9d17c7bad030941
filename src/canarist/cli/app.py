"""Commands. Iter8's flag spellings (`--runDir`, `--reuseResult`, ...) are accepted too."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import click

from canarist import __version__
from canarist.cli import logs
from canarist.cli.common import (
    assert_options,
    check_conditions,
    render_report,
    report_option,
    value_options,
)
from canarist.cli.demo import demo
from canarist.cli.kube import k
from canarist.cli.progress import terminal_progress_factory
from canarist.cli.sandbox import sandbox
from canarist.cli.templates import template
from canarist.runners import local
from canarist.runners.engine import RunSettings
from canarist.stores.file import FileStore


def _cluster_options(func: Any) -> Any:
    """Where `ready` tasks look: `-n/--namespace`, `--kubeconfig`, `--context`."""
    for decorator in reversed([
        click.option("-n", "--namespace", default=None,
                     help="Namespace for ready tasks that name none (default: default)."),
        click.option("--kubeconfig", default=None, metavar="FILE",
                     help="Kubeconfig for ready tasks (default: $KUBECONFIG, ~/.kube/config)."),
        click.option("--context", "kube_context", default=None,
                     help="Kubeconfig context for ready tasks."),
    ]):
        func = decorator(func)
    return func


def _run_dir_option(func: Any) -> Any:
    return click.option(
        "--run-dir", "--runDir", "run_dir", default=".", show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Directory holding experiment.yaml.",
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-l", "--loglevel", default="info", show_default=True,
              type=click.Choice(sorted(logs.LEVELS), case_sensitive=False),
              help="Log level for messages on stderr.")
def cli(loglevel: str) -> None:
    """canarist: canary testing and release validation for ML inference services."""
    logs.configure(loglevel)


@cli.command()
@value_options
@click.option("--dry", is_flag=True, help="Write experiment.yaml and stop.")
@_run_dir_option
@_cluster_options
def launch(values: dict[str, Any], dry: bool, run_dir: Path, namespace: str | None,
           kubeconfig: str | None, kube_context: str | None) -> None:
    """Render an experiment from values into experiment.yaml and run it."""
    local.launch(values, run_dir, dry=dry,
                 settings=_settings(run_dir, namespace, kubeconfig, kube_context))


@cli.command()
@click.option("--reuse-result", "--reuseResult", "reuse_result", is_flag=True,
              help="Keep the existing result and add a loop to it.")
@_run_dir_option
@_cluster_options
def run(reuse_result: bool, run_dir: Path, namespace: str | None, kubeconfig: str | None,
        kube_context: str | None) -> None:
    """Run the experiment in experiment.yaml."""
    local.run(run_dir, reuse_result=reuse_result,
              settings=_settings(run_dir, namespace, kubeconfig, kube_context))


@cli.command()
@report_option
@_run_dir_option
def report(output_format: str, run_dir: Path) -> None:
    """Print a report of the experiment."""
    click.echo(render_report(FileStore(run_dir).read(), output_format), nl=False)


@cli.command(name="assert")
@assert_options
@_run_dir_option
def assert_(conditions: tuple[str, ...], timeout: str, run_dir: Path) -> None:
    """Check that the experiment meets the conditions (exit 0), or not (exit 1)."""
    check_conditions(FileStore(run_dir).read, conditions, timeout)


@cli.command()
@click.option("--short", is_flag=True, help="Print only the version.")
def version(short: bool) -> None:
    """Print canarist's version."""
    if short:
        click.echo(f"v{__version__}")
    else:
        click.echo(f'canarist.BuildInfo{{Version:"v{__version__}", '
                   f'PythonVersion:"{platform.python_version()}"}}')


cli.add_command(template)
cli.add_command(sandbox)
cli.add_command(demo)
cli.add_command(k)


def _settings(run_dir: Path, namespace: str | None = None, kubeconfig: str | None = None,
              kube_context: str | None = None) -> RunSettings:
    return RunSettings(run_dir=run_dir, namespace=namespace or "default", kubeconfig=kubeconfig,
                       kube_context=kube_context, progress=terminal_progress_factory())
