"""The experiment: an ordered task list (`spec`) and what running it produced (`result`).

Keys follow Iter8 0.13's `experiment.yaml`. Files written by Iter8 are read leniently: keys
match case-insensitively (as Go's encoding/json does) and unknown keys are ignored. canarist
adds a few keys of its own (`failedTask`, `insights.unavailable`, `insights.errors`); Iter8
ignores them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    PlainSerializer,
    field_validator,
    model_validator,
)

from canarist.core.errors import SpecError
from canarist.core.limits import MAX_METRIC_NAME, MAX_TASKS, MAX_VERSIONS
from canarist.core.validation import fold_keys, spell_key, validated


class LenientModel(BaseModel):
    """A model that reads Iter8-written data: case-insensitive keys, unknown keys ignored."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _case_insensitive_keys(cls, data: Any) -> Any:
        return fold_keys(data, cls)


class MetricType(StrEnum):
    COUNTER = "Counter"
    GAUGE = "Gauge"
    HISTOGRAM = "Histogram"
    SAMPLE = "Sample"
    SUMMARY = "Summary"


class MetricMeta(LenientModel):
    description: str = ""
    type: MetricType
    units: str | None = None


def _not_nan(value: float) -> float:
    if math.isnan(value):
        raise ValueError("expected a number, got NaN")
    return value


