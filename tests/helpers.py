"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

from canarist.core.experiment import Experiment, parse_experiment
from canarist.core.yamltext import load_yaml

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture_experiment(name: str) -> Experiment:
    path = FIXTURES / "iter8" / name
    return parse_experiment(load_yaml(path.read_text(), source=str(path)), source=str(path))
