"""The seed tutorial launched locally (`canarist launch`, not `k launch`) on the sandbox.

Traffic is sent first, as a user following the tutorial does; the experiment is then launched
once, right away, with the tutorial's values (the built-in `kserve-prometheus` for the gist
URL, and the sandbox's Prometheus named with `custommetrics.values.prometheusURL`). The first
run must return real numbers for both revisions: the templates' default window looks back
at least 5 minutes, not just the second since the experiment started.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from tests.sandbox.test_lifecycle import REV1, REV2, Sandbox, _load, sandbox

from canarist.core.experiment import parse_experiment
from canarist.core.metrics import scalar_value
from canarist.core.yamltext import load_yaml

__all__ = ["sandbox"]  # the fixture, imported so that pytest finds it

pytestmark = pytest.mark.slow

METRICS = ("request-count", "error-count", "error-rate", "latency-mean", "latency-p50",
           "latency-p75", "latency-p90", "latency-p95")


def _tutorial_values(prometheus_port: int) -> list[str]:
    """The seed's `k launch` values, minus runner/cronjobSchedule, with the built-in template."""
    return [
        "--set", "tasks={ready,custommetrics,assess}",
        "--set", "ready.isvc=sklearn-iris",
        "--set", "ready.timeout=180s",
        "--set", "custommetrics.templates.kserve-prometheus=kserve-prometheus",
        "--set", f"custommetrics.values.prometheusURL=http://127.0.0.1:{prometheus_port}/api/v1/query",
        "--set", "custommetrics.values.labels.service_name=sklearn-iris-predictor-default",
        "--set", f"custommetrics.versionValues[0].labels.revision_name={REV2}",
        "--set", f"custommetrics.versionValues[1].labels.revision_name={REV1}",
        "--set", "custommetrics.values.latencyPercentiles={50,75,90,95}",
        "--set", "assess.SLOs.upper.kserve-prometheus/latency-mean=50",
        "--set", "assess.SLOs.upper.kserve-prometheus/latency-p90=75",
        "--set", "assess.SLOs.upper.kserve-prometheus/error-count=0",
    ]


def _scraped(sandbox: Sandbox) -> bool:
    """Prometheus has two samples of each revision's counter since the traffic ended."""
    expected = {rev: sandbox.counts().get((rev, "200"), 0) for rev in (REV1, REV2)}
    query = "sum by (revision_name) (revision_app_request_count)"
    url = (f"http://127.0.0.1:{sandbox.ports['prometheus']}/api/v1/query?"
           + urllib.parse.urlencode({"query": query}))
    with urllib.request.urlopen(url, timeout=10) as response:
        result = json.loads(response.read())["data"]["result"]
    seen = {r["metric"]["revision_name"]: float(r["value"][1]) for r in result}
    return all(seen.get(rev, 0) >= count > 0 for rev, count in expected.items())


def test_the_tutorial_launched_locally_measures_both_revisions_on_its_first_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # like the tutorial's loop: traffic spread over time (here 20 s, 15 requests a second)
    began = time.monotonic()
    for second in range(20):
        statuses = asyncio.run(_load(sandbox.ports["http"], 15))
        assert statuses == [200] * 15
        time.sleep(max(0.0, began + second + 1 - time.monotonic()))
    deadline = time.monotonic() + 20
    while not _scraped(sandbox) and time.monotonic() < deadline:
        time.sleep(1)
    env = {**os.environ, "KUBECONFIG": str(sandbox.dir / "kubeconfig")}
    env.pop("CANARIST_PROMETHEUS_URL", None)
    done = subprocess.run([sys.executable, "-m", "canarist", "launch",
                           *_tutorial_values(sandbox.ports["prometheus"])],
                          capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "unavailable" not in done.stderr, done.stderr[-3000:]

    exp = parse_experiment(load_yaml((tmp_path / "experiment.yaml").read_text(),
                                     source="experiment.yaml"), source="experiment.yaml")
    assert exp.result is not None and exp.result.num_loops == 1 and not exp.result.failure
    insights = exp.result.insights
    assert insights is not None and insights.unavailable == [{}, {}]
    for version in (0, 1):
        for name in METRICS:
            value = scalar_value(insights, version, f"kserve-prometheus/{name}").value
            assert value is not None, (version, name)
        requests = scalar_value(insights, version, "kserve-prometheus/request-count").value
        assert requests is not None and requests > 0
        assert scalar_value(insights, version, "kserve-prometheus/latency-mean").value > 0  # type: ignore[operator]
    # increase() misses what a new series counted before its first scrape, and extrapolates
    total = sum(scalar_value(insights, v, "kserve-prometheus/request-count").value or 0
                for v in (0, 1))
    assert 200 <= total <= 330, total

    asserted = subprocess.run([sys.executable, "-m", "canarist", "assert",
                               "-c", "completed,nofailure"], capture_output=True, text=True,
                              timeout=60, check=False, cwd=tmp_path, env=env)
    assert asserted.returncode == 0, asserted.stderr