def _bound_text(value: float) -> float | str:
    """An infinite bound written as Prometheus writes its `le` label: JSON has no infinity."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


NotNaN = Annotated[float, AfterValidator(_not_nan),
                   PlainSerializer(_bound_text, when_used="json")]
"""A float that may be infinite (a histogram's last bucket ends at +Inf, written "+Inf") but
not NaN."""


class HistBucket(LenientModel):
    lower: NotNaN
    upper: NotNaN
    count: int


class SLO(LenientModel):
    metric: str = Field(max_length=MAX_METRIC_NAME)
    limit: FiniteFloat


class SLOLimits(LenientModel):
    upper: list[SLO] = Field(default_factory=list)
    lower: list[SLO] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not self.upper and not self.lower


class SLOsSatisfied(LenientModel):
    upper: list[list[bool]] = Field(default_factory=list)
    lower: list[list[bool]] = Field(default_factory=list)


class ErrorCount(LenientModel):
    """canarist: how many requests failed with one status, and what the first one said."""

    code: str
    """HTTP status as text (`404`), gRPC status name (`NOT_FOUND`) or connection-level kind
    (`connection-refused`, `timeout`, ...)."""
    count: int
    message: str = ""


class VersionName(LenientModel):
    version: str = ""
    track: str = ""


class ComparisonRecord(LenientModel):
    """canarist: the verdict on one relative objective for one candidate (see core.judge)."""

    metric: str = Field(max_length=MAX_METRIC_NAME)
    candidate: int
    baseline: int
    direction: Literal["upper", "lower"]
    allowance: str
    verdict: Literal["pass", "fail", "inconclusive"]
    estimate: float | None = None
    interval: tuple[float | None, float | None] | None = None
    """The change's interval (None: unbounded on that side), intersected over every look so far:
    each look's interval holds the truth at every look at once, so their intersection does too."""
    samples: dict[str, int] = Field(default_factory=dict)
    reason: str = ""
    looks: int = 1
    confidence: float = 0.95


class SLOJudged(LenientModel):
    """canarist: an SLO on a proportion (`agreement/rate`) judged on its counts for one
    version: the verdict, the interval and the sample size (see core.judge.judge_slo)."""

    metric: str = Field(max_length=MAX_METRIC_NAME)
    bound: Literal["upper", "lower"]
    version: int
    verdict: Literal["pass", "fail", "inconclusive"]
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    samples: int = 0
    confidence: float = 0.95
    reason: str = ""


class Insights(LenientModel):
    """Per-version metrics and SLO verdicts. Every per-version list has `numVersions` entries."""

    num_versions: int = Field(alias="numVersions", ge=0, le=MAX_VERSIONS)
    version_names: list[VersionName] | None = Field(default=None, alias="versionNames")
    metrics_info: dict[str, MetricMeta] = Field(default_factory=dict, alias="metricsInfo")
    non_hist_metric_values: list[dict[str, list[FiniteFloat]]] = Field(
        default_factory=list, alias="nonHistMetricValues"
    )
    hist_metric_values: list[dict[str, list[HistBucket]]] = Field(
        default_factory=list, alias="histMetricValues"
    )
    summary_metric_values: list[dict[str, list[FiniteFloat]]] = Field(
        default_factory=list, alias="SummaryMetricValues"
    )
    slos: SLOLimits | None = Field(default=None, alias="SLOs")
    slos_satisfied: SLOsSatisfied | None = Field(default=None, alias="SLOsSatisfied")
    # canarist: why a metric has no value for a version (query failed, no data, NaN, ...).
    unavailable: list[dict[str, str]] = Field(default_factory=list, alias="unavailable")
    # canarist: failed requests of the latest load test by provider (`http`, `grpc-<id>`),
    # by status, most frequent first.
    errors: list[dict[str, list[ErrorCount]]] = Field(default_factory=list, alias="errors")
    # canarist: relative objectives judged by `assess`, candidate against baseline.
    comparisons: list[ComparisonRecord] = Field(default_factory=list, alias="comparisons")
    # canarist: SLOs on proportions, judged on their counts with an interval.
    slos_judged: list[SLOJudged] = Field(default_factory=list, alias="SLOsJudged")

    def slo_judged(self, metric: str, bound: str, version: int) -> SLOJudged | None:
        """How an SLO on a proportion was judged for a version (None: by its value alone)."""
        return next((j for j in self.slos_judged if j.metric == metric and j.bound == bound
                     and j.version == version), None)

    @model_validator(mode="after")
    def _fill_per_version_lists(self) -> Insights:
        n = self.num_versions
        if n < 0:
            raise ValueError("numVersions must not be negative")
        for name in (
            "non_hist_metric_values",
            "hist_metric_values",
            "summary_metric_values",
            "unavailable",
            "errors",
        ):
            values: list[Any] = getattr(self, name)
            if len(values) > n:
                raise ValueError(f"{name} has {len(values)} entries for {n} versions")
            values.extend({} for _ in range(n - len(values)))
        return self

    def version_label(self, index: int) -> str:
        """`version i`, or the track/version names when the experiment has them."""
        names = self.version_names
        if not names or index >= len(names):
            return f"version {index}"
        vn = names[index]
        if not vn.version and not vn.track:
            return f"version {index}"
        if not vn.track:
            return vn.version
        if not vn.version:
            return vn.track
        return f"{vn.track} ({vn.version})"


class FailedTask(LenientModel):
    """canarist: which task failed and why (Iter8 only records `failure: true`)."""

    number: int
    name: str
    reason: str


class KServeVersion(LenientModel):
    """canarist: one version of an InferenceService, as discovery found it."""

    role: Literal["candidate", "baseline"]
    revision: str
    percent: int = 0
    """The share of the route this revision gets now (0 when it is not routed)."""
    ready: bool = False
    host: str = ""
    """The tag host that reaches this revision alone (`latest-…`, `prev-…`), if routed."""
    url: str = ""


class KServeState(LenientModel):
    """canarist: what the `kserve` task read from the cluster in the latest loop."""

    isvc: str
    namespace: str
    service: str
    """The predictor's Knative service, the `service_name` label of its metrics."""
    generation: int
    canary_percent: int | None = Field(default=None, alias="canaryTrafficPercent")
    versions: list[KServeVersion] = Field(default_factory=list)
    traffic_since: datetime | None = Field(default=None, alias="trafficSince")
    """Since when the candidate has had its current share of traffic, when known."""
    window: str = ""
    """The measurement window this loop's queries used."""
    ingress: str = ""


class ConfusionCell(LenientModel):
    """canarist: how many predictions named `baseline`'s class on the baseline and
    `candidate`'s on the candidate."""

    baseline: str
    candidate: str
    count: int


class AgreementExample(LenientModel):
    """canarist: one disagreement, as the `agreement` task saw it (redacted, truncated)."""

    line: int
    """The request's line in the payload (1-based)."""
    instance: int = 0
    """Which prediction of the request (0-based), when it asked for several."""
    request: str = ""
    baseline: str = ""
    candidate: str = ""


class AgreementVersion(LenientModel):
    """canarist: one version compared with the baseline (the baseline: with itself)."""

    version: int
    requests: int = 0
    errors: int = 0
    compared: int = 0
    agreed: int = 0
    confusion: list[ConfusionCell] = Field(default_factory=list)
    disagreements: list[AgreementExample] = Field(default_factory=list)
    reason: str = ""
    """Why nothing was compared, when nothing was."""


class AgreementRecord(LenientModel):
    """canarist: what the latest `agreement` task sent and found, per version."""

    source: str
    protocol: str
    outputs: str = "auto"
    tolerance: str = "0"
    rows: int = 0
    """Request bodies in the payload."""
    sent: int = 0
    """Request bodies sent to every version (a sample when numRequests is below `rows`)."""
    seed: int = 0
    baseline: int = 1
    noise_floor: bool = Field(default=True, alias="noiseFloor")
    versions: list[AgreementVersion] = Field(default_factory=list)


RolloutActionKind = Literal["step", "hold", "promote", "rollback", "stop"]
RolloutState = Literal["in-progress", "held", "promoted", "rolled-back", "stopped"]


class RolloutAction(LenientModel):
    """canarist: one decision of the `rollout` task."""

    time: datetime
    action: RolloutActionKind
    from_: int | None = Field(default=None, alias="from")
    to: int | None = None
    verdict: str = ""
    reason: str = ""
    dry_run: bool = Field(default=False, alias="dryRun")


class RolloutRecord(LenientModel):
    """canarist: the progressive rollout's state, carried from loop to loop.

    `pending` is written before a patch is sent and cleared after: a loop that finds it set
    knows a patch may have been sent without its record, and reconciles from the cluster.
    """

    state: RolloutState = "in-progress"
    percent: int | None = None
    candidate: str = ""
    baseline: str = ""
    generation: int = 0
    """The InferenceService generation the rollout expects (its own patches included)."""
    holds: int = 0
    loops_at_step: int = Field(default=0, alias="loopsAtStep")
    pending: RolloutAction | None = None
    actions: list[RolloutAction] = Field(default_factory=list)
    reason: str = ""

    @property
    def ended(self) -> bool:
        """Promoted or rolled back: later loops only report."""
        return self.state in ("promoted", "rolled-back")


class Result(LenientModel):
    revision: int | None = None
    start_time: datetime = Field(alias="startTime")
    num_loops: int = Field(default=0, alias="numLoops")
    num_completed_tasks: int = Field(default=0, alias="numCompletedTasks")
    failure: bool = False
    failed_task: FailedTask | None = Field(default=None, alias="failedTask")
    iter8_version: str = Field(default="v0.13", alias="iter8Version")
    insights: Insights | None = None
    # canarist: names the user gave the versions (`versionNames` in the values), by index.
    version_names: list[str] | None = Field(default=None, alias="versionNames")
    # canarist: the InferenceService versions found by discovery, and the rollout's state.
    kserve: KServeState | None = None
    rollout: RolloutRecord | None = None
    # canarist: the latest paired comparison of the versions' predictions.
    agreement: AgreementRecord | None = None

    @field_validator("start_time")
    @classmethod
    def _in_utc_range(cls, value: datetime) -> datetime:
        """A time that UTC can represent (Go's time.Time can; Python's datetime stops at
        years 1 and 9999), so reports and `format_time` never overflow."""
        try:
            value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValueError("expected a time between the years 1 and 9999 (UTC), "
                             f"got {value.isoformat()}") from None
        return value

    @model_validator(mode="after")
    def _name_versions(self) -> Result:
        if self.insights is not None:
            apply_version_names(self.insights, self.version_names)
        return self


def apply_version_names(insights: Insights, names: list[str] | None) -> None:
    """Label versions by the names the user set; they win over names a task recorded."""
    if not names:
        return
    current = list(insights.version_names or [])
    current.extend(VersionName() for _ in range(len(names) - len(current)))
    for index, name in enumerate(names):
        if name and index < insights.num_versions:
            current[index] = VersionName(version=name, track="")
    insights.version_names = current[: max(insights.num_versions, 0)] or None


class TaskEntry(LenientModel):
    """One spec entry: a named task, or a `run` bash script; optional `if` and `with`."""

    task: str | None = None
    run: str | None = None
    if_: str | None = Field(default=None, alias="if")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    # canarist: per-task time limit (Go duration).
    timeout: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_with(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = fold_keys(data, cls)
            if data.get("with") is None and "with" in data:
                data = {**data, "with": {}}
        return data

    @model_validator(mode="after")
    def _task_or_run(self) -> TaskEntry:
        if not self.task and self.run is None:
            raise ValueError("invalid task found without a task name or a run command")
        return self

    @property
    def name(self) -> str:
        """The name used in log lines: `run` for run tasks."""
        return "run" if self.run is not None else str(self.task)


class Experiment(LenientModel):
    spec: list[TaskEntry] = Field(max_length=MAX_TASKS)
    result: Result | None = None

    def completed(self) -> bool:
        return self.result is not None and self.result.num_completed_tasks == len(self.spec)

    def no_failure(self) -> bool:
        return self.result is not None and not self.result.failure

    def slos_satisfied_by(self) -> list[int]:
        """Indexes of the versions that satisfy every SLO (all versions when there are none)."""
        insights = self.result.insights if self.result else None
        if insights is None or insights.num_versions == 0:
            return []
        versions = range(insights.num_versions)
        if insights.slos is None or insights.slos.is_empty():
            return list(versions)
        sat = insights.slos_satisfied or SLOsSatisfied()
        rows = [*sat.upper, *sat.lower]
        if len(rows) != len(insights.slos.upper) + len(insights.slos.lower):
            return []
        return [j for j in versions if all(j < len(row) and row[j] for row in rows)]

    def slos(self) -> bool:
        """True when every version satisfies every SLO (Iter8's `SLOs()`)."""
        insights = self.result.insights if self.result else None
        if insights is None:
            return False
        return len(self.slos_satisfied_by()) == insights.num_versions


def parse_experiment(data: Any, *, source: str) -> Experiment:
    """Validate a decoded experiment document, reporting every problem at once."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping with `spec` and `result`")
    return validated(Experiment, data, lambda loc: f"{source}: {spell_key('', loc) or '(root)'}")


def format_time(moment: datetime) -> str:
    """RFC 3339 with fractional seconds trimmed of trailing zeros, as Go's RFC3339Nano."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def experiment_to_data(experiment: Experiment) -> dict[str, Any]:
    """Plain data for writing: Iter8's keys, times as RFC 3339, no NaN or Inf anywhere."""
    data = experiment.model_dump(by_alias=True, exclude_none=True, mode="json")
    result = data.get("result")
    if result is not None:
        result["startTime"] = format_time(experiment.result.start_time)  # type: ignore[union-attr]
        insights = result.get("insights")
        if insights is not None:
            insights.setdefault("versionNames", None)
            for key in ("unavailable", "errors", "SLOsJudged"):
                if not any(insights.get(key, [])):
                    insights.pop(key, None)
    for entry in data["spec"]:
        if not entry.get("with"):
            entry.pop("with", None)
    _check_finite(data, "experiment")
    return data


def _check_finite(value: Any, path: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path}: refusing to write non-finite number {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, f"{path}[{index}]")


def new_result(*, now: datetime, iter8_version: str = "v0.13") -> Result:
    return Result.model_validate(
        {"startTime": now, "numLoops": 0, "numCompletedTasks": 0, "failure": False,
         "iter8Version": iter8_version}
    )


RunnerKind = Literal["none", "job", "cronjob"]
