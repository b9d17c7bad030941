"""The release verdict of an experiment, computed once: pass, fail or inconclusive, and why.

Every report (text, HTML, JSON) and every notification reads `judge`; none decides for itself.

The rules, in order (a release gate: promote only on evidence):

1. Some version does not satisfy an SLO whose value was measured, or a candidate is shown to
   be worse than its baseline by more than a relative objective allows -> **fail**, naming
   each (`http/error-rate for canary is 1, above the upper limit 0`).
2. A task failed -> **fail**, naming the task and its reason. An experiment that broke
   part-way has not shown the release is good, and a failing `ready` or load test is
   usually the release's fault; a gate must not promote on it.
3. No SLOs and no relative objectives were assessed (no `assess` task, or it has not run)
   -> **inconclusive**: nothing was judged, so nothing passed; unless a rollout already
   promoted (**pass**) or rolled back (**fail**, or **inconclusive** after too many holds):
   later loops measure nothing, and the verdict is the one the rollout acted on.
4. Some SLO was not assessed, or not satisfied only because its value is unavailable (a
   query returned no data, a latency over zero successful requests), or a relative
   objective cannot be decided yet (thin data, no traffic, coarse buckets) ->
   **inconclusive**, with the reason of each.
5. Otherwise every version satisfies every SLO and every candidate passes every relative
   objective -> **pass**.

Completion is reported beside the verdict, not folded into it: a notification sent by a task
in the middle of the experiment judges what was measured so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from canarist.core.experiment import SLO, ComparisonRecord, Experiment, Insights
from canarist.core.metrics import normalize_name, scalar_value
from canarist.core.redact import shown_text

Outcome = Literal["pass", "fail", "inconclusive"]
Bound = Literal["upper", "lower"]

OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "inconclusive")

HEADLINES: dict[Outcome, str] = {
    "pass": "Passed",
    "fail": "Rejected",
    "inconclusive": "Cannot decide",
}
"""What a report's first line calls each outcome."""

ICONS: dict[Outcome, str] = {"pass": "✔", "fail": "✖", "inconclusive": "?"}


@dataclass(frozen=True)
class SLOCheck:
    """One SLO for one version that is not satisfied."""

    metric: str
    version: int
    label: str
    bound: Bound
    limit: float
    value: float | None
    """None when the value is unavailable (then `reason` says why) or was not assessed."""
    reason: str = ""
    undecided: bool = False
    """A proportion judged on its counts whose interval straddles the limit: too few to tell
    (`value` is the estimate, `reason` gives the counts and the interval)."""

    def describe(self) -> str:
        if self.undecided:
            return f"{self.metric} for {self.label} cannot be decided yet: {self.reason}"
        if self.value is None:
            return f"{self.metric} for {self.label} is unavailable ({self.reason})"
        side = "above the upper" if self.bound == "upper" else "below the lower"
        counted = f" ({self.reason})" if self.reason else ""
        return (f"{self.metric} for {self.label} is {short_number(self.value)}, {side} limit "
                f"{short_number(self.limit)}{counted}")


@dataclass(frozen=True)
class ComparisonCheck:
    """One relative objective for one candidate that did not pass."""

    record: ComparisonRecord
    candidate: str
    baseline: str

    def describe(self) -> str:
        return (f"{self.record.metric} of {self.candidate} against {self.baseline}: "
                f"{self.record.reason}")


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    """One line: which SLOs failed for which version, why values are unavailable, which task
    failed, or what passed."""
    summary: str = ""
    """Shorter than `reason`, for a headline: how many SLOs and which, without values."""
    num_slos: int = 0
    violated: tuple[SLOCheck, ...] = field(default=())
    """SLOs not satisfied by a measured value."""
    unavailable: tuple[SLOCheck, ...] = field(default=())
    """SLOs not satisfied because the value is unavailable or was not assessed."""
    failed_task: tuple[int, str, str] | None = None
    """(1-based number, name, reason) of the failed task."""
    num_comparisons: int = 0
    worse: tuple[ComparisonCheck, ...] = field(default=())
    """Relative objectives a candidate fails: shown worse than its baseline allows."""
    undecided: tuple[ComparisonCheck, ...] = field(default=())
    """Relative objectives the data cannot decide yet."""

    @property
    def headline(self) -> str:
        return HEADLINES[self.outcome]

    @property
    def icon(self) -> str:
        return ICONS[self.outcome]

    def failing_slo_names(self) -> list[str]:
        """Distinct metrics of the violated SLOs, in order."""
        return list(dict.fromkeys(c.metric for c in self.violated))

    @property
    def num_objectives(self) -> int:
        return self.num_slos + self.num_comparisons


