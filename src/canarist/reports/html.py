"""The HTML report: one self-contained page that opens offline.

Everything is inline: styles, and charts as SVG (see `charts`). The page holds no script and
its Content-Security-Policy forbids scripts and every network fetch, so it can be mailed,
archived as a CI artifact or opened from disk. Everything shown that comes from a user or a
server is escaped by Jinja2's autoescape; the chart SVG is produced by matplotlib, which escapes
its text. Secrets in the spec are redacted (`redact_spec`: notify URLs show only their
origin), and strings longer than `SHOWN_LIMIT` are shortened.

The same experiment always renders to the same bytes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from markupsafe import Markup, escape

from canarist import __version__
from canarist.core.experiment import ComparisonRecord, Experiment, Insights, MetricType
from canarist.core.gofmt import format_value
from canarist.core.kserve import rollout_headline
from canarist.core.metrics import name_with_units, normalize_name
from canarist.core.redact import redact_spec, shorten_strings, shown_text
from canarist.core.terminal import one_line, printable
from canarist.core.verdict import (
    Verdict,
    change_text,
    comparison_confidence,
    judge,
    objective_text,
)
from canarist.core.yamltext import dump_yaml
from canarist.reports import agreement, rollout, summary
from canarist.reports.failures import failure_groups
from canarist.reports.summary import MetricRow, Reading, SLORow, Status


@dataclass(frozen=True)
class VersionView:
    index: int
    label: str
    color: str
    violations: int | None  # None when there are no SLOs
    unavailable: int = 0  # SLOs not satisfied only because the value is unavailable
    undecided: int = 0  # SLOs on a proportion whose counts are too few to tell


@dataclass(frozen=True)
class ChartView:
    anchor: str
    metric: str
    title: str
    description: str
    svg: Markup
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskView:
    number: int
    name: str
    state: str  # "done", "failed" or "pending"


def render_html(experiment: Experiment) -> str:
    """The report as a complete HTML document."""
    from canarist.reports import charts

    status = summary.status(experiment)
    insights = experiment.result.insights if experiment.result else None
    slo_rows = summary.slo_rows(insights) if insights else []
    metric_rows = summary.metric_rows(insights) if insights else []
    judged = judge(experiment)
    context: dict[str, Any] = {
        "canarist_version": __version__,
        "status": status,
        "verdict": judged,
        "headline": _headline(status),
        "insights": insights is not None,
        "versions": _versions(insights, slo_rows, charts.version_color, judged) if insights else [],
        "has_slos": bool(insights and insights.slos is not None
                         and not insights.slos.is_empty()),
        "slo_rows": slo_rows,
        "failure_groups": failure_groups(insights) if insights else [],
        "metric_rows": metric_rows,
        "comparisons": _comparisons(insights) if insights else [],
        "comparison_confidence": comparison_confidence(insights) if insights else "",
        "latency_charts": _latency_charts(insights) if insights else [],
        "history_charts": _history_charts(insights, status) if insights else [],
        "rollout": _rollout(experiment),
        "agreement": agreement.view(experiment),
        "tasks": _tasks(experiment, status),
        "spec_yaml": _spec_yaml(experiment),
    }
    # Control and bidi-format characters are shown as escapes, as on a terminal: the page
    # may be printed to one, and a right-to-left override would reorder what a browser shows.
    return printable(_environment().get_template("report.html.j2").render(context))


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("canarist.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = format_number
    env.filters["limit"] = format_value
    env.filters["row_nums"] = reading_texts
    env.filters["wbr"] = wrap_points
    env.filters["slo_text"] = slo_cell_text
    env.filters["percent"] = agreement.percent
    env.filters["interval"] = agreement.interval_text
    return env


def format_numbers(values: Sequence[float | None]) -> list[str]:
    """Measured values that are shown side by side (one table row), formatted by one rule.

    Whole numbers stay whole (`61`, `7`). Otherwise every value gets the same number of
    decimals: enough to give each value at least 3 significant digits (`3.00` beside `6.01`,
    `0.0200` beside `0.0100`, `11.9` beside `31.2`), at most 6. None (unavailable) is ``.
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if all(v.is_integer() and abs(v) < 1e15 for v in finite):
        decimals = 0
    else:
        decimals = max((min(6, max(0, 2 - math.floor(math.log10(abs(v)))))
                        for v in finite if v != 0), default=2)
    texts = []
    for value in values:
        if value is None:
            texts.append("")
        elif not math.isfinite(value):
            texts.append(str(value))
        elif abs(value) >= 1e15:
            texts.append(f"{value:.6g}")
        else:
            text = f"{value:.{decimals}f}"
            texts.append(text[1:] if text.startswith("-") and not text.strip("-0.") else text)
    return texts


