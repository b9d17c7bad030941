"""Commands. Iter8's flag spellings (`--runDir`, `--reuseResult`, ...) are accepted too."""

from __future__ import annotations

import logging
import platform
import urllib.request
from pathlib import Path
from typing import Any

import click

from canarist import __version__
from canarist.cli import logs
from canarist.cli.progress import terminal_progress_factory
from canarist.cli.sandbox import sandbox
from canarist.cli.templates import template
from canarist.core import values as helm_values
from canarist.core.assertions import parse_conditions
from canarist.core.durations import parse_duration
from canarist.core.errors import ExperimentFailed, UnavailableError, ValuesError
from canarist.core.experiment import Experiment
from canarist.core.yamltext import load_yaml
from canarist.reports.text import render_text
from canarist.reports.verdict import render_json
from canarist.runners import local
from canarist.runners.engine import RunSettings
from canarist.stores.file import FileStore

URL_TIMEOUT_S = 30.0
REPORT_FORMATS = ("text", "html", "json")


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
@click.option("-f", "--values", "values_files", multiple=True, metavar="FILE|URL",
              help="Values file (YAML); repeatable, later files win.")
@click.option("--set", "set_values", multiple=True, metavar="K=V",
              help="Set values (Helm strvals syntax); repeatable.")
@click.option("--set-string", "set_strings", multiple=True, metavar="K=V",
              help="Set values, keeping every value a string.")
@click.option("--set-file", "set_files", multiple=True, metavar="K=PATH",
              help="Set a value to the contents of a file.")
@click.option("--dry", is_flag=True, help="Write experiment.yaml and stop.")
@_run_dir_option
@_cluster_options
def launch(values_files: tuple[str, ...], set_values: tuple[str, ...],
           set_strings: tuple[str, ...], set_files: tuple[str, ...], dry: bool,
           run_dir: Path, namespace: str | None, kubeconfig: str | None,
           kube_context: str | None) -> None:
    """Render an experiment from values into experiment.yaml and run it."""
    values = collect_values(values_files, set_values, set_strings, set_files)
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
@click.option("-o", "--output", "--outputFormat", "output_format", default="text",
              show_default=True, help="Report format: text, html or json.")
@_run_dir_option
def report(output_format: str, run_dir: Path) -> None:
    """Print a report of the experiment."""
    fmt = output_format.lower()
    if fmt not in REPORT_FORMATS:
        raise click.BadParameter(f"unsupported report format {output_format}; expected "
                                 + " or ".join(REPORT_FORMATS), param_hint="'-o'")
    experiment = FileStore(run_dir).read()
    click.echo(render_report(experiment, fmt), nl=False)


def render_report(experiment: Experiment, fmt: str) -> str:
    """The report in `fmt` (text, html or json); shared by `report` and `k report`."""
    if fmt == "html":
        from canarist.reports.html import render_html  # matplotlib: imported only when needed

        return render_html(experiment)
    if fmt == "json":
        return render_json(experiment)
    return render_text(experiment)


@cli.command(name="assert")
@click.option("-c", "--condition", "conditions", multiple=True, required=True,
              help="completed, nofailure, slos; repeatable or comma-separated.")
@click.option("--timeout", default="0s", show_default=True,
              help="Keep checking every 3 s until this Go duration passes.")
@_run_dir_option
def assert_(conditions: tuple[str, ...], timeout: str, run_dir: Path) -> None:
    """Check that the experiment meets the conditions (exit 0), or not (exit 1)."""
    wanted = parse_conditions(list(conditions))
    timeout_s = parse_duration(timeout, field="--timeout")
    store = FileStore(run_dir)
    verdicts = local.assert_conditions(store.read, wanted, timeout_s=timeout_s)
    if all(v.holds for v in verdicts):
        logging.getLogger("canarist").info("all conditions were satisfied")
        return
    logging.getLogger("canarist").info("not all conditions were satisfied")
    failed = [v for v in verdicts if not v.holds]
    if all(v.undecidable for v in failed):
        raise UnavailableError("cannot decide: " + "; ".join(v.message for v in failed))
    raise ExperimentFailed("assert conditions failed: " + "; ".join(v.message for v in failed))


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


def _settings(run_dir: Path, namespace: str | None = None, kubeconfig: str | None = None,
              kube_context: str | None = None) -> RunSettings:
    return RunSettings(run_dir=run_dir, namespace=namespace or "default", kubeconfig=kubeconfig,
                       kube_context=kube_context, progress=terminal_progress_factory())


def collect_values(files: tuple[str, ...], sets: tuple[str, ...], strings: tuple[str, ...],
                   set_files: tuple[str, ...]) -> dict[str, Any]:
    """Helm's order: values files merged in order, then --set, --set-string, --set-file."""
    return helm_values.build_values(
        [_read_values_file(source) for source in files],
        set_values=sets, set_string_values=strings, set_file_values=set_files,
        read_file=lambda path: Path(path).read_text(encoding="utf-8"),
    )


def _read_values_file(source: str) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=URL_TIMEOUT_S) as response:
                text = response.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UnavailableError(f"-f {source}: cannot fetch values: {exc}") from None
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValuesError(f"-f {source}: cannot read values file: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
    data = load_yaml(text, source=source)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValuesError(f"-f {source}: expected a mapping of values at the top level")
    return data
