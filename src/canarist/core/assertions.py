"""`assert` conditions over an experiment: completed, nofailure, slos."""

from __future__ import annotations

from dataclasses import dataclass

from canarist.core.errors import InputError
from canarist.core.experiment import Experiment
from canarist.core.metrics import scalar_value

CONDITIONS = ("completed", "nofailure", "slos")


@dataclass(frozen=True)
class Verdict:
    condition: str
    holds: bool
    message: str
    # True when the condition fails only because metric values could not be had.
    undecidable: bool = False


def parse_conditions(raw: list[str]) -> list[str]:
    """Split comma-separated values, lower-case them, reject unknown ones."""
    conditions = []
    for item in raw:
        for part in item.split(","):
            name = part.strip().lower()
            if not name:
                continue
            if name not in CONDITIONS:
                raise InputError(f"--condition: unsupported assert condition detected; {part.strip()}"
                                 f" (expected {', '.join(CONDITIONS)})")
            conditions.append(name)
    if not conditions:
        raise InputError("--condition: expected at least one of completed, nofailure, slos")
    return conditions


def evaluate(experiment: Experiment, condition: str) -> Verdict:
    if condition == "completed":
        ok = experiment.completed()
        return Verdict(condition, ok, "experiment completed" if ok else "experiment did not complete")
    if condition == "nofailure":
        ok = experiment.no_failure()
        message = "experiment has no failure"
        if not ok:
            failed = experiment.result.failed_task if experiment.result else None
            message = "experiment failed" + (
                f": task {failed.number} ({failed.name}): {failed.reason}" if failed else "")
        return Verdict(condition, ok, message)
    return _slos(experiment)


def _slos(experiment: Experiment) -> Verdict:
    if experiment.slos():
        return Verdict("slos", True, "SLOs are satisfied")
    insights = experiment.result.insights if experiment.result else None
    if insights is None or insights.slos is None:
        return Verdict("slos", False, "SLOs are not satisfied: no SLOs were assessed yet")
    violated: list[str] = []
    unavailable: list[str] = []
    satisfied = experiment.result.insights.slos_satisfied if experiment.result and \
        experiment.result.insights else None
    for upper, slos, table in (
        (True, insights.slos.upper, satisfied.upper if satisfied else []),
        (False, insights.slos.lower, satisfied.lower if satisfied else []),
    ):
        for i, slo in enumerate(slos):
            for j in range(insights.num_versions):
                if i < len(table) and j < len(table[i]) and table[i][j]:
                    continue
                found = scalar_value(insights, j, slo.metric)
                label = insights.version_label(j)
                if found.value is None:
                    unavailable.append(f"{slo.metric} for {label} is unavailable ({found.reason})")
                else:
                    bound = "<=" if upper else ">="
                    violated.append(f"{slo.metric} for {label} is {found.value:g}, "
                                    f"expected {bound} {slo.limit:g}")
    details = "; ".join(violated + unavailable)
    return Verdict("slos", False, "SLOs are not satisfied" + (f": {details}" if details else ""),
                   undecidable=bool(unavailable) and not violated)
