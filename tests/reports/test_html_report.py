"""The HTML report without a browser: structure, escaping, redaction, determinism, size."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from tests.reports.browser import EXPERIMENTS, HOSTILE, REPO, hostile_experiment, load_experiment

from canarist.core.experiment import (
    Experiment,
    HistBucket,
    MetricMeta,
    MetricType,
    TaskEntry,
    new_result,
)
from canarist.core.insights import add_value, ensure_insights, register_metric
from canarist.core.redact import REDACTED, redact, redact_text
from canarist.reports import charts
from canarist.reports.html import format_number, format_numbers, render_html

MAX_TYPICAL_BYTES = 1_500_000


class _Collector(HTMLParser):
    """Tags, attributes and text as the browser's parser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {name: render_html(load_experiment(name)) for name in EXPERIMENTS}


def test_every_report_is_self_contained(rendered: dict[str, str]) -> None:
    for name, html in rendered.items():
        doc = parse(html)
        tags = {tag for tag, _ in doc.tags}
        assert "script" not in tags, name
        assert not tags & {"link", "img", "iframe", "object", "embed", "base"}, name
        for tag, attrs in doc.tags:
            for key, value in attrs.items():
                assert not (key in ("src", "href", "xlink:href", "action")
                            and value and not value.startswith("#")), (name, tag, key, value)
                assert not key.startswith("on"), (name, tag, key)
        assert "http-equiv" in html and "default-src 'none'" in html
        assert "@import" not in html and "url(http" not in html


def test_sections_follow_the_experiment(rendered: dict[str, str]) -> None:
    def ids(name: str) -> set[str]:
        return {str(a["id"]) for t, a in parse(rendered[name]).tags if t == "section"}

    assert ids("http-two-versions") == {"status", "slos", "latency", "metrics", "spec"}
    assert ids("http-multi-loop") == {"status", "slos", "latency", "metrics", "history", "spec"}
    assert ids("kserve-two-versions") == {"status", "slos", "metrics", "spec"}
    assert ids("custommetrics-two-versions") == {"status", "slos", "metrics", "spec"}
    assert ids("failed-grpc") == {"status", "latency", "metrics", "spec"}
    assert ids("not-started") == {"status", "no-insights", "spec"}
    assert ids("failed-no-insights") == {"status", "no-insights", "spec"}


def test_a_typical_two_version_report_is_small(rendered: dict[str, str]) -> None:
    for name in ("http-two-versions", "custommetrics-two-versions", "http-multi-loop"):
        assert len(rendered[name].encode()) < MAX_TYPICAL_BYTES, name


def test_same_experiment_same_bytes(rendered: dict[str, str]) -> None:
    for name in ("http-two-versions", "http-multi-loop", "grpc-samples"):
        assert render_html(load_experiment(name)) == rendered[name], name


def test_same_bytes_across_processes(rendered: dict[str, str]) -> None:
    code = (
        "import hashlib, sys\n"
        "from tests.reports.browser import load_experiment\n"
        "from canarist.reports.html import render_html\n"
        "for name in sys.argv[1:]:\n"
        "    print(hashlib.sha256(render_html(load_experiment(name)).encode()).hexdigest())\n"
    )
    names = ["http-two-versions", "grpc-samples"]
    expected = [hashlib.sha256(rendered[n].encode()).hexdigest() for n in names]
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "TZ": "Asia/Kolkata" if seed == "1" else "UTC"}
        out = subprocess.run([sys.executable, "-c", code, *names], cwd=REPO, env=env,
                             capture_output=True, text=True, check=True, timeout=120)
        assert out.stdout.split() == expected


def test_markup_from_users_and_servers_is_text() -> None:
    html = render_html(hostile_experiment())
    doc = parse(html)
    tags = [tag for tag, _ in doc.tags]
    assert "script" not in tags
    assert not [a for t, a in doc.tags if t == "img" or any(k.startswith("on") for k in a)]
    text = "".join(doc.text)
    for hostile in HOSTILE:
        assert hostile in text
    # Charts were drawn, and their labels are escaped text inside the SVG too.
    assert tags.count("svg") >= 3
    for svg in re.findall(r"<svg.*?</svg>", html, re.DOTALL):
        assert "<script" not in svg and "<img" not in svg


def test_spec_secrets_are_redacted() -> None:
    experiment = Experiment(spec=[
        TaskEntry.model_validate({"task": "http", "with": {
            "url": "https://user:pa55@model.example/v1?api_key=k1&x=1",
            "headers": {"Authorization": "Bearer abc123", "X-Tenant": "t-77"},
            "password": "hunter2",
        }}),
        TaskEntry.model_validate({"task": "notify", "with": {
            "url": "https://hooks.example/x", "tokenEnv": "GITHUB_TOKEN",
            "headers": {"Cookie": "session=s3"}}}),
        TaskEntry.model_validate({"run": "curl -H 'Authorization: Bearer zz9' https://x"}),
    ], result=new_result(now=datetime(2024, 1, 1, tzinfo=UTC)))
    html = render_html(experiment)
    for secret in ("pa55", "k1", "abc123", "t-77", "hunter2", "session=s3", "zz9"):
        assert secret not in html, secret
    assert "GITHUB_TOKEN" in html and "x=1" in html and "model.example" in html