def format_number(value: float) -> str:
    """One measured value by `format_numbers`' rule (`3.00`, `61`, `0.0200`)."""
    return format_numbers([value])[0]


def reading_texts(readings: Sequence[Reading]) -> list[str]:
    """The values of one metrics-table row, formatted alike."""
    return format_numbers([r.value for r in readings])


def wrap_points(text: str) -> Markup:
    """`text` escaped, with line-break opportunities after `/` and `-` only."""
    escaped = str(escape(text))
    return Markup(escaped.replace("/", "/<wbr>").replace("-", "-<wbr>"))


def slo_cell_text(row: SLORow, index: int) -> str:
    """`8.53 ≤ 50` for an upper SLO, `198 ≥ 10` for a lower one: the measured value first.

    The values of a row are formatted alike (`format_numbers`)."""
    cell = row.cells[index]
    value = cell.reading.value
    if value is None:
        return "unavailable"
    holds_by_value = value <= row.limit if row.bound == "upper" else value >= row.limit
    op = _OPERATORS[(row.bound, holds_by_value)]
    text = format_numbers([c.reading.value for c in row.cells])[index]
    return f"{text} {op} {format_value(row.limit)}"


_OPERATORS = {("upper", True): "≤", ("upper", False): ">", ("lower", True): "≥",
              ("lower", False): "<"}


def _headline(status: Status) -> str:
    """How far the experiment got (the banner's second line; the verdict comes first)."""
    if status.failed_task is not None:
        return (f"Experiment failed at task {status.failed_task.number} "
                f"({status.failed_task.name})")
    if status.tone == "failed":
        return "Experiment failed"
    if status.tone == "incomplete":
        return "Experiment has not completed"
    return "Experiment completed without failures"


def _versions(insights: Insights, rows: list[SLORow], color: Any,
              verdict: Verdict) -> list[VersionView]:
    has_slos = bool(rows)
    return [
        VersionView(j, insights.version_label(j), color(j),
                    sum(1 for c in verdict.violated if c.version == j) if has_slos else None,
                    sum(1 for c in verdict.unavailable if c.version == j and not c.undecided),
                    sum(1 for c in verdict.unavailable if c.version == j and c.undecided))
        for j in range(insights.num_versions)
    ]


def _axis_label(insights: Insights, name: str) -> str:
    return name_with_units(insights, name)


def _slo_marks(insights: Insights, name: str) -> list[Any]:
    """SLOs on percentiles of a latency metric (`http/latency-p95`, `grpc/latency/p99`)."""
    from canarist.reports.charts import PercentileMark

    if insights.slos is None:
        return []
    marks = []
    for upper, slos in ((True, insights.slos.upper), (False, insights.slos.lower)):
        for slo in slos:
            metric = normalize_name(slo.metric)
            for sep in ("-p", "/p"):
                prefix = name + sep
                if metric.startswith(prefix):
                    try:
                        percent = float(metric[len(prefix):])
                    except ValueError:
                        continue
                    if 0 < percent <= 100:
                        marks.append(PercentileMark(percent, slo.limit, upper))
    return marks


@dataclass(frozen=True)
class ComparisonView:
    """One relative objective: a row per candidate and the forest plot of their changes."""

    objective: str
    rows: tuple[dict[str, str], ...]
    chart: Markup


def _comparisons(insights: Insights) -> list[ComparisonView]:
    from canarist.reports import charts

    groups: dict[tuple[str, str, str], list[ComparisonRecord]] = {}
    for record in insights.comparisons:
        groups.setdefault((record.metric, record.direction, record.allowance), []).append(record)
    views = []
    for number, ((_, direction, allowance), records) in enumerate(groups.items()):
        objective = objective_text(records[0])
        relative = allowance.strip().endswith("%")
        amount = float(allowance.strip().rstrip("%")) / (100 if relative else 1)
        forest = [charts.ForestRow(
            one_line(insights.version_label(r.candidate)), r.candidate, r.estimate,
            r.interval[0] if r.interval else None, r.interval[1] if r.interval else None,
            r.verdict) for r in records]
        chart = charts.forest_chart(f"comparison-{number}", forest, amount,
                                    upper=direction == "upper", percent=relative,
                                    title=f"{objective}: change of each candidate")
        rows = tuple({
            "candidate": insights.version_label(r.candidate),
            "baseline": insights.version_label(r.baseline),
            "verdict": r.verdict,
            "change": change_text(r, r.estimate),
            "interval": (f"{change_text(r, (r.interval or (None, None))[0], -1)} .. "
                         f"{change_text(r, (r.interval or (None, None))[1], 1)}"),
            "samples": f"{r.samples.get('candidate', 0)} / {r.samples.get('baseline', 0)}",
            "reason": shown_text(r.reason),
        } for r in records)
        views.append(ComparisonView(objective, rows, chart))
    return views


