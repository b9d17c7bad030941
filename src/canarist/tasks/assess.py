"""`assess`: check each version's latest metric values against upper and lower SLO limits."""

from __future__ import annotations

from pydantic import Field

from canarist.core.errors import TaskError
from canarist.core.experiment import SLO, SLOLimits, SLOsSatisfied
from canarist.core.fields import FiniteNumber, MetricName
from canarist.core.insights import set_slos
from canarist.core.metrics import scalar_value
from canarist.tasks.base import TaskContext, TaskDefinition, TaskInputs, log


class SLOInput(TaskInputs):
    metric: MetricName
    limit: FiniteNumber


class SLOsInput(TaskInputs):
    upper: list[SLOInput] = Field(default_factory=list)
    lower: list[SLOInput] = Field(default_factory=list)


class AssessInputs(TaskInputs):
    slos: SLOsInput | None = Field(default=None, alias="SLOs")


async def run(inputs: AssessInputs, ctx: TaskContext) -> None:
    insights = ctx.result.insights
    if insights is None:
        raise TaskError("uninitialized insights within experiment; "
                        "run a metrics task (http, grpc, custommetrics) before assess")
    slos = SLOLimits(
        upper=[SLO(metric=s.metric, limit=s.limit) for s in (inputs.slos.upper if inputs.slos else [])],
        lower=[SLO(metric=s.metric, limit=s.limit) for s in (inputs.slos.lower if inputs.slos else [])],
    )
    if slos.is_empty() or insights.num_versions == 0:
        log.warning("%s: no SLOs or no versions to assess", ctx.log_prefix())
        return
    set_slos(insights, slos)
    versions = range(insights.num_versions)

    def verdicts(rows: list[SLO], upper: bool) -> list[list[bool]]:
        table: list[list[bool]] = []
        for slo in rows:
            row: list[bool] = []
            for version in versions:
                found = scalar_value(insights, version, slo.metric)
                if found.value is None:
                    log.info("%s: %s for %s is unavailable: %s", ctx.log_prefix(), slo.metric,
                             insights.version_label(version), found.reason)
                    row.append(False)
                else:
                    row.append(found.value <= slo.limit if upper else found.value >= slo.limit)
            table.append(row)
        return table

    insights.slos_satisfied = SLOsSatisfied(
        upper=verdicts(slos.upper, upper=True), lower=verdicts(slos.lower, upper=False)
    )


TASK = TaskDefinition(name="assess", inputs=AssessInputs, run=run)
