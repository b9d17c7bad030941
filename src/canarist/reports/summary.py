"""What the HTML and JSON reports say, computed once so they never disagree.

The SLO verdict of a cell is the one `assess` stored (the same one `assert -c slos` reads); the
value beside it is the latest value of the metric, or why it is unavailable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from canarist.core.experiment import Experiment, Insights, MetricType, SLOJudged, format_time
from canarist.core.metrics import (
    metric_meta,
    normalize_name,
    scalar_metric_names,
    scalar_value,
)
from canarist.core.redact import shown_text

Bound = Literal["upper", "lower"]
Tone = Literal["ok", "failed", "incomplete"]


@dataclass(frozen=True)
class FailedTaskView:
    number: int
    name: str
    reason: str


@dataclass(frozen=True)
class Status:
    completed: bool
    no_failure: bool
    failed_task: FailedTaskView | None
    num_tasks: int
    num_completed_tasks: int
    num_loops: int
    start_time: str | None
    has_insights: bool

    @property
    def tone(self) -> Tone:
        if not self.no_failure:
            return "failed"
        return "ok" if self.completed else "incomplete"


@dataclass(frozen=True)
class Reading:
    """The latest value of a metric for one version, or why there is none."""

    value: float | None
    reason: str | None


@dataclass(frozen=True)
class SLOCell:
    version: int
    reading: Reading
    satisfied: bool
    assessed: bool
    judged: SLOJudged | None = None
    """How an SLO on a proportion was judged on its counts (None: on the value alone)."""

    @property
    def undecided(self) -> bool:
        """Not satisfied only because the counts are too few to tell."""
        return self.judged is not None and self.judged.verdict == "inconclusive"


@dataclass(frozen=True)
class SLORow:
    metric: str
    units: str | None
    description: str
    bound: Bound
    limit: float
    cells: tuple[SLOCell, ...]


@dataclass(frozen=True)
class MetricRow:
    name: str
    units: str | None
    description: str
    type: str
    readings: tuple[Reading, ...]


def status(experiment: Experiment) -> Status:
    result = experiment.result
    failed = result.failed_task if result else None
    return Status(
        completed=experiment.completed(),
        no_failure=experiment.no_failure(),
        failed_task=FailedTaskView(failed.number, failed.name, shown_text(failed.reason))
        if failed else None,
        num_tasks=len(experiment.spec),
        num_completed_tasks=result.num_completed_tasks if result else 0,
        num_loops=result.num_loops if result else 0,
        start_time=_start_time(experiment),
        has_insights=bool(result and result.insights),
    )


def _start_time(experiment: Experiment) -> str | None:
    if experiment.result is None:
        return None
    return format_time(experiment.result.start_time)


def reading(insights: Insights, version: int, name: str) -> Reading:
    found = scalar_value(insights, version, name)
    if found.value is None:
        return Reading(None, shown_text(found.reason or "unavailable"))
    if not math.isfinite(found.value):
        return Reading(None, f"the value is not a finite number ({found.value})")
    return Reading(found.value, None)


def slo_rows(insights: Insights) -> list[SLORow]:
    """One row per SLO, upper SLOs first, each in the order `assess` stored them."""
    if insights.slos is None:
        return []
    satisfied = insights.slos_satisfied
    rows: list[SLORow] = []
    for bound, slos, table in (
        ("upper", insights.slos.upper, satisfied.upper if satisfied else []),
        ("lower", insights.slos.lower, satisfied.lower if satisfied else []),
    ):
        for i, slo in enumerate(slos):
            verdicts = table[i] if i < len(table) else []
            meta = metric_meta(insights, slo.metric)
            cells = tuple(
                SLOCell(j, reading(insights, j, slo.metric),
                        satisfied=j < len(verdicts) and verdicts[j], assessed=j < len(verdicts),
                        judged=insights.slo_judged(slo.metric, bound, j))
                for j in range(insights.num_versions)
            )
            rows.append(SLORow(
                metric=normalize_name(slo.metric),
                units=meta.units if meta else None,
                description=_description(meta.description if meta else ""),
                bound=bound,  # type: ignore[arg-type]
                limit=slo.limit,
                cells=cells,
            ))
    return rows


def metric_rows(insights: Insights) -> list[MetricRow]:
    """The rows of the text report's metrics table (same names, same order)."""
    rows = []
    for name in scalar_metric_names(insights):
        meta = metric_meta(insights, name)
        rows.append(MetricRow(
            name=normalize_name(name),
            units=meta.units if meta else None,
            description=_description(meta.description if meta else ""),
            type=meta.type.value if meta else "",
            readings=tuple(reading(insights, j, name) for j in range(insights.num_versions)),
        ))
    return rows


def versions_satisfying_slos(experiment: Experiment) -> list[int]:
    return experiment.slos_satisfied_by()


def latency_metric_names(insights: Insights) -> list[str]:
    """Histogram and Sample metrics, sorted bytewise as Iter8 sorted them."""
    names = [name for name, meta in insights.metrics_info.items()
             if meta.type in (MetricType.HISTOGRAM, MetricType.SAMPLE)]
    return sorted(names, key=lambda n: n.encode())


def _description(text: str) -> str:
    return " ".join(text.split())
