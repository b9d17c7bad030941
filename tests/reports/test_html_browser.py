"""The HTML report in a real browser (Debian's headless Chromium), with the network blocked.

Screenshots land in test-artifacts/reports/ for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.reports.browser import (
    ARTIFACTS,
    EXPERIMENTS,
    GOLDEN,
    HOSTILE,
    IMG,
    SCRIPT,
    check_golden,
    hostile_experiment,
    launch_browser,
    load_experiment,
    open_page,
    screenshot,
)

from canarist.core.metrics import scalar_metric_names
from canarist.core.verdict import judge
from canarist.reports.html import render_html
from canarist.reports.summary import latency_metric_names

# Sections whose text is compared with golden files.
KEY_SECTIONS = ("#status", "#no-insights", "#slos", "#errors", "#agreement", "#latency figcaption",
                "#metrics")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch_browser() as launched:
        yield launched


@pytest.fixture(scope="module")
def report_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reports")
    files = {}
    for name in EXPERIMENTS:
        path = folder / f"{name}.html"
        path.write_text(render_html(load_experiment(name)), encoding="utf-8")
        files[name] = path
    return files


def _clean(loaded: Any) -> None:
    assert loaded.console_errors == []
    assert loaded.page_errors == []
    assert loaded.blocked_requests == []
    assert all(url.startswith("file://") for url in loaded.requests)
    assert loaded.dialogs == []


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_report_in_browser(browser: Any, report_files: dict[str, Path], name: str) -> None:
    experiment = load_experiment(name)
    insights = experiment.result.insights if experiment.result else None
    with open_page(browser, report_files[name]) as loaded:
        _clean(loaded)
        assert loaded.count("script") == 0
        assert loaded.count("#status") == 1
        banner = loaded.text("#status")
        assert f"out of {len(experiment.spec)} tasks are complete." in banner
        outcome = judge(experiment).outcome
        assert f"outcome-{outcome}" in loaded.page.get_attribute("#status", "class")
        if not experiment.no_failure():
            failed = experiment.result.failed_task if experiment.result else None
            if failed:
                assert failed.reason.split(":")[-1].strip() in loaded.text("#failed-task")
        if insights is None:
            assert loaded.count("#no-insights") == 1
            failed = experiment.result.failed_task if experiment.result else None
            if failed is None:
                assert "Insights not found" in loaded.text("#no-insights")
            else:
                # A failed experiment says where it failed instead of "retry later".
                assert "retry" not in loaded.text("#no-insights")
                assert f"failed at task {failed.number} ({failed.name})" in \
                    loaded.text("#no-insights")
        else:
            versions = insights.num_versions
            slos = insights.slos
            num_slos = len(slos.upper) + len(slos.lower) if slos else 0
            assert loaded.count("#slos tbody tr") == num_slos
            assert loaded.count("#slos tbody td.cell") == num_slos * versions
            assert loaded.count("#metrics tbody tr") == len(scalar_metric_names(insights))
            assert loaded.count("#metrics thead th.version") == versions
            drawn = [n for n in latency_metric_names(insights)
                     if any(insights.hist_metric_values[j].get(n)
                            or insights.non_hist_metric_values[j].get(n) for j in range(versions))]
            assert loaded.count("#latency figure") == len(latency_metric_names(insights))
            assert loaded.count("#latency svg.chart-svg") == len(drawn)
            # Each latency chart draws one CDF line per version (real SVG paths, not empty).
            if drawn:
                assert loaded.count("#latency svg.chart-svg path") > 20
            # Failed requests: one row per status of each provider, only when there are some.
            failures = [e for j in range(versions) for entries in insights.errors[j].values()
                        for e in entries]
            assert loaded.count("#errors") == (1 if failures else 0)
            assert loaded.count("#errors tr.error-row") == len(failures)
            # Hover descriptions.
            titles = loaded.page.eval_on_selector_all(
                "#metrics th.metric", "els => els.map(e => e.getAttribute('title'))")
            assert any(titles)
        assert loaded.count("#spec details:not([open])") == 1
        screenshot(loaded, f"{name}-light")


def test_multi_loop_history(browser: Any, report_files: dict[str, Path]) -> None:
    with open_page(browser, report_files["http-multi-loop"]) as loaded:
        _clean(loaded)
        assert loaded.count("#history figure") == 15
        assert loaded.count("#history svg.chart-svg") == 15
        caption = loaded.text("#history figure:has(svg[aria-label^='http/latency-mean']) figcaption")
        assert caption == "http/latency-mean (msec)"
        # Four loops: four markers on the latency-mean line.
        markers = loaded.count(
            "#history svg[aria-label^='http/latency-mean'] g[clip-path] use")
        assert markers == 4


def test_dark_scheme_and_print(browser: Any, report_files: dict[str, Path]) -> None:
    with open_page(browser, report_files["http-two-versions"], color_scheme="dark") as loaded:
        _clean(loaded)
        background = loaded.page.evaluate("getComputedStyle(document.body).backgroundColor")
        color = loaded.page.evaluate("getComputedStyle(document.body).color")
        assert background == "rgb(21, 25, 30)" and color == "rgb(227, 231, 235)"
        # Chart ink follows the text colour.
        ink = loaded.page.evaluate(
            "getComputedStyle(document.querySelector('#latency svg text')).fill")
        assert ink == "rgb(227, 231, 235)"
        screenshot(loaded, "http-two-versions-dark")
        loaded.page.emulate_media(media="print")
        assert loaded.page.evaluate("getComputedStyle(document.body).backgroundColor") == \
            "rgb(255, 255, 255)"
        assert loaded.page.evaluate(
            "getComputedStyle(document.querySelector('#spec details')).display") == "none"
        screenshot(loaded, "http-two-versions-print")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        loaded.page.pdf(path=str(ARTIFACTS / "http-two-versions.pdf"), format="A4")


def test_spec_opens_and_is_redacted(browser: Any, report_files: dict[str, Path]) -> None:
    with open_page(browser, report_files["http-one-version"]) as loaded:
        _clean(loaded)
        loaded.page.click("#spec summary")
        spec = loaded.text("#spec pre")
        assert "Authorization: '[redacted]'" in spec
        assert "s3cr3t" not in loaded.page.content()
        assert "url: http://127.0.0.1:" in spec


def test_markup_never_runs(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "hostile.html"
    path.write_text(render_html(hostile_experiment()), encoding="utf-8")
    with open_page(browser, path) as loaded:
        loaded.page.click("#spec summary")
        _clean(loaded)
        page = loaded.page
        assert loaded.count("script") == 0
        assert loaded.count("img") == 0
        assert page.evaluate(
            "[...document.querySelectorAll('*')].filter("
            "e => [...e.attributes].some(a => a.name.startsWith('on'))).length") == 0
        body = page.inner_text("body")
        for hostile in HOSTILE:
            assert hostile in body
        # Text inside the charts is text as well.
        svg_text = page.evaluate(
            "[...document.querySelectorAll('svg text')].map(t => t.textContent).join('\\n')")
        assert SCRIPT in svg_text and IMG in svg_text
        screenshot(loaded, "hostile-light")


def test_the_harness_sees_network_attempts(browser: Any, tmp_path: Path) -> None:
    page_file = tmp_path / "fetches.html"
    page_file.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/pixel.png">'
                         '<script>alert("ran")</script>', encoding="utf-8")
    with open_page(browser, page_file) as loaded:
        assert loaded.blocked_requests == ["http://127.0.0.1:9/pixel.png"]
        assert loaded.dialogs == ["ran"]


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_key_sections_text_golden(browser: Any, report_files: dict[str, Path], name: str) -> None:
    with open_page(browser, report_files[name]) as loaded:
        parts = []
        for selector in KEY_SECTIONS:
            for text in loaded.page.eval_on_selector_all(selector,
                                                         "els => els.map(e => e.innerText)"):
                parts.append(f"== {selector} ==\n{text.strip()}\n")
    check_golden(GOLDEN / f"{name}.html.txt", "\n".join(parts))


# What each fixture's verdict must be, and words its banner headline must hold.
EXPECTED_VERDICTS = {
    "http-multi-loop": ("pass", "✔ Passed: all 2 SLOs are satisfied"),
    "http-two-versions": ("fail", "✖ Rejected: 3 of 4 SLOs not satisfied by version 1"),
    "all-unavailable": ("inconclusive", "? Cannot decide: 3 of 3 SLOs could not be checked for version 0 and "
                                         "version 1: values unavailable"),
    "failed-grpc": ("fail", "✖ Rejected: the experiment failed at task 2 (grpc)"),
    "failed-no-insights": ("fail", "✖ Rejected: the experiment failed at task 1 (http)"),
    "load-errors": ("fail", "✖ Rejected: 1 of 4 SLOs not satisfied by version 0"),
    "not-started": ("inconclusive", "? Cannot decide: nothing was judged"),
    "kserve-two-versions-unavailable": ("fail", "✖ Rejected: 1 of 3 SLOs not satisfied"),
    "agreement": ("inconclusive", "? Cannot decide: 2 of 2 objectives (1 SLO and 1 comparison "
                                  "with the baseline) could not be decided for canary"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_VERDICTS))
def test_banner_states_the_verdict_first(browser: Any, report_files: dict[str, Path],
                                         name: str) -> None:
    """The banner's headline is the verdict (icon and word), the same as text and JSON say;
    the experiment's progress comes after it."""
    from canarist.reports.text import render_text
    from canarist.reports.verdict import verdict

    outcome, headline = EXPECTED_VERDICTS[name]
    experiment = load_experiment(name)
    data = verdict(experiment)
    assert (data["verdict"], data["reason"]) == (outcome, judge(experiment).reason)
    word = {"pass": "PASSED", "fail": "REJECTED", "inconclusive": "CANNOT DECIDE"}[outcome]
    first = render_text(experiment).split("\n")[1:3]
    assert first[0].startswith("Verdict: ") and f" {word} ({outcome})" in first[0]
    assert first[1] == f"  {data['reason']}"
    with open_page(browser, report_files[name]) as loaded:
        _clean(loaded)
        assert loaded.page.get_attribute("#status", "data-verdict") == outcome
        title = loaded.text("#status-title")
        # Word and icon, not colour alone (the word is upper-cased by CSS).
        assert title.replace("\n", " ").lower().startswith(headline.lower())
        banner = loaded.text("#status")
        assert banner.index(title) < banner.index("tasks are complete")
        # A green banner only ever says Passed.
        color = loaded.page.evaluate(
            "getComputedStyle(document.querySelector('#status')).borderLeftColor")
        assert (color == "rgb(26, 127, 55)") == (outcome == "pass")
        for check in judge(experiment).violated:
            assert check.metric in banner.replace("\u200b", "")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        loaded.page.locator("#status").screenshot(path=str(ARTIFACTS / f"{name}-banner.png"))


def test_agreement_shows_rates_classes_and_disagreements(browser: Any,
                                                         report_files: dict[str, Path]) -> None:
    """The sandbox's two iris models: a row per version, the canary's confusion table with its
    four disagreeing predictions in red cells, and those four rows' requests and answers."""
    with open_page(browser, report_files["agreement"]) as loaded:
        _clean(loaded)
        assert loaded.count("#agreement tr.agreement-row") == 2
        assert loaded.text("#agreement tr.agreement-row[data-version='0'] td.rate") == "97.3 %"
        assert loaded.count("#agreement .confusion-table td.same") == 3
        assert [int(n) for n in loaded.page.eval_on_selector_all(
            "#agreement .confusion-table td.differ", "els => els.map(e => e.innerText)")] == [1, 3]
        assert loaded.count("#agreement .disagreements-table tbody tr") == 4
        assert "[[5.9,3.2,4.8,1.8]]" in loaded.text("#agreement .disagreements-table")
        undecided = loaded.text("#slos td.undecided")
        assert undecided.startswith("? 0.973 ≥ 0.95") and "cannot tell yet: 146 of 150" in undecided
        screenshot(loaded, "agreement-section")
