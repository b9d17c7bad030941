"""Explaining an empty Prometheus result from the samples of the series the query reads.

The lookups themselves run against a real Prometheus in tests/tasks/test_custommetrics_prometheus.py;
here every branch of the explanation is checked on hand-made samples.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from tests.servers.web import serving

from canarist.backends.metrics_http import MetricsHttpClient
from canarist.backends.prometheus_series import (
    EmptyLookup,
    SeriesSamples,
    explain_counts,
    explain_empty,
    explain_samples,
    lookup_query,
    show_duration,
    show_selector,
)

NOW = 1_700_000_000.0
SERIES = 'revision_app_request_count{revision_name="r-00002",service_name="s",}'
WHAT = 'revision_app_request_count `revision_name="r-00002", service_name="s"`'


def lookup(window_s: float, series: str = SERIES) -> EmptyLookup:
    return EmptyLookup(url="http://prom/api/v1/query", series=series, window_s=window_s)


def every(step: float, first_age: float, last_age: float = 0.0) -> SeriesSamples:
    count = int((first_age - last_age) / step)
    return SeriesSamples([NOW - first_age + i * step for i in range(count + 1)])


@pytest.mark.parametrize(("seconds", "shown"), [
    (1, "1s"), (300, "5m"), (450, "7m30s"), (600, "10m"), (3600, "1h"), (5400, "1h30m"),
    (100.4, "1m40s"), (0.5, "500ms"), (7650, "2h7m30s")])
def test_durations_are_shown_without_zero_parts(seconds: float, shown: str) -> None:
    assert show_duration(seconds) == shown


@pytest.mark.parametrize(("series", "shown"), [
    (SERIES, ("revision_app_request_count", '`revision_name="r-00002", service_name="s"`')),
    ('up{job=~"a|b" , instance!="x,y}"}', ("up", '`job=~"a|b", instance!="x,y}"`')),
    ("up", ("up", "")),
    ('{__name__="up"}', ("", '`__name__="up"`')),
    ("up{job=}", ("", "`up{job=}`")),
    ("sum(up)", ("", "`sum(up)`")),
])
def test_selectors_are_shown_as_name_and_matchers(series: str, shown: tuple[str, str]) -> None:
    assert show_selector(series) == shown


def test_the_lookup_reads_raw_samples_up_to_ten_minutes_and_counts_beyond() -> None:
    assert lookup_query(lookup(1)) == f"{SERIES}[600s]"
    assert lookup_query(lookup(600)) == f"{SERIES}[600s]"
    assert lookup_query(lookup(5400)) == f"count_over_time({SERIES}[5400000ms])"


def test_no_series_names_the_labels_and_how_far_back_it_looked() -> None:
    assert explain_samples(lookup(300), [], NOW) == (
        "no series of revision_app_request_count match "
        '`revision_name="r-00002", service_name="s"` in the last 10m')
    assert explain_samples(lookup(1, "up"), [SeriesSamples([])], NOW) == \
        "no series of up in the last 10m"
    assert explain_counts(lookup(7200), []) == (
        "no series of revision_app_request_count match "
        '`revision_name="r-00002", service_name="s"` in the last 2h')


def test_a_window_shorter_than_two_scrape_intervals() -> None:
    for window in (1, 15, 29):
        assert explain_samples(lookup(window), [every(15, 300)], NOW) == (
            f"window {show_duration(window)} is shorter than two scrape intervals of {WHAT} "
            "(2 × 15s): increase() and rate() need two samples in the window; make it 30s or more")
    # the interval is the median gap, so a missed scrape does not change it
    gappy = SeriesSamples([NOW - 60, NOW - 58, NOW - 56, NOW - 40, NOW - 38])
    assert "(2 × 2s)" in str(explain_samples(lookup(3), [gappy], NOW))


def test_series_no_longer_scraped() -> None:
    assert explain_samples(lookup(60), [every(10, 400, 100)], NOW) == (
        f"no samples of {WHAT} in the last 1m: the latest is 1m40s old (no longer scraped?)")


def test_a_series_too_new_for_two_samples() -> None:
    assert explain_samples(lookup(300), [SeriesSamples([NOW - 4])], NOW) == (
        f"only one sample of {WHAT} in the last 5m (its first sample is 4s old): increase() "
        "and rate() need two")
    assert explain_samples(lookup(300), [every(10, 10), SeriesSamples([NOW - 4])], NOW) is None
    # a series scraped before, then not for a while, then again
    back = SeriesSamples([NOW - 500, NOW - 490, NOW - 480, NOW - 5])
    assert explain_samples(lookup(60), [back], NOW) == (
        f"only one sample of {WHAT} in the last 1m: increase() and rate() need two; wait one "
        "scrape interval (10s)")
    assert explain_counts(lookup(3600), [1.0, 1.0]) == (
        f"only one sample of {WHAT} in the last 1h: increase() and rate() need two")


def test_enough_samples_means_something_else_emptied_the_result() -> None:
    assert explain_samples(lookup(300), [every(2, 60)], NOW) is None
    assert explain_counts(lookup(3600), [1.0, 30.0]) is None


ANSWERS: dict[str, tuple[int, Any]] = {
    "matrix": (200, {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[NOW - 30, "1"], [NOW - 15, "2"]]}]}}),
    "vector": (200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
    "garbage": (200, {"status": "success", "data": {"resultType": "matrix",
                                                    "result": [{"values": "x"}]}}),
    "error": (400, {"status": "error", "errorType": "bad_data", "error": "parse error"}),
    "scalar": (200, {"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}}),
}


@contextlib.asynccontextmanager
async def serve(seen: list[dict[str, str]]) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.query))
        if request.path.endswith("/slow"):
            await asyncio.sleep(5)
        status, body = ANSWERS[request.path.rsplit("/", 1)[-1]]
        return web.json_response(body, status=status)

    async with serving(handle) as url:
        yield url


def test_explain_empty_asks_once_and_says_nothing_when_the_answer_is_unusable() -> None:
    async def main() -> tuple[list[str | None], list[dict[str, str]]]:
        seen: list[dict[str, str]] = []
        out: list[str | None] = []
        async with serve(seen) as url, MetricsHttpClient(timeout_s=0.5) as client:
            for case, window in (("matrix", 10), ("vector", 3600), ("garbage", 10),
                                 ("error", 10), ("scalar", 10), ("slow", 10)):
                out.append(await explain_empty(
                    client, EmptyLookup(f"{url}/{case}", {"X-Scope": "t"}, SERIES, window),
                    now=NOW))
        return out, seen

    out, seen = asyncio.run(main())
    assert out[0] is not None and out[0].startswith("window 10s is shorter than two scrape")
    assert out[1] is not None and out[1].startswith("no series of revision_app_request_count")
    assert out[2:] == [None, None, None, None]
    assert seen[0] == {"query": f"{SERIES}[600s]", "time": f"{NOW:.3f}"}
    assert len(seen) == 6
