"""`canarist k ...`: experiments inside Kubernetes.

Iter8's spellings are accepted: `--group`, `--reuseResult`, `--outputFormat`, `--condition`,
`--kube-context`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from canarist.backends.kube import ClusterCalls, KubeClient, load_configuration
from canarist.cli import logs
from canarist.cli.common import (
    assert_options,
    check_conditions,
    render_report,
    report_option,
    value_options,
)
from canarist.cli.progress import terminal_progress_factory
from canarist.core.errors import InputError
from canarist.runners import kubernetes as kube_runner
from canarist.runners.engine import RunSettings

log = logging.getLogger("canarist")
MANIFEST_FILE = "manifest.yaml"


def _kube_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("-g", "--group", default="default", show_default=True,
                     help="Experiment group: names the Secret and the other objects."),
        click.option("-n", "--namespace", default=None,
                     help="Namespace (default: the kubeconfig context's, else `default`)."),
        click.option("--kubeconfig", default=None, metavar="FILE",
                     help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)."),
        click.option("--context", "--kube-context", "context", default=None,
                     help="Kubeconfig context to use."),
        click.option("-l", "--loglevel", "loglevel", default=None,
                     type=click.Choice(sorted(logs.LEVELS), case_sensitive=False),
                     help="Log level for messages on stderr."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(name="k")
def k() -> None:
    """Experiments inside Kubernetes: launch, run, report, assert, log, delete."""


@contextmanager
def _cluster(kubeconfig: str | None, context: str | None,
             namespace: str | None, loglevel: str | None) -> Iterator[tuple[ClusterCalls, str]]:
    if loglevel:
        logs.configure(loglevel)
    with KubeClient.connect(kubeconfig, context) as client:
        calls = ClusterCalls(client)
        yield calls, namespace or calls.namespace


@k.command()
@value_options
@click.option("--dry", is_flag=True,
              help=f"Write the objects into {MANIFEST_FILE} in the current directory; create nothing.")
@_kube_options
def launch(values: dict[str, Any], dry: bool, group: str, namespace: str | None,
           kubeconfig: str | None, context: str | None, loglevel: str | None) -> None:
    """Launch an experiment in the cluster (relaunching replaces the group's experiment)."""
    if dry:
        if loglevel:
            logs.configure(loglevel)
        ns = namespace or _offline_namespace(kubeconfig, context)
        objects = kube_runner.build_manifests(values, group=group, namespace=ns, revision=1,
                                              now=datetime.now(UTC))
        Path(MANIFEST_FILE).write_text(kube_runner.manifest_text(objects), encoding="utf-8")
        log.info("wrote kubernetes manifest into %s", MANIFEST_FILE)
        log.info("dry run complete")
        return
    with _cluster(kubeconfig, context, namespace, loglevel) as (calls, ns):
        launched = kube_runner.launch(calls, values, group=group, namespace=ns)
    for removed in launched.removed:
        log.info("deleted %s", removed)
    log.info("experiment launched: group %s, revision %d, namespace %s", group,
             launched.revision, ns)


def _offline_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The context's namespace for `--dry`, which must work without any cluster."""
    try:
        return load_configuration(kubeconfig, context).namespace
    except InputError:
        if kubeconfig or context:
            raise
        return "default"


@k.command()
@click.option("--reuse-result", "--reuseResult", "reuse_result", is_flag=True,
              help="Keep the existing result and add a loop to it.")
@_kube_options
def run(reuse_result: bool, group: str, namespace: str | None, kubeconfig: str | None,
        context: str | None, loglevel: str | None) -> None:
    """Run one loop of the group's experiment (what the Job or CronJob's pod does)."""
    with _cluster(kubeconfig, context, namespace, loglevel) as (calls, ns):
        settings = RunSettings(run_dir=Path.cwd(), namespace=ns, kubeconfig=kubeconfig,
                               kube_context=context, progress=terminal_progress_factory())
        kube_runner.run(calls, group=group, namespace=ns, reuse_result=reuse_result,
                        settings=settings)


@k.command()
@report_option
@_kube_options
def report(output_format: str, group: str, namespace: str | None, kubeconfig: str | None,
           context: str | None, loglevel: str | None) -> None:
    """Print a report of the group's experiment."""
    with _cluster(kubeconfig, context, namespace, loglevel) as (calls, ns):
        experiment = kube_runner.reader(calls, group=group, namespace=ns)()
    click.echo(render_report(experiment, output_format), nl=False)


@k.command(name="assert")
@assert_options
@_kube_options
def assert_(conditions: tuple[str, ...], timeout: str, group: str, namespace: str | None,
            kubeconfig: str | None, context: str | None, loglevel: str | None) -> None:
    """Check that the group's experiment meets the conditions (exit 0), or not (exit 1)."""
    with _cluster(kubeconfig, context, namespace, loglevel) as (calls, ns):
        check_conditions(kube_runner.reader(calls, group=group, namespace=ns), conditions,
                         timeout)


@k.command(name="log")
@_kube_options
def log_(group: str, namespace: str | None, kubeconfig: str | None, context: str | None,
         loglevel: str | None) -> None:
    """Print the logs of the group's experiment pods."""
    with _cluster(kubeconfig, context, namespace, loglevel) as (calls, ns):
        text = kube_runner.pod_logs(calls, group=group, namespace=ns)
    # the log formatter indents every line after a message's first, as Iter8 shows the trace
    trace = "".join(f"\n{line}" for line in text.splitlines())
    log.info("experiment logs from Kubernetes cluster indented-trace=below ...%s", trace)


@k.command()
@_kube_options
def delete(group: str, namespace: str | None, kubeconfig: str | None, context: str | None,
           loglevel: str | None) -> None:
    """Delete everything launched for the group."""
    with _cluster(kubeconfig, context, namespace, loglevel) as (calls, ns):
        removed = kube_runner.delete(calls, group=group, namespace=ns)
    for item in removed:
        log.info("deleted %s", item)
    log.info("experiment group %s deleted", group)
