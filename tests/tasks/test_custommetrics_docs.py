"""Every example in docs/custommetrics.md runs, against a real Prometheus seeded like the tutorial."""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from tests.fakes import MemoryStore  # unchecked: see test_custommetrics_prometheus.run
from tests.servers.prometheus import PrometheusServer, prometheus
from tests.servers.web import serving
from tests.tasks.test_custommetrics_prometheus import (
    FACTOR,
    REV_NEW,
    seed,
    value,
)

from canarist.backends.providers.render import render_provider_specs
from canarist.backends.providers.sources import builtin_template
from canarist.core.errors import TaskError
from canarist.core.experiment import Experiment, parse_experiment
from canarist.runners.engine import RunSettings, run_experiment
from canarist.tasks.registry import TASKS

__all__ = ["prometheus"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "custommetrics.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(DOC.read_text()) if kind == lang]


def named_yaml(name: str) -> str:
    [body] = [b for b in blocks("yaml") if b.startswith(f"# {name}\n")]
    return body


def shell_lines(prefix: str) -> list[str]:
    return [line for body in blocks("shell") for line in body.splitlines() if line.startswith(prefix)]


def canarist(args: list[str], cwd: Path, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canarist", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False, env=env)


def launched(tmp_path: Path, args: list[str]) -> Experiment:
    done = canarist([*args, "--dry"], tmp_path)
    assert done.returncode == 0, done.stderr
    data = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    return parse_experiment(data, source="experiment.yaml")


def run(exp: Experiment, tmp_path: Path, start: datetime) -> Experiment:
    return asyncio.run(run_experiment(exp, MemoryStore(), TASKS, RunSettings(run_dir=tmp_path),
                                      now=lambda: start))


@pytest.fixture(scope="module")
def seeded(prometheus: PrometheusServer) -> tuple[PrometheusServer, datetime]:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    seed(prometheus, now_ms)
    return prometheus, datetime.fromtimestamp(now_ms / 1000, UTC) - timedelta(seconds=450)


def check_tutorial_verdicts(exp: Experiment) -> None:
    assert exp.result is not None and not exp.result.failure
    assert value(exp, 0, "kserve-prometheus/request-count") == pytest.approx(600 * FACTOR)
    assert value(exp, 1, "kserve-prometheus/error-count") == pytest.approx(24 * FACTOR)
    insights = exp.result.insights
    assert insights is not None and insights.slos_satisfied is not None
    assert [s.metric for s in insights.slos.upper] == [  # type: ignore[union-attr]
        "kserve-prometheus/error-count", "kserve-prometheus/latency-mean",
        "kserve-prometheus/latency-p90"]
    assert insights.slos_satisfied.upper == [[True, False], [True, True], [True, False]]


def test_the_tutorial_launch_line(seeded: tuple[PrometheusServer, datetime], tmp_path: Path) -> None:
    server, started = seeded
    [line] = [x for x in shell_lines("canarist launch ") if "--set" in x]
    args = [*shlex.split(line)[1:], "--set", f"custommetrics.values.prometheusURL={server.query_url}"]
    check_tutorial_verdicts(run(launched(tmp_path, args), tmp_path, started))


def test_the_values_file(seeded: tuple[PrometheusServer, datetime], tmp_path: Path) -> None:
    server, started = seeded
    (tmp_path / "custommetrics-values.yaml").write_text(named_yaml("custommetrics-values.yaml"))
    assert "canarist launch -f custommetrics-values.yaml" in shell_lines("canarist launch -f")
    args = ["launch", "-f", "custommetrics-values.yaml",
            "--set", f"custommetrics.values.prometheusURL={server.query_url}"]
    check_tutorial_verdicts(run(launched(tmp_path, args), tmp_path, started))


def test_the_template_commands(tmp_path: Path) -> None:
    (tmp_path / "custommetrics-values.yaml").write_text(named_yaml("custommetrics-values.yaml"))
    lines = shell_lines("canarist template ")
    assert lines == ["canarist template list",
                     "canarist template render kserve-prometheus -f custommetrics-values.yaml",
                     "canarist template render kserve-prometheus --raw -f custommetrics-values.yaml"]
    listed = canarist(shlex.split(lines[0])[1:], tmp_path)
    assert listed.returncode == 0 and listed.stdout.split() == [
        "istio-prom", "kserve-prometheus", "kserve-raw"]
    rendered = canarist(shlex.split(lines[1])[1:], tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    specs = list(yaml.safe_load_all(rendered.stdout))
    assert [len(s["metrics"]) for s in specs] == [9, 9]
    assert 'revision_name="sklearn-iris-predictor-default-00001"' in rendered.stdout
    # --raw with the same values file: each version's template output, as the task sees it
    raw = canarist(shlex.split(lines[2])[1:], tmp_path)
    assert raw.returncode == 0, raw.stderr
    versions = raw.stdout.split("---\n# version ")[1:]
    assert [v.split("\n", 1)[0] for v in versions] == ["0", "1"]
    for version, revision in zip(versions, ("00002", "00001"), strict=True):
        assert f'revision_name="sklearn-iris-predictor-default-{revision}"' in version
        assert 'service_name="sklearn-iris-predictor-default"' in version
        assert "histogram_quantile(0.95," in version


def test_the_documented_queries_are_what_the_template_renders() -> None:
    values = yaml.safe_load(named_yaml("custommetrics-values.yaml"))["custommetrics"]
    now = datetime.now(UTC)
    [(_, spec), _] = render_provider_specs(
        builtin_template("kserve-prometheus"), values["values"], values["versionValues"], now,
        start_time=now - timedelta(seconds=1800), name="kserve-prometheus")
    queries = {m["params"][0]["value"] for m in spec["metrics"]}
    [shown] = blocks("promql")
    for line in shown.splitlines():
        assert line in queries


def test_the_experiment_file(seeded: tuple[PrometheusServer, datetime], tmp_path: Path) -> None:
    server, started = seeded
    data = yaml.safe_load(named_yaml("experiment.yaml"))
    data["spec"][0]["with"]["values"]["prometheusURL"] = server.query_url
    exp = run(parse_experiment(data, source="doc"), tmp_path, started)
    assert exp.result is not None and not exp.result.failure
    assert value(exp, 1, "kserve-prometheus/error-rate") == pytest.approx(0.02)
    assert value(exp, 1, "kserve-prometheus/latency-p90") == pytest.approx(80.0)
    insights = exp.result.insights
    assert insights is not None and insights.slos_satisfied is not None
    assert insights.slos_satisfied.upper == [[True, False], [True, False]]


def test_your_own_template(seeded: tuple[PrometheusServer, datetime], tmp_path: Path) -> None:
    server, started = seeded
    [template] = blocks("tpl")
    (tmp_path / "my-prometheus.tpl").write_text(template)
    exp = parse_experiment({"spec": [{"task": "custommetrics", "with": {
        "templates": {"mine": "my-prometheus.tpl"},
        "values": {"prometheusURL": server.query_url},
        "versionValues": [{"revision": REV_NEW}]}}]}, source="test")
    exp = run(exp, tmp_path, started)
    rate = value(exp, 0, "mine/request-rate")
    # The template selects by revision only, so the other service's revision of the same name
    # counts too: 600 + 900 requests, scaled as increase() scales them, over a window that
    # started 450 s before the seeded data's end and ends when the query runs (later on a
    # slow machine: the window is measured, not assumed).
    requests = (600 + 900) * FACTOR
    window = (datetime.now(UTC) - started).total_seconds()
    assert rate is not None and requests / (window + 1) < rate <= requests / 450


def test_the_auth_example(tmp_path: Path) -> None:
    (tmp_path / "auth-values.yaml").write_text(named_yaml("auth-values.yaml"))
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"status": "success", "data": {
            "resultType": "vector", "result": [{"metric": {}, "value": [0, "1"]}]}})

    async def main(exp: Experiment) -> Experiment:
        async with serving(handler) as url:
            exp.spec[0].with_["values"]["prometheusURL"] = f"{url}/api/v1/query"
            return await run_experiment(exp, MemoryStore(), TASKS,
                                        RunSettings(run_dir=tmp_path))

    exp = launched(tmp_path, ["launch", "-f", "auth-values.yaml"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROMETHEUS_TOKEN", "t0ken")
        asyncio.run(main(exp))
    assert seen and set(seen) == {"Bearer t0ken"}
    assert value(exp, 0, "kserve-prometheus/request-count") == 1.0
    documented = "auth.bearerTokenEnv: environment variable PROMETHEUS_TOKEN is not set"
    assert documented in DOC.read_text()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PROMETHEUS_TOKEN", raising=False)
        with pytest.raises(TaskError) as caught:
            asyncio.run(main(exp))
    # the provider cannot be asked: exit 3, as for a provider that is down
    assert (caught.value.message, caught.value.exit_code) == (
        f"task 1: custommetrics: {documented}", 3)


def test_every_example_is_covered() -> None:
    names = [b.splitlines()[0] for b in blocks("yaml")]
    assert names == ["# custommetrics-values.yaml", "# experiment.yaml", "# auth-values.yaml"]
    assert len(blocks("tpl")) == 1 and len(blocks("promql")) == 1
    assert len(shell_lines("canarist ")) == 5
    assert sorted(blocks("yaml") + blocks("tpl") + blocks("promql") + blocks("shell")) == sorted(
        body for _, body in FENCE.findall(DOC.read_text()))


