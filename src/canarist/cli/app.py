"""Commands. Iter8's flag spellings (`--runDir`, `--reuseResult`, ...) are accepted too.

Start-up is kept short: the command groups below (`k`, `sandbox`, `template`, `demo`) are
imported only when named, and each command imports what it runs inside its body, so
`--help`, `version`, `report` and `assert` never load the tasks, gRPC, Kubernetes, aiohttp,
plotting or the sandbox.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from canarist.runners.engine import RunSettings

# Command groups imported on first use: name -> ("module:attribute", the first paragraph of its
# help). `--help` lists them from here; tests check each summary against the real group's.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("canarist.cli.demo:demo",
             "Run the KServe canary-testing tutorial on the local sandbox, start to end."),
    "k": ("canarist.cli.kube:k",
          "Experiments inside Kubernetes: launch, run, report, assert, log, delete."),
    "sandbox": ("canarist.cli.sandbox:sandbox",
                "A local KServe sandbox: InferenceServices, ingress, Prometheus, a Kubernetes API."),
    "template": ("canarist.cli.templates:template",
                 "Built-in provider templates, and what a template renders to."),
}

# Command groups that need an optional extra (`canarist.core.extras`): name -> extra.
NEEDS_EXTRA: dict[str, str] = {"demo": "sandbox", "sandbox": "sandbox"}


class LazyGroup(click.Group):
    """A group whose `LAZY_COMMANDS` are imported when named, not when the CLI starts."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            if cmd_name in NEEDS_EXTRA:
                from canarist.core.extras import require

                require(NEEDS_EXTRA[cmd_name], f"canarist {cmd_name}")
            module_name, _, attribute = LAZY_COMMANDS[cmd_name][0].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{LAZY_COMMANDS[cmd_name][0]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:  # suggest from every name, imported or not
            raise click.exceptions.NoSuchCommand(exc.command_name, ctx=ctx,
                                                 possibilities=self.list_commands(ctx)) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click lists commands, but a group not yet imported is described from the registry."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or click.Command(name, help=LAZY_COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit))
                                    for name, command in rows])


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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    from canarist.runners import local

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
    from canarist.runners import local

    local.run(run_dir, reuse_result=reuse_result,
              settings=_settings(run_dir, namespace, kubeconfig, kube_context))


@cli.command()
@report_option
@_run_dir_option
def report(output_format: str, run_dir: Path) -> None:
    """Print a report of the experiment."""
    from canarist.stores.file import FileStore

    click.echo(render_report(FileStore(run_dir).read(), output_format), nl=False)


@cli.command(name="assert")
@assert_options
@_run_dir_option
def assert_(conditions: tuple[str, ...], timeout: str, run_dir: Path) -> None:
    """Check that the experiment meets the conditions (exit 0), or not (exit 1)."""
    from canarist.stores.file import FileStore

    check_conditions(FileStore(run_dir).read, conditions, timeout)


@cli.command()
@click.option("--short", is_flag=True, help="Print only the version.")
def version(short: bool) -> None:
    """Print canarist's version."""
    import platform

    if short:
        click.echo(f"v{__version__}")
    else:
        click.echo(f'canarist.BuildInfo{{Version:"v{__version__}", '
                   f'PythonVersion:"{platform.python_version()}"}}')


def _settings(run_dir: Path, namespace: str | None = None, kubeconfig: str | None = None,
              kube_context: str | None = None) -> RunSettings:
    from canarist.cli.progress import terminal_progress_factory
    from canarist.runners.engine import RunSettings

    return RunSettings(run_dir=run_dir, namespace=namespace or "default", kubeconfig=kubeconfig,
                       kube_context=kube_context, progress=terminal_progress_factory())
