"""`assert` conditions over an experiment: completed, nofailure, slos."""

from __future__ import annotations

from dataclasses import dataclass

from canarist.core.errors import InputError
from canarist.core.experiment import Experiment
from canarist.core.redact import shown_text
from canarist.core.verdict import SLOCheck, judge

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
                f": task {failed.number} ({failed.name}): {shown_text(failed.reason)}"
                if failed else "")
        return Verdict(condition, ok, message)
    return _slos(experiment)


def _slos(experiment: Experiment) -> Verdict:
    """Iter8's `SLOs()`, and with relative objectives every candidate within its allowance:
    fails (exit 1) on a violated SLO or a failed comparison, cannot decide (exit 3) when the
    rest only lacks values or data."""
    found = judge(experiment)
    if experiment.slos() and not found.worse and not found.undecided:
        return Verdict("slos", True, "SLOs are satisfied" if not found.num_comparisons else
                       "SLOs are satisfied and every candidate is within its allowance")
    insights = experiment.result.insights if experiment.result else None
    if insights is None or (insights.slos is None and not insights.comparisons):
        return Verdict("slos", False, "SLOs are not satisfied: no SLOs were assessed yet")
    violated = [_expected(c) for c in found.violated] + [c.describe() for c in found.worse]
    unavailable = ([c.describe() for c in found.unavailable]
                   + [c.describe() for c in found.undecided])
    details = "; ".join(violated + unavailable)
    return Verdict("slos", False, "SLOs are not satisfied" + (f": {details}" if details else ""),
                   undecidable=bool(unavailable) and not violated)


def _expected(check: SLOCheck) -> str:
    """`http/latency-p99 for canary is 131.2, expected <= 100`."""
    bound = "<=" if check.bound == "upper" else ">="
    return f"{check.metric} for {check.label} is {check.value:g}, expected {bound} {check.limit:g}"
