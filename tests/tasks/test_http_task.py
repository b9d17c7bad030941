"""The `http` task end to end: values -> experiment -> load on a real local server -> metrics."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml
from tests.servers.http_target import ThreadedHttpTarget

from canarist.core.experiment import parse_experiment
from canarist.core.metrics import scalar_value

CANARIST = [sys.executable, "-m", "canarist"]


def launch(tmp_path: Path, *sets: str) -> subprocess.CompletedProcess[str]:
    args = [*CANARIST, "launch", "--run-dir", str(tmp_path)]
    for item in sets:
        args += ["--set", item]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def read(tmp_path: Path):  # type: ignore[no-untyped-def]
    data = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    return parse_experiment(data, source="experiment.yaml")


def test_http_and_assess_against_a_local_server(tmp_path: Path) -> None:
    with ThreadedHttpTarget() as url:
        done = launch(tmp_path, "tasks={http,assess}", f"http.url={url}/predict",
                      "http.numRequests=40", "http.qps=200",
                      "assess.SLOs.upper.http/latency-p99=500",
                      "assess.SLOs.upper.http/error-rate=0")
    assert done.returncode == 0, done.stderr
    assert "msg=task 1: http: completed" in done.stderr
    exp = read(tmp_path)
    insights = exp.result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert scalar_value(insights, 0, "http/request-count").value == 40
    assert scalar_value(insights, 0, "http/error-count").value == 0
    assert scalar_value(insights, 0, "http/error-rate").value == 0
    p50 = scalar_value(insights, 0, "http/latency-p50").value
    assert p50 is not None and 0 < p50 < 500
    assert insights.hist_metric_values[0]["http/latency"]
    assert exp.slos()
    report = subprocess.run([*CANARIST, "report", "--run-dir", str(tmp_path)], capture_output=True,
                            text=True, timeout=60, check=True).stdout
    assert "  http/latency-p99 (msec) <= 500 | true" in report
    assert re.search(r"\n  http/request-count +\| 40\.00\n", report)


def test_error_ranges_and_post(tmp_path: Path) -> None:
    with ThreadedHttpTarget() as url:
        done = launch(tmp_path, "tasks={http,assess}", f"http.url={url}/x?status=503",
                      "http.numRequests=10", "http.qps=-1", "http.payloadStr=hello",
                      "http.contentType=application/json",
                      "assess.SLOs.upper.http/error-count=0")
        with urllib.request.urlopen(f"{url}/__stats", timeout=10) as response:
            last = json.load(response)["last"]
    assert done.returncode == 0, done.stderr
    assert last["method"] == "POST" and last["body"] == "hello"
    assert {k.lower(): v for k, v in last["headers"].items()}["content-type"] == "application/json"
    exp = read(tmp_path)
    insights = exp.result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert scalar_value(insights, 0, "http/error-count").value == 10
    assert scalar_value(insights, 0, "http/error-rate").value == 1
    assert not exp.slos()
    assert subprocess.run([*CANARIST, "assert", "-c", "slos", "--run-dir", str(tmp_path)],
                          capture_output=True, timeout=60, check=False).returncode == 1


def test_slo_percentile_is_measured_without_listing_it(tmp_path: Path) -> None:
    with ThreadedHttpTarget() as url:
        done = launch(tmp_path, "tasks={http,assess}", f"http.url={url}/", "http.numRequests=20",
                      "http.qps=100", "assess.SLOs.upper.http/latency-p97\\.5=1000")
    assert done.returncode == 0, done.stderr
    insights = read(tmp_path).result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert scalar_value(insights, 0, "http/latency-p97.5").value is not None


def test_endpoints_record_per_provider_and_a_dead_one_is_unavailable(tmp_path: Path) -> None:
    with ThreadedHttpTarget() as url:
        done = launch(tmp_path, "tasks={http}", "http.numRequests=5", "http.qps=100",
                      f"http.endpoints.ok.url={url}/ok", "http.endpoints.dead.url=http://127.0.0.1:9/")
    assert done.returncode == 0, done.stderr
    insights = read(tmp_path).result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert scalar_value(insights, 0, "http-ok/request-count").value == 5
    dead = scalar_value(insights, 0, "http-dead/request-count")
    assert dead.value is None and "127.0.0.1:9" in dead.reason


def test_unreachable_url_fails_the_task_with_the_reason(tmp_path: Path) -> None:
    done = launch(tmp_path, "tasks={http}", "http.url=http://127.0.0.1:9/", "http.duration=1s")
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: task 1: http: ")
    exp = read(tmp_path)
    assert exp.result is not None and exp.result.failure
    assert exp.result.failed_task is not None and "127.0.0.1:9" in exp.result.failed_task.reason


def test_bad_inputs_are_rejected_before_anything_runs(tmp_path: Path) -> None:
    done = launch(tmp_path, "tasks={http}", "http.url=http://127.0.0.1:9/", "http.duration=-1s",
                  "http.connections=0")
    assert done.returncode == 2
    assert not (tmp_path / "experiment.yaml").exists()
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 2, done.stderr


def test_missing_payload_file(tmp_path: Path) -> None:
    done = launch(tmp_path, "tasks={http}", "http.url=http://127.0.0.1:9/",
                  "http.payloadFile=nope.json")
    assert done.returncode == 2  # bad input, found when the task reads it
    assert "payloadFile: cannot read" in done.stderr


def test_every_request_failing_is_explained_and_fails_a_latency_slo(tmp_path: Path) -> None:
    body = "no InferenceService serves host 127.0.0.1"
    with ThreadedHttpTarget() as url:
        done = launch(tmp_path, "tasks={http,assess}", f"http.url={url}/v1?status=404&body={body}",
                      "http.numRequests=20", "http.qps=200",
                      "assess.SLOs.upper.http/latency-p99=500")
    assert done.returncode == 0, done.stderr
    # one warning per error kind at the end of the task, with the status and the message
    assert f'level=warning msg=task 1: http: 20 of 20 requests failed: 404 ×20: "{body}"\n' \
        in done.stderr
    exp = read(tmp_path)
    insights = exp.result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert [e.model_dump() for e in insights.errors[0]["http"]] == [
        {"code": "404", "count": 20, "message": body}]
    # error responses are fast: their latency must not make the latency SLO pass
    p99 = scalar_value(insights, 0, "http/latency-p99")
    assert p99.value is None and p99.reason == "all 20 requests failed: 404 ×20"
    assert insights.unavailable[0]["http/latency"] == "all 20 requests failed: 404 ×20"
    assert not exp.slos()
    saved = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    assert saved["result"]["insights"]["errors"] == [
        {"http": [{"code": "404", "count": 20, "message": body}]}]


def test_latencies_of_a_partly_failing_run_are_of_the_successes(tmp_path: Path) -> None:
    with ThreadedHttpTarget() as url:
        done = launch(tmp_path, "tasks={http}", f"http.url={url}/r?reset_every=4",
                      "http.numRequests=40", "http.connections=1", "http.qps=-1")
    assert done.returncode == 0, done.stderr
    insights = read(tmp_path).result.insights  # type: ignore[union-attr]
    assert insights is not None
    assert scalar_value(insights, 0, "http/error-count").value == 10
    assert sum(b.count for b in insights.hist_metric_values[0]["http/latency"]) == 30
    assert "successful requests only" in insights.metrics_info["http/latency-p99"].description
    assert sum(e.count for e in insights.errors[0]["http"]) == 10


def test_a_first_request_404_says_what_the_server_said_and_what_to_check(tmp_path: Path) -> None:
    body = ("no InferenceService serves host '127.0.0.1'; set the Host header to one this ingress "
            "serves: sklearn-iris.default.example.com")  # what the sandbox ingress says
    with ThreadedHttpTarget() as url:
        done = launch(tmp_path, "tasks={http}", f"http.url={url}/v1?status=404&body={body}",
                      "http.duration=1s")
    host = url.removeprefix("http://")
    assert done.returncode == 3, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (f'Error: task 1: http: the first request to {host} returned 404 Not Found: '
                    f'"{body}"; check the URL path and, behind an ingress, the Host header '
                    "(--set http.headers.Host=<host the ingress serves>)")
    assert "http: http:" not in done.stderr and "allowInitialErrors" not in done.stderr


def test_a_first_request_503_suggests_waiting_for_readiness(tmp_path: Path) -> None:
    with ThreadedHttpTarget() as url:
        done = launch(tmp_path, "tasks={http}", f"http.url={url}/v1?status=503&size=0",
                      "http.duration=1s")
    assert done.returncode == 3, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "returned 503 Service Unavailable; " in last  # no body: nothing quoted
    assert "put a `ready` task before `http`, or set http.allowInitialErrors=true" in last
    exp = read(tmp_path)
    assert exp.result is not None and exp.result.failed_task is not None
    assert exp.result.failed_task.reason == last.removeprefix("Error: task 1: http: ")


def test_each_version_is_loaded_at_once_and_judged_against_the_baseline(tmp_path: Path) -> None:
    """`http.versionValues`: the canary (version 0) answers 75 ms slower than the baseline;
    both are loaded together, recorded apart, and the canary fails a 20 % p90 allowance. The
    gap is wide so that a stalled baseline request on a busy machine cannot blur it."""
    with ThreadedHttpTarget() as url:
        done = launch(tmp_path, "tasks={http,assess}", f"http.url={url}/predict",
                      "http.numRequests=300", "http.qps=60",
                      f"http.versionValues[0].url={url}/predict?delay_ms=80",
                      f"http.versionValues[1].url={url}/predict?delay_ms=5",
                      "versionNames={canary,baseline}", "assess.baseline=1",
                      "assess.relative.upper.http/latency-p90=20%",
                      "assess.relative.upper.http/error-rate=0.05")
    assert done.returncode == 0, done.stderr
    insights = read(tmp_path).result.insights
    assert insights is not None and insights.num_versions == 2
    for version in (0, 1):
        assert scalar_value(insights, version, "http/request-count").value == 300
        assert insights.hist_metric_values[version]["http/latency"]
    slow, fast = (scalar_value(insights, v, "http/latency-p50").value for v in (0, 1))
    assert slow is not None and fast is not None and slow > fast + 15
    verdicts = {c.metric: c.verdict for c in insights.comparisons}
    assert verdicts["http/latency-p90"] == "fail"
    assert "assess: http/latency-p90, canary against baseline: fail: " in done.stderr


def test_a_version_without_a_url_is_named(tmp_path: Path) -> None:
    done = launch(tmp_path, "tasks={http}", "http.versionValues[0].url=http://127.0.0.1:1/x",
                  "http.versionValues[1].qps=5")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: http.versionValues[1].url: required: the URL of this version (or a url at the "
        "top level)")
