"""Every `experiment.yaml` a doc prints validates as it is printed.

The docs' commands themselves run as typed in tests/docs/test_pages.py; this check covers the
experiment files a page shows as the result of a launch rather than as input to a command.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from canarist.core.experiment import parse_experiment
from canarist.runners.engine import prepare
from canarist.tasks.registry import TASKS

DOCS = Path(__file__).parent.parent / "docs"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def experiment_blocks() -> list[tuple[str, str]]:
    return [(doc.name, body) for doc in sorted(DOCS.glob("*.md"))
            for lang, body in FENCE.findall(doc.read_text())
            if lang == "yaml" and body.startswith("# experiment.yaml\n")]


@pytest.mark.parametrize(("doc", "body"), experiment_blocks())
def test_experiment_examples_validate(doc: str, body: str) -> None:
    experiment = parse_experiment(yaml.safe_load(body), source=doc)
    prepared = prepare(experiment.spec, TASKS)  # raises SpecError naming what is wrong
    assert len(prepared) == len(experiment.spec)
    for task, entry in zip(prepared, experiment.spec, strict=True):  # each with its typed inputs
        assert task.definition.name == (entry.task or "run").lower()
        assert isinstance(task.inputs, task.definition.inputs)


def test_the_docs_show_experiments() -> None:
    assert len(experiment_blocks()) >= 3
