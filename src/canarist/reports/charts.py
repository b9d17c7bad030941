"""Charts for the HTML report: matplotlib figures rendered to inline SVG.

Why matplotlib and SVG: the report must open offline and stay small. Inlining plotly.js adds
4.8 MB to every report; an SVG chart is a few kilobytes and needs no script at all, so the page
can forbid scripts entirely. matplotlib's SVG output is deterministic once its hash salt (for
clip-path ids) and its metadata (date, creator) are fixed, so the same experiment renders to
the same bytes.

Text in the SVG is kept as text (`svg.fonttype: none`) and escaped by matplotlib's SVG writer;
math-text parsing is off, so `$` in a metric name is just a character. Axes, ticks and labels
are drawn in a placeholder colour that becomes `currentColor`, so charts follow the page's
light or dark text colour.

Latency distributions are computed from the stored data without sampling: a Histogram
metric's buckets define a piecewise-linear cumulative distribution (observations spread evenly
within a bucket), a Sample metric's values an empirical one. Both are drawn as a histogram on a
shared, evenly spaced grid (percent of observations per bin) and as a CDF.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from markupsafe import Markup, escape
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FormatStrFormatter, MaxNLocator

from canarist.core.experiment import HistBucket

PALETTE = ("#3a86c8", "#e8833a", "#2aa876", "#a066c8", "#d9534f", "#a47148", "#d46aa6",
           "#8c8c8c")
_INK = "#010203"  # replaced by currentColor in the SVG
_FAIL_TINT = "#d62728"  # the side of the allowance a candidate must not reach
NUM_BINS = 40
MAX_CDF_POINTS = 400

_RC: Any = {  # matplotlib's stubs accept only literal keys
    "svg.fonttype": "none",
    "text.parse_math": False,
    "text.usetex": False,
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "text.color": _INK,
    "axes.edgecolor": _INK,
    "axes.labelcolor": _INK,
    "axes.facecolor": "none",
    "axes.titlesize": 9,
    "xtick.color": _INK,
    "ytick.color": _INK,
    "grid.color": _INK,
    "grid.alpha": 0.15,
    "legend.frameon": False,
    "figure.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.transparent": True,
    "path.simplify": False,
}
_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def version_color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


@dataclass(frozen=True)
class Distribution:
    """One version's latency distribution.

    `cdf_x`/`cdf_y` are the corners of its cumulative distribution (y as a fraction); for
    `empirical` distributions (samples) the CDF is a step function, otherwise it is linear
    between corners.
    """

    version: int
    label: str
    count: float
    cdf_x: tuple[float, ...]
    cdf_y: tuple[float, ...]
    empirical: bool
    samples: tuple[float, ...] = ()

    @property
    def low(self) -> float:
        return self.cdf_x[0]

    @property
    def high(self) -> float:
        return self.cdf_x[-1]

    def typical_width(self) -> float:
        """The count-weighted median width of the stored buckets (0 for samples)."""
        if self.empirical or len(self.cdf_x) < 2:
            return 0.0
        widths = np.diff(np.asarray(self.cdf_x))
        weights = np.diff(np.asarray(self.cdf_y))
        order = np.argsort(widths, kind="stable")
        cumulative = np.cumsum(weights[order])
        return float(widths[order][np.searchsorted(cumulative, cumulative[-1] / 2)])

    def bin_percent(self, edges: np.ndarray) -> np.ndarray:
        """Percent of observations in each bin between consecutive `edges`."""
        if self.empirical:
            counts, _ = np.histogram(np.asarray(self.samples), bins=edges)
            return np.asarray(counts, dtype=float) * 100.0 / self.count
        cumulative = np.interp(edges, np.asarray(self.cdf_x), np.asarray(self.cdf_y),
                               left=0.0, right=1.0)
        return np.asarray(np.diff(cumulative) * 100.0, dtype=float)


def from_buckets(version: int, label: str, buckets: Sequence[HistBucket]) -> Distribution | None:
    """The distribution of a Histogram metric. Buckets accumulate across loops (Iter8 appends
    them), so the same bucket may appear more than once; its counts add up."""
    merged: dict[tuple[float, float], int] = {}
    for bucket in buckets:
        if bucket.count <= 0 or not math.isfinite(bucket.upper):
            continue  # the +Inf bucket of a Prometheus histogram has no width to draw
        lower, upper = sorted((bucket.lower, bucket.upper))
        if upper == lower:
            upper = lower + max(abs(lower) * 1e-9, 1e-9)
        merged[(lower, upper)] = merged.get((lower, upper), 0) + bucket.count
    if not merged:
        return None
    edges = sorted({edge for pair in merged for edge in pair})
    total = float(sum(merged.values()))
    xs = np.asarray(edges)
    cumulative = np.zeros_like(xs)
    for (lower, upper), count in merged.items():
        cumulative += count * np.clip((xs - lower) / (upper - lower), 0.0, 1.0)
    return Distribution(version, label, total, tuple(float(x) for x in xs),
                        tuple(float(y) for y in cumulative / total), empirical=False)


def from_samples(version: int, label: str, values: Sequence[float]) -> Distribution | None:
    finite = sorted(v for v in values if np.isfinite(v))
    if not finite:
        return None
    n = len(finite)
    if n > MAX_CDF_POINTS:
        # Evenly spaced ranks keep the shape of the step function with a bounded size.
        ranks = np.unique(np.linspace(0, n - 1, MAX_CDF_POINTS).round().astype(int))
    else:
        ranks = np.arange(n)
    xs = tuple(float(finite[r]) for r in ranks)
    ys = tuple(float((r + 1) / n) for r in ranks)
    return Distribution(version, label, float(n), xs, ys, empirical=True,
                        samples=tuple(float(v) for v in finite))


def shared_edges(distributions: Sequence[Distribution], bins: int = NUM_BINS) -> np.ndarray:
    """Evenly spaced bins over all versions' range. A bin is never narrower than the typical
    stored bucket (the count-weighted median width), so re-binning shows no aliasing."""
    low = min(d.low for d in distributions)
    high = max(d.high for d in distributions)
    if high - low <= 0:
        pad = max(abs(low) * 0.05, 0.5)
        low, high = low - pad, high + pad
    width = max((high - low) / bins, max(d.typical_width() for d in distributions))
    count = max(1, min(bins, int(np.ceil((high - low) / width))))
    return np.linspace(low, high, count + 1)


@dataclass(frozen=True)
class PercentileMark:
    """An SLO on a percentile of this metric, e.g. p95 <= 25: drawn on the CDF."""

    percent: float
    limit: float
    upper: bool


def latency_chart(chart_id: str, axis_label: str, distributions: Sequence[Distribution],
                  marks: Sequence[PercentileMark] = (), *, title: str) -> Markup:
    """Histogram and CDF side by side, one overlaid series per version."""
    with matplotlib.rc_context(_RC):
        return _latency_chart(chart_id, axis_label, distributions, marks, title)


def _latency_chart(chart_id: str, axis_label: str, distributions: Sequence[Distribution],
                   marks: Sequence[PercentileMark], title: str) -> Markup:
    edges = shared_edges(distributions)
    fig = Figure(figsize=(9.0, 3.0))
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.16, top=0.96, wspace=0.22)
    hist_ax, cdf_ax = fig.subplots(1, 2)
    handles: list[Line2D] = []
    for dist in distributions:
        color = version_color(dist.version)
        percent = dist.bin_percent(edges)
        hist_ax.stairs(percent, edges, fill=True, color=color, alpha=0.3, linewidth=0)
        hist_ax.stairs(percent, edges, color=color, linewidth=1.2)
        if dist.empirical:
            cdf_ax.step([dist.low, *dist.cdf_x], [0.0, *(y * 100 for y in dist.cdf_y)],
                        where="post", color=color, linewidth=1.4)
        else:
            cdf_ax.plot(dist.cdf_x, [y * 100 for y in dist.cdf_y], color=color, linewidth=1.4)
        handles.append(Line2D([], [], color=color, linewidth=2))
    for mark in marks:
        cdf_ax.plot([mark.limit], [mark.percent], marker="v" if mark.upper else "^",
                    color=_INK, markersize=6, linestyle="none")
        cdf_ax.annotate(f"p{mark.percent:g} {'≤' if mark.upper else '≥'} {mark.limit:g}",
                        (mark.limit, mark.percent), textcoords="offset points", xytext=(5, -10),
                        fontsize=7.5)
    hist_ax.set_ylabel("% of observations")
    cdf_ax.set_ylabel("% of observations ≤ x")
    cdf_ax.set_ylim(0, 102)
    for ax in (hist_ax, cdf_ax):
        ax.set_xlabel(axis_label)
        ax.grid(True, linewidth=0.6)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    hist_ax.set_ylim(bottom=0)
    hist_ax.legend(handles, [d.label for d in distributions], loc="best", fontsize=8)
    return to_svg(fig, chart_id, title)


@dataclass(frozen=True)
class ForestRow:
    """One candidate's change against the baseline: estimate and interval (None: unbounded)."""

    label: str
    version: int
    estimate: float | None
    low: float | None
    high: float | None
    verdict: str


