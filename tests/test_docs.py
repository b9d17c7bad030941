"""Every example in docs/ runs: launch commands render and validate, values and experiment
files are accepted as they are printed."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from canarist.core.experiment import parse_experiment
from canarist.runners.engine import prepare
from canarist.tasks.registry import TASKS

DOCS = Path(__file__).parent.parent / "docs"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def blocks(kind: str) -> list[tuple[str, str]]:
    found = []
    for doc in sorted(DOCS.glob("*.md")):
        for lang, body in FENCE.findall(doc.read_text()):
            if lang == kind:
                found.append((doc.name, body))
    return found


def launch_lines() -> list[tuple[str, str]]:
    lines = []
    for doc, body in blocks("shell"):
        for line in body.replace("\\\n", " ").splitlines():
            if line.startswith("canarist launch "):
                lines.append((doc, line))
    return lines


def marked_yaml(marker: str) -> list[tuple[str, str]]:
    return [(doc, body) for doc, body in blocks("yaml") if body.startswith(f"# {marker}\n")]


VALUES_FILE = re.compile(r"^# ([\w-]+\.yaml)\n")


def values_files(doc: str) -> dict[str, str]:
    """Values files a doc shows (a yaml block whose first line is `# name.yaml`)."""
    files = {}
    for name, body in blocks("yaml"):
        match = VALUES_FILE.match(body)
        if name == doc and match and match.group(1) != "experiment.yaml":
            files[match.group(1)] = body
    return files


def canarist(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canarist", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("doc", "line"), launch_lines())
def test_launch_examples_render(tmp_path: Path, doc: str, line: str) -> None:
    for name, body in values_files(doc).items():
        (tmp_path / name).write_text(body)
    args = shlex.split(line)[1:]
    if "--dry" not in args:
        args.append("--dry")
    done = canarist(args, tmp_path)
    assert done.returncode == 0, f"{doc}: {line}\n{done.stderr}"
    assert list(tmp_path.rglob("experiment.yaml"))


@pytest.mark.parametrize(("doc", "body"), [
    (doc, body) for doc, body in blocks("yaml")
    if VALUES_FILE.match(body) and not body.startswith("# experiment.yaml")])
def test_values_examples_render(tmp_path: Path, doc: str, body: str) -> None:
    (tmp_path / "values.yaml").write_text(body)
    done = canarist(["launch", "--dry", "-f", "values.yaml"], tmp_path)
    assert done.returncode == 0, f"{doc}\n{done.stderr}"


@pytest.mark.parametrize(("doc", "body"), marked_yaml("experiment.yaml"))
def test_experiment_examples_validate(doc: str, body: str) -> None:
    experiment = parse_experiment(yaml.safe_load(body), source=doc)
    prepare(experiment.spec, TASKS)


def test_the_docs_have_examples() -> None:
    assert len(launch_lines()) >= 3
    assert len(marked_yaml("values.yaml")) >= 3
