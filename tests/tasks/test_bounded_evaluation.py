"""Runaway jq expressions and Go templates are stopped at the task's deadline (or the default
evaluation limit), in a child that sees no environment and is always reaped.

The hostile examples run through the CLI as a user runs them: the task fails with one line
naming the expression or template and the bound, experiment.yaml records it, `report` and
`assert` still work, and no process of the run is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.servers.web import answering, serving_in_thread

from canarist.backends import bounded
from canarist.backends.bounded import Deadline, Limit, Overrun, evaluate, evaluate_async, limit_for
from canarist.backends.clock import Clock
from canarist.core.gotemplate.errors import GoTemplateError

CANARIST = [sys.executable, "-m", "canarist"]
TIMEOUT_S = 3.0
SLACK_S = 5.0  # generous: a loaded machine, and log times in whole seconds
HANG_S = 90.0  # a whole command, start-up on a loaded machine included
SECRET = "planted-secret-7b1e0c9d"
LIMIT = Limit(TIMEOUT_S, "3s (task timeout)")


# -- helpers -------------------------------------------------------------------------------------


def _stat_fields(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, ...


def children_of(pid: int) -> list[int]:
    """Live or zombie processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        fields = _stat_fields(entry) if entry.isdigit() else None
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def children_since(before: list[int]) -> list[int]:
    """This process's children that were not there before: session fixtures started by earlier
    tests (a Prometheus, a sandbox) are ours too, and are not the child under test."""
    return sorted(set(children_of(os.getpid())) - set(before))


