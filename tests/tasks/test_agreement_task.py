"""The agreement task against real servers: two KServe model servers (the sandbox's logistic
regression and random forest, trained on iris) over V1 REST, V2 REST and V2 gRPC; a model
server whose answers the test chooses (numbers, random classes, answers that break the
protocol); and canarist's own V2 gRPC test server. Experiments are launched with the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.servers.grpc_v2_server import ThreadedV2Server
from tests.servers.kserve_fixture import KServeServer, kserve_python, kserve_server, running_kserve_server
from tests.servers.prediction_server import PredictionServer, v1, v2

from canarist.core.agreement import sample_rows
from canarist.core.experiment import Experiment, KServeState, KServeVersion, parse_experiment
from canarist.core.metrics import scalar_value
from canarist.tasks.agreement.inputs import AgreementInputs
from canarist.tasks.agreement.targets import discovered_targets

__all__ = ["kserve_server"]

CANARIST = [sys.executable, "-m", "canarist"]
IRIS = Path(__file__).resolve().parents[2] / "docs" / "examples" / "iris.jsonl"
ROWS = [json.loads(line)["instances"][0] for line in IRIS.read_text().splitlines()]


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KServeServer]:
    python = kserve_python()
    assert python is not None, "kserve is not installed: run ./scripts/setup"
    with running_kserve_server(python, tmp_path_factory.mktemp("forest"),
                               model="iris-forest") as server:
        yield server


@pytest.fixture
def models() -> Iterator[PredictionServer]:
    with PredictionServer() as server:
        yield server


def canarist(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CANARIST, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, check=False)


def launch(cwd: Path, values: dict[str, Any], code: int = 0) -> Experiment:
    (cwd / "values.yaml").write_text(yaml.safe_dump(values))
    if not (cwd / "iris.jsonl").exists():
        (cwd / "iris.jsonl").write_text(IRIS.read_text())
    done = canarist(cwd, "launch", "-f", "values.yaml")
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    return parse_experiment(yaml.safe_load((cwd / "experiment.yaml").read_text()), source="x")


def ask(server: KServeServer) -> list[int]:
    """Every iris row's class, asked of the server directly in one V1 request."""
    request = urllib.request.Request(
        f"{server.http_url}/v1/models/{server.model_name}:predict",
        data=json.dumps({"instances": ROWS}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return list(json.loads(response.read())["predictions"])


def value(experiment: Experiment, version: int, metric: str) -> float | None:
    assert experiment.result is not None and experiment.result.insights is not None
    return scalar_value(experiment.result.insights, version, metric).value


def url(server: KServeServer, protocol: str) -> str:
    if protocol == "grpc":
        return f"grpc://{server.grpc_address}"
    if protocol == "v2":
        return f"{server.http_url}/v2/models/{server.model_name}/infer"
    return f"{server.http_url}/v1/models/{server.model_name}:predict"


@pytest.mark.parametrize("protocol", ["v1", "v2", "grpc"])
def test_the_rate_is_the_share_of_rows_both_servers_answer_alike(
        tmp_path: Path, kserve_server: KServeServer, forest: KServeServer, protocol: str) -> None:
    baseline, candidate = ask(kserve_server), ask(forest)
    differ = [i for i, (b, c) in enumerate(zip(baseline, candidate, strict=True)) if b != c]
    assert 0 < len(differ) < 10  # the two models disagree on a few rows
    experiment = launch(tmp_path, {
        "tasks": ["agreement"], "versionNames": ["forest", "logreg"],
        "agreement": {"payloadFile": "iris.jsonl", "qps": 200, "model": "sklearn-iris",
                      "versions": [{"url": url(forest, protocol)},
                                   {"url": url(kserve_server, protocol)}]}})
    assert value(experiment, 0, "agreement/compared") == 150
    assert value(experiment, 0, "agreement/agreed") == 150 - len(differ)
    assert value(experiment, 0, "agreement/rate") == pytest.approx((150 - len(differ)) / 150)
    assert value(experiment, 0, "agreement/error-count") == 0
    assert value(experiment, 1, "agreement/rate") == 1.0  # the baseline with itself
    assert value(experiment, 0, "agreement/noise-floor") == 1.0
    assert value(experiment, 1, "agreement/request-count") == 300
    record = experiment.result.agreement  # type: ignore[union-attr]
    assert record is not None and record.protocol == protocol and record.sent == 150
    found = record.versions[0]
    assert [e.line for e in found.disagreements] == [i + 1 for i in differ][:5]
    assert [(e.baseline, e.candidate) for e in found.disagreements] == [
        (str(baseline[i]), str(candidate[i])) for i in differ][:5]
    cells = {(c.baseline, c.candidate): c.count for c in found.confusion}
    assert sum(cells.values()) == 150
    assert sum(n for (b, c), n in cells.items() if b != c) == len(differ)


def test_a_version_against_itself_agrees_on_every_row_and_passes(
        tmp_path: Path, kserve_server: KServeServer) -> None:
    same = url(kserve_server, "v1")
    experiment = launch(tmp_path, {
        "tasks": ["agreement", "assess"],
        "agreement": {"payloadFile": "iris.jsonl", "qps": 200, "versions": [{"url": same},
                                                                           {"url": same}]},
        "assess": {"SLOs": {"lower": {"agreement/rate": 0.95}}, "baseline": 1,
                   "relative": {"lower": {"agreement/rate": "5%"}}}})
    assert value(experiment, 0, "agreement/rate") == 1.0
    assert value(experiment, 0, "agreement/noise-floor") == 1.0
    report = canarist(tmp_path, "report")
    assert "Verdict: ✔ PASSED (pass)" in report.stdout, report.stdout
    assert canarist(tmp_path, "assert", "-c", "slos").returncode == 0


def test_few_rows_that_all_agree_cannot_pass(tmp_path: Path, kserve_server: KServeServer) -> None:
    same = url(kserve_server, "v1")
    launch(tmp_path, {
        "tasks": ["agreement", "assess"],
        "agreement": {"payloadFile": "iris.jsonl", "numRequests": 12, "seed": 4, "qps": 200,
                      "versions": [{"url": same}, {"url": same}]},
        "assess": {"SLOs": {"lower": {"agreement/rate": 0.95}}}})
    report = canarist(tmp_path, "report")
    assert "Verdict: ? CANNOT DECIDE (inconclusive)" in report.stdout
    assert ("agreement/rate for version 0 cannot be decided yet: 12 of 12 (1), between"
            in report.stdout)
    assert canarist(tmp_path, "assert", "-c", "slos").returncode == 3


def test_a_sample_is_drawn_with_the_seed_and_sent_at_the_rate(
        tmp_path: Path, models: PredictionServer) -> None:
    experiment = launch(tmp_path, {
        "tasks": ["agreement"],
        "agreement": {"payloadFile": "iris.jsonl", "numRequests": 20, "seed": 3, "qps": 40,
                      "versions": [{"url": v1(models, "sum")},
                                   {"url": v1(models, "sum"), "headers": {"Host": "base.example"}}]}})
    record = experiment.result.agreement  # type: ignore[union-attr]
    assert record is not None and (record.rows, record.sent, record.seed) == (150, 20, 3)
    chosen = [ROWS[i] for i in sample_rows(150, 20, 3)]
    sent = [seen.body["instances"][0] for seen in models.requests if seen.host != "base.example"]
    assert sorted(map(tuple, sent)) == sorted(map(tuple, chosen))
    assert len([s for s in models.requests if s.host == "base.example"]) == 40  # twice each
    assert {seen.path for seen in models.requests} == {"/v1/models/sum:predict"}
    times = sorted(seen.time for seen in models.requests)
    assert times[-1] - times[0] >= 0.9 * 19 / 40  # 40 bodies a second at most


def test_numbers_are_compared_within_the_tolerance(tmp_path: Path, models: PredictionServer) -> None:
    values = {"tasks": ["agreement"],
              "agreement": {"payloadFile": "iris.jsonl", "qps": 500, "tolerance": 0.02,
                            "versions": [{"url": v2(models, "sum-plus-0.01")},
                                         {"url": v2(models, "sum")}]}}
    experiment = launch(tmp_path, values)
    assert experiment.result is not None and experiment.result.agreement is not None
    assert experiment.result.agreement.protocol == "v2"
    assert value(experiment, 0, "agreement/rate") == 1.0
    assert value(experiment, 0, "agreement/within-tolerance") == 1.0
    assert value(experiment, 0, "agreement/mean-abs-diff") == pytest.approx(0.01, abs=1e-6)
    assert value(experiment, 0, "agreement/max-abs-diff") == pytest.approx(0.01, abs=1e-6)
    values["agreement"]["tolerance"] = "0.01%"  # of sums below 20: at most 0.002
    experiment = launch(tmp_path, values)
    assert value(experiment, 0, "agreement/rate") == 0.0
    assert value(experiment, 1, "agreement/rate") == 1.0


def test_score_vectors_agree_on_their_top_class(tmp_path: Path, models: PredictionServer) -> None:
    def run(candidate: str) -> Experiment:
        return launch(tmp_path, {"tasks": ["agreement"], "agreement": {
            "payloadFile": "iris.jsonl", "qps": 500, "tolerance": 0.001,
            "versions": [{"url": v1(models, candidate)}, {"url": v1(models, "proba")}]}})

    scores = run("proba")
    assert value(scores, 0, "agreement/rate") == 1.0
    assert value(scores, 0, "agreement/mean-abs-diff") == 0.0
    assert value(scores, 0, "agreement/within-tolerance") == 1.0
    classes = run("argmax")  # the class a vector of scores names: its top one
    assert value(classes, 0, "agreement/compared") == 150
    assert value(classes, 0, "agreement/rate") == 1.0
    assert value(classes, 0, "agreement/mean-abs-diff") is None
    record = classes.result.agreement  # type: ignore[union-attr]
    assert record is not None and {c.baseline for c in record.versions[0].confusion} == {
        "0", "1", "2"}


@pytest.mark.parametrize(("model", "code", "message"), [
    ("no-predictions", "invalid-response", 'not a V1 response: no "predictions" (got outputs)'),
    ("wrong-count", "invalid-response", "2 predictions for 1 instances"),
    ("not-json", "invalid-response", "not JSON: <html>maintenance</html>"),
    ("error", "500", "model exploded"),
])
def test_an_answer_that_breaks_the_protocol_is_an_error_with_its_reason(
        tmp_path: Path, models: PredictionServer, model: str, code: str, message: str) -> None:
    experiment = launch(tmp_path, {
        "tasks": ["agreement", "assess"],
        "agreement": {"payloadFile": "iris.jsonl", "numRequests": 10, "qps": 200,
                      "versions": [{"url": v1(models, model)}, {"url": v1(models, "sum")}]},
        "assess": {"SLOs": {"lower": {"agreement/rate": 0.5}}}})
    assert experiment.result is not None and experiment.result.insights is not None
    errors = experiment.result.insights.errors[0]["agreement"]
    assert [(e.code, e.count, e.message) for e in errors] == [(code, 10, message)]
    assert value(experiment, 0, "agreement/error-count") == 10
    reason = scalar_value(experiment.result.insights, 0, "agreement/rate").reason
    assert reason == f"no prediction could be compared: 10 of 10 requests failed ({code} ×10)"
    report = canarist(tmp_path, "report")
    assert f'{code} ×10: "{message}"' in report.stdout
    assert "Verdict: ? CANNOT DECIDE (inconclusive)" in report.stdout


def test_a_baseline_that_answers_nothing_leaves_nothing_compared(
        tmp_path: Path, models: PredictionServer) -> None:
    experiment = launch(tmp_path, {
        "tasks": ["agreement"],
        "agreement": {"payloadFile": "iris.jsonl", "numRequests": 5, "qps": 200,
                      "versions": [{"url": v1(models, "sum")}, {"url": v1(models, "error")}]}})
    assert experiment.result is not None and experiment.result.insights is not None
    assert scalar_value(experiment.result.insights, 0, "agreement/rate").reason == (
        "no prediction could be compared: the baseline version 1 answered none of the requests")
    assert value(experiment, 1, "agreement/error-count") == 10


def test_grpc_answers_without_outputs_or_with_an_error_status(tmp_path: Path) -> None:
    with ThreadedV2Server() as server:
        address = server.address

        def run(model: str, **more: Any) -> Experiment:
            return launch(tmp_path, {"tasks": ["agreement"], "agreement": {
                "payloadFile": "iris.jsonl", "numRequests": 4, "qps": 200, "model": model,
                "versions": [{"url": f"grpc://{address}"}, {"url": f"grpc://{address}"}],
                **more}})

        assert value(run("answers"), 0, "agreement/rate") == 1.0
        insights = run("no-outputs").result.insights  # type: ignore[union-attr]
        assert insights is not None
        assert [(e.code, e.count, e.message) for e in insights.errors[1]["agreement"]] == [
            ("invalid-response", 8, 'not a V2 response: no "outputs" tensors')]
        insights = run("missing-model", protocol="grpc",
                       versions=[{"url": address}, {"url": address}]).result.insights  # type: ignore[union-attr]
        assert insights is not None
        assert [(e.code, e.count) for e in insights.errors[0]["agreement"]] == [("NOT_FOUND", 4)]


def test_a_model_that_does_not_answer_the_same_way_twice_is_not_a_regression(
        tmp_path: Path) -> None:
    with PredictionServer(seed=1) as candidate, PredictionServer(seed=2) as baseline:
        experiment = launch(tmp_path, {
            "tasks": ["agreement", "assess"], "versionNames": ["canary", "baseline"],
            "agreement": {"payloadFile": "iris.jsonl", "qps": 500,
                          "versions": [{"url": v1(candidate, "coin")},
                                       {"url": v1(baseline, "coin")}]},
            "assess": {"baseline": 1, "relative": {"lower": {"agreement/rate": "10%"}}}})
    floor = value(experiment, 1, "agreement/noise-floor")
    assert floor is not None and floor < 0.7
    comparison = experiment.result.insights.comparisons[0]  # type: ignore[union-attr]
    assert comparison.verdict != "fail", comparison.reason
    assert comparison.samples == {"candidate": 150, "baseline": 150}


def test_without_the_noise_floor_the_baseline_is_not_compared_with_itself(
        tmp_path: Path, models: PredictionServer) -> None:
    experiment = launch(tmp_path, {
        "tasks": ["agreement", "assess"],
        "agreement": {"payloadFile": "iris.jsonl", "numRequests": 5, "qps": 200,
                      "noiseFloor": False,
                      "versions": [{"url": v1(models, "sum")}, {"url": v1(models, "sum")}]},
        "assess": {"baseline": 1, "relative": {"lower": {"agreement/rate": "1%"}}}})
    assert len(models.requests) == 10
    assert experiment.result is not None and experiment.result.insights is not None
    reason = scalar_value(experiment.result.insights, 1, "agreement/rate").reason
    assert reason.startswith("not measured: agreement.noiseFloor is false")
    assert experiment.result.insights.comparisons[0].verdict == "inconclusive"


def test_a_payload_is_fetched_from_a_url(tmp_path: Path, models: PredictionServer) -> None:
    models.payload = "\n".join(IRIS.read_text().splitlines()[:7])
    experiment = launch(tmp_path, {
        "tasks": ["agreement"],
        "agreement": {"payloadURL": f"{models.url}/payload.jsonl", "qps": 200,
                      "versions": [{"url": v1(models, "sum")}, {"url": v1(models, "sum")}]}})
    assert value(experiment, 0, "agreement/compared") == 7
    assert experiment.result.agreement.source == f"{models.url}/payload.jsonl"  # type: ignore[union-attr]


def test_an_unreachable_payload_url_cannot_decide(tmp_path: Path, models: PredictionServer) -> None:
    (tmp_path / "values.yaml").write_text(yaml.safe_dump({
        "tasks": ["agreement"],
        "agreement": {"payloadURL": f"{models.url}/nothing.jsonl",
                      "versions": [{"url": v1(models, "sum")}, {"url": v1(models, "sum")}]}}))
    done = canarist(tmp_path, "launch", "-f", "values.yaml")
    assert done.returncode == 3
    assert f"agreement.payloadURL: HTTP 404 from {models.url}/nothing.jsonl" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("sets", "message"), [
    (["agreement.payloadFile=missing.jsonl"],
     "Error: agreement.payloadFile: cannot read missing.jsonl: No such file or directory"),
    (["agreement.payloadFile=bad.jsonl"],
     "Error: agreement.payloadFile: bad.jsonl line 3: not JSON: Expecting value at column 2"),
    (["agreement.payloadFile=v2.jsonl", "agreement.protocol=v1"],
     "Error: agreement.payloadFile: v2.jsonl line 1: has 2 input tensors; a V1 request has "
     "one list of instances (use agreement.protocol=v2 or grpc)"),
    (["agreement.payloadFile=iris.jsonl", "agreement.versions=null"],
     "Error: agreement.versions: expected at least two versions, each with its url (version "
     "1, the baseline, and a candidate), or kserve.isvc"),
    (["agreement.payloadFile=iris.jsonl", "agreement.versions[1].url=null"],
     "Error: agreement.versions[1].url: required: where this version answers"),
    (["agreement.payloadFile=iris.jsonl", "agreement.versions[0].url=grpc://127.0.0.1:9",
      "agreement.versions[1].url=grpc://127.0.0.1:9"],
     "Error: agreement.model: required over gRPC: the model name each request carries"),
    (["agreement.payloadFile=iris.jsonl", "agreement.protocol=grpc"],
     "Error: agreement.versions[0].url: expected grpc://host:port over gRPC, got "
     "'http://127.0.0.1:9/v1/models/m:predict'"),
    (["agreement.payloadFile=iris.jsonl", "agreement.tolerance=lots"],
     "Error: agreement.tolerance: expected a percentage such as 1% or a number such as 0.01, "
     "got 'lots'"),
    (["agreement.payloadFile=iris.jsonl", "agreement.qps=0"],
     "Error: agreement.qps: "),
    (["agreement.payloadFiel=iris.jsonl"], "Error: "),
    (["agreement.payloadFile=iris.jsonl", "agreement.versions[0].url=htp://x/v1/models/m:predict"],
     "Error: agreement.versions[0].url: expected an http:// or https:// URL such as "
     "http://127.0.0.1:8080/v1/models/NAME:predict, got 'htp://x/v1/models/m:predict'"),
    (["agreement.payloadFile=iris.jsonl", "agreement.baseline=0", "assess.baseline=1",
      "assess.relative.lower.agreement/rate=1%"],
     "Error: agreement.baseline: 0 is not assess.baseline 1: the baseline's agreement with "
     "itself is the noise floor"),
    (["agreement.payloadFile=iris.jsonl", "assess.SLOs.lower.agreement/noise-floor=0.9"],
     "Error: assess.SLOs.lower.agreement/noise-floor: the noise floor is the baseline's alone"),
])
def test_bad_input_is_one_line_naming_the_key(tmp_path: Path, sets: list[str], message: str) -> None:
    (tmp_path / "iris.jsonl").write_text(IRIS.read_text())
    (tmp_path / "bad.jsonl").write_text('{"instances": [[1, 2]]}\n\n nope\n')
    (tmp_path / "v2.jsonl").write_text(json.dumps({"inputs": [
        {"name": n, "shape": [1], "datatype": "FP32", "data": [1]} for n in "ab"]}) + "\n")
    args = ["--set", "tasks={agreement,assess}",
            "--set", "agreement.versions[0].url=http://127.0.0.1:9/v1/models/m:predict",
            "--set", "agreement.versions[1].url=http://127.0.0.1:9/v1/models/m:predict"]
    if not any(s.startswith("assess.") for s in sets):
        args += ["--set", "assess.SLOs.lower.agreement/rate=0.9"]
    for value_ in sets:
        args += ["--set", value_]
    done = canarist(tmp_path, "launch", *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "experiment.yaml").exists()


def state(*versions: KServeVersion, ingress: str = "") -> KServeState:
    return KServeState(isvc="sklearn-iris", namespace="default", service="s", generation=1,
                       versions=list(versions), ingress=ingress)


CANDIDATE = KServeVersion(role="candidate", revision="r-00002", percent=10, ready=True,
                          host="latest-s.default.example.com",
                          url="http://latest-s.default.example.com")
BASELINE = KServeVersion(role="baseline", revision="r-00001", percent=90, ready=True,
                         host="prev-s.default.example.com", url="http://prev-s.default.example.com")


def inputs(**more: Any) -> AgreementInputs:
    return AgreementInputs.model_validate({"payloadFile": "x.jsonl", "kserve": True, **more})


def test_discovered_versions_are_reached_through_their_tag_hosts() -> None:
    found = discovered_targets(inputs(), state(CANDIDATE, BASELINE, ingress="http://127.0.0.1:8080"))
    assert found.baseline == 1 and found.protocol == "v1"
    assert [(e.url, dict(e.headers)) for e in found.endpoints if e] == [
        ("http://127.0.0.1:8080/v1/models/sklearn-iris:predict",
         {"Host": "latest-s.default.example.com"}),
        ("http://127.0.0.1:8080/v1/models/sklearn-iris:predict",
         {"Host": "prev-s.default.example.com"})]
    tags = discovered_targets(inputs(protocol="v2"), state(CANDIDATE, BASELINE))
    assert [e.url for e in tags.endpoints if e] == [
        "http://latest-s.default.example.com/v2/models/sklearn-iris/infer",
        "http://prev-s.default.example.com/v2/models/sklearn-iris/infer"]
    grpc = discovered_targets(inputs(url="grpc://127.0.0.1:8081"), state(CANDIDATE, BASELINE))
    assert grpc.protocol == "grpc"
    assert [(e.url, dict(e.headers), e.model) for e in grpc.endpoints if e] == [
        ("grpc://127.0.0.1:8081", {"Host": "latest-s.default.example.com"}, "sklearn-iris"),
        ("grpc://127.0.0.1:8081", {"Host": "prev-s.default.example.com"}, "sklearn-iris")]
    unrouted = CANDIDATE.model_copy(update={"host": "", "url": "", "percent": 0})
    assert discovered_targets(inputs(), state(unrouted, BASELINE)).endpoints[0] is None
    alone = discovered_targets(inputs(), state(CANDIDATE))
    assert alone.baseline == 0 and len(alone.endpoints) == 1


def test_a_service_with_one_revision_is_compared_with_itself(tmp_path: Path,
                                                            models: PredictionServer) -> None:
    """After a promotion discovery finds one version: it is the baseline, and only its noise
    floor is measured."""
    import asyncio
    from datetime import UTC, datetime

    from canarist.core.experiment import Result
    from canarist.tasks.agreement import run
    from canarist.tasks.base import TaskContext

    (tmp_path / "iris.jsonl").write_text("\n".join(IRIS.read_text().splitlines()[:6]))
    only = CANDIDATE.model_copy(update={"url": models.url, "percent": 100})
    experiment = Experiment(spec=[], result=Result(startTime=datetime.now(UTC),
                                                   kserve=state(only)))
    asyncio.run(run(inputs(payloadFile="iris.jsonl", qps=100),
                    TaskContext(experiment=experiment, number=1, name="agreement",
                                run_dir=tmp_path)))
    assert value(experiment, 0, "agreement/rate") == 1.0
    assert value(experiment, 0, "agreement/request-count") == 12
    assert {seen.path for seen in models.requests} == {"/v1/models/sklearn-iris:predict"}
    record = experiment.result.agreement  # type: ignore[union-attr]
    assert record is not None and record.baseline == 0 and len(record.versions) == 1
