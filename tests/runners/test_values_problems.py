"""Values -> experiment: every problem is found before anything runs, once, and named by the
values key the user typed, in canarist's words (never `spec[0].with.x`, never the
validation library's)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from canarist.core.errors import SpecError
from canarist.core.values import build_values
from canarist.runners.engine import experiment_from_values
from canarist.tasks.registry import TASKS

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HTTP = ["tasks={http,assess}", "http.url=http://127.0.0.1:8080/predict"]
SLO = ["assess.SLOs.upper.http/latency-mean=50"]


def problems(tmp_path: Path, *sets: str, jsons: tuple[str, ...] = (),
             values: dict[str, Any] | None = None) -> list[str]:
    data = values if values is not None else build_values(set_values=sets,
                                                          set_json_values=jsons)
    with pytest.raises(SpecError) as caught:
        experiment_from_values(data, TASKS, now=NOW, base_dir=tmp_path)
    found = caught.value.problems
    for line in found:
        assert "spec[" not in line and "Input should" not in line and "Value error" not in line
        assert len(line.splitlines()) == 1
    assert caught.value.exit_code == 2
    return found


CASES = [
    # a misspelt key is named as typed, with the key meant
    ([*HTTP[:1], "http.ur=http://x", *SLO], ['http.ur: unknown key "ur"; did you mean url?']),
    ([*HTTP, "http.endpoints.a.numRequest=4", *SLO],
     ['http.endpoints.a.numRequest: unknown key "numRequest"; did you mean numRequests?']),
    ([*HTTP, "http.errorRanges[0].lowr=400", *SLO],
     ['http.errorRanges[0].lowr: unknown key "lowr"; did you mean lower?']),
    # durations: one rule, one wording, everywhere
    ([*HTTP, "http.duration=30", *SLO],
     ["http.duration: expected a Go duration such as 30s, got the number 30 "
      "(a number has no unit)"]),
    ([*HTTP, "http.timeout=0s", *SLO],
     ['http.timeout: expected a positive Go duration such as 30s, got "0s"']),
    ([*HTTP, "http.warmupDuration=5", *SLO],
     ["http.warmupDuration: expected a Go duration such as 5s, got the number 5 "
      "(a number has no unit)"]),
    ([*HTTP, "http.warmupNumRequests=-3", *SLO],
     ["http.warmupNumRequests: expected a number of at least 1, got -3"]),
    (["tasks={ready}", "ready.isvc=m", "ready.timeout=10"],
     ["ready.timeout: expected a Go duration such as 10s, got the number 10 "
      "(a number has no unit)"]),
    (["tasks={ready}", "ready.isvc=m", "ready.timeout=0s"],
     ['ready.timeout: expected a positive Go duration such as 30s, got "0s"']),
    (["tasks={grpc}", "grpc.host=h:1", "grpc.call=a.B.c", "grpc.connect-timeout=soon"],
     ['grpc.connect-timeout: expected a Go duration such as 30s, 1m30s or 500ms, got "soon"']),
    (["tasks={custommetrics}", "custommetrics.templates.p=kserve-prometheus",
      "custommetrics.timeout=5"],
     ["custommetrics.timeout: expected a Go duration such as 5s, got the number 5 "
      "(a number has no unit)"]),
    # numbers, booleans, required keys
    ([*HTTP, "http.numRequests=0", *SLO],
     ["http.numRequests: expected a number of at least 1, got 0"]),
    ([*HTTP, "http.qps=fast", *SLO], ['http.qps: expected a number, got "fast"']),
    ([*HTTP, "http.allowInitialErrors=maybe", *SLO],
     ['http.allowInitialErrors: expected true or false, got "maybe"']),
    ([*HTTP, "http.percentiles={99,200}", *SLO],
     ["http.percentiles[1]: expected a percentile above 0 and at most 100, got 200"]),
    (["tasks={http}", "http.qps=8"],
     ["http.url: required: the URL to send requests to (or endpoints, each with its url)"]),
    (["tasks={http}", "http.endpoints.a.url=u", "http.endpoints.b.qps=1"],
     ["http.endpoints.b.url: required (or a url for every endpoint at the top level)"]),
    (["tasks={grpc}", "grpc.call=a.B.c"], ["grpc.host: required, as host:port"]),
    (["tasks={grpc}", "grpc.host=h:1", "grpc.endpoints.x.total=1"],
     ["grpc.endpoints.x.call: required, as package.Service.Method"]),
    (["tasks={grpc}", "grpc.host=h:1", "grpc.call=c", "grpc.metadata=5"],
     ["grpc.metadata: expected a map or a list, got 5"]),
    # a payload given with --set's list syntax
    ([*HTTP, 'http.payloadStr={"instances":[[6.8,2.8,4.8,1.4]]}', *SLO],
     ["http.payloadStr: expected text or a JSON object, got a list (--set reads {...} as a "
      "list): give JSON with --set-json, or put the body in a file and set payloadFile"]),
    # SLOs on metrics no task records
    ([*HTTP, "assess.SLOs.upper.http/latancy-mean=5"],
     ["assess.SLOs.upper.http/latancy-mean: no task in this experiment records "
      "http/latancy-mean; did you mean http/latency-mean?"]),
    ([*HTTP, "assess.SLOs.upper.http/latency-p999=5"],
     ["assess.SLOs.upper.http/latency-p999: no task in this experiment records "
      "http/latency-p999: 999 is not a percentile (at most 100); for the 99.9th percentile "
      "write http/latency-p99.9 (in --set, http/latency-p99\\.9)"]),
    ([*HTTP, "assess.SLOs.lower.grpc/request-count=5"],
     ["assess.SLOs.lower.grpc/request-count: no task in this experiment records "
      "grpc/request-count; did you mean http/request-count?"]),
    ([*HTTP, "assess.SLOs.lower.kserve/requests=5"],
     ["assess.SLOs.lower.kserve/requests: no task in this experiment records "
      "kserve/requests; its metrics come from http"]),
    (["tasks={grpc,assess}", "grpc.host=h:1", "grpc.call=a.B.c",
      "assess.SLOs.upper.grpc/latency-p99=5"],
     ["assess.SLOs.upper.grpc/latency-p99: no task in this experiment records "
      "grpc/latency-p99; did you mean grpc/latency/p99?"]),
    # templates: a wrong built-in name, and SLOs on metrics a template does not define
    (["tasks={custommetrics,assess}", "custommetrics.templates.kserve-prometheus=kserve-prom",
      "assess.SLOs.upper.kserve-prometheus/latency-mean=50"],
     ["custommetrics.templates.kserve-prometheus: 'kserve-prom' is not a built-in template, "
      "a URL or an existing file; did you mean kserve-prometheus? (built-in: istio-prom, "
      "kserve-prometheus, kserve-raw)"]),
    (["tasks={custommetrics,assess}",
      "custommetrics.templates.kserve-prometheus=kserve-prometheus",
      "assess.SLOs.upper.kserve-prometheus/latency-p75=50"],
     ["assess.SLOs.upper.kserve-prometheus/latency-p75: no task in this experiment records "
      "kserve-prometheus/latency-p75; did you mean kserve-prometheus/latency-p95?"]),
]


@pytest.mark.parametrize(("sets", "expected"), CASES, ids=[";".join(c[0][-2:]) for c in CASES])
def test_problems_name_the_key_the_user_typed(tmp_path: Path, sets: list[str],
                                              expected: list[str]) -> None:
    assert problems(tmp_path, *sets) == expected


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, "tasks={ready,http,assess}", "ready.isvc=m", "ready.timeout=1",
                     "http.url=u", "http.duration=x", "http.conections=4",
                     "assess.SLOs.upper.http/latency-mean=5")
    assert found == [
        "ready.timeout: expected a Go duration such as 1s, got the number 1 (a number has no unit)",
        'http.duration: expected a Go duration such as 30s, 1m30s or 500ms, got "x"',
        'http.conections: unknown key "conections"; did you mean connections?',
    ]


def test_a_json_payload_from_set_json_is_sent_serialized(tmp_path: Path) -> None:
    data = build_values(set_values=HTTP + SLO,
                        set_json_values=['http.payloadStr={"instances":[[6.8,2.8,4.8,1.4]]}'])
    experiment = experiment_from_values(data, TASKS, now=NOW, base_dir=tmp_path)
    inputs = TASKS["http"].inputs.model_validate(experiment.spec[0].with_)
    assert json.loads(inputs.payload_str) == {"instances": [[6.8, 2.8, 4.8, 1.4]]}


def test_a_grpc_request_from_set_json_is_kept_as_an_object(tmp_path: Path) -> None:
    data = build_values(set_values=["tasks={grpc}", "grpc.host=h:1", "grpc.call=a.B.c"],
                        set_json_values=['grpc.data={"model_name":"iris","inputs":[]}'])
    experiment = experiment_from_values(data, TASKS, now=NOW, base_dir=tmp_path)
    assert experiment.spec[0].with_["data"] == {"model_name": "iris", "inputs": []}


def test_a_template_file_next_to_the_experiment_is_found(tmp_path: Path) -> None:
    builtin = (Path(__file__).parents[2] / "src/canarist/templates/custommetrics"
               / "kserve-prometheus.tpl").read_text()
    (tmp_path / "mine.tpl").write_text(builtin)
    data = build_values(set_values=["tasks={custommetrics,assess}",
                                    "custommetrics.templates.mine=mine.tpl",
                                    "assess.SLOs.upper.mine/error-count=0"])
    experiment_from_values(data, TASKS, now=NOW, base_dir=tmp_path)
    assert "no task in this experiment records mine/errors-count" in problems(
        tmp_path, "tasks={custommetrics,assess}", "custommetrics.templates.mine=mine.tpl",
        "assess.SLOs.upper.mine/errors-count=0")[0]


def test_slos_on_templates_behind_urls_are_checked_when_they_run(tmp_path: Path) -> None:
    data = build_values(set_values=[
        "tasks={custommetrics,assess}",
        "custommetrics.templates.remote=https://templates.example/remote.tpl",
        "assess.SLOs.upper.remote/anything=1"])
    # launch cannot know the metrics of a template it has not fetched: the SLO is kept
    experiment = experiment_from_values(data, TASKS, now=NOW, base_dir=tmp_path)
    assert [(entry.task, entry.with_) for entry in experiment.spec] == [
        ("custommetrics", {"templates": {"remote": "https://templates.example/remote.tpl"}}),
        ("assess", {"SLOs": {"upper": [{"metric": "remote/anything", "limit": 1}]}})]


# -- typos that used to pass launch and fail the run (exit 1) -------------------------------

URL_EXPECTED = ("expected an http:// or https:// URL with a host, such as "
                "http://localhost:8080/path; got ")
GRPC = ["tasks={grpc}", "grpc.call=inference.GRPCInferenceService/ModelInfer"]
GRPC_EXPECTED = ("expected host:port such as model.default:8081 (or a gRPC target such as "
                 "dns:///host:port), got ")
NOTIFY = ["tasks={notify}"]

TYPOS = [
    (["tasks={http}", "http.url=NaN"], [f'http.url: {URL_EXPECTED}"NaN"']),
    (["tasks={http}", "http.url=http://[::1"], [f'http.url: {URL_EXPECTED}"http://[::1" '
                                                f"(Invalid IPv6 URL)"]),
    (["tasks={http}", "http.url=ftp://host/file"], [f'http.url: {URL_EXPECTED}"ftp://host/file"']),
    (["tasks={http}", "http.url=http://host:70000/"],
     [f'http.url: {URL_EXPECTED}"http://host:70000/" (Port out of range 0-65535)']),
    (["tasks={http}", "http.url=http://a b/"],
     [f'http.url: {URL_EXPECTED}"http://a b/" (a space in the host)']),
    (["tasks={http}", "http.url=http://x/a\tb"],
     [f'http.url: {URL_EXPECTED}"http://x/a\\tb" (it has control characters)']),
    (["tasks={http}", "http.url=http://x/", "http.versionValues[0].url=http://x/",
      "http.versionValues[1].url=NaN"], [f'http.versionValues[1].url: {URL_EXPECTED}"NaN"']),
    (["tasks={http}", "http.endpoints.a.url=ftp://x"], [f'http.endpoints.a.url: {URL_EXPECTED}'
                                                        f'"ftp://x"']),
    (["tasks={http}", "http.url=http://x/", "http.headers.X-Id=a\nb"],
     ['http.headers.X-Id: expected a header value on one line, without control characters, '
      'got "a\\nb"']),
    (["tasks={http}", "http.url=http://x/", "http.versionValues[0].headers.Host=a\rb"],
     ['http.versionValues[0].headers.Host: expected a header value on one line, without '
      'control characters, got "a\\rb"']),
    (["tasks={http}", "http.url=http://x/", "http.timeout=1ns"],
     ['http.timeout: expected a Go duration of at least 1ms such as 30s, got "1ns"']),
    (["tasks={http}", "http.url=http://x/", "http.duration=999us"],
     ['http.duration: expected a Go duration of at least 1ms such as 30s, got "999us"']),
    ([*GRPC, "grpc.host=NaN"], [f'grpc.host: {GRPC_EXPECTED}"NaN"']),
    ([*GRPC, "grpc.host=localhost"], [f'grpc.host: {GRPC_EXPECTED}"localhost"']),
    ([*GRPC, "grpc.host=model:0"], [f'grpc.host: {GRPC_EXPECTED}"model:0"']),
    ([*GRPC, "grpc.host=x:1", "grpc.versionValues[0].host=a b:1"],
     [f'grpc.versionValues[0].host: {GRPC_EXPECTED}"a b:1"']),
    ([*GRPC, "grpc.host=x:1", "grpc.metadata.host=a\nb"],
     ['grpc.metadata.host: expected printable ASCII on one line (no line breaks or control '
      'characters; a key ending in -bin carries bytes), got "a\\nb"']),
    ([*NOTIFY, "notify.url=https://user:pw@hooks.example/x", "notify.tokenEnv=TOKEN"],
     ["notify.url: user info (user:password@) and tokenEnv/tokenFile both set the "
      "Authorization header; keep one"]),
    ([*NOTIFY, "notify.url=https://user:pw@hooks.example/x",
      "notify.headers.Authorization=Bearer x"],
     ["notify.url: user info (user:password@) and an Authorization header both set the "
      "Authorization header; keep one"]),
    ([*NOTIFY, "notify.url=https://hooks.example/x", "notify.headers.X-Key=a\tb\u0007"],
     ['notify.headers: header X-Key: expected a header value on one line, without control '
      'characters, got "a\\tb\\u0007"']),
]


@pytest.mark.parametrize(("sets", "expected"), TYPOS)
def test_typos_are_found_at_launch(tmp_path: Path, sets: list[str], expected: list[str]) -> None:
    assert problems(tmp_path, *sets) == expected


@pytest.mark.parametrize("sets", [
    ["tasks={http}", "http.url=http://127.0.0.1:8080/v1?status=404&body=a space",
     "http.versionValues[0].url=https://[::1]:8443/v1/models/m:predict",
     "http.headers.X-Tab=a\tb", "http.timeout=1ms"],
    [*GRPC, "grpc.host=[::1]:50051"], [*GRPC, "grpc.host=dns:///model.default:8081"],
    [*GRPC, "grpc.host=unix:/tmp/grpc.sock"],
    [*GRPC, "grpc.host=x:1", "grpc.metadata.trace-bin=\u00ff\n"],
    [*NOTIFY, "notify.url=https://user:pw@hooks.example/x"],
])
def test_what_a_request_can_carry_is_accepted(tmp_path: Path, sets: list[str]) -> None:
    experiment = experiment_from_values(build_values(set_values=sets), TASKS, now=NOW,
                                        base_dir=tmp_path)
    [entry] = experiment.spec
    assert entry.task == sets[0].removeprefix("tasks={").removesuffix("}")
    kept = set(leaves(entry.with_))
    for assignment in sets[1:]:  # each value reaches the task as typed
        assert assignment.split("=", 1)[1] in kept, assignment


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value
