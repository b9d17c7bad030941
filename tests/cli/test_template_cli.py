"""`canarist template list|render`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

CANARIST = [sys.executable, "-m", "canarist"]


def canarist(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CANARIST, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def test_list_names_the_builtins() -> None:
    done = canarist("template", "list")
    assert done.returncode == 0
    assert done.stdout.split() == ["istio-prom", "kserve-prometheus", "kserve-raw"]


def test_render_shows_each_versions_provider_spec() -> None:
    done = canarist("template", "render", "kserve-prometheus",
                    "--set", "custommetrics.values.labels.service_name=sklearn-iris-predictor-default",
                    "--set", "custommetrics.versionValues[0].labels.revision_name=rev-2",
                    "--set", "custommetrics.versionValues[1].labels.revision_name=rev-1",
                    "--set", "custommetrics.values.latencyPercentiles={90}",
                    "--set", "custommetrics.values.prometheusURL=http://127.0.0.1:9090/api/v1/query")
    assert done.returncode == 0, done.stderr
    specs = list(yaml.safe_load_all(done.stdout))
    assert len(specs) == 2
    assert specs[0]["url"] == "http://127.0.0.1:9090/api/v1/query"
    names = [m["name"] for m in specs[0]["metrics"]]
    assert "latency-p90" in names and "error-count" in names
    p90 = next(m for m in specs[1]["metrics"] if m["name"] == "latency-p90")
    assert 'revision_name="rev-1"' in p90["params"][0]["value"]
    assert "histogram_quantile(0.9," in p90["params"][0]["value"]


def test_raw_renders_any_go_template(tmp_path: Path) -> None:
    (tmp_path / "t.tpl").write_text(
        '{{- define "kv" }}{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}{{ end -}}\n'
        'labels: {{ template "kv" .labels }} default: {{ default "none" .missing }}\n')
    done = canarist("template", "render", "t.tpl", "--raw", "--set", "labels.b=2,labels.a=1",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "labels: a=1;b=2; default: none\n"


def test_template_errors_are_one_line_with_position(tmp_path: Path) -> None:
    (tmp_path / "bad.tpl").write_text("ok\n{{ nosuchfn 1 }}\n")
    done = canarist("template", "render", "bad.tpl", "--raw", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("Error: ") and "bad.tpl:2:" in done.stderr
    assert "nosuchfn" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_unknown_template_reference(tmp_path: Path) -> None:
    done = canarist("template", "render", "no-such-template", cwd=tmp_path)
    assert done.returncode in (2, 3)
    assert "no-such-template" in done.stderr and "Traceback" not in done.stderr


# -- render with a values file written for `launch` ------------------------------------------

def test_raw_renders_the_values_of_a_launch_values_file_per_version(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text(
        "custommetrics:\n"
        "  templates: {p: t.tpl}\n"
        "  values:\n    labels: {service_name: iris}\n    window: 5m\n"
        "  versionValues:\n  - labels: {revision_name: rev-2}\n  - labels: {revision_name: rev-1}\n"
        "    window: null\n")
    (tmp_path / "t.tpl").write_text(
        "svc={{ .labels.service_name }} rev={{ .labels.revision_name }} "
        "window={{ default \"none\" .window }} elapsed={{ .elapsedTimeSeconds }}\n")
    done = canarist("template", "render", "--raw", "-f", "values.yaml", "t.tpl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ("---\n# version 0\nsvc=iris rev=rev-2 window=5m elapsed=0\n"
                           "---\n# version 1\nsvc=iris rev=rev-1 window=none elapsed=0\n")


def test_raw_rejects_version_values_that_are_not_mappings(tmp_path: Path) -> None:
    (tmp_path / "t.tpl").write_text("x\n")
    done = canarist("template", "render", "t.tpl", "--raw", "--set",
                    "custommetrics.versionValues={a,b}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "Error: custommetrics.versionValues[0]: expected a mapping of values, got 'a'"]


def test_render_help_names_the_argument_its_usage_shows() -> None:
    done = canarist("template", "render", "--help")
    assert done.returncode == 0
    usage = done.stdout.splitlines()[0]
    assert usage == "Usage: canarist template render [OPTIONS] NAME|FILE|URL"
    assert "REF" not in done.stdout
    assert "NAME|FILE|URL is a built-in template" in " ".join(done.stdout.split())


# -- a template URL that cannot be fetched ---------------------------------------------------

GIST_PATH = ("/kalantar/adc6c9b0efe483c00b8f0c20605ac36c/raw/"
             "c4562e87b7ac0652b0e46f8f494d024307bff7a1/kserve-prometheus.tpl")


def closed_port() -> socket.socket:
    """A socket bound on 127.0.0.1 that does not listen: connecting to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def test_an_unreachable_url_named_like_a_builtin_points_to_the_builtin() -> None:
    with closed_port() as sock:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}{GIST_PATH}"
        done = canarist("template", "render", url)
        other = canarist("template", "render", url.replace("kserve-prometheus.tpl", "mine.tpl"))
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"Error: cannot fetch template {url}: connection refused ({url}); the built-in template "
        "kserve-prometheus serves the same metrics without a download: name it instead of the "
        "URL, as in --set custommetrics.templates.kserve-prometheus=kserve-prometheus"]
    assert other.returncode == 3
    assert len(other.stderr.splitlines()) == 1 and "built-in" not in other.stderr


def test_the_tutorials_launch_without_the_gist_names_the_builtin(tmp_path: Path) -> None:
    """The seed tutorial's custommetrics settings, launched where the gist cannot be reached."""
    with closed_port() as sock:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}{GIST_PATH}"
        done = canarist(
            "launch", "--set", "tasks={custommetrics,assess}",
            "--set", f"custommetrics.templates.kserve-prometheus={url}",
            "--set", "custommetrics.values.labels.service_name=sklearn-iris-predictor-default",
            "--set", "custommetrics.versionValues[0].labels.revision_name="
                     "sklearn-iris-predictor-default-00002",
            "--set", "custommetrics.versionValues[1].labels.revision_name="
                     "sklearn-iris-predictor-default-00001",
            "--set", "custommetrics.values.latencyPercentiles={50,75,90,95}",
            "--set", "assess.SLOs.upper.kserve-prometheus/latency-mean=50",
            "--set", "assess.SLOs.upper.kserve-prometheus/error-count=0", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    assert f"templates.kserve-prometheus: cannot fetch template {url}: " in errors[0]
    assert errors[0].endswith(
        "; the built-in template kserve-prometheus serves the same metrics without a download: "
        "name it instead of the URL, as in "
        "--set custommetrics.templates.kserve-prometheus=kserve-prometheus"), errors[0]


def test_render_queries_the_prometheus_the_task_would() -> None:
    done = subprocess.run([*CANARIST, "template", "render", "kserve-prometheus"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "CANARIST_PROMETHEUS_URL": "http://prom.test:9/q"})
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["url"] == "http://prom.test:9/q"