def _latency_charts(insights: Insights) -> list[ChartView]:
    from canarist.reports import charts

    views = []
    for number, name in enumerate(summary.latency_metric_names(insights)):
        meta = insights.metrics_info[name]
        distributions = []
        notes = []
        for j in range(insights.num_versions):
            label = one_line(insights.version_label(j))  # matplotlib draws it as given
            dist: charts.Distribution | None
            if meta.type == MetricType.HISTOGRAM:
                dist = charts.from_buckets(j, label, insights.hist_metric_values[j].get(name, []))
            else:
                dist = charts.from_samples(j, label,
                                           insights.non_hist_metric_values[j].get(name, []))
            if dist is None:
                reason = insights.unavailable[j].get(name) or "no observations were recorded"
                notes.append(f"{label}: {shown_text(reason)}")
            else:
                distributions.append(dist)
        title = f"Distribution of {name_with_units(insights, name)}"
        if distributions:
            svg = charts.latency_chart(f"latency-{number}", _axis_label(insights, name),
                                       distributions, _slo_marks(insights, name), title=title)
        else:
            svg = Markup("")
        views.append(ChartView(f"latency-{number}", name, title,
                               " ".join(meta.description.split()), svg, tuple(notes)))
    return views


def _history_charts(insights: Insights, status: Status) -> list[ChartView]:
    """Counter and Gauge metrics over loops, once any metric has more than one observation."""
    from canarist.reports import charts

    names = sorted((name for name, meta in insights.metrics_info.items()
                    if meta.type in (MetricType.COUNTER, MetricType.GAUGE)),
                   key=lambda n: n.encode())
    longest = max((len(insights.non_hist_metric_values[j].get(name, []))
                   for name in names for j in range(insights.num_versions)), default=0)
    if longest < 2 and status.num_loops < 2:
        return []
    labels = [one_line(insights.version_label(j)) for j in range(insights.num_versions)]
    limits = _slo_limits(insights)
    views = []
    for number, name in enumerate(names):
        histories = [charts.History(j, tuple(values))
                     for j in range(insights.num_versions)
                     if (values := insights.non_hist_metric_values[j].get(name, []))]
        if not histories:
            continue
        title = name_with_units(insights, name)
        svg = charts.history_chart(f"history-{number}", histories, labels,
                                   limits.get(name, []), title=f"{title} over loops",
                                   num_loops=status.num_loops)
        meta = insights.metrics_info[name]
        views.append(ChartView(f"history-{number}", name, title,
                               " ".join(meta.description.split()), svg))
    return views


def _slo_limits(insights: Insights) -> dict[str, list[float]]:
    limits: dict[str, list[float]] = {}
    if insights.slos is not None:
        for slo in [*insights.slos.upper, *insights.slos.lower]:
            limits.setdefault(normalize_name(slo.metric), []).append(slo.limit)
    return limits


def _rollout(experiment: Experiment) -> dict[str, Any] | None:
    record = experiment.result.rollout if experiment.result else None
    if record is None:
        return None
    return {"state": record.state, "headline": rollout_headline(record),
            "rows": rollout.action_rows(record)}


def _tasks(experiment: Experiment, status: Status) -> list[TaskView]:
    failed = status.failed_task.number if status.failed_task else None
    views = []
    for number, entry in enumerate(experiment.spec, start=1):
        if number == failed:
            state = "failed"
        elif number <= status.num_completed_tasks:
            state = "done"
        else:
            state = "pending"
        views.append(TaskView(number, entry.name, state))
    return views


def _spec_yaml(experiment: Experiment) -> str:
    entries = [entry.model_dump(by_alias=True, exclude_none=True, mode="json")
               for entry in experiment.spec]
    for entry in entries:
        if not entry.get("with"):
            entry.pop("with", None)
    return dump_yaml(shorten_strings(redact_spec(entries, references=True)))


__all__ = ["MetricRow", "format_number", "render_html"]
