"""Do the two models agree? The agreement task on the sandbox, as docs/agreement.md runs it.

The tutorial's InferenceService with its canary: revision 00001 serves the logistic regression,
00002 (`model-2`) the random forest. Discovery finds both; the task's `agreement/rate` must be
the share of payload rows on which the two revisions give the same class when asked directly
through their tag hosts, and a revision compared with itself must agree on every row.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.sandbox.test_lifecycle import kserve_python, sandbox_cli
from tests.sandbox.test_rollout import Cluster

from canarist.core.experiment import Experiment, parse_experiment
from canarist.core.metrics import scalar_value

pytestmark = pytest.mark.slow

IRIS = Path(__file__).resolve().parents[2] / "docs" / "examples" / "iris.jsonl"
ROWS = [json.loads(line)["instances"][0] for line in IRIS.read_text().splitlines()]
MODEL = "gs://kfserving-examples/models/sklearn/1.0/model"
CANARY = "gs://kfserving-examples/models/sklearn/1.0/model-2"
TAG = "{}-sklearn-iris-predictor-default.default.example.com"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    python = kserve_python()
    assert python is not None, "kserve is not installed: run ./scripts/setup"
    state_dir = tmp_path_factory.mktemp("agreement-sandbox")
    up = sandbox_cli("up", "--dir", str(state_dir), "--ports", "auto", "--kserve-python", python)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        found = Cluster(state_dir)
        found.apply("sklearn-iris", MODEL)
        found.apply("sklearn-iris", CANARY, canary=10)
        yield found
    finally:
        sandbox_cli("down", "--dir", str(state_dir), timeout=120)


def ask(cluster: Cluster, tag: str) -> list[int]:
    """Every iris row's class from one revision, asked directly through its tag host."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{cluster.ports['http']}/v1/models/sklearn-iris:predict",
        data=json.dumps({"instances": ROWS}).encode(),
        headers={"Content-Type": "application/json", "Host": TAG.format(tag)})
    with urllib.request.urlopen(request, timeout=30) as response:
        return list(json.loads(response.read())["predictions"])


def launched(cluster: Cluster, cwd: Path, *values: str) -> Experiment:
    (cwd / "iris.jsonl").write_text(IRIS.read_text())
    done = cluster.canarist(cwd, "launch", *values)
    assert done.returncode == 0, done.stderr
    return parse_experiment(yaml.safe_load((cwd / "experiment.yaml").read_text()), source="x")


def metric(experiment: Experiment, version: int, name: str) -> float | None:
    assert experiment.result is not None and experiment.result.insights is not None
    return scalar_value(experiment.result.insights, version, name).value


def test_the_rate_between_revisions_is_the_share_they_answer_alike(
        cluster: Cluster, tmp_path: Path) -> None:
    logreg, forest = ask(cluster, "prev"), ask(cluster, "latest")
    alike = sum(a == b for a, b in zip(logreg, forest, strict=True))
    assert alike == 146  # docs/sandbox.md: the two models disagree on 4 of the 150 rows
    experiment = launched(cluster, tmp_path, "--set", "tasks={agreement}",
                          "--set", "kserve.isvc=sklearn-iris",
                          "--set", f"kserve.ingress=http://127.0.0.1:{cluster.ports['http']}",
                          "--set", "agreement.payloadFile=iris.jsonl",
                          "--set", "agreement.timeout=60s")  # a busy machine answers slowly
    assert metric(experiment, 0, "agreement/error-count") == 0
    assert experiment.result is not None and experiment.result.insights is not None
    assert experiment.result.version_names == ["sklearn-iris-predictor-default-00002",
                                               "sklearn-iris-predictor-default-00001"]
    assert metric(experiment, 0, "agreement/rate") == pytest.approx(alike / 150)
    assert metric(experiment, 0, "agreement/agreed") == alike
    assert metric(experiment, 1, "agreement/rate") == 1.0
    assert metric(experiment, 0, "agreement/noise-floor") == 1.0
    record = experiment.result.agreement
    assert record is not None and record.baseline == 1
    assert [e.line for e in record.versions[0].disagreements] == [
        i + 1 for i, (a, b) in enumerate(zip(logreg, forest, strict=True)) if a != b]


def test_over_grpc_through_the_ingress_the_rate_is_the_same(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    experiment = launched(cluster, tmp_path, "--set", "tasks={agreement}",
                          "--set", "kserve.isvc=sklearn-iris",
                          "--set", f"agreement.url=grpc://127.0.0.1:{cluster.ports['grpc']}",
                          "--set", "agreement.payloadFile=iris.jsonl", "--set", "agreement.qps=100")
    assert experiment.result is not None and experiment.result.agreement is not None
    assert experiment.result.agreement.protocol == "grpc"
    assert metric(experiment, 0, "agreement/agreed") == 146
    assert metric(experiment, 0, "agreement/error-count") == 0


def test_a_revision_against_itself_agrees_on_every_row(cluster: Cluster, tmp_path: Path) -> None:
    ingress = f"http://127.0.0.1:{cluster.ports['http']}/v1/models/sklearn-iris:predict"
    experiment = launched(
        cluster, tmp_path, "--set", "tasks={agreement,assess}",
        "--set", "agreement.payloadFile=iris.jsonl", "--set", "agreement.qps=100",
        "--set", f"agreement.url={ingress}",
        "--set", f"agreement.versions[0].headers.Host={TAG.format('prev')}",
        "--set", f"agreement.versions[1].headers.Host={TAG.format('prev')}",
        "--set", "assess.SLOs.lower.agreement/rate=0.95")
    assert metric(experiment, 0, "agreement/rate") == 1.0
    assert metric(experiment, 0, "agreement/noise-floor") == 1.0
    assert metric(experiment, 1, "agreement/compared") == 150
    assert experiment.slos()