def in_group(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        fields = _stat_fields(entry) if entry.isdigit() else None
        if fields is not None and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with serving_in_thread(answering({"v": 3, "data": {"result": [{"value": [0, "1"]}]}})) as url:
        yield url


def template_with(jq: str, *, more: str = "") -> str:
    return ("url: {{ .url }}/api/v1/query\nmetrics:\n"
            f"- name: m\n  type: gauge\n  jqExpression: {json.dumps(jq)}\n" + more)


def write_experiment(run_dir: Path, spec: list[dict[str, Any]]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "experiment.yaml").write_text(yaml.safe_dump({"spec": spec}))


def canarist(*args: str, run_dir: Path, env: dict[str, str] | None = None,
             timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run canarist in its own process group; assert nothing of that group outlives it."""
    start = time.monotonic()
    with subprocess.Popen([*CANARIST, *args], cwd=run_dir, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True,
                          env={**os.environ, **(env or {})}) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        elapsed = time.monotonic() - start
        left = in_group(process.pid)
    assert left == [], f"processes of the run left behind: {left}"
    done = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return done, elapsed


_LOG_TIME = re.compile(r"^time=(\S+ \S+) level=\w+ msg=task 1: \w+: (started|failure)", re.M)


def task_seconds(stderr: str) -> float:
    """From the task's "started" log line to its "failure" line (whole seconds)."""
    times = {event: datetime.fromisoformat(stamp) for stamp, event in _LOG_TIME.findall(stderr)}
    assert set(times) == {"started", "failure"}, stderr
    return (times["failure"] - times["started"]).total_seconds()


class ScriptedClock(Clock):
    """A clock that reads the given times in turn, and fails a test that reads it once more."""

    def __init__(self, *times: float) -> None:
        self.left = list(times)

    def monotonic(self) -> float:
        assert self.left, "the clock was read after its last time"
        return self.left.pop(0)


def run_alone(run_dir: Path, task: dict[str, Any]) -> tuple[subprocess.CompletedProcess[str], float]:
    """`canarist run` an experiment of `task` alone; the run and the task's seconds (its log).

    The whole command is bounded (HANG_S) and so is the task: a bound overrun is stopped and
    reaped within a generous SLACK_S (a loaded machine; log times in whole seconds).
    """
    write_experiment(run_dir, [task])
    done, elapsed = canarist("run", "--run-dir", ".", run_dir=run_dir)
    assert elapsed < HANG_S
    seconds = task_seconds(done.stderr)
    bound = float(task["timeout"].removesuffix("s")) if "timeout" in task else bounded.DEFAULT_LIMIT_S
    assert seconds <= bound + SLACK_S, done.stderr
    return done, seconds


def custommetrics(provider: str, template: str = "fake.tpl", timeout: str | None = "3s"
                  ) -> dict[str, Any]:
    task: dict[str, Any] = {"task": "custommetrics",
                            "with": {"templates": {"fake": template}, "values": {"url": provider}}}
    if timeout is not None:
        task["timeout"] = timeout
    return task


def assert_recorded_and_reports_work(run_dir: Path, reason: str) -> None:
    result = yaml.safe_load((run_dir / "experiment.yaml").read_text())["result"]
    assert result["failure"] is True
    assert result["failedTask"]["reason"] == reason
    for fmt in ("text", "json", "html"):
        report, _ = canarist("report", "-o", fmt, "--run-dir", ".", run_dir=run_dir)
        assert report.returncode == 0, report.stderr
    text, _ = canarist("report", "--run-dir", ".", run_dir=run_dir)
    assert "did not finish" in text.stdout or "ran out of memory" in text.stdout \
        or "crashed the evaluator" in text.stdout or reason[:40] in text.stdout
    checked, _ = canarist("assert", "-c", "completed", "-c", "nofailure", "--run-dir", ".",
                          run_dir=run_dir)
    assert checked.returncode in (1, 3), checked.stderr
    assert "Traceback" not in checked.stderr
    assert checked.stderr.strip().splitlines()[-1].startswith(("Error:", "experiment")) or \
        "FAIL" in checked.stdout + checked.stderr


# -- the child itself ----------------------------------------------------------------------------


def test_a_result_comes_back_and_an_error_is_raised_as_it_was() -> None:
    before = children_of(os.getpid())
    assert evaluate(lambda mark: {"a": [1, 2.5, None]}, LIMIT) == {"a": [1, 2.5, None]}
    failure = GoTemplateError("t:1:2: boom", go_message="template: t:1: boom", line=1, col=2)

    def fails(mark: bounded.Mark) -> None:
        raise failure

    with pytest.raises(GoTemplateError) as caught:
        evaluate(fails, LIMIT)
    assert (caught.value.message, caught.value.go_message, caught.value.line,
            caught.value.col) == ("t:1:2: boom", "template: t:1: boom", 1, 2)
    assert children_since(before) == []


def test_a_runaway_child_is_killed_at_the_deadline_and_named_by_its_mark() -> None:
    before = children_of(os.getpid())
    def spin(mark: bounded.Mark) -> None:
        mark(0)
        mark(2)
        while True:
            pass

    # The wait runs on its clock: stopped once the clock has passed the limit, not before.
    clock = ScriptedClock(100.0, 100.3, 100.6, 100.9, 101.0)
    start = time.monotonic()
    with pytest.raises(Overrun) as caught:
        evaluate(spin, Limit(1.0, "1s (task timeout)"), clock=clock)
    assert time.monotonic() - start < 1.0 + SLACK_S  # a hang guard
    assert clock.left == []
    assert (caught.value.kind, caught.value.at) == ("time", 2)
    assert str(caught.value) == "did not finish within 1s (task timeout)"
    assert children_since(before) == []


def test_memory_is_capped_and_a_crash_is_reported() -> None:
    before = children_of(os.getpid())
    def hog(mark: bounded.Mark) -> int:
        return len(bytearray(bounded.MEMORY_LIMIT + (256 << 20)))

    with pytest.raises(Overrun) as caught:
        evaluate(hog, LIMIT)
    assert caught.value.kind == "memory"
    assert str(caught.value) == "ran out of memory (limit 1024 MiB)"
    with pytest.raises(Overrun) as crashed:
        evaluate(lambda mark: os.abort(), LIMIT)
    assert crashed.value.kind == "crash"
    assert "SIGABRT" in str(crashed.value)
    assert children_since(before) == []


def test_the_child_sees_no_environment_and_writes_nothing(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CANARIST_PLANTED", SECRET)

    def look(mark: bounded.Mark) -> dict[str, str]:
        print("to stdout", SECRET)
        os.write(2, b"to stderr\n")
        return dict(os.environ)

    assert evaluate(look, LIMIT) == {}
    out, err = capfd.readouterr()
    assert SECRET not in out + err
    assert "to stderr" not in err


def test_cancelling_the_wait_kills_and_reaps_the_child() -> None:
    before = children_of(os.getpid())

    async def main() -> None:
        waiting = asyncio.ensure_future(evaluate_async(lambda mark: time.sleep(60), LIMIT))
        await asyncio.sleep(0.3)
        assert len(children_since(before)) == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert children_since(before) == []

    asyncio.run(main())


def test_a_child_dies_with_a_parent_killed_by_sigkill(tmp_path: Path) -> None:
    script = ("import sys, time\n"
              "from canarist.backends.bounded import Limit, evaluate\n"
              "def spin(mark):\n    while True: pass\n"
              "print('ready', flush=True)\n"
              "evaluate(spin, Limit(120, '120s'))\n")
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                          text=True) as parent:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while not (children := children_of(parent.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(children) == 1
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _stat_fields(str(children[0])) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    fields = _stat_fields(str(children[0]))
    assert fields is None or fields[0] == "Z", fields  # gone, or a zombie of init's to reap


def test_the_limit_is_the_tasks_remaining_timeout_else_the_default() -> None:
    default = limit_for(None)
    assert (default.seconds, str(default)) == (bounded.DEFAULT_LIMIT_S, "10s (evaluation limit)")
    limit = limit_for(Deadline(103.0, "3s"), clock=ScriptedClock(100.0))
    assert limit.seconds == pytest.approx(3 - bounded.MARGIN_S)  # stopped just before the task
    assert str(limit) == "3s (task timeout)"
    assert limit_for(Deadline(103.0, "3s"), clock=ScriptedClock(102.95)).seconds == 0
    assert limit_for(Deadline(99.0, "1s"), clock=ScriptedClock(100.0)).seconds == 0
    # the real clock by default
    assert 0 < limit_for(Deadline(time.monotonic() + 3600, "1h")).seconds <= 3600


# -- hostile jq expressions, as a user runs them -----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("expression", [
    "def f: f; f",
    "repeat(1)|select(false)",
    "[range(1e8)]",
    "until(false;.)",
    "def f: 1 + f; f",
])
def test_a_runaway_jq_expression_fails_the_task_at_its_timeout(
        tmp_path: Path, provider: str, expression: str) -> None:
    (tmp_path / "fake.tpl").write_text(template_with(expression))
    # A deep recursion may exhaust the child's stack or memory before the deadline (how soon
    # depends on the machine); then it fails sooner, never later.
    done, _ = run_alone(tmp_path, custommetrics(provider))
    assert done.returncode == 2, done.stderr
    reason = f"fake/m (version 0): jqExpression {expression!r} "
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: task 1: custommetrics: {reason}"), done.stderr
    assert last.endswith(("did not finish within 3s (task timeout)",
                          "ran out of memory (limit 1024 MiB)",
                          "crashed the evaluator: it ran out of memory or stack (SIGABRT)")), last
    assert "Traceback" not in done.stderr
    assert_recorded_and_reports_work(tmp_path, last.removeprefix("Error: task 1: custommetrics: "))


@pytest.mark.slow
def test_without_a_task_timeout_the_default_limit_stops_jq(tmp_path: Path, provider: str) -> None:
    (tmp_path / "fake.tpl").write_text(template_with("def f: f; f"))
    done, _ = run_alone(tmp_path, custommetrics(provider, timeout=None))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: task 1: custommetrics: fake/m (version 0): jqExpression 'def f: f; f' "
        "did not finish within 10s (evaluation limit)")


def test_jq_reads_neither_the_environment_nor_local_files(tmp_path: Path, provider: str) -> None:
    (tmp_path / "secretmod.json").write_text(json.dumps({"token": SECRET}))
    (tmp_path / "secretlib.jq").write_text(f'def token: "{SECRET}";')
    expressions = {
        "env-object": "$ENV | tostring",
        "env-function": "env | tostring",
        "env-key": "$ENV.CANARIST_PLANTED",
        "env-error": 'error($ENV | tostring)',
        "env-in-def": "def g: env; g | tostring",
        "import-data": f'import "secretmod" as $d {{search: "{tmp_path}"}}; $d | tostring',
        "include-code": f'include "secretlib" {{search: "{tmp_path}"}}; token',
        "import-after-comment": f'# note\nimport "secretmod" as $d {{search: "{tmp_path}"}}; $d',
    }
    metrics = "".join(f"- name: {name}\n  type: gauge\n  jqExpression: {json.dumps(jq)}\n"
                      for name, jq in expressions.items())
    (tmp_path / "fake.tpl").write_text("url: {{ .url }}/api/v1/query\nmetrics:\n" + metrics)
    write_experiment(tmp_path, [custommetrics(provider, timeout="20s")])
    done, _ = canarist("-l", "debug", "run", "--run-dir", ".", run_dir=tmp_path,
                       env={"CANARIST_PLANTED": SECRET})
    assert done.returncode == 0, done.stderr
    outputs = [done.stdout, done.stderr, (tmp_path / "experiment.yaml").read_text()]
    for fmt in ("text", "json", "html"):
        report, _ = canarist("report", "-o", fmt, "--run-dir", ".", run_dir=tmp_path,
                             env={"CANARIST_PLANTED": SECRET})
        assert report.returncode == 0, report.stderr
        outputs.append(report.stdout)
    for output in outputs:
        assert SECRET not in output
    reasons = yaml.safe_load((tmp_path / "experiment.yaml").read_text())["result"]["insights"]
    unavailable = json.dumps(reasons)
    assert "import, include and module directives are not allowed" in unavailable
    assert 'value is not a number: \\"{}\\"' in unavailable  # JSON-escaped


# -- hostile templates -------------------------------------------------------------------------

FAN_OUT = ('{{define "x"}}{{if lt (len .) 40}}{{template "x" (append . 1)}}'
           '{{template "x" (append . 1)}}{{end}}{{end}}{{template "x" list}}')


@pytest.mark.slow
def test_a_runaway_provider_template_fails_the_task_at_its_timeout(
        tmp_path: Path, provider: str) -> None:
    (tmp_path / "fake.tpl").write_text(FAN_OUT + template_with(".v"))
    done, _ = run_alone(tmp_path, custommetrics(provider))
    assert done.returncode == 2, done.stderr
    reason = ("templates.fake (fake.tpl): fake: executing the template did not finish within 3s "
              "(task timeout)")
    assert done.stderr.strip().splitlines()[-1] == f"Error: task 1: custommetrics: {reason}"
    assert_recorded_and_reports_work(tmp_path, reason)


@pytest.mark.slow
def test_a_runaway_template_is_bad_input_at_launch(tmp_path: Path) -> None:
    (tmp_path / "fake.tpl").write_text(FAN_OUT + template_with(".v"))
    done, elapsed = canarist(
        "launch", "--dry", "--set", "tasks={custommetrics}",
        "--set", "custommetrics.templates.fake=fake.tpl", run_dir=tmp_path)
    assert elapsed < HANG_S
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: custommetrics.templates.fake: fake: executing the template did not finish "
        "within 10s (evaluation limit)")
    assert not (tmp_path / "experiment.yaml").exists()
    rendered, _ = canarist("template", "render", "--raw", "fake.tpl", run_dir=tmp_path)
    assert rendered.returncode == 2
    assert rendered.stderr.strip().splitlines()[-1].endswith(
        "executing the template did not finish within 10s (evaluation limit)")


@pytest.mark.slow
def test_a_runaway_notify_payload_template_fails_the_task(tmp_path: Path) -> None:
    (tmp_path / "payload.tpl").write_text(FAN_OUT)
    done, _ = run_alone(tmp_path, {"task": "notify", "timeout": "3s",
                                   "with": {"url": "http://127.0.0.1:9/hook",
                                            "payloadTemplateFile": "payload.tpl"}})
    assert done.returncode == 1, done.stderr
    reason = ("payload template: payload.tpl: executing the template did not finish within 3s "
              "(task timeout)")
    assert done.stderr.strip().splitlines()[-1].endswith(reason), done.stderr
    assert_recorded_and_reports_work(
        tmp_path, done.stderr.strip().splitlines()[-1].removeprefix("Error: task 1: notify: "))

