"""`canarist template list|render`."""

from __future__ import annotations

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
