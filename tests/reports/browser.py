"""Helpers for report tests: fixtures, and a headless Chromium (Debian's) driven by Playwright.

The browser runs with background networking off, and every page it opens has all requests
other than `file://` recorded and aborted, so a report that tried to fetch anything is caught.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import FIXTURES

from canarist.core.experiment import Experiment, parse_experiment
from canarist.core.yamltext import load_yaml

REPO = Path(__file__).resolve().parents[2]
REPORT_FIXTURES = FIXTURES / "reports"
GOLDEN = REPORT_FIXTURES / "golden"
ARTIFACTS = REPO / "test-artifacts" / "reports"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
UPDATE_GOLDEN = os.environ.get("CANARIST_UPDATE_GOLDEN") == "1"

# name -> path of the stored experiment each report test renders.
EXPERIMENTS = {
    "http-one-version": REPORT_FIXTURES / "http-one-version.yaml",
    "http-two-versions": REPORT_FIXTURES / "http-two-versions.yaml",
    "custommetrics-two-versions": REPORT_FIXTURES / "custommetrics-two-versions.yaml",
    "kserve-two-versions": FIXTURES / "iter8" / "kserve-two-versions.yaml",
    "kserve-two-versions-unavailable": REPORT_FIXTURES / "kserve-two-versions-unavailable.yaml",
    "grpc-samples": REPORT_FIXTURES / "grpc-samples.yaml",
    "http-multi-loop": REPORT_FIXTURES / "http-multi-loop.yaml",
    "failed-grpc": REPORT_FIXTURES / "failed-grpc.yaml",
    "load-errors": REPORT_FIXTURES / "load-errors.yaml",
    "failed-no-insights": REPORT_FIXTURES / "failed-no-insights.yaml",
    "not-started": REPORT_FIXTURES / "not-started.yaml",
    "all-unavailable": REPORT_FIXTURES / "all-unavailable.yaml",
    "canary-vs-baseline": REPORT_FIXTURES / "canary-vs-baseline.yaml",
    "agreement": REPORT_FIXTURES / "agreement.yaml",
}


def load_experiment(name: str) -> Experiment:
    path = EXPERIMENTS[name]
    return parse_experiment(load_yaml(path.read_text(), source=str(path)), source=str(path))


def check_golden(path: Path, actual: str) -> None:
    """Compare with a golden file; `CANARIST_UPDATE_GOLDEN=1` rewrites it instead."""
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing; run with CANARIST_UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8")


def require_browser() -> None:
    """Skip when Playwright or Chromium is missing, except in CI, where that is a failure."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install playwright)")
    if not shutil.which(CHROMIUM):
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def launch_browser() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class LoadedPage:
    page: Any
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def text(self, selector: str) -> str:
        return str(self.page.inner_text(selector))

    def count(self, selector: str) -> int:
        return int(self.page.locator(selector).count())


@contextlib.contextmanager
def open_page(browser: Any, path: Path, *, color_scheme: str = "light",
              width: int = 1200) -> Iterator[LoadedPage]:
    """Open a file with the network blocked; collect console errors, requests and dialogs."""
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  color_scheme=color_scheme, java_script_enabled=True)
    try:
        page = context.new_page()
        loaded = LoadedPage(page)

        def route(route: Any) -> None:
            url = route.request.url
            if url.startswith("file://"):
                route.continue_()
            else:
                loaded.blocked_requests.append(url)
                route.abort()

        context.route("**/*", route)
        page.on("request", lambda request: loaded.requests.append(request.url))
        page.on("console", lambda message: loaded.console_errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error: loaded.page_errors.append(str(error)))

        def on_dialog(dialog: Any) -> None:
            loaded.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(path.resolve().as_uri(), wait_until="load")
        yield loaded
    finally:
        context.close()


def screenshot(loaded: LoadedPage, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / f"{name}.png"
    loaded.page.screenshot(path=str(out), full_page=True)
    return out


SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
HOSTILE = (SCRIPT, IMG)


def hostile_experiment() -> Experiment:
    """An experiment whose names, labels, units, reasons, URLs and spec carry markup."""
    from datetime import UTC, datetime

    from canarist.core.experiment import (
        SLO,
        FailedTask,
        HistBucket,
        MetricMeta,
        MetricType,
        SLOLimits,
        SLOsSatisfied,
        TaskEntry,
        VersionName,
        new_result,
    )
    from canarist.core.insights import (
        add_histogram,
        add_sample,
        add_value,
        ensure_insights,
        mark_unavailable,
        record_errors,
        register_metric,
    )

    result = new_result(now=datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    result.num_loops = 2
    result.num_completed_tasks = 1
    result.failure = True
    result.failed_task = FailedTask(number=2, name=f"http{SCRIPT}",
                                    reason=f"GET http://127.0.0.1:9/{IMG} failed: {SCRIPT}")
    insights = ensure_insights(result, 2)
    insights.version_names = [VersionName(version=SCRIPT, track=""),
                              VersionName(version="", track=IMG)]
    gauge = f"p{IMG}/latency"
    counter = f"p/{SCRIPT}"
    hist = f"h{SCRIPT}/latency"
    sample = f"s{IMG}/latency"
    register_metric(insights, gauge, MetricMeta(type=MetricType.GAUGE, units=IMG,
                                                description=SCRIPT))
    register_metric(insights, counter, MetricMeta(type=MetricType.COUNTER, description=IMG))
    register_metric(insights, hist, MetricMeta(type=MetricType.HISTOGRAM, units=SCRIPT,
                                               description=IMG))
    register_metric(insights, sample, MetricMeta(type=MetricType.SAMPLE, units="$x$"))
    for j in range(2):
        for loop in range(3):
            add_value(insights, j, gauge, 10.0 + j + loop)
        add_histogram(insights, j, hist, [HistBucket(lower=1, upper=2, count=3 + j),
                                          HistBucket(lower=2, upper=4, count=2)])
        add_sample(insights, j, sample, [1.0, 2.0, 2.5 + j])
    add_value(insights, 0, counter, 3.0)
    mark_unavailable(insights, 1, counter, f"query {SCRIPT} to http://x/?q={IMG} failed")
    record_errors(insights, 1, f"http-{IMG}", [("503", 3, f"upstream said {SCRIPT}"),
                                              (SCRIPT, 1, IMG)])
    insights.slos = SLOLimits(upper=[SLO(metric=gauge, limit=11)],
                              lower=[SLO(metric=counter, limit=1)])
    insights.slos_satisfied = SLOsSatisfied(upper=[[True, False]], lower=[[True, False]])
    spec = [
        TaskEntry.model_validate({"task": "http", "with": {
            "url": f"http://127.0.0.1:8080/{IMG}?token=hunter2", "headers": {"X-Test": SCRIPT}}}),
        TaskEntry.model_validate({"task": f"http{SCRIPT}", "with": {"note": IMG}}),
        TaskEntry.model_validate({"run": f"echo '{SCRIPT}'"}),
    ]
    return Experiment(spec=spec, result=result)
