"""What each parser is fed, and what it may answer.

`feed(parser, case, workdir)` runs one input through the code a command runs on it, in
this process, and returns None when the answer is acceptable: success, or canarist's
documented input error (`InputError`, exit 2; for jq at run time the metric is unavailable
with a reason). Anything else raises, and the worker records it as a failure.

`cli_argv(parser, case, workdir, index)` writes the files a command needs and returns the
command line (without `canarist`) with the exit codes that command may end with.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CANARY_ENV = "CANARIST_FUZZ_CANARY"
CANARY = "canary-6b1f0e9d3c"
"""Set in the worker's environment; no output may contain it (jq must not read the env)."""

MAX_MESSAGE = 10_000
"""Longest acceptable error message: an input is echoed in part, never whole."""

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TEMPLATE_DATA: dict[str, Any] = {
    "a": 1, "s": "str", "n": None, "l": [1, 2, 3], "m": {"b": 2, "c": {"d": 3}},
    "big": 10**20, "labels": {"service_name": "s"}, "elapsedTimeSeconds": 600,
}
PAYLOAD: dict[str, Any] = {
    "status": "success",
    "data": {"resultType": "vector", "result": [
        {"metric": {"le": "0.1"}, "value": [1714564800.0, "3"]},
        {"metric": {"le": "+Inf"}, "value": [1714564800.0, "5"]},
    ]},
}


class Unacceptable(Exception):
    """The answer is not one a user should see (wrong kind, leak, unbounded message)."""


def file_bytes(case: str) -> bytes:
    return case.encode("utf-8", "surrogateescape")


def _check_message(message: str) -> None:
    if len(message) > MAX_MESSAGE:
        raise Unacceptable(f"error message of {len(message)} characters (echoes the input "
                           f"instead of an excerpt): {message[:200]!r}...")
    if CANARY in message:
        raise Unacceptable(f"the environment leaked into a message: {message[:300]!r}")


def _input_error(exc: Exception) -> None:
    from canarist.core.errors import InputError, SpecError

    if not isinstance(exc, InputError):
        raise exc
    for problem in (exc.problems if isinstance(exc, SpecError) else [exc.message]):
        _check_message(problem)


WARM_UP = {
    "strvals": "a=1", "values": "tasks: [http]\nhttp: {url: 'http://127.0.0.1:1/'}\n",
    "experiment": "spec:\n- task: http\n  with: {url: 'http://127.0.0.1:1/'}\n",
    "template": "{{ .a }}", "jq": ".data.result[0].value[1] | tonumber", "duration": "1s",
    "cron": "* * * * *",
    "kubeconfig": "clusters: [{name: c, cluster: {server: 'https://k'}}]\n"
                  "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n",
}


def warm_up(parser: str, workdir: Path) -> None:
    """Import what `parser` needs (seconds, with numpy and scipy) before the clock runs."""
    feed(parser, WARM_UP[parser], workdir)


def feed(parser: str, case: str, workdir: Path) -> None:
    try:
        FEEDERS[parser](case, workdir)
    except Unacceptable:
        raise
    except Exception as exc:
        _input_error(exc)


def _strvals(case: str, workdir: Path) -> None:
    from canarist.core import values

    if case.startswith("json:"):
        values.parse_set_json(case[5:])
    elif case.startswith("string:"):
        values.parse_set_string(case[7:])
    else:
        values.parse_set(case)


_CALLS = 0


def _through_file(case: str) -> bool:
    """Whether to read this case from a file as the command does (every non-UTF-8 case and
    one in ten others), or to parse the same text in memory (the same parser, faster)."""
    global _CALLS
    _CALLS += 1
    return _CALLS % 10 == 0 or any("\udc80" <= c <= "\udcff" for c in case)


def _values(case: str, workdir: Path) -> None:
    from canarist.cli.common import _read_values_file
    from canarist.core.experiment import experiment_to_data
    from canarist.core.yamltext import dump_yaml, load_yaml
    from canarist.runners.engine import experiment_from_values
    from canarist.tasks.registry import TASKS

    if _through_file(case):
        path = workdir / "values.yaml"
        path.write_bytes(file_bytes(case))
        loaded = _read_values_file(str(path))
    else:
        loaded = load_yaml(case, source="values.yaml") or {}
        if not isinstance(loaded, dict):
            return  # _read_values_file's ValuesError
    experiment = experiment_from_values(loaded, TASKS, now=NOW, base_dir=workdir)
    dump_yaml(experiment_to_data(experiment))


_REPORTS = 0


def _experiment(case: str, workdir: Path) -> None:
    global _REPORTS
    from canarist.cli.common import render_report
    from canarist.core.errors import InputError
    from canarist.core.experiment import parse_experiment
    from canarist.core.yamltext import load_yaml
    from canarist.runners.engine import prepare
    from canarist.stores.file import FileStore
    from canarist.tasks.registry import TASKS

    if _through_file(case):
        (workdir / "experiment.yaml").write_bytes(file_bytes(case))
        experiment = FileStore(workdir).read()
    else:  # FileStore.read without the file
        data = load_yaml(case, source="experiment.yaml")
        if data is None:
            return  # FileStore.read's SpecError
        experiment = parse_experiment(data, source="experiment.yaml")
    _REPORTS += 1
    # HTML (charts) for one in 40, and for every input with YAML anchors
    html = _REPORTS % 40 == 0 or "&" in case
    formats = ["text", "json"] + (["html"] if html else [])
    for fmt in formats:  # `report` must work on every experiment that reads
        output = render_report(experiment, fmt)
        if CANARY in output:
            raise Unacceptable("the environment leaked into a report")
    try:
        prepare(experiment.spec, TASKS, base_dir=workdir)  # what `run` checks first
    except InputError as exc:
        _input_error(exc)


