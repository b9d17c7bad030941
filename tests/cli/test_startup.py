"""Start-up stays light: the commands typed most and called by CI in loops load only what they use.

Each case runs the command in a fresh interpreter and lists the modules it ended with; no
timing is asserted (bench/startup.py measures that).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from tests.helpers import FIXTURES

from canarist.cli.app import LAZY_COMMANDS, cli

# What the light commands must never import: the task registry and what it drives (HTTP/gRPC
# load, Kubernetes, aiohttp), plotting, the judge's numerics, and the sandbox.
HEAVY = ("grpc", "kubernetes", "matplotlib", "aiohttp", "numpy", "scipy", "canarist.tasks",
         "canarist.sandbox", "canarist.backends", "canarist.runners.engine",
         "canarist.runners.local", "canarist.core.judge")
# Of the backends, the bounded file reader and the poll clock (no third-party imports) are what
# reading a file and waiting on it need.
LIGHT_BACKENDS = frozenset({"canarist.backends", "canarist.backends.files", "canarist.backends.clock"})
# `--help` and `version` do not even read a file: no models, no YAML.
READS_NOTHING = ("pydantic", "yaml", "canarist.stores", "canarist.reports", "canarist.core.experiment")

PROBE = """
import json, sys
from canarist.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def run_probe(*args: str) -> tuple[int, str, list[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          timeout=120, check=False)
    last = done.stderr.strip().splitlines()[-1]
    probe = json.loads(last)
    return probe["code"], done.stdout, probe["modules"]


def loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if m not in LIGHT_BACKENDS
            and any(m == p or m.startswith(p + ".") for p in prefixes)]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    shutil.copy(FIXTURES / "iter8" / "kserve-two-versions.yaml", tmp_path / "experiment.yaml")
    return tmp_path


@pytest.mark.parametrize("args", [["--help"], ["version"], ["version", "--short"],
                                  ["launch", "--help"], ["report", "--help"]])
def test_help_and_version_read_nothing(args: list[str]) -> None:
    code, stdout, modules = run_probe(*args)
    assert code == 0
    assert stdout.strip()
    assert loaded(modules, HEAVY + READS_NOTHING) == []


@pytest.mark.parametrize(("output", "expected"), [("text", "Experiment summary"),
                                                  ("json", '"versions"')])
def test_report_loads_no_tasks_backends_plotting_or_sandbox(run_dir: Path, output: str,
                                                            expected: str) -> None:
    code, stdout, modules = run_probe("report", "-o", output, "--run-dir", str(run_dir))
    assert code == 0
    assert expected in stdout
    assert loaded(modules, HEAVY) == []


@pytest.mark.parametrize(("condition", "code_expected"), [("completed,nofailure", 0), ("slos", 1)])
def test_assert_loads_no_tasks_backends_plotting_or_sandbox(run_dir: Path, condition: str,
                                                            code_expected: int) -> None:
    code, _, modules = run_probe("assert", "-c", condition, "--run-dir", str(run_dir))
    assert code == code_expected
    assert loaded(modules, HEAVY) == []


def test_html_report_still_draws_charts(run_dir: Path) -> None:
    code, stdout, modules = run_probe("report", "-o", "html", "--run-dir", str(run_dir))
    assert code == 0
    assert stdout.lstrip().lower().startswith("<!doctype html")
    assert "matplotlib" in modules


def test_lazy_groups_run_when_named() -> None:
    code, stdout, modules = run_probe("template", "list")
    assert code == 0
    assert "kserve-prometheus" in stdout.split()
    assert "canarist.cli.templates" in modules


@pytest.mark.parametrize(("typo", "suggestion"), [("sandboxx", "sandbox"), ("reprot", "report")])
def test_a_mistyped_command_is_answered_with_the_nearest_name(typo: str, suggestion: str) -> None:
    done = subprocess.run([sys.executable, "-m", "canarist", typo], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr == f"Error: No such command '{typo}'. Did you mean '{suggestion}'?\n"


def test_help_lists_lazy_groups_as_the_groups_describe_themselves() -> None:
    """The registry's summaries are the groups' own: `--help` reads the same before and
    after the groups are imported, at any terminal width."""
    for name, (target, summary) in LAZY_COMMANDS.items():
        module_name, _, attribute = target.partition(":")
        real = getattr(__import__(module_name, fromlist=[attribute]), attribute)
        assert isinstance(real, click.Command)
        stand_in = click.Command(name, help=summary)
        for limit in (20, 45, 80, 1000):
            assert stand_in.get_short_help_str(limit) == real.get_short_help_str(limit), name

    code, lazy_help, modules = run_probe("--help")
    assert code == 0
    assert loaded(modules, tuple(t.partition(":")[0] for t, _ in LAZY_COMMANDS.values())) == []
    with click.Context(cli, info_name="canarist", **cli.context_settings) as ctx:
        for name in LAZY_COMMANDS:
            assert cli.get_command(ctx, name) is not None  # imports it
        assert ctx.get_help() + "\n" == lazy_help
    assert all(f"\n  {name} " in lazy_help for name in LAZY_COMMANDS)


def test_an_experiment_loads_only_the_tasks_it_names(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("tasks: [http, assess]\nhttp: {url: 'http://127.0.0.1:8080/'}\n"
                      "assess:\n  SLOs:\n    upper:\n      http/error-rate: 0\n")
    code, _, modules = run_probe("launch", "--dry", "--runDir", str(tmp_path / "run"),
                                 "-f", str(values))
    assert code == 0
    assert {"canarist.tasks.http", "canarist.tasks.assess"} <= set(modules)
    others = ("agreement", "custommetrics", "grpc", "kserve", "notify", "ready", "rollout", "run")
    assert loaded(modules, tuple(f"canarist.tasks.{name}" for name in others)) == []
    assert loaded(modules, ("grpc", "kubernetes", "jq", "canarist.backends.kube")) == []


def test_the_registry_names_each_task_as_its_module_does() -> None:
    from canarist.tasks.registry import TASKS

    assert sorted(TASKS) == ["agreement", "assess", "custommetrics", "grpc", "http", "kserve",
                             "notify", "ready", "rollout", "run"]
    assert all(TASKS[name].name == name for name in TASKS)
    with pytest.raises(KeyError):
        TASKS["nope"]
    assert TASKS.get("nope") is None
