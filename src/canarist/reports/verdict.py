"""The JSON report: a stable, machine-readable verdict (schema in `verdict.schema.json`).

The top-level `verdict` (`pass`, `fail` or `inconclusive`) and `reason` are
`canarist.core.verdict.judge`'s, the same every report and notification shows.

Stability rules: keys are never renamed or removed within a `schemaVersion`; new optional keys
may be added. Key order is fixed, so the same experiment gives the same bytes. Numbers are
finite (JSON has no NaN); a value that cannot be had is `null` with a `reason` beside it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from canarist.core.assertions import CONDITIONS, evaluate
from canarist.core.experiment import ComparisonRecord, Experiment, Insights, SLOJudged
from canarist.core.redact import redact_text, shown_text
from canarist.core.terminal import printable_json
from canarist.core.verdict import judge
from canarist.reports import agreement, rollout, summary
from canarist.reports.failures import failure_groups

SCHEMA_VERSION = 1
SCHEMA_FILE = "verdict.schema.json"


def verdict(experiment: Experiment) -> dict[str, Any]:
    """The verdict as plain data (what `render_json` prints)."""
    status = summary.status(experiment)
    insights = experiment.result.insights if experiment.result else None
    slo_rows = summary.slo_rows(insights) if insights else []
    metric_rows = summary.metric_rows(insights) if insights else []
    satisfying = set(experiment.slos_satisfied_by())
    failures = failure_groups(insights) if insights else []
    versions = []
    if insights is not None:
        for j in range(insights.num_versions):
            errors = {g.provider: [{"code": f.code, "count": f.count, "message": f.message}
                                   for f in g.failures]
                      for g in failures if g.version == j}
            versions.append({
                "index": j,
                "label": insights.version_label(j),
                "slosSatisfied": j in satisfying,
                "metrics": {row.name: _reading(row.readings[j]) for row in metric_rows},
                **({"errors": errors} if errors else {}),
            })
    failed = status.failed_task
    judged = judge(experiment)
    return {
        "schemaVersion": SCHEMA_VERSION,
        "verdict": judged.outcome,
        "reason": judged.reason,
        "summary": {
            "completed": status.completed,
            "noFailure": status.no_failure,
            "slosSatisfied": evaluate(experiment, "slos").holds,
            "failedTask": {"number": failed.number, "name": failed.name, "reason": failed.reason}
            if failed else None,
            "numTasks": status.num_tasks,
            "numCompletedTasks": status.num_completed_tasks,
            "numLoops": status.num_loops,
            "startTime": status.start_time,
            "numVersions": insights.num_versions if insights else 0,
            "insights": insights is not None,
        },
        "conditions": [_condition(experiment, name) for name in CONDITIONS],
        "versions": versions,
        "slos": [
            {
                "metric": row.metric,
                "units": row.units,
                "bound": row.bound,
                "limit": row.limit,
                "versions": [
                    {
                        "version": cell.version,
                        "value": cell.reading.value,
                        "satisfied": cell.satisfied,
                        **({"reason": cell.reading.reason} if cell.reading.reason else {}),
                        **(_judged(cell.judged) if cell.judged else {}),
                    }
                    for cell in row.cells
                ],
            }
            for row in slo_rows
        ],
        "comparisons": [_comparison(record, insights) for record in
                        (insights.comparisons if insights else [])],
        "rollout": rollout.to_data(experiment.result.rollout if experiment.result else None),
        **({"agreement": agreed} if (agreed := agreement.to_data(experiment)) else {}),
        "metricsInfo": {
            row.name: {"type": row.type, "units": row.units, "description": row.description}
            for row in metric_rows
        },
    }


def _comparison(record: ComparisonRecord, insights: Insights | None) -> dict[str, Any]:
    label = insights.version_label if insights else (lambda j: f"version {j}")
    return {
        "metric": record.metric,
        "candidate": record.candidate,
        "candidateLabel": label(record.candidate),
        "baseline": record.baseline,
        "baselineLabel": label(record.baseline),
        "direction": record.direction,
        "allowance": record.allowance,
        "verdict": record.verdict,
        "estimate": record.estimate,
        "interval": list(record.interval) if record.interval else [None, None],
        "samples": {"candidate": record.samples.get("candidate", 0),
                    "baseline": record.samples.get("baseline", 0)},
        "confidence": record.confidence,
        "looks": record.looks,
        "reason": shown_text(record.reason),
    }


def _judged(judged: SLOJudged) -> dict[str, Any]:
    """An SLO on a proportion, judged on its counts: its verdict, interval and sample size."""
    return {"verdict": judged.verdict,
            "interval": list(judged.interval) if judged.interval else None,
            "samples": judged.samples, "judgement": shown_text(judged.reason)}


def _reading(reading: summary.Reading) -> dict[str, Any]:
    if reading.value is None:
        return {"value": None, "reason": reading.reason}
    return {"value": reading.value}


def _condition(experiment: Experiment, name: str) -> dict[str, Any]:
    found = evaluate(experiment, name)
    return {"condition": name, "holds": found.holds, "message": redact_text(found.message),
            "undecidable": found.undecidable}


def render_json(experiment: Experiment) -> str:
    """The verdict as indented JSON text ending in a newline."""
    text = json.dumps(verdict(experiment), indent=2, ensure_ascii=False, allow_nan=False)
    return printable_json(text) + "\n"


def schema() -> dict[str, Any]:
    """The JSON Schema the output conforms to."""
    text = resources.files("canarist.reports").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
