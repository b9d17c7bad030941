"""What a notification says: the experiment without its secrets, and canarist's verdict
(`Report.summary`) beside Iter8's keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from canarist.core.experiment import Experiment, experiment_to_data, format_time
from canarist.core.kserve import rollout_headline
from canarist.core.metrics import scalar_value
from canarist.core.redact import redact_spec, shown_text
from canarist.core.verdict import judge

# -- redaction of the experiment -------------------------------------------------------------


def redacted_experiment(experiment: Experiment) -> dict[str, Any]:
    """The experiment as plain data (Iter8's keys) with every secret in the spec hidden."""
    data = experiment_to_data(experiment)
    data["spec"] = redact_spec(data.get("spec", []))
    return data


# -- the report --------------------------------------------------------------------------------


def number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _version_verdicts(experiment: Experiment) -> list[dict[str, Any]]:
    result = experiment.result
    insights = result.insights if result else None
    if insights is None:
        return []
    slos = insights.slos
    assessed = slos is not None and not slos.is_empty()
    versions: list[dict[str, Any]] = []
    for j in range(insights.num_versions):
        entry: dict[str, Any] = {"index": j, "name": insights.version_label(j), "slos": None,
                                 "violations": []}
        versions.append(entry)
        if not assessed or slos is None:
            continue
        satisfied = insights.slos_satisfied
        for bound, rows, verdict_rows in (
            ("upper", slos.upper, satisfied.upper if satisfied else []),
            ("lower", slos.lower, satisfied.lower if satisfied else []),
        ):
            for i, slo in enumerate(rows):
                row = verdict_rows[i] if i < len(verdict_rows) else []
                if j < len(row) and row[j]:
                    continue
                found = scalar_value(insights, j, slo.metric)
                entry["violations"].append({
                    "metric": slo.metric, "bound": bound, "limit": slo.limit,
                    "value": found.value,
                    "reason": shown_text(found.reason) if found.value is None else None,
                })
        entry["slos"] = not entry["violations"]
    return versions


def _violation_text(violation: dict[str, Any]) -> str:
    metric, limit, value = violation["metric"], violation["limit"], violation["value"]
    if value is None:
        reason = violation["reason"] or "no value"
        return f"{metric} is unavailable ({reason})"
    side = "above the upper" if violation["bound"] == "upper" else "below the lower"
    return f"{metric} is {number(value)}, {side} limit {number(limit)}"


def report_summary(experiment: Experiment) -> dict[str, Any]:
    """canarist's verdict for notifications: text, detail lines, SLO verdicts, failed task."""
    result = experiment.result
    failed = result.failed_task if result else None
    versions = _version_verdicts(experiment)
    assessed = [v for v in versions if v["slos"] is not None]
    slos: bool | None = all(v["slos"] for v in assessed) if assessed else None
    details: list[str] = []
    for version in assessed:
        if version["slos"]:
            details.append(f"{version['name']}: SLOs satisfied")
        else:
            problems = "; ".join(_violation_text(v) for v in version["violations"])
            details.append(f"{version['name']}: SLOs not satisfied: {problems}")
    if failed is not None:
        details.insert(0, f"task {failed.number} ({failed.name}) failed: "
                          f"{shown_text(failed.reason)}")
    judged = judge(experiment)
    record = result.rollout if result else None
    if record is not None:
        details.insert(0, rollout_headline(record))
    return {
        "text": f"{judged.icon} {judged.headline}: {judged.summary}",
        "verdict": judged.outcome,
        "reason": judged.reason,
        "details": details,
        "slos": slos,
        "versions": versions,
        "failedTask": None if failed is None else {
            "number": failed.number, "name": failed.name, "reason": shown_text(failed.reason),
        },
    }


def _go_time_string(moment: datetime) -> str:
    """Go's `time.Time.String()` (without the monotonic clock reading), in UTC."""
    return format_time(moment).replace("T", " ").removesuffix("Z") + " +0000 UTC"


def report_data(experiment: Experiment, *, now: datetime | None = None) -> dict[str, Any]:
    """The payload template's data: `{"Report": {...}}`."""
    result = experiment.result
    return {
        "Report": {
            "timeStamp": _go_time_string(now or datetime.now(UTC)),
            "completed": experiment.completed(),
            "noTaskFailures": experiment.no_failure(),
            "numTasks": len(experiment.spec),
            "numCompletedTasks": result.num_completed_tasks if result else 0,
            "numLoops": result.num_loops if result else 0,
            "experiment": redacted_experiment(experiment),
            "summary": report_summary(experiment),
        }
    }