def forest_chart(chart_id: str, rows: Sequence[ForestRow], allowance: float, *, upper: bool,
                 percent: bool, title: str) -> Markup:
    """Each candidate's change as a point and its interval against the allowance band: the
    band is what the candidate may be worse by; an interval wholly inside it passes, wholly
    beyond it fails. Unbounded ends run to the edge with an arrow."""
    with matplotlib.rc_context(_RC):
        return to_svg(_forest_figure(rows, allowance, upper, percent), chart_id, title)


def _forest_figure(rows: Sequence[ForestRow], allowance: float, upper: bool,
                   percent: bool) -> Figure:
    scale = 100.0 if percent else 1.0
    limit = (allowance if upper else -allowance) * scale
    finite = [v * scale for r in rows for v in (r.estimate, r.low, r.high) if v is not None]
    span = max([abs(v) for v in finite] + [abs(limit), 1e-9])
    left, right = min([*finite, limit, 0.0]) - 0.1 * span, max([*finite, limit, 0.0]) + 0.1 * span
    labels = [f"{r.label}\n{r.verdict}" for r in rows]
    height = 0.7 + 0.55 * len(rows)
    widest = max(len(r.label) for r in rows)
    fig = Figure(figsize=(9.0, height))
    fig.subplots_adjust(left=min(0.4, 0.04 + 0.0085 * widest), right=0.985,
                        bottom=0.55 / height, top=1 - 0.1 / height)
    ax = fig.subplots()
    worse_side = (limit, right) if upper else (left, limit)
    ax.axvspan(*worse_side, color=_FAIL_TINT, alpha=0.25, linewidth=0)
    ax.axvline(limit, color=_INK, linestyle="--", linewidth=1)
    ax.axvline(0.0, color=_INK, linewidth=0.6, alpha=0.5)
    for y, row in enumerate(rows):
        color = version_color(row.version)
        low = row.low * scale if row.low is not None else left
        high = row.high * scale if row.high is not None else right
        ax.plot([low, high], [y, y], color=color, linewidth=2.2, solid_capstyle="butt")
        for end, bounded, marker in ((low, row.low is not None, "<"),
                                     (high, row.high is not None, ">")):
            ax.plot([end], [y], marker="|" if bounded else marker, color=color, markersize=9)
        if row.estimate is not None:
            ax.plot([row.estimate * scale], [y], marker="o", color=color, markersize=6)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(left, right)
    ax.set_xlabel("change against the baseline" + (" (%)" if percent else ""))
    ax.grid(True, axis="x", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return fig


HISTORY_DOTS = 60
"""The most loops a history chart marks with a dot each."""


@dataclass(frozen=True)
class History:
    version: int
    values: tuple[float, ...]


def history_chart(chart_id: str, histories: Sequence[History], labels: Sequence[str],
                  limits: Sequence[float] = (), *, title: str, num_loops: int = 0) -> Markup:
    """A small line chart of a metric over loops, one line per version; SLO limits dashed."""
    with matplotlib.rc_context(_RC):
        fig = history_figure(histories, labels, limits, num_loops=num_loops)
        return to_svg(fig, chart_id, title)


def loop_numbers(count: int, num_loops: int) -> list[int]:
    """The loops `count` values were recorded in: the latest ones (a metric first recorded in
    a later loop has fewer values), or 1..count when there are more values than loops."""
    first = num_loops - count + 1 if 0 < count <= num_loops else 1
    return list(range(first, first + count))


def history_figure(histories: Sequence[History], labels: Sequence[str],
                   limits: Sequence[float] = (), *, num_loops: int = 0) -> Figure:
    """The history chart's figure: integer loop ticks only (a single loop is one point at its
    loop number), and a y-range that always includes every SLO limit, labelled at the right."""
    fig = Figure(figsize=(3.3, 1.9))
    fig.subplots_adjust(left=0.17, right=0.97, bottom=0.24, top=0.95)
    ax = fig.subplots()
    loops: list[int] = []
    # A dot per loop while the dots can be told apart; beyond that the line alone (drawing
    # and storing 300 dots per line was a third of a 300-loop report's time and size).
    dotted = max((len(h.values) for h in histories), default=0) <= HISTORY_DOTS
    for history in histories:
        xs = loop_numbers(len(history.values), num_loops)
        loops.extend(xs)
        ax.plot(xs, history.values, color=version_color(history.version),
                marker="o" if dotted else None, markersize=3, linewidth=1.3)
    values = [v for h in histories for v in h.values if math.isfinite(v)]
    shown = [*values, *(limit for limit in limits if math.isfinite(limit))]
    if shown:
        low, high = min(shown), max(shown)
        pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
        bottom = low - pad
        if low >= 0 > bottom:  # counts and rates: no negative axis, a sliver below zero
            bottom = -pad * 0.25
        ax.set_ylim(bottom, high + pad)
    for limit in limits:
        ax.axhline(limit, color=_INK, linewidth=0.8, linestyle=(0, (4, 3)), alpha=0.6)
        ax.annotate(f"limit {limit:g}", xy=(1, limit), xycoords=("axes fraction", "data"),
                    xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom",
                    fontsize=6, color=_INK, alpha=0.8)
    first, last = (min(loops), max(loops)) if loops else (1, 1)
    ax.set_xlim(first - 0.3, last + 0.3)
    if last - first < 8:
        ax.xaxis.set_major_locator(FixedLocator(list(range(first, last + 1))))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6, min_n_ticks=1))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%d"))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.set_xlabel("loop")
    ax.grid(True, linewidth=0.5)
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if len(histories) > 1:
        handles = [Line2D([], [], color=version_color(h.version), linewidth=2) for h in histories]
        # "best" tries every place against every point: cheap for a few loops, not for 300
        ax.legend(handles, [labels[h.version] for h in histories], fontsize=6.5,
                  loc="best" if dotted else "upper left")
    return fig