def short_number(value: float) -> str:
    """`31.2`, `0.02`, `40`: up to 6 significant digits, no trailing zeros."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _slo_checks(insights: Insights) -> tuple[int, list[SLOCheck], list[SLOCheck]]:
    slos = insights.slos
    if slos is None or slos.is_empty():
        return 0, [], []
    satisfied = insights.slos_satisfied
    violated: list[SLOCheck] = []
    unavailable: list[SLOCheck] = []
    count = 0
    sides: tuple[tuple[Bound, list[SLO], list[list[bool]]], ...] = (
        ("upper", slos.upper, satisfied.upper if satisfied else []),
        ("lower", slos.lower, satisfied.lower if satisfied else []),
    )
    for bound, rows, table in sides:
        for i, slo in enumerate(rows):
            count += 1
            verdicts = table[i] if i < len(table) else []
            for j in range(insights.num_versions):
                if j < len(verdicts) and verdicts[j]:
                    continue
                metric = normalize_name(slo.metric)
                label = insights.version_label(j)
                if j >= len(verdicts):
                    unavailable.append(SLOCheck(metric, j, label, bound, slo.limit,
                                                None, "not assessed yet"))
                    continue
                found = scalar_value(insights, j, slo.metric)
                counted = insights.slo_judged(slo.metric, bound, j)
                if found.value is None:
                    unavailable.append(SLOCheck(metric, j, label, bound, slo.limit,
                                                None, shown_text(found.reason or "no value")))
                elif counted is not None and counted.verdict != "fail":
                    unavailable.append(SLOCheck(metric, j, label, bound, slo.limit,
                                                counted.estimate, counted.reason, undecided=True))
                else:
                    violated.append(SLOCheck(metric, j, label, bound, slo.limit,
                                             found.value, counted.reason if counted else ""))
    return count, violated, unavailable


def _slos(count: int) -> str:
    return f"{count} SLO{'s' if count != 1 else ''}"


def _which(checks: list[SLOCheck]) -> str:
    """`canary`, `canary and baseline`: the versions concerned, in order."""
    labels = [label for _, label in sorted({(c.version, c.label) for c in checks})]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _comparison_checks(insights: Insights) -> tuple[list[ComparisonCheck], list[ComparisonCheck]]:
    worse: list[ComparisonCheck] = []
    undecided: list[ComparisonCheck] = []
    for record in insights.comparisons:
        check = ComparisonCheck(record, insights.version_label(record.candidate),
                                insights.version_label(record.baseline))
        if record.verdict == "fail":
            worse.append(check)
        elif record.verdict == "inconclusive":
            undecided.append(check)
    return worse, undecided


def _objectives(num_slos: int, num_comparisons: int) -> str:
    parts = [_slos(num_slos)] if num_slos else []
    if num_comparisons:
        parts.append(f"{num_comparisons} comparison{'s' if num_comparisons != 1 else ''} with "
                     "the baseline")
    return " and ".join(parts) or _slos(0)


def judge(experiment: Experiment) -> Verdict:
    """The experiment's verdict (see the module's rules)."""
    result = experiment.result
    insights = result.insights if result else None
    failed = result.failed_task if result else None
    failed_task = (failed.number, failed.name, shown_text(failed.reason)) if failed else None
    task_failed = bool(result and (result.failure or failed))
    num_slos, violated, unavailable = _slo_checks(insights) if insights else (0, [], [])
    worse, undecided = _comparison_checks(insights) if insights else ([], [])
    num_comparisons = len(insights.comparisons) if insights else 0
    task_text = (f"task {failed_task[0]} ({failed_task[1]}) failed: {failed_task[2]}"
                 if failed_task else "a task failed (the experiment does not say which)")
    judged = _objectives(num_slos, num_comparisons)

    def make(outcome: Outcome, summary: str, reason: str) -> Verdict:
        return Verdict(outcome, reason, summary, num_slos, tuple(violated), tuple(unavailable),
                       failed_task, num_comparisons, tuple(worse), tuple(undecided))

    if violated or worse:
        summaries, heads = [], []
        if violated:
            count = len({c.metric for c in violated})
            summaries.append(f"{count} of {_slos(num_slos)} not satisfied by {_which(violated)}")
            heads.append(f"{count} of {_slos(num_slos)} not satisfied")
        if worse:
            failed_by = ", ".join(sorted({c.candidate for c in worse}))
            plural = "s" if len(worse) != 1 else ""
            summaries.append(f"{len(worse)} comparison{plural} with the baseline failed by "
                             f"{failed_by}")
            heads.append(f"{len(worse)} comparison{plural} with the baseline failed")
        summary = "; ".join(summaries)
        reason = " and ".join(heads) + ": " + "; ".join(
            [c.describe() for c in violated] + [c.describe() for c in worse])
        if unavailable or undecided:
            reason += "; " + "; ".join(
                [c.describe() for c in unavailable] + [c.describe() for c in undecided])
        if task_failed:
            reason += f"; and {task_text}"
        return make("fail", summary, reason)
    if task_failed:
        number = f"task {failed_task[0]} ({failed_task[1]})" if failed_task else "a task"
        return make("fail", f"the experiment failed at {number}", task_text)
    if result is None:
        return make("inconclusive", "nothing was judged", "the experiment has not run yet")
    if num_slos == 0 and num_comparisons == 0:
        return make(*_nothing_judged(experiment))
    if unavailable and not undecided:
        count = len({c.metric for c in unavailable})
        summary = (f"{count} of {_slos(num_slos)} could not be checked for {_which(unavailable)}: "
                   + _why_unchecked(unavailable))
        reason = f"{count} of {_slos(num_slos)} could not be checked: " + "; ".join(
            c.describe() for c in unavailable)
        return make("inconclusive", summary, reason)
    if unavailable or undecided:
        count = len({c.metric for c in unavailable}) + len(undecided)
        which = _which(unavailable) if unavailable else ", ".join(
            sorted({c.candidate for c in undecided}))
        if num_slos and num_comparisons:  # "2 of 2 objectives (1 SLO and 1 comparison …)"
            judged = f"{num_slos + num_comparisons} objectives ({judged})"
        summary = f"{count} of {judged} could not be decided for {which}"
        reason = f"{count} of {judged} could not be decided: " + "; ".join(
            [c.describe() for c in unavailable] + [c.describe() for c in undecided])
        return make("inconclusive", summary, reason)
    assert insights is not None
    versions = [insights.version_label(j) for j in range(insights.num_versions)]
    who = versions[0] if len(versions) == 1 else f"all {len(versions)} versions ({', '.join(versions)})"
    every = "the SLO is" if num_slos == 1 else f"all {num_slos} SLOs are"
    if num_comparisons == 0:
        return make("pass", f"{every} satisfied", f"{every} satisfied by {who}")
    plural = "s" if num_comparisons != 1 else ""
    within = (f"every candidate is within its allowance on {num_comparisons} comparison{plural} "
              "with the baseline")
    if num_slos == 0:
        return make("pass", within, within)
    return make("pass", f"{every} satisfied and {within}", f"{every} satisfied by {who}; {within}")


def _why_unchecked(checks: list[SLOCheck]) -> str:
    """`values unavailable`, `too few to decide`, or both."""
    thin = any(c.undecided for c in checks)
    missing = any(not c.undecided for c in checks)
    if thin and missing:
        return "values unavailable or too few to decide"
    return "too few to decide" if thin else "values unavailable"


def _nothing_judged(experiment: Experiment) -> tuple[Outcome, str, str]:
    decided = _rollout_decision(experiment)
    if decided is not None:
        return decided
    if any(entry.task == "assess" for entry in experiment.spec):
        why = "no SLOs were assessed yet (the assess task has not run)"
    else:
        why = "the experiment has no SLOs (it has no assess task)"
    return "inconclusive", "nothing was judged", f"nothing was judged: {why}"


def _rollout_decision(experiment: Experiment) -> tuple[Outcome, str, str] | None:
    """A rollout that promoted or rolled back: the verdict it acted on (later loops measure
    nothing, so without the decisive loop's data this is what was judged)."""
    record = experiment.result.rollout if experiment.result else None
    if record is None or not record.ended:
        return None
    action = next((a for a in reversed(record.actions) if a.action in ("promote", "rollback")),
                  None)
    if action is None:
        return None
    outcome: Outcome = "pass" if action.action == "promote" else (
        "fail" if action.verdict == "fail" else "inconclusive")
    done = "promoted" if action.action == "promote" else "rolled back"
    summary = f"{done} at {action.time:%Y-%m-%d %H:%M:%S} UTC"
    return outcome, summary, f"{summary}: {shown_text(action.reason)}"


def objective_text(record: ComparisonRecord) -> str:
    """`kserve-prometheus/latency-p90 <= +20%`: the relative objective as the user set it."""
    sign = "<= +" if record.direction == "upper" else ">= -"
    return f"{record.metric} {sign}{record.allowance}"


def change_text(record: ComparisonRecord, value: float | None, unbounded: int = 0) -> str:
    """A change as the allowance is written: `+23.4 %` for a relative one, `+0.0042` for an
    absolute one; `-inf`/`+inf` for an unbounded end, `?` for no estimate."""
    if value is None:
        return {-1: "-inf", 1: "+inf"}.get(unbounded, "?")
    if record.allowance.strip().endswith("%"):
        return f"{value * 100:+.1f} %"
    return f"{value:+.4g}"


def comparison_confidence(insights: Insights) -> str:
    """`95 %`: the confidence of the comparisons (one per assess task; the first is shown)."""
    level = insights.comparisons[0].confidence if insights.comparisons else 0.95
    return f"{level * 100:g} %"
