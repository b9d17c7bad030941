"""The text report: the verdict first, then the layout Iter8 0.13 printed, byte for byte.

The first lines are canarist's verdict (`canarist.core.verdict.judge`): an icon and a word
(PASSED, REJECTED, CANNOT DECIDE), the outcome as the JSON report spells it, and the reason on
the next line. Iter8's report follows unchanged.

For experiments canarist ran, sections follow that Iter8 files never produce: the failed
task with its reason, why metric values are unavailable, and the failed requests of the load
tests by status with the first message of each.

What the report quotes (reasons, version and metric names, server messages) is redacted and
shortened (`shown_text`), and shown without control or bidi-format characters
(`canarist.core.terminal`): a value cannot start a line, move the cursor or reverse the text.
"""

from __future__ import annotations

from canarist.core.experiment import Experiment, Insights
from canarist.core.gofmt import format_value
from canarist.core.kserve import rollout_headline
from canarist.core.metrics import name_with_units, normalize_name, scalar_metric_names, scalar_value
from canarist.core.redact import shown_text
from canarist.core.terminal import one_line, printable
from canarist.core.verdict import change_text, comparison_confidence, judge, objective_text
from canarist.reports import agreement, rollout
from canarist.reports.failures import failure_groups
from canarist.reports.tabular import indent, tabwrite


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def verdict_lines(experiment: Experiment) -> str:
    """`\nVerdict: ✖ REJECTED (fail)\n  <reason>\n`: what precedes Iter8's layout."""
    judged = judge(experiment)
    return (f"\nVerdict: {judged.icon} {judged.headline.upper()} ({judged.outcome})\n"
            f"  {one_line(judged.reason)}\n")


def render_text(experiment: Experiment) -> str:
    return printable(
        verdict_lines(experiment) + rollout_lines(experiment) + render_iter8_text(experiment))


def _shown(text: str) -> str:
    """A quoted value inside a line: redacted, shortened, on that line."""
    return one_line(shown_text(text))


def rollout_lines(experiment: Experiment) -> str:
    """The rollout's headline and its actions, when the experiment rolls one out."""
    record = experiment.result.rollout if experiment.result else None
    if record is None:
        return ""
    rows = [["Time", "Action", "Traffic", "Verdict", "Reason"], *rollout.action_rows(record)]
    return f"\n{one_line(rollout_headline(record))}\n\n" + indent(tabwrite(rows), 2)


def render_iter8_text(experiment: Experiment) -> str:
    """The report as Iter8 0.13 laid it out (with canarist's added sections)."""
    result = experiment.result
    num_completed = result.num_completed_tasks if result else 0
    num_loops = result.num_loops if result else 0
    out = [
        "\nExperiment summary:\n*******************\n\n",
        f"  Experiment completed: {_go_bool(experiment.completed())}\n",
        f"  No task failures: {_go_bool(experiment.no_failure())}\n",
        f"  Total number of tasks: {len(experiment.spec)}\n",
        f"  Number of completed tasks: {num_completed}\n",
        f"  Number of completed loops: {num_loops}",
    ]
    if result is not None and result.failed_task is not None:
        failed = result.failed_task
        out.append(f"\n  Failed task: {failed.number} ({one_line(failed.name)}): "
                   f"{_shown(failed.reason)}")
    insights = result.insights if result else None
    if insights is not None:
        if insights.slos is not None:
            out.append("\n\nWhether or not service level objectives (SLOs) are satisfied:\n"
                       "*************************************************************\n\n")
            out.append(indent(tabwrite(_slo_rows(insights)), 2))
        if insights.comparisons:
            title = (f"Candidates against the baseline ({comparison_confidence(insights)} "
                     "confidence, valid at every look):")
            out.append(f"\n\n{title}\n{'*' * len(title)}\n\n")
            out.append(indent(tabwrite(_comparison_rows(insights)), 2))
        agreed = agreement.view(experiment)
        if agreed is not None:
            out.append(agreement.text(agreed))
        out.append("\n\nLatest observed values for metrics:\n***********************************\n\n")
        out.append(indent(tabwrite(_metric_rows(insights)), 2))
        reasons = _unavailable_lines(insights)
        if reasons:
            out.append("\n\nUnavailable metric values:\n**************************\n\n")
            out.append("".join(f"  {line}\n" for line in reasons))
        failures = _failure_lines(insights)
        if failures:
            out.append("\n\nFailed requests:\n****************\n\n")
            out.append("".join(f"  {line}\n" for line in failures))
    elif result is not None and result.failed_task is not None:
        failed = result.failed_task
        out.append("\n\nMetrics-based Insights:\n***********************\n\n"
                   f"  No metrics were recorded: the experiment failed at task {failed.number} "
                   f"({one_line(failed.name)}) before measuring anything.")
    else:
        out.append("\n\nMetrics-based Insights:\n***********************\n\n"
                   "  Insights not found in experiment results. "
                   "You may need to retry this report at a later time.")
    out.append("\n\n")
    return "".join(out)