def test_redaction_rules() -> None:
    data = {"headers": {"A": "1"}, "metadata": {"k": ["v"]}, "apiKey": "s", "authority": "h:1",
            "tokenFile": "/var/run/t", "author": "me", "nested": {"clientSecret": {"a": 1}},
            "empty_password": ""}
    assert redact(data) == {"headers": {"A": REDACTED}, "metadata": {"k": REDACTED},
                            "apiKey": REDACTED, "authority": "h:1", "tokenFile": "/var/run/t",
                            "author": "me", "nested": {"clientSecret": REDACTED},
                            "empty_password": ""}
    assert redact_text("see http://u:p@h:1/x?password=p&a=b") == \
        f"see http://{REDACTED}@h:1/x?password={REDACTED}&a=b"
    assert redact_text("token: abc and Basic dXNlcjpw") == \
        f"token: {REDACTED} and Basic {REDACTED}"


def test_unavailable_values_show_their_reason(rendered: dict[str, str]) -> None:
    html = rendered["kserve-two-versions-unavailable"]
    # The banner's verdict, the SLO cell, and the metrics table cell (as text and as its
    # hover title).
    assert html.count("Prometheus query returned no data") == 4


def test_no_history_for_a_single_loop(rendered: dict[str, str]) -> None:
    assert 'id="history"' not in rendered["http-one-version"]
    assert rendered["http-multi-loop"].count('class="chart history-chart"') == 15


def test_number_formatting() -> None:
    values = (0.0, -0.0, 200.0, 8.534, 8.5, 41.9999999, 154.26, 0.0312, 1e-5, 12.0004, 2e16)
    assert [format_number(v) for v in values] == \
        ["0", "0", "200", "8.53", "8.50", "42.0", "154", "0.0312", "0.000010", "12.0", "2e+16"]


def test_values_side_by_side_share_one_format() -> None:
    # "3" beside "6.01" was two rules in one row; whole numbers stay whole together.
    assert format_numbers([3.0, 6.01]) == ["3.00", "6.01"]
    assert format_numbers([61.0, 7.0]) == ["61", "7"]
    assert format_numbers([11.9, 31.2, None]) == ["11.9", "31.2", ""]
    assert format_numbers([0.02, 0.0]) == ["0.0200", "0.0000"]


def test_metrics_table_rows_and_slo_cells_use_one_format() -> None:
    result = new_result(now=datetime(2024, 1, 1, tzinfo=UTC))
    insights = ensure_insights(result, 2)
    register_metric(insights, "p/latency-mean", MetricMeta(type=MetricType.GAUGE))
    add_value(insights, 0, "p/latency-mean", 3.0)
    add_value(insights, 1, "p/latency-mean", 6.01)
    from canarist.core.experiment import SLO, SLOLimits, SLOsSatisfied

    insights.slos = SLOLimits(upper=[SLO(metric="p/latency-mean", limit=5)])
    insights.slos_satisfied = SLOsSatisfied(upper=[[True, False]])
    html = render_html(Experiment(spec=[TaskEntry(task="assess")], result=result))
    metrics = html[html.index('id="metrics"'):]
    assert '<span class="value">3.00</span>' in metrics
    assert '<span class="value">6.01</span>' in metrics
    slos = html[html.index('id="slos"'):html.index('id="metrics"')]
    assert "3.00 ≤ 5" in slos and "6.01 &gt; 5" in slos
    # No "% change" against whichever version happens to be version 0.
    assert "%</span>" not in html and 'class="delta"' not in html


def test_metric_names_break_only_after_slash_or_dash() -> None:
    result = new_result(now=datetime(2024, 1, 1, tzinfo=UTC))
    insights = ensure_insights(result, 1)
    register_metric(insights, "kserve-prometheus/latency-p90", MetricMeta(type=MetricType.GAUGE))
    add_value(insights, 0, "kserve-prometheus/latency-p90", 3.0)
    html = render_html(Experiment(spec=[TaskEntry(task="assess")], result=result))
    assert ">kserve-<wbr>prometheus/<wbr>latency-<wbr>p90" in html
    css = html[html.index("<style>"):html.index("</style>")]
    rule = re.search(r"th\.metric \{([^}]*)\}", css)
    assert rule is not None and "anywhere" not in rule.group(1) and "keep-all" in rule.group(1)