def _template(case: str, workdir: Path) -> None:
    from canarist.core import gotemplate

    output = gotemplate.parse(case, name="fuzz").execute(TEMPLATE_DATA)
    if CANARY in output:
        raise Unacceptable("a template read the environment")


def _jq(case: str, workdir: Path) -> None:
    from canarist.backends import bounded
    from canarist.backends.providers.extract import MetricUnavailable, extract_buckets, extract_value

    # each evaluation runs in a bounded child; 2 s instead of 10 s keeps a hostile one cheap
    # and inside the harness' 5 s per input
    bounded.DEFAULT_LIMIT_S = 2.0  # type: ignore[misc]

    try:
        if len(case) % 2:
            extract_buckets(PAYLOAD, case)
        else:
            extract_value(PAYLOAD, case)
    except MetricUnavailable as exc:
        _check_message(exc.reason)


def _duration(case: str, workdir: Path) -> None:
    from canarist.core.durations import format_duration_ns, parse_duration_ns

    nanoseconds = parse_duration_ns(case, field="timeout")
    again = parse_duration_ns(format_duration_ns(nanoseconds), field="timeout")
    if again != nanoseconds:
        raise Unacceptable(f"{case!r} -> {nanoseconds} ns -> {format_duration_ns(nanoseconds)!r} "
                           f"-> {again} ns")


def _cron(case: str, workdir: Path) -> None:
    from canarist.core.chart import render_chart

    render_chart({"tasks": ["http"], "http": {"url": "http://127.0.0.1:1/"},
                  "runner": "cronjob", "cronjobSchedule": case}, now=NOW)


def _kubeconfig(case: str, workdir: Path) -> None:
    """Read as `--kubeconfig` reads it, and the credentials a request would send."""
    from canarist.backends.kube.config import load_configuration
    from canarist.backends.kube.transport import Transport

    path = workdir / "kubeconfig"
    path.write_bytes(file_bytes(case))
    (workdir / "t").write_text("token\n")
    Transport(load_configuration(str(path))).auth_headers()


FEEDERS = {"strvals": _strvals, "values": _values, "experiment": _experiment,
           "template": _template, "jq": _jq, "duration": _duration, "cron": _cron,
           "kubeconfig": _kubeconfig}


# -- the command line ------------------------------------------------------------------------

INPUT_CODES = frozenset({0, 2})


def cli_argv(parser: str, case: str, workdir: Path, index: int,
             prometheus: str | None) -> tuple[list[str], frozenset[int]]:
    d = str(workdir)
    if parser == "strvals":
        for prefix, flag in (("json:", "--set-json"), ("string:", "--set-string")):
            if case.startswith(prefix):
                return ["launch", "--dry", "--runDir", d, flag, case[len(prefix):]], INPUT_CODES
        return ["launch", "--dry", "--runDir", d, "--set", case], INPUT_CODES
    if parser in ("values", "duration", "cron"):
        path = workdir / "values.yaml"
        if parser == "values":
            path.write_bytes(file_bytes(case))
        elif parser == "duration":
            path.write_bytes(file_bytes(
                "tasks: [http]\nhttp:\n  url: http://127.0.0.1:1/\n  duration: "
                + json.dumps(case, ensure_ascii=False) + "\n"))
        else:
            path.write_bytes(file_bytes(
                "tasks: [http]\nhttp: {url: 'http://127.0.0.1:1/'}\nrunner: cronjob\n"
                "cronjobSchedule: " + json.dumps(case, ensure_ascii=False) + "\n"))
            return ["k", "launch", "--dry", "-f", str(path)], INPUT_CODES
        return ["launch", "--dry", "--runDir", str(workdir / "run"), "-f", str(path)], INPUT_CODES
    if parser == "kubeconfig":
        (workdir / "kubeconfig").write_bytes(file_bytes(case))
        (workdir / "values.yaml").write_text("tasks: [http]\nhttp: {url: 'http://127.0.0.1:1/'}\n")
        return ["k", "launch", "--dry", "--kubeconfig", str(workdir / "kubeconfig"),
                "-f", str(workdir / "values.yaml")], INPUT_CODES
    if parser == "experiment":
        (workdir / "experiment.yaml").write_bytes(file_bytes(case))
        fmt = ["text", "json", "html"][index % 3]
        return ["report", "-o", fmt, "--run-dir", d], INPUT_CODES
    if parser == "template":
        (workdir / "t.tpl").write_bytes(file_bytes(case))
        return ["template", "render", "--raw", str(workdir / "t.tpl"), "--set", "a=1"], INPUT_CODES
    if parser == "jq":
        (workdir / "t.tpl").write_text(
            "url: {{ .url }}\nprovider: p\nmethod: GET\nmetrics:\n- name: m\n  type: gauge\n"
            "  params: [{name: query, value: up}]\n  jqExpression: {{ .jq | toJson }}\n",
            encoding="utf-8")
        (workdir / "values.yaml").write_bytes(file_bytes(
            "tasks: [custommetrics]\ncustommetrics:\n  timeout: 5s\n  templates: {p: "
            + json.dumps(str(workdir / "t.tpl")) + "}\n  values:\n    url: "
            + json.dumps(prometheus) + "\n    jq: " + json.dumps(case, ensure_ascii=False) + "\n"))
        # The metric is recorded, or unavailable with a reason: the run itself succeeds.
        return ["launch", "--runDir", str(workdir / "run"), "-f", str(workdir / "values.yaml")], \
            frozenset({0, 2})
    raise ValueError(parser)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env[CANARY_ENV] = CANARY
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               NO_COLOR="1")
    return env