def _version_headers(insights: Insights, single: str) -> list[str]:
    if insights.num_versions > 1:
        return [f" {insights.version_label(j)}" for j in range(insights.num_versions)]
    return [f" {single}"]


def _slo_rows(insights: Insights) -> list[list[str]]:
    assert insights.slos is not None
    versions = range(insights.num_versions)
    rows = [
        ["SLO Conditions", *_version_headers(insights, "Satisfied")],
        ["--------------", *[" ---------" for _ in versions]],
    ]
    satisfied = insights.slos_satisfied
    for upper, slos, table in (
        (True, insights.slos.upper, satisfied.upper if satisfied else []),
        (False, insights.slos.lower, satisfied.lower if satisfied else []),
    ):
        for i, slo in enumerate(slos):
            metric = name_with_units(insights, slo.metric)
            limit = format_value(slo.limit)
            text = f"{metric} <= {limit}" if upper else f"{limit} <= {metric}"
            row = table[i] if i < len(table) else []
            rows.append([text, *[f" {_go_bool(j < len(row) and row[j])}" for j in versions]])
    return rows


def _comparison_rows(insights: Insights) -> list[list[str]]:
    rows = [["Objective", " Candidate", " Baseline", " Change", " Interval", " Samples",
             " Verdict"],
            ["---------", " ---------", " --------", " ------", " --------", " -------",
             " -------"]]
    for record in insights.comparisons:
        low, high = record.interval or (None, None)
        rows.append([
            objective_text(record),
            f" {insights.version_label(record.candidate)}",
            f" {insights.version_label(record.baseline)}",
            f" {change_text(record, record.estimate)}",
            f" {change_text(record, low, -1)} .. {change_text(record, high, 1)}",
            f" {record.samples.get('candidate', 0)} / {record.samples.get('baseline', 0)}",
            f" {record.verdict}",
        ])
    return rows


def _metric_rows(insights: Insights) -> list[list[str]]:
    versions = range(insights.num_versions)
    rows = [
        ["Metric", *_version_headers(insights, "value")],
        ["-------", *[" -----" for _ in versions]],
    ]
    for name in scalar_metric_names(insights):
        cells = []
        for j in versions:
            value = scalar_value(insights, j, name).value
            cells.append(" unavailable" if value is None else f" {value:0.2f}")
        rows.append([name_with_units(insights, name), *cells])
    return rows


def _unavailable_lines(insights: Insights) -> list[str]:
    lines = []
    for name in scalar_metric_names(insights):
        for j in range(insights.num_versions):
            found = scalar_value(insights, j, name)
            if found.value is None and name in insights.unavailable[j]:
                lines.append(one_line(f"{normalize_name(name)} ({insights.version_label(j)}): ")
                             + _shown(found.reason))
    return lines


def _failure_lines(insights: Insights) -> list[str]:
    lines = []
    for group in failure_groups(insights):
        where = group.provider
        if insights.num_versions > 1:
            where += f" ({group.label})"
        lines.append(one_line(f"{where}: {group.headline}"))
        for failure in group.failures:
            said = f': "{failure.message}"' if failure.message else ""
            lines.append(one_line(f"  {failure.code} ×{failure.count}{said}"))
    return lines