def test_history_ticks_are_whole_loops_and_limits_are_in_range() -> None:
    # One value recorded in loop 3 of 3: one point at loop 3, a single tick "3".
    fig = charts.history_figure([charts.History(0, (5.0,))], ["v"], [100.0], num_loops=3)
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [3]
    low, high = ax.get_ylim()
    assert low < 5.0 and high > 100.0  # the limit is drawn, not off the chart
    fig = charts.history_figure([charts.History(0, (1.0, 2.0, 3.0, 4.0))], ["v"], [-50.0],
                                num_loops=4)
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [1, 2, 3, 4]
    assert ax.get_ylim()[0] < -50.0
    many = charts.history_figure([charts.History(0, tuple(float(i) for i in range(30)))], ["v"],
                                 num_loops=30)
    ticks = [t for t in many.axes[0].get_xticks() if 1 <= t <= 30]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_a_long_history_is_a_line_without_a_dot_per_loop() -> None:
    def chart(loops: int) -> str:
        values = tuple(float(i % 7) for i in range(loops))
        return str(charts.history_chart("h", [charts.History(0, values), charts.History(1, values)],
                                        ["a", "b"], [5.0], title="t", num_loops=loops))

    few, many = chart(charts.HISTORY_DOTS), chart(300)
    ticks = many.count("<use ")  # tick marks only
    assert ticks < 20
    assert few.count("<use ") >= ticks - 2 + 2 * charts.HISTORY_DOTS  # a dot per loop and version
    assert len(many) < len(few)  # five times the loops, a smaller chart


def test_histogram_distribution_is_exact() -> None:
    dist = charts.from_buckets(0, "v", [HistBucket(lower=0, upper=2, count=2),
                                        HistBucket(lower=2, upper=4, count=6),
                                        HistBucket(lower=0, upper=2, count=2)])
    assert dist is not None
    assert dist.count == 10
    assert dist.cdf_x == (0.0, 2.0, 4.0) and dist.cdf_y == (0.0, 0.4, 1.0)
    edges = charts.shared_edges([dist], bins=4)
    assert list(edges) == [0.0, 2.0, 4.0]  # never narrower than the stored buckets
    assert [round(p, 9) for p in dist.bin_percent(edges)] == [40.0, 60.0]


def test_sample_distribution() -> None:
    dist = charts.from_samples(1, "v", [3.0, 1.0, float("nan"), 2.0, 2.0])
    assert dist is not None
    assert dist.cdf_x == (1.0, 2.0, 2.0, 3.0) and dist.cdf_y == (0.25, 0.5, 0.75, 1.0)
    assert list(dist.bin_percent([0.5, 1.5, 3.5])) == [25.0, 75.0]
    assert charts.from_samples(0, "v", []) is None
    assert charts.from_buckets(0, "v", [HistBucket(lower=1, upper=2, count=0)]) is None


def test_large_samples_are_thinned_deterministically() -> None:
    values = [float(i % 997) for i in range(50_000)]
    first = charts.from_samples(0, "v", values)
    assert first is not None and len(first.cdf_x) <= charts.MAX_CDF_POINTS
    assert first == charts.from_samples(0, "v", list(reversed(values)))


def test_a_metric_without_observations_is_explained() -> None:
    result = new_result(now=datetime(2024, 1, 1, tzinfo=UTC))
    insights = ensure_insights(result, 2)
    register_metric(insights, "http/latency", MetricMeta(type=MetricType.HISTOGRAM, units="msec"))
    register_metric(insights, "http/request-count", MetricMeta(type=MetricType.COUNTER))
    add_value(insights, 0, "http/request-count", 0.0)
    insights.unavailable[1]["http/latency"] = "no responses were received"
    html = render_html(Experiment(spec=[TaskEntry(task="http")], result=result))
    assert "No distribution for version 0: no observations were recorded" in html
    assert "No distribution for version 1: no responses were received" in html


def test_failed_requests_have_their_own_section_after_the_slos(rendered: dict[str, str]) -> None:
    html = rendered["load-errors"]
    assert html.index('id="slos"') < html.index('id="errors"') < html.index('id="latency"')
    section = html[html.index('id="errors"'):html.index("</section>", html.index('id="errors"'))]
    assert section.count('class="error-row"') == 2
    assert "50 of 50 calls failed" in section and "40 of 40 requests failed" in section
    assert "Model with name sklearn-irs does not exist." in section
    for name in ("kserve-two-versions", "http-one-version", "grpc-samples", "failed-grpc"):
        assert 'id="errors"' not in rendered[name], name
    hostile = render_html(hostile_experiment())
    errors = hostile[hostile.index('id="errors"'):]
    assert "upstream said &lt;script&gt;" in errors and "<script" not in errors
