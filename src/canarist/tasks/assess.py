"""`assess`: check each version against absolute SLO limits and, with relative objectives,
judge each candidate against the baseline (see canarist.core.judge)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, ValidationInfo, field_validator

from canarist.core.errors import InputError, TaskError
from canarist.core.experiment import (
    SLO,
    ComparisonRecord,
    Insights,
    KServeState,
    SLOJudged,
    SLOLimits,
    SLOsSatisfied,
)
from canarist.core.fields import AllowanceText, Confidence, FiniteNumber, MetricName
from canarist.core.insights import set_slos
from canarist.core.judge import (
    PROPORTIONS,
    Comparison,
    RelativeObjective,
    compare,
    evidence,
    judge_slo,
    judgeable,
    record,
)
from canarist.core.metrics import scalar_value
from canarist.core.stats.compare import Allowance
from canarist.tasks.base import TaskContext, TaskDefinition, TaskInputs, log

DEFAULT_CONFIDENCE = 0.95


class SLOInput(TaskInputs):
    metric: MetricName
    limit: FiniteNumber

    @field_validator("metric", mode="after")
    @classmethod
    def _per_version(cls, value: str) -> str:
        if value == "agreement/noise-floor":
            raise ValueError("the noise floor is the baseline's alone, and an SLO holds for every "
                             "version: set it on agreement/rate, whose value for the baseline is "
                             "its noise floor (or judge candidates against it with "
                             "assess.relative.lower.agreement/rate)")
        return value


class SLOsInput(TaskInputs):
    upper: list[SLOInput] = Field(default_factory=list)
    lower: list[SLOInput] = Field(default_factory=list)


class RelativeInput(TaskInputs):
    metric: MetricName
    allowance: AllowanceText

    @field_validator("metric", mode="after")
    @classmethod
    def _judgeable(cls, value: str) -> str:
        if not judgeable(value):
            provider = value.split("/")[0]
            raise ValueError(f"{value} cannot be judged against a baseline; relative objectives "
                             f"take {provider}/latency-pNN (e.g. {provider}/latency-p90), "
                             f"{provider}/latency-mean, {provider}/error-rate or "
                             "agreement/rate")
        return value


class RelativeInputs(TaskInputs):
    upper: list[RelativeInput] = Field(default_factory=list)
    lower: list[RelativeInput] = Field(default_factory=list)


class AssessInputs(TaskInputs):
    slos: SLOsInput | None = Field(default=None, alias="SLOs")
    relative: RelativeInputs | None = None
    baseline: NonNegativeInt | None = Field(default=None, validate_default=True)
    confidence: Confidence = DEFAULT_CONFIDENCE

    @field_validator("baseline", mode="after")
    @classmethod
    def _baseline_for_relative(cls, value: int | None, info: ValidationInfo) -> int | None:
        relative = info.data.get("relative")
        if value is None and relative is not None and (relative.upper or relative.lower):
            raise ValueError("relative objectives compare candidates with a baseline: set it to "
                             "the baseline's version number, e.g. --set assess.baseline=1")
        return value

    def objectives(self) -> list[RelativeObjective]:
        if self.relative is None:
            return []
        sides: tuple[tuple[Literal["upper", "lower"], list[RelativeInput]], ...] = (
            ("upper", self.relative.upper), ("lower", self.relative.lower))
        return [RelativeObjective(o.metric, side, Allowance.parse(o.allowance))
                for side, listed in sides for o in listed]


async def run(inputs: AssessInputs, ctx: TaskContext) -> None:
    insights = ctx.result.insights
    if insights is None:
        raise TaskError("uninitialized insights within experiment; "
                        "run a metrics task (http, grpc, custommetrics) before assess")
    _assess_slos(inputs, insights, ctx)
    _judge_relative(inputs, insights, ctx)


def _assess_slos(inputs: AssessInputs, insights: Insights, ctx: TaskContext) -> None:
    slos = SLOLimits(
        upper=[SLO(metric=s.metric, limit=s.limit) for s in (inputs.slos.upper if inputs.slos else [])],
        lower=[SLO(metric=s.metric, limit=s.limit) for s in (inputs.slos.lower if inputs.slos else [])],
    )
    if slos.is_empty() or insights.num_versions == 0:
        if not inputs.objectives():
            log.warning("%s: no SLOs or no versions to assess", ctx.log_prefix())
        return
    set_slos(insights, slos)
    versions = range(insights.num_versions)
    judged: list[SLOJudged] = []

    def verdicts(rows: list[SLO], bound: Literal["upper", "lower"]) -> list[list[bool]]:
        table: list[list[bool]] = []
        for slo in rows:
            row: list[bool] = []
            for version in versions:
                found = scalar_value(insights, version, slo.metric)
                label = insights.version_label(version)
                if found.value is None:
                    log.info("%s: %s for %s is unavailable: %s", ctx.log_prefix(), slo.metric,
                             label, found.reason)
                    row.append(False)
                elif counted := judge_slo(insights, version, slo.metric, bound, slo.limit,
                                          inputs.confidence):
                    judged.append(SLOJudged(
                        metric=slo.metric, bound=bound, version=version, verdict=counted.verdict,
                        estimate=counted.estimate, interval=counted.interval,
                        samples=counted.samples, confidence=inputs.confidence,
                        reason=counted.reason))
                    log.info("%s: %s for %s: %s: %s", ctx.log_prefix(), slo.metric, label,
                             counted.verdict, counted.reason)
                    row.append(counted.verdict == "pass")
                else:
                    row.append(found.value <= slo.limit if bound == "upper"
                               else found.value >= slo.limit)
            table.append(row)
        return table

    insights.slos_satisfied = SLOsSatisfied(
        upper=verdicts(slos.upper, "upper"), lower=verdicts(slos.lower, "lower"))
    insights.slos_judged = judged


def _judge_relative(inputs: AssessInputs, insights: Insights, ctx: TaskContext) -> None:
    """Judge every candidate against the baseline on every relative objective; a looping
    experiment narrows each interval with those of its earlier looks."""
    objectives = inputs.objectives()
    if not objectives or inputs.baseline is None:
        return
    baseline = inputs.baseline
    if baseline >= insights.num_versions:
        raise InputError(f"assess.baseline: there is no version {baseline}; the experiment has "
                         f"{insights.num_versions} version(s), numbered from 0")
    earlier = {_key(r): r for r in insights.comparisons}
    records: list[ComparisonRecord] = []
    for objective in objectives:
        for candidate in range(insights.num_versions):
            if candidate == baseline:
                continue
            found = compare(objective, (candidate, evidence(insights, candidate, objective.metric)),
                            (baseline, evidence(insights, baseline, objective.metric)),
                            inputs.confidence)
            stored = record(found, earlier.get(_key(found)), objective, inputs.confidence)
            stored.reason = _route_share_hint(stored, ctx.result.kserve) or stored.reason
            records.append(stored)
            log.info("%s: %s, %s against %s: %s: %s", ctx.log_prefix(), objective.metric,
                     insights.version_label(candidate), insights.version_label(baseline),
                     stored.verdict, stored.reason)
    insights.comparisons = records


def _route_share_hint(found: ComparisonRecord, kserve: KServeState | None) -> str | None:
    """A discovered version without requests: say what its route share is, and whether
    it is Ready (KServe routes nothing to a candidate that is not)."""
    if kserve is None or found.verdict != "inconclusive" or found.metric in PROPORTIONS:
        return None  # agreement is measured by requests sent to each version, not by its share
    for role, index in (("candidate", found.candidate), ("baseline", found.baseline)):
        if found.samples.get(role, 1) != 0 or index >= len(kserve.versions):
            continue
        version = kserve.versions[index]
        hint = "" if version.ready else " — is it Ready?"
        return (f"{role} {version.revision} received 0 requests; its route share is "
                f"{version.percent} %{hint}")
    return None


def _key(found: ComparisonRecord | Comparison) -> tuple[str, int, int, str, str]:
    return (found.metric, found.candidate, found.baseline, found.direction, found.allowance)


TASK = TaskDefinition(name="assess", inputs=AssessInputs, run=run)