_XML_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_STYLE_BLOCK = re.compile(r"<style[^>]*>.*?</style>", re.DOTALL)
_METADATA_BLOCK = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_SIZE_ATTRS = re.compile(r'\s(?:width|height)="[^"]*pt"')
# Matches only inside tags: SVG text content cannot hold a bare `<`.
_ID_ATTR = re.compile(r'(<[^<>]*?)\sid="([^"]*)"')
_REFERENCE = re.compile(r'(?:url\(#|href="#)([^)"]+)')


def to_svg(fig: Figure, chart_id: str, title: str) -> Markup:
    """Render to an inline `<svg>` element: no prolog, ids unique in the page, no stray
    document-wide styles, scalable, labelled for screen readers."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"canarist-{chart_id}"}):
        fig.savefig(buf, format="svg", metadata=_METADATA)
    svg = _XML_PROLOG.sub("", buf.getvalue(), count=1)
    svg = _STYLE_BLOCK.sub("", svg, count=1)
    svg = _METADATA_BLOCK.sub("", svg, count=1)
    svg = svg.replace(_INK, "currentColor")
    referenced = set(_REFERENCE.findall(svg))

    def keep_referenced(match: re.Match[str]) -> str:
        return match.group(0) if match.group(2) in referenced else match.group(1)

    previous = None
    while previous != svg:
        previous = svg
        svg = _ID_ATTR.sub(keep_referenced, svg)
    head, rest = svg.split(">", 1)
    head = _SIZE_ATTRS.sub("", head)
    label = escape(title)
    svg = f'{head} role="img" aria-label="{label}" class="chart-svg"><title>{label}</title>{rest}'
    return Markup(svg.strip())
