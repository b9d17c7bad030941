"""Small hostile inputs cost little: each case runs canarist as a subprocess under a 1 GiB
address-space cap and must end with exit 2 and one `Error:` line naming the file or key,
without a traceback, well within its timeout."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from canarist.core.limits import MAX_PROBLEMS_SHOWN, MAX_TASKS

MEMORY_CAP = 1024 * 1024 * 1024
TIMEOUT_S = 60
URL = "http://127.0.0.1:1/x"
HTTP = ["--set", "tasks={http}", "--set", f"http.url={URL}"]

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def canarist(*args: str, cwd: Path, timeout: float = TIMEOUT_S
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    return subprocess.run([sys.executable, "-m", "canarist", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_cap_memory)


def refused(done: subprocess.CompletedProcess[str], *names: str) -> str:
    """Exit 2, one `Error:` line naming each of `names`, no traceback; the line."""
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, done.stderr[-2000:]
    for name in names:
        assert name in errors[0], errors[0]
    assert len(errors[0]) < 600, errors[0]
    return errors[0]


def experiment_dir(tmp_path: Path, result: str = "", spec: str = "") -> Path:
    """A run directory whose experiment.yaml has `spec` (default: one http task) and a result
    whose extra lines are `result`."""
    run = tmp_path / "run"
    run.mkdir()
    spec = spec or f"- task: http\n  with:\n    url: {URL}\n"
    (run / "experiment.yaml").write_text(
        f"spec:\n{spec}result:\n  startTime: '2024-01-01T00:00:00Z'\n  numLoops: 1\n{result}")
    return run


# -- memory: YAML aliases, numVersions, file sizes ------------------------------------------


def test_alias_bomb_in_a_values_file(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text(BOMB + f"tasks: [http]\nhttp: {{url: {URL}}}\n")
    line = refused(canarist("launch", "--dry", "-f", "values.yaml", cwd=tmp_path), "values.yaml")
    assert "aliases expand to more than 1,000,000" in line


@pytest.mark.parametrize("output", ["text", "html", "json"])
def test_alias_bomb_in_an_experiment_file(tmp_path: Path, output: str) -> None:
    anchors = "".join(f"      {line}\n" for line in BOMB.splitlines())
    spec = f"- task: http\n  with:\n    url: {URL}\n    headers:\n{anchors}"
    run = experiment_dir(tmp_path, spec=spec)
    line = refused(canarist("report", "-o", output, "--run-dir", str(run), cwd=tmp_path),
                   "experiment.yaml")
    assert "aliases" in line


def test_alias_that_contains_itself(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text("a: &a [1, *a]\n")
    line = refused(canarist("launch", "--dry", "-f", "values.yaml", cwd=tmp_path),
                   "values.yaml:1:4")
    assert "contains it" in line


@pytest.mark.parametrize("output", ["text", "html", "json"])
def test_num_versions_is_bounded(tmp_path: Path, output: str) -> None:
    run = experiment_dir(tmp_path, "  insights: {numVersions: 100000000}\n")
    refused(canarist("report", "-o", output, "--run-dir", str(run), cwd=tmp_path),
            "result.insights.numVersions", "at most 100")


def test_set_file_from_dev_zero(tmp_path: Path) -> None:
    line = refused(canarist("launch", "--dry", *HTTP, "--set-file", "x=/dev/zero", cwd=tmp_path),
                   "--set-file", "/dev/zero")
    assert "larger than 64 MiB" in line


def test_values_file_too_large(tmp_path: Path) -> None:
    big = tmp_path / "values.yaml"
    with big.open("wb") as handle:
        handle.write(b"a: '")
        handle.truncate(64 * 1024 * 1024 + 10)
    refused(canarist("launch", "--dry", "-f", "values.yaml", cwd=tmp_path),
            "values.yaml", "larger than 64 MiB")


def test_experiment_file_too_large(tmp_path: Path) -> None:
    run = experiment_dir(tmp_path)
    with (run / "experiment.yaml").open("ab") as handle:
        handle.truncate(64 * 1024 * 1024 + 10)
    refused(canarist("report", "--run-dir", str(run), cwd=tmp_path),
            "experiment.yaml", "larger than 64 MiB")


def test_payload_file_too_large(tmp_path: Path) -> None:
    with (tmp_path / "payload.bin").open("wb") as handle:
        handle.truncate(64 * 1024 * 1024 + 1)
    done = canarist("launch", "--set", "tasks={http}", "--set", f"http.url={URL}",
                    "--set", "http.payloadFile=payload.bin", "--set", "http.numRequests=1",
                    cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert "payloadFile" in done.stderr and "larger than 64 MiB" in done.stderr
    assert done.returncode in (1, 2), done.stderr


# -- templates -----------------------------------------------------------------------------

TEMPLATES = {
    "until": ("{{ until 1000000000 }}", "error calling until", "at most 1,000,000"),
    "seq": ("{{ seq 1000000000 }}", "error calling seq", "at most 1,000,000"),
    "indent": ('{{ indent 1000000000 "a" }}', "error calling indent", "64 MiB"),
    "nindent": ('{{ nindent 100000000 "a\\nb" }}', "error calling nindent", "64 MiB"),
    "printf star": ('{{ range until 100 }}{{ printf "%*d" 1000000 1 }}{{ end }}',
                    "output is longer than 64 MiB", "t.tpl"),
    "printf widths": ('{{ printf "%9999999d%9999999d%9999999d%9999999d%9999999d%9999999d%9999999d'
                      '%9999999d" 1 2 3 4 5 6 7 8 }}', "error calling printf", "64 MiB"),
    "doubling": ('{{ $s := "aaaaaaaa" }}{{ range until 40 }}{{ $s = printf "%s%s" $s $s }}'
                 "{{ end }}", "error calling printf", "64 MiB"),
    "replace": ('{{ replace "" (printf "%999999d" 1) (printf "%999999d" 1) }}',
                "error calling replace", "64 MiB"),
    "join": ('{{ $l := list }}{{ range until 100 }}{{ $l = append $l (printf "%999999d" 1) }}'
             '{{ end }}{{ join "," $l }}', "error calling join", "64 MiB"),
    "output": ('{{ range until 1000000 }}{{ printf "%999999d" 1 }}{{ end }}',
               "output is longer than 64 MiB", "t.tpl"),
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_allocation_is_bounded(tmp_path: Path, name: str) -> None:
    text, *expected = TEMPLATES[name]
    (tmp_path / "t.tpl").write_text(text + "\n")
    refused(canarist("template", "render", "--raw", "t.tpl", cwd=tmp_path), *expected)


def test_huge_printf_width_is_go_s_noverb(tmp_path: Path) -> None:
    (tmp_path / "t.tpl").write_text('{{ printf "%0999999999d" 1 }}\n')
    done = canarist("template", "render", "--raw", "t.tpl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "%!(NOVERB)%!(EXTRA int=1)"


# -- exit 2, not "internal error" -----------------------------------------------------------


def test_4301_digit_number_in_set(tmp_path: Path) -> None:
    refused(canarist("launch", "--dry", *HTTP, "--set", "http.numRequests=" + "1" * 4301,
                     cwd=tmp_path), "http.numRequests")


def test_4301_digit_number_in_set_json(tmp_path: Path) -> None:
    refused(canarist("launch", "--dry", *HTTP, "--set-json", "http.numRequests=" + "1" * 4301,
                     cwd=tmp_path), "--set-json", "4300 digits")


def test_huge_list_index_in_set(tmp_path: Path) -> None:
    refused(canarist("launch", "--dry", *HTTP, "--set", f"a[{'1' * 5000}]=1", cwd=tmp_path),
            "--set", "too large")


def test_5000_digit_integer_in_a_values_file(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text("a: " + "1" * 5000 + "\n")
    refused(canarist("launch", "--dry", *HTTP, "-f", "values.yaml", cwd=tmp_path),
            "values.yaml:1:4", "4000 digits")


@pytest.mark.parametrize("levels", [101, 1000, 100_000])
def test_deep_nesting_in_a_values_file(tmp_path: Path, levels: int) -> None:
    (tmp_path / "values.yaml").write_text("a: " + "[" * levels + "]" * levels + "\n")
    refused(canarist("launch", "--dry", *HTTP, "-f", "values.yaml", cwd=tmp_path), "values.yaml")


def test_deep_nesting_in_an_experiment_file(tmp_path: Path) -> None:
    spec = f"- task: http\n  with:\n    url: {URL}\n    headers: {{a: {'[' * 1000}{']' * 1000}}}\n"
    run = experiment_dir(tmp_path, spec=spec)
    refused(canarist("report", "--run-dir", str(run), cwd=tmp_path), "experiment.yaml")


@pytest.mark.parametrize("expr", [
    "http.headers=" + "[" * 1000 + "]" * 1000,
    '{"http": ' + "[" * 1000 + "]" * 1000 + "}",
])
def test_deep_nesting_in_set_json(tmp_path: Path, expr: str) -> None:
    refused(canarist("launch", "--dry", *HTTP, "--set-json", expr, cwd=tmp_path),
            "--set-json", "deeper than 100")


@pytest.mark.parametrize("output", ["text", "html", "json"])
def test_nan_slo_limit(tmp_path: Path, output: str) -> None:
    run = experiment_dir(tmp_path, "  insights:\n    numVersions: 1\n    SLOs: {upper: "
                                   "[{metric: http/latency-mean, limit: .nan}]}\n")
    refused(canarist("report", "-o", output, "--run-dir", str(run), cwd=tmp_path),
            "result.insights.SLOs.upper[0].limit", "finite")


@pytest.mark.parametrize("output", ["text", "html", "json"])
def test_nan_histogram_bucket(tmp_path: Path, output: str) -> None:
    run = experiment_dir(tmp_path, "  insights:\n    numVersions: 1\n    histMetricValues: "
                                   "[{http/latency: [{lower: .nan, upper: 2, count: 3}]}]\n"
                                   "    metricsInfo: {http/latency: {type: Histogram}}\n")
    refused(canarist("report", "-o", output, "--run-dir", str(run), cwd=tmp_path),
            "histMetricValues[0].http/latency[0].lower", "NaN")


@pytest.mark.parametrize("output", ["text", "html", "json"])
def test_start_time_out_of_range(tmp_path: Path, output: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "experiment.yaml").write_text(
        f"spec:\n- task: http\n  with: {{url: {URL}}}\n"
        "result:\n  startTime: '0001-01-01T00:00:00+01:00'\n")
    refused(canarist("report", "-o", output, "--run-dir", str(run), cwd=tmp_path),
            "result.startTime")


def test_start_time_year_zero(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "experiment.yaml").write_text(
        f"spec:\n- task: http\n  with: {{url: {URL}}}\nresult:\n  startTime: 0000-01-01\n")
    refused(canarist("report", "--run-dir", str(run), cwd=tmp_path), "experiment.yaml")


def test_non_utf8_values_file(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_bytes(b"a: \xff\xfe\n")
    refused(canarist("launch", "--dry", "-f", "values.yaml", cwd=tmp_path),
            "values.yaml", "not UTF-8")


def test_non_utf8_experiment_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "experiment.yaml").write_bytes(b"spec: [{task: \xff}]\n")
    refused(canarist("report", "--run-dir", str(run), cwd=tmp_path), "experiment.yaml", "not UTF-8")


def test_non_utf8_set_file(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\xff")
    refused(canarist("launch", "--dry", *HTTP, "--set-file", "x=bad", cwd=tmp_path),
            "--set-file", "not UTF-8")


def test_non_utf8_template(tmp_path: Path) -> None:
    (tmp_path / "t.tpl").write_bytes(b"{{ 1 }}\xff\n")
    refused(canarist("template", "render", "--raw", "t.tpl", cwd=tmp_path), "t.tpl", "not UTF-8")


# -- long input is cheap and shortened ------------------------------------------------------


def test_many_problems_are_counted_not_listed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "experiment.yaml").write_text(
        "spec:\n" + "".join(f"- task: nosuch{i}\n" for i in range(MAX_TASKS)))
    done = canarist("run", "--run-dir", str(run), cwd=tmp_path, timeout=4 * TIMEOUT_S)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert len(lines) == MAX_PROBLEMS_SHOWN + 1, lines[:3]
    assert lines[0].startswith("Error: spec[0].task: unknown task")
    assert lines[-1] == f"Error: … and {MAX_TASKS - MAX_PROBLEMS_SHOWN:,} more problems"


def test_more_tasks_than_the_bound_are_refused_at_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "experiment.yaml").write_text(
        "spec:\n" + "".join(f"- task: nosuch{i}\n" for i in range(65_536)))
    done = canarist("run", "--run-dir", str(run), cwd=tmp_path, timeout=4 * TIMEOUT_S)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "spec: list should have at most 1000 items" in \
        done.stderr
    values = canarist("launch", "--dry", "--set", "tasks={" + ",".join(["http"] * 1001) + "}",
                      cwd=tmp_path)
    assert values.returncode == 2
    assert values.stderr.strip() == "Error: tasks: expected at most 1,000 tasks, got 1,001"


@pytest.mark.parametrize("args", [
    ["--set", "http.duration=" + "x" * 100_000],
    ["--set", "tasks={http,assess}", "--set", "assess.SLOs.upper." + "x" * 100_000 + "=1"],
])
def test_long_values_are_shortened_in_messages(tmp_path: Path, args: list[str]) -> None:
    done = canarist("launch", "--dry", *HTTP, *args, cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr) < 1000, len(done.stderr)


def test_long_if_is_shortened(tmp_path: Path) -> None:
    run = experiment_dir(tmp_path, spec=f"- task: http\n  if: {'x' * 100_000}\n"
                                        f"  with:\n    url: {URL}\n")
    done = canarist("run", "--run-dir", str(run), cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert len(done.stderr) < 2000, len(done.stderr)
    assert re.search(r'if "x{100,}\.\.\."', done.stderr)
