"""Hostile text in an experiment reaches the terminal escaped, and long text costs little.

Escape sequences and bidi overrides enter through a server's error body, a jq error or
`versionNames`; a 40,000-character base64url payload or a 100,000-character reason enters
through the spec or a failure. The commands a user runs (`report` in every format, `assert`,
`run`/`launch` logs, error lines) are run as processes and their output searched.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from tests.helpers import FIXTURES
from tests.servers.web import RecordingServer, serve_recording, serving_in_thread

from canarist.core.experiment import Experiment, parse_experiment
from canarist.reports.html import render_html
from canarist.reports.text import render_text
from canarist.reports.verdict import render_json
from canarist.tasks import notify
from canarist.tasks.base import TaskContext

CANARIST = [sys.executable, "-m", "canarist"]
# Raw characters that must never reach a terminal.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
TITLE = "\x1b]0;owned\x07"
CLEAR = "\x1b[2J\x1b[H"
FAKE = "\n  all SLOs satisfied"  # would start a line of its own
RLO = "\u202edeliaf\u202c"


def canarist(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CANARIST, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin",
                                                         **_pythonpath()})


def _pythonpath() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME")}


def hostile_experiment() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((FIXTURES / "reports" / "load-errors.yaml").read_text())
    result = data["result"]
    result["versionNames"] = [f"canary{TITLE}{RLO}"]
    result["insights"]["errors"][0]["grpc"][0]["message"] = f"not found{CLEAR}{FAKE}"
    result["failure"] = True
    result["failedTask"] = {"number": 1, "name": "grpc",
                            "reason": f"jq: error: {TITLE}{CLEAR}{FAKE} {RLO}"}
    return data


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(hostile_experiment()))
    return tmp_path


def assert_escaped(text: str, where: str, *, lines: bool = True) -> None:
    found = RAW.search(text)
    assert found is None, f"{where}: raw {found.group(0)!r} at {found.start()}"
    for line in text.splitlines() if lines else ():
        assert not line.startswith("  all SLOs satisfied"), where


@pytest.mark.parametrize("fmt", ["text", "json", "html"])
def test_reports_escape_what_a_terminal_would_obey(fmt: str, run_dir: Path) -> None:
    done = canarist("report", "-o", fmt, "--run-dir", str(run_dir), cwd=run_dir)
    assert done.returncode == 0, done.stderr
    # In HTML a line break inside text is a space: only the characters matter.
    assert_escaped(done.stdout, f"report -o {fmt}", lines=fmt != "html")
    assert_escaped(done.stderr, f"report -o {fmt}: stderr")
    assert done.stderr == ""
    if fmt == "json":
        report = json.loads(done.stdout)
        assert report["versions"][0]["label"] == f"canary{TITLE}{RLO}", "JSON keeps the value"
    else:
        assert "\\x1b]0;owned\\x07" in done.stdout and "\\u202edeliaf\\u202c" in done.stdout


def test_text_report_keeps_its_layout(run_dir: Path) -> None:
    text = canarist("report", "--run-dir", str(run_dir), cwd=run_dir).stdout
    assert "\n  Failed task: 1 (grpc): jq: error: \\x1b]0;owned\\x07\\x1b[2J\\x1b[H\\x0a  all SLOs " \
           "satisfied \\u202edeliaf\\u202c\n" in text
    # A table column is as wide as the escaped name, so the rows still line up.
    rows = [line for line in text.splitlines() if line.startswith("  grpc/error-rate ")]
    header = [line for line in text.splitlines() if line.startswith("  SLO Conditions")]
    assert rows and header and header[0].index("|") == rows[0].index("|")


def test_assert_and_error_lines_escape(run_dir: Path) -> None:
    done = canarist("assert", "-c", "nofailure", "-c", "slos", "--run-dir", str(run_dir),
                     cwd=run_dir)
    assert done.returncode == 1
    assert_escaped(done.stderr, "assert")
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: assert conditions failed: experiment failed: task 1 (grpc): ")
    assert "\\x1b[2J" in error and "\\u202e" in error


@pytest.fixture
def provider() -> Iterator[str]:
    """A metrics provider whose error bodies carry escape sequences."""

    async def handle(request: web.Request) -> web.Response:
        if request.query.get("case") == "bad":
            return web.Response(status=500, text=f"storage {TITLE}{CLEAR}{RLO}")
        return web.json_response({"v": f"{CLEAR}{RLO}"})

    with serving_in_thread(handle) as url:
        yield url


def test_logs_escape_server_bodies_jq_errors_and_version_names(provider: str,
                                                              tmp_path: Path) -> None:
    template = tmp_path / "p.tpl"
    template.write_text(
        "url: {{ .url }}/q\nmetrics:\n"
        "- name: bad\n  type: gauge\n  params: [{name: case, value: bad}]\n  jqExpression: .v\n"
        "- name: text\n  type: gauge\n  params: [{name: case, value: ok}]\n"
        "  jqExpression: 'error(\"jq says \" + .v)'\n")
    values = {"tasks": ["custommetrics", "assess"],
              "custommetrics": {"templates": {"p": str(template)}, "values": {"url": provider}},
              "assess": {"SLOs": {"upper": {"p/bad": 1}}},
              "versionNames": [f"v{TITLE}"]}
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    done = canarist("-l", "debug", "launch", "-f", str(tmp_path / "values.yaml"), "--run-dir",
                    str(tmp_path / "run"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_escaped(done.stderr, "launch -l debug")
    lines = done.stderr.splitlines()
    assert any("p/bad for version 0 is unavailable" in line and "\\x1b]0;owned\\x07" in line
               and "\\u202e" in line for line in lines)
    assert any("p/text for version 0 is unavailable" in line and "\\x1b[2J" in line
               for line in lines), "the jq error quotes the value, escaped"
    # Every line is a log line, or the indented continuation of one.
    assert all(line.startswith(("time=", "  ")) or not line for line in lines)
    asserted = canarist("assert", "-c", "slos", "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert asserted.returncode == 3
    assert_escaped(asserted.stderr, "assert")


# -- long input: linear redaction, shortened display ------------------------------------------

PAYLOAD = base64.urlsafe_b64encode(random.Random(5).randbytes(30_000)).decode()  # 40,000 chars


def long_experiment() -> Experiment:
    data: dict[str, Any] = yaml.safe_load(
        (FIXTURES / "reports" / "failed-no-insights.yaml").read_text())
    data["spec"][0]["with"]["payloadStr"] = PAYLOAD
    data["result"]["failedTask"]["reason"] = "server said: " + "x" * 100_000
    return parse_experiment(data, source="long")


def test_long_values_render_fast_and_are_shortened() -> None:
    experiment = long_experiment()
    render_html(parse_experiment(yaml.safe_load(
        (FIXTURES / "reports" / "failed-no-insights.yaml").read_text()), source="warm-up"))
    for render in (render_text, render_json, render_html):
        started = time.perf_counter()
        shown = render(experiment)
        elapsed = time.perf_counter() - started
        # Was 60 s (html, 40,000-character payload) and over 150 s (json, 100,000-character
        # reason) with quadratic redaction.
        assert elapsed < 5, f"{render.__name__}: {elapsed:.1f}s"
        assert "x" * 1001 not in shown, render.__name__
        assert "more characters)" in shown
        if render is render_html:
            assert PAYLOAD not in shown and PAYLOAD[:1000] in shown
            assert f"… ({len(PAYLOAD) - 1000} more characters)" in shown


def test_notify_with_a_long_payload_in_the_spec_is_fast(tmp_path: Path) -> None:
    async def respond(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    with serve_recording(RecordingServer(), respond) as server:
        experiment = long_experiment()
        inputs = notify.NotifyInputs.model_validate({"url": server.url("/hook"),
                                                     "payloadTemplate": "github"})
        ctx = TaskContext(experiment=experiment, number=1, name="notify", run_dir=tmp_path)
        started = time.perf_counter()
        asyncio.run(notify.run(inputs, ctx))
        elapsed = time.perf_counter() - started
    assert elapsed < 5, f"{elapsed:.1f}s"  # was 62 s
    received = [request.body for request in server.requests]
    [body] = received
    report = json.loads(body)["client_payload"]
    # The payload carries the experiment as stored (a template may need it); the verdict
    # lines are shortened.
    assert report["experiment"]["spec"][0]["with"]["payloadStr"] == PAYLOAD
    assert len(report["summary"]["failedTask"]["reason"]) < 1100
