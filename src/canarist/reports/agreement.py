"""The agreement of predictions, as every report shows it: rates with intervals, a confusion
table per candidate and the first disagreements (read from `result.agreement`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canarist.core.agreement import confidence_of, label_order, rate_interval
from canarist.core.experiment import AgreementExample, AgreementRecord, AgreementVersion, Experiment
from canarist.core.redact import shown_text
from canarist.reports.tabular import indent, tabwrite

PROTOCOL_NAMES = {"v1": "V1 REST", "v2": "V2 REST", "grpc": "V2 gRPC"}


@dataclass(frozen=True)
class RateRow:
    index: int
    label: str
    baseline: bool
    """The baseline's row: its agreement with its own second answer (the noise floor)."""
    requests: int
    errors: int
    compared: int
    agreed: int
    rate: float | None
    interval: tuple[float, float] | None
    reason: str


@dataclass(frozen=True)
class Confusion:
    index: int
    label: str
    classes: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    """counts[b][c]: predictions of class `classes[b]` on the baseline, `classes[c]` here."""


@dataclass(frozen=True)
class Disagreements:
    index: int
    label: str
    examples: tuple[AgreementExample, ...]


@dataclass(frozen=True)
class AgreementView:
    record: AgreementRecord
    protocol: str
    baseline_label: str
    confidence: float
    rates: tuple[RateRow, ...]
    confusions: tuple[Confusion, ...]
    disagreements: tuple[Disagreements, ...]

    @property
    def headline(self) -> str:
        """`150 of 150 requests from iris.jsonl over V1 REST; …`."""
        record = self.record
        sampled = (f" (drawn with seed {record.seed})" if record.sent < record.rows else "")
        named = ("the baseline" if self.baseline_label == "baseline"
                 else f"the baseline, {self.baseline_label},")
        twice = f"; {named} answered each twice" if record.noise_floor else ""
        tolerance = "" if record.tolerance in ("0", "0.0") else f"; tolerance {record.tolerance}"
        return (f"{record.sent} of {record.rows} requests from {shown_text(record.source)}"
                f"{sampled}, sent over {self.protocol} to every version{twice}{tolerance}")

    @property
    def level(self) -> str:
        """`95 %`."""
        return f"{self.confidence * 100:g} %"


def view(experiment: Experiment) -> AgreementView | None:
    result = experiment.result
    record = result.agreement if result else None
    if record is None:
        return None
    insights = result.insights if result else None

    def label(index: int) -> str:
        return insights.version_label(index) if insights else f"version {index}"

    confidence = confidence_of(experiment.spec)
    ordered = sorted(record.versions, key=lambda v: (v.version == record.baseline, v.version))
    rates = []
    for version in ordered:
        is_baseline = version.version == record.baseline
        if is_baseline and not record.noise_floor:
            continue
        rate = version.agreed / version.compared if version.compared else None
        interval = (rate_interval(version.agreed, version.compared, confidence)
                    if version.compared else None)
        rates.append(RateRow(version.version, label(version.version), is_baseline,
                             version.requests, version.errors, version.compared, version.agreed,
                             rate, interval, version.reason or _why_none(version)))
    confusions = tuple(_confusion(v, label(v.version)) for v in ordered
                       if v.confusion and (v.version != record.baseline or v.agreed < v.compared))
    disagreements = tuple(Disagreements(v.version, label(v.version), tuple(v.disagreements))
                          for v in ordered if v.disagreements)
    return AgreementView(record, PROTOCOL_NAMES.get(record.protocol, record.protocol),
                         label(record.baseline), confidence, tuple(rates), confusions,
                         disagreements)


def _why_none(version: AgreementVersion) -> str:
    if version.compared:
        return ""
    if version.errors:
        return f"{version.errors} of {version.requests} requests failed"
    return "nothing was compared"


