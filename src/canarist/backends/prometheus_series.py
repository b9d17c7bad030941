"""Why a Prometheus query came back empty: no matching series, or a window too short.

A template can name, per metric, the series its query reads and the window it looks back
over (`diagnose: {series: ..., window: ...}`). When the query's result is empty, one more
instant query looks those series up, and the answer says which of these it was:

* no series match the selector at all (wrong labels, or no traffic for a long while);
* the window is shorter than two scrape intervals, so `increase()` / `rate()` have fewer
  than two samples to work with;
* the series stopped being scraped before the window began;
* the series are so new that the window holds only one sample of each.

For a window up to `LOOKBACK_S` the query returns the raw samples of the last `LOOKBACK_S`
(`<series>[10m]`), from which the scrape interval is measured; for a longer window it
counts samples per series (`count_over_time(<series>[<window>])`). Anything else (another
selector in the query emptied the result, or the lookup itself failed) gives no
explanation, and the caller keeps its general reason.

    reason = await explain_empty(client, EmptyLookup(url, headers, series, window_s), now=t)
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from canarist.backends.metrics_http import HttpQuery, MetricsHttpClient, QueryUnavailable
from canarist.core.durations import format_duration

__all__ = [
    "LOOKBACK_S",
    "EmptyLookup",
    "SeriesSamples",
    "explain_counts",
    "explain_empty",
    "explain_samples",
    "lookup_query",
    "show_duration",
    "show_selector",
]

LOOKBACK_S: Final = 600.0
_NAME: Final = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_STRING: Final = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
_SELECTOR: Final = re.compile(rf"^\s*({_NAME})?\s*(?:\{{(.*)\}})?\s*$", re.DOTALL)
_MATCHER: Final = re.compile(
    rf"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*({_STRING})\s*(?:,|$)", re.DOTALL)


@dataclass(frozen=True)
class EmptyLookup:
    """Where to look and what for: the metric's endpoint, its headers, a selector, a window."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    series: str = ""
    window_s: float = 0.0

    def key(self) -> tuple[str, tuple[tuple[str, str], ...], str, float]:
        return self.url, tuple(sorted(self.headers.items())), self.series, self.window_s


@dataclass(frozen=True)
class SeriesSamples:
    """The timestamps (seconds) of one series' samples, oldest first."""

    timestamps: Sequence[float]


def show_duration(seconds: float) -> str:
    """A Go duration without zero parts: "5m", "1h30m", "1m40s", "500ms"."""
    if seconds <= 0 or not math.isfinite(seconds):
        return format_duration(seconds) if math.isfinite(seconds) else str(seconds)
    if seconds >= 1:
        seconds = round(seconds)
    text = format_duration(seconds)
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return text


def show_selector(series: str) -> tuple[str, str]:
    """(metric name, matchers as `a="x", b="y"`) of a selector; ("", `selector`) if unclear."""
    match = _SELECTOR.match(series)
    if match is None:
        return "", f"`{series.strip()}`"
    name, rest = match.group(1) or "", (match.group(2) or "").strip()
    matchers: list[str] = []
    while rest:
        found = _MATCHER.match(rest)
        if found is None:
            return "", f"`{series.strip()}`"
        matchers.append(f"{found.group(1)}{found.group(2)}{found.group(3)}")
        rest = rest[found.end():].strip()
    return name, f"`{', '.join(matchers)}`" if matchers else ""


def lookup_query(lookup: EmptyLookup) -> str:
    """The PromQL that looks the series up (see the module docstring)."""
    if lookup.window_s <= LOOKBACK_S:
        return f"{lookup.series}[{int(LOOKBACK_S)}s]"
    return f"count_over_time({lookup.series}[{math.ceil(lookup.window_s * 1000)}ms])"


def _no_series(lookup: EmptyLookup, looked_back_s: float) -> str:
    name, matchers = show_selector(lookup.series)
    subject = " ".join(part for part in (f"of {name}" if name else "",
                                         f"match {matchers}" if matchers else "") if part)
    return f"no series {subject} in the last {show_duration(looked_back_s)}"


def _samples_of(lookup: EmptyLookup) -> str:
    return " ".join(part for part in show_selector(lookup.series) if part)


def explain_samples(lookup: EmptyLookup, series: Sequence[SeriesSamples], now: float) -> str | None:
    """The reason, from the raw samples of the last LOOKBACK_S before `now`; None if unclear."""
    series = [s for s in series if s.timestamps]
    if not series:
        return _no_series(lookup, max(LOOKBACK_S, lookup.window_s))
    window, what = lookup.window_s, _samples_of(lookup)
    gaps = [b - a for s in series for a, b in zip(s.timestamps, s.timestamps[1:], strict=False)
            if b > a]
    interval = statistics.median(gaps) if gaps else None
    in_window = max(sum(1 for t in s.timestamps if t > now - window) for s in series)
    latest = max(s.timestamps[-1] for s in series)
    first = min(s.timestamps[0] for s in series)
    if interval is not None and window < 2 * interval:
        return (f"window {show_duration(window)} is shorter than two scrape intervals of {what} "
                f"(2 × {show_duration(interval)}): increase() and rate() need two samples in the "
                f"window; make it {show_duration(math.ceil(2 * interval))} or more")
    if in_window == 0:
        return (f"no samples of {what} in the last {show_duration(window)}: the latest is "
                f"{show_duration(now - latest)} old (no longer scraped?)")
    if in_window == 1:
        new = f" (its first sample is {show_duration(now - first)} old)" \
            if first > now - window else ""
        wait = f"; wait one scrape interval ({show_duration(interval)})" if interval else ""
        return (f"only one sample of {what} in the last {show_duration(window)}{new}: increase() "
                f"and rate() need two{wait}")
    return None


def explain_counts(lookup: EmptyLookup, counts: Sequence[float]) -> str | None:
    """The reason, from the samples per series in the window (a long window); None if unclear."""
    if not counts:
        return _no_series(lookup, lookup.window_s)
    if max(counts) <= 1:
        return (f"only one sample of {_samples_of(lookup)} in the last "
                f"{show_duration(lookup.window_s)}: increase() and rate() need two")
    return None


async def explain_empty(client: MetricsHttpClient, lookup: EmptyLookup, *, now: float) -> str | None:
    """Look the series up (one query) and say why the result was empty; None if unclear."""
    query = HttpQuery("GET", lookup.url, params=[("query", lookup_query(lookup)),
                                                  ("time", f"{now:.3f}")],
                      headers=lookup.headers)
    try:
        payload = await client.query_json(query)
    except QueryUnavailable:
        return None
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, Mapping) or payload.get("status") != "success":
        return None
    result = data.get("result")
    if not isinstance(result, list):
        return None
    try:
        if data.get("resultType") == "matrix":
            return explain_samples(lookup, [_timestamps(r) for r in result], now)
        if data.get("resultType") == "vector":
            return explain_counts(lookup, [float(r["value"][1]) for r in result])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None


def _timestamps(entry: Any) -> SeriesSamples:
    return SeriesSamples(sorted(float(point[0]) for point in entry["values"]))