def _confusion(version: AgreementVersion, label: str) -> Confusion:
    classes = tuple(sorted({c.baseline for c in version.confusion}
                           | {c.candidate for c in version.confusion}, key=label_order))
    where = {name: i for i, name in enumerate(classes)}
    grid = [[0] * len(classes) for _ in classes]
    for cell in version.confusion:
        grid[where[cell.baseline]][where[cell.candidate]] += cell.count
    return Confusion(version.version, label, classes, tuple(tuple(row) for row in grid))


def percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f} %"


def interval_text(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f"{percent(interval[0])} .. {percent(interval[1])}"


def row_label(row: RateRow) -> str:
    return f"{row.label} (baseline, with itself)" if row.baseline else row.label


def text(found: AgreementView) -> str:
    """The text report's section."""
    title = f"Agreement of predictions with the baseline ({found.level} confidence):"
    out = [f"\n\n{title}\n{'*' * len(title)}\n\n  {found.headline}\n\n"]
    rows = [["Version", " Compared", " Agreed", " Rate", " Interval", " Errors"],
            ["-------", " --------", " ------", " ----", " --------", " ------"]]
    for row in found.rates:
        rows.append([row_label(row), f" {row.compared}", f" {row.agreed}",
                     f" {percent(row.rate) or 'unavailable'}",
                     f" {interval_text(row.interval) or row.reason}", f" {row.errors}"])
    out.append(indent(tabwrite(rows), 2))
    for table in found.confusions:
        out.append(f"\n  Classes of {table.label} (across) against {found.baseline_label} "
                   "(down):\n\n")
        grid = [[f"{found.baseline_label} \\ {table.label}",
                 *[f" {name}" for name in table.classes]]]
        grid += [[name, *[f" {n}" for n in counts]]
                 for name, counts in zip(table.classes, table.counts, strict=True)]
        out.append(indent(tabwrite(grid), 4))
    for group in found.disagreements:
        against = "its own second answer" if group.index == found.record.baseline else \
            found.baseline_label
        out.append(f"\n  First disagreements of {group.label} with {against}:\n\n")
        for example in group.examples:
            where = f"line {example.line}" + (f", instance {example.instance}"
                                              if example.instance else "")
            out.append(f"    {where}: {example.request}\n      {found.baseline_label}: "
                       f"{example.baseline}   {group.label}: {example.candidate}\n")
    return "".join(out)


def to_data(experiment: Experiment) -> dict[str, Any] | None:
    """The JSON report's `agreement` (absent without an agreement task)."""
    found = view(experiment)
    if found is None:
        return None
    record = found.record
    by_index = {row.index: row for row in found.rates}
    insights = experiment.result.insights if experiment.result else None
    versions = []
    for version in sorted(record.versions, key=lambda v: v.version):
        row = by_index.get(version.version)
        versions.append({
            "index": version.version,
            "label": insights.version_label(version.version) if insights
            else f"version {version.version}",
            "role": "baseline" if version.version == record.baseline else "candidate",
            "requests": version.requests,
            "errors": version.errors,
            "compared": version.compared,
            "agreed": version.agreed,
            "rate": row.rate if row else None,
            "interval": list(row.interval) if row and row.interval else None,
            **({"reason": row.reason} if row and row.reason else {}),
            "confusion": [{"baseline": c.baseline, "candidate": c.candidate, "count": c.count}
                          for c in version.confusion],
            "disagreements": [{"line": e.line, "instance": e.instance, "request": e.request,
                               "baseline": e.baseline, "candidate": e.candidate}
                              for e in version.disagreements],
        })
    return {
        "source": shown_text(record.source),
        "protocol": record.protocol,
        "outputs": record.outputs,
        "tolerance": record.tolerance,
        "rows": record.rows,
        "sent": record.sent,
        "seed": record.seed,
        "baseline": record.baseline,
        "noiseFloor": record.noise_floor,
        "confidence": found.confidence,
        "versions": versions,
    }
