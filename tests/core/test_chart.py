"""The experiment chart: values -> spec and initial result."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canarist.core.chart import (
    chart_defaults,
    render_experiment,
    resolve_values,
)
from canarist.core.errors import SpecError
from canarist.core.values import build_values

NOW = datetime(2023, 3, 1, 12, 0, 3, 123456, tzinfo=UTC)


def render(*sets: str, namespace: str | None = None) -> dict[str, Any]:
    return render_experiment(build_values(set_values=sets), now=NOW, namespace=namespace)


def spec(*sets: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return render(*sets, namespace=namespace)["spec"]  # type: ignore[no-any-return]


def problems(*sets: str, values: dict[str, Any] | None = None) -> list[str]:
    data = values if values is not None else build_values(set_values=sets)
    with pytest.raises(SpecError) as info:
        render_experiment(data, now=NOW)
    error = info.value
    assert error.problems
    assert all(len(p.splitlines()) == 1 for p in error.problems)
    assert len(str(error).splitlines()) == 1
    if len(error.problems) == 1:
        assert str(error) == error.problems[0]
    else:
        assert str(error).startswith(f"{len(error.problems)} problems in values: ")
    return error.problems


# -- defaults and result -----------------------------------------------------------------------


def test_chart_defaults() -> None:
    assert chart_defaults() == {
        "image": "canarist:latest",
        "majorMinor": "v0.13",
        "runner": "none",
        "logLevel": "info",
        "resources": {
            "requests": {"memory": "192Mi", "cpu": "250m"},
            "limits": {"memory": "384Mi", "cpu": "500m"},
        },
    }
    chart_defaults()["resources"]["limits"]["cpu"] = "1"
    assert chart_defaults()["resources"]["limits"]["cpu"] == "500m"


def test_resolve_values_coalesces_like_helm() -> None:
    user = {"resources": {"limits": {"cpu": "1"}}, "logLevel": None, "extra": {"x": None}}
    before = copy.deepcopy(user)
    got = resolve_values(user)
    assert got["resources"] == {
        "requests": {"memory": "192Mi", "cpu": "250m"},
        "limits": {"memory": "384Mi", "cpu": "1"},
    }
    assert "logLevel" not in got  # a user null removes the default
    assert got["extra"] == {"x": None}
    assert got["runner"] == "none"
    assert user == before


def test_iter8_image_is_an_alias() -> None:
    assert resolve_values({"iter8Image": "iter8/iter8:0.13"})["image"] == "iter8/iter8:0.13"
    both = resolve_values({"iter8Image": "old", "image": "new"})
    assert both["image"] == "new"
    assert resolve_values({})["image"] == "canarist:latest"


def test_initial_result() -> None:
    data = render("tasks={notify}", "notify.url=http://x")
    assert data["result"] == {
        "startTime": "2023-03-01T12:00:03.123456Z",
        "numCompletedTasks": 0,
        "failure": False,
        "iter8Version": "v0.13",
    }


def test_start_time_is_utc_rfc3339nano() -> None:
    values = {"tasks": ["notify"], "notify": {"url": "http://x"}}
    east = timezone(timedelta(hours=2))
    got = render_experiment(values, now=datetime(2023, 3, 1, 14, 0, 0, tzinfo=east))
    assert got["result"]["startTime"] == "2023-03-01T12:00:00Z"
    got = render_experiment(values, now=datetime(2023, 3, 1, 12, 0, 0, 500000))
    assert got["result"]["startTime"] == "2023-03-01T12:00:00.5Z"


def test_major_minor_becomes_iter8_version() -> None:
    data = render("tasks={notify}", "notify.url=http://x", "majorMinor=v0.14")
    assert data["result"]["iter8Version"] == "v0.14"


def test_inputs_are_not_modified() -> None:
    values = build_values(
        set_values=[
            "tasks={http,grpc,slack,assess}",
            "http.url=http://x",
            "http.payloadURL=http://p",
            "http.warmupNumRequests=5",
            "grpc.host=h:1",
            "grpc.call=a.B.c",
            "grpc.protoURL=http://proto",
            "slack.url=http://s",
            "assess.SLOs.upper.http/latency-mean=5",
        ]
    )
    before = copy.deepcopy(values)
    render_experiment(values, now=NOW)
    assert values == before


# -- the tutorial ----------------------------------------------------------------------------

TEMPLATE = (
    "https://gist.githubusercontent.com/kalantar/adc6c9b0efe483c00b8f0c20605ac36c/raw/"
    "c4562e87b7ac0652b0e46f8f494d024307bff7a1/kserve-prometheus.tpl"
)
TUTORIAL = [
    "tasks={ready,custommetrics,assess}",
    "ready.isvc=sklearn-iris",
    "ready.timeout=180s",
    f"custommetrics.templates.kserve-prometheus={TEMPLATE}",
    "custommetrics.values.labels.service_name=sklearn-iris-predictor-default",
    "custommetrics.versionValues[0].labels.revision_name=sklearn-iris-predictor-default-00002",
    "custommetrics.versionValues[1].labels.revision_name=sklearn-iris-predictor-default-00001",
    "custommetrics.values.latencyPercentiles={50,75,90,95}",
    "assess.SLOs.upper.kserve-prometheus/latency-mean=50",
    "assess.SLOs.upper.kserve-prometheus/latency-p90=75",
    "assess.SLOs.upper.kserve-prometheus/error-count=0",
    "runner=cronjob",
    "cronjobSchedule=*/1 * * * *",
]


def test_tutorial_renders_the_reference_spec() -> None:
    data = render(*TUTORIAL, namespace="default")
    assert data["spec"] == [
        {
            "task": "ready",
            "with": {
                "name": "sklearn-iris",
                "group": "serving.kserve.io",
                "version": "v1beta1",
                "resource": "inferenceservices",
                "condition": "Ready",
                "namespace": "default",
                "timeout": "180s",
            },
        },
        {
            "task": "custommetrics",
            "with": {
                "templates": {"kserve-prometheus": TEMPLATE},
                "values": {
                    "labels": {"service_name": "sklearn-iris-predictor-default"},
                    "latencyPercentiles": [50, 75, 90, 95],
                },
                "versionValues": [
                    {"labels": {"revision_name": "sklearn-iris-predictor-default-00002"}},
                    {"labels": {"revision_name": "sklearn-iris-predictor-default-00001"}},
                ],
            },
        },
        {
            "task": "assess",
            "with": {
                "SLOs": {
                    "upper": [
                        {"metric": "kserve-prometheus/error-count", "limit": 0},
                        {"metric": "kserve-prometheus/latency-mean", "limit": 50},
                        {"metric": "kserve-prometheus/latency-p90", "limit": 75},
                    ]
                }
            },
        },
    ]
    assert data["result"]["iter8Version"] == "v0.13"


def test_tutorial_without_namespace_leaves_it_to_the_task() -> None:
    assert "namespace" not in spec(*TUTORIAL)[0]["with"]


def test_tutorial_spec_is_accepted_by_the_experiment_model() -> None:
    from canarist.core.experiment import parse_experiment

    experiment = parse_experiment(render(*TUTORIAL), source="values")
    assert [entry.name for entry in experiment.spec] == ["ready", "custommetrics", "assess"]


# -- ordering --------------------------------------------------------------------------------


def test_tasks_expand_in_order_and_may_repeat() -> None:
    got = spec(
        "tasks={assess,notify,assess}",
        "assess.SLOs.upper.http/latency-mean=50",
        "notify.url=http://n",
    )
    assert [entry["task"] for entry in got] == ["assess", "notify", "assess"]
    assert got[0] == got[2]
    assert got[0] is not got[2]
    assert got[0]["with"] is not got[2]["with"]


# -- ready -----------------------------------------------------------------------------------


def test_ready_shortcuts_in_iter8_order() -> None:
    got = spec(
        "tasks={ready}",
        "ready.chaosengine=ce",
        "ready.isvc=model",
        "ready.ksvc=kn",
        "ready.deploy=dep",
        "ready.service=svc",
        "ready.timeout=1m30s",
        "ready.namespace=apps",
        namespace="release-ns",
    )
    assert [entry["with"] for entry in got] == [
        {"name": "svc", "version": "v1", "resource": "services", "namespace": "apps",
         "timeout": "1m30s"},
        {"name": "dep", "group": "apps", "version": "v1", "resource": "deployments",
         "condition": "Available", "namespace": "apps", "timeout": "1m30s"},
        {"name": "kn", "group": "serving.knative.dev", "version": "v1", "resource": "services",
         "condition": "Ready", "namespace": "apps", "timeout": "1m30s"},
        {"name": "model", "group": "serving.kserve.io", "version": "v1beta1",
         "resource": "inferenceservices", "condition": "Ready", "namespace": "apps",
         "timeout": "1m30s"},
        {"name": "ce", "group": "litmuschaos.io", "version": "v1alpha1",
         "resource": "chaosengines", "namespace": "apps", "timeout": "1m30s"},
    ]
    assert all(entry["task"] == "ready" for entry in got)


def test_ready_defaults_to_the_release_namespace_and_no_timeout() -> None:
    got = spec("tasks={ready}", "ready.deploy=dep", namespace="ns1")
    assert got == [
        {"task": "ready", "with": {"name": "dep", "group": "apps", "version": "v1",
                                   "resource": "deployments", "condition": "Available",
                                   "namespace": "ns1"}},
    ]


def test_ready_names_are_text() -> None:
    got = spec("tasks={ready}", "ready.service=123")
    assert got[0]["with"]["name"] == "123"


# -- http ------------------------------------------------------------------------------------


def test_http_plain() -> None:
    got = spec("tasks={http}", "http.url=http://x/predict", "http.qps=10", "http.duration=5s")
    assert got == [
        {"task": "http", "with": {"url": "http://x/predict", "qps": 10, "duration": "5s"}},
    ]


def test_http_payload_url_becomes_a_download() -> None:
    got = spec("tasks={http}", "http.url=http://x", "http.payloadURL=https://h/p.json")
    assert got == [
        {"run": "curl -sSfL -o payload.dat https://h/p.json"},
        {"task": "http", "with": {"url": "http://x", "payloadFile": "payload.dat"}},
    ]


def test_http_download_urls_are_shell_quoted() -> None:
    got = spec("tasks={http}", "http.url=http://x", "http.payloadURL=https://h/p?a=1&b=$(rm)")
    assert got[0] == {"run": "curl -sSfL -o payload.dat 'https://h/p?a=1&b=$(rm)'"}


def test_http_endpoints() -> None:
    got = spec(
        "tasks={http}",
        "http.endpoints.b.url=http://b",
        "http.endpoints.b.payloadURL=https://h/b.json",
        "http.endpoints.a.url=http://a",
        "http.endpoints.a.payloadURL=https://h/a.json",
        "http.payloadURL=https://h/top.json",
    )
    assert got == [
        {"run": "curl -sSfL -o payload.dat https://h/top.json"},
        {"run": "curl -sSfL -o a_payload.dat https://h/a.json"},
        {"run": "curl -sSfL -o b_payload.dat https://h/b.json"},
        {
            "task": "http",
            "with": {
                "endpoints": {
                    "b": {"url": "http://b", "payloadFile": "b_payload.dat"},
                    "a": {"url": "http://a", "payloadFile": "a_payload.dat"},
                },
                "payloadFile": "payload.dat",
            },
        },
    ]


def test_http_endpoints_inherit_a_top_level_url() -> None:
    got = spec("tasks={http}", "http.url=http://x", "http.endpoints.a.headers.h=v")
    assert got[0]["with"]["endpoints"] == {"a": {"headers": {"h": "v"}}}


def test_http_warmup_by_requests() -> None:
    got = spec(
        "tasks={http}", "http.url=http://x", "http.numRequests=200",
        "http.warmupNumRequests=10", "http.payloadURL=https://h/p",
    )
    assert got == [
        {"run": "curl -sSfL -o payload.dat https://h/p"},
        {"task": "http", "with": {"url": "http://x", "numRequests": 10,
                                  "payloadFile": "payload.dat", "warmup": True}},
        {"task": "http", "with": {"url": "http://x", "numRequests": 200,
                                  "payloadFile": "payload.dat"}},
    ]
    assert got[1]["with"] is not got[2]["with"]


def test_http_warmup_by_duration_drops_num_requests() -> None:
    got = spec(
        "tasks={http}", "http.url=http://x", "http.numRequests=200",
        "http.warmupDuration=10s",
    )
    assert got == [
        {"task": "http", "with": {"url": "http://x", "duration": "10s", "warmup": True}},
        {"task": "http", "with": {"url": "http://x", "numRequests": 200}},
    ]


def test_http_warmup_requests_win_over_duration() -> None:
    got = spec(
        "tasks={http}", "http.url=http://x", "http.warmupNumRequests=3",
        "http.warmupDuration=10s",
    )
    assert got[0]["with"] == {"url": "http://x", "numRequests": 3, "warmup": True}
    assert got[1]["with"] == {"url": "http://x"}


# -- grpc ------------------------------------------------------------------------------------


def test_grpc_plain() -> None:
    got = spec("tasks={grpc}", "grpc.host=h:50051", "grpc.call=inference.Svc.Infer",
               "grpc.total=20")
    assert got == [
        {"task": "grpc", "with": {"host": "h:50051", "call": "inference.Svc.Infer",
                                  "total": 20}},
    ]


def test_grpc_downloads() -> None:
    got = spec(
        "tasks={grpc}", "grpc.host=h:1", "grpc.call=p.S.M",
        "grpc.metadataURL=https://u/m", "grpc.binaryDataURL=https://u/b",
        "grpc.dataURL=https://u/d", "grpc.protoURL=https://u/p",
    )
    assert got == [
        {"run": "curl -sSfL -o ghz.proto https://u/p"},
        {"run": "curl -sSfL -o data.json https://u/d"},
        {"run": "curl -sSfL -o data.bin https://u/b"},
        {"run": "curl -sSfL -o metadata.json https://u/m"},
        {
            "task": "grpc",
            "with": {
                "host": "h:1", "call": "p.S.M", "metadata-file": "metadata.json",
                "binary-file": "data.bin", "data-file": "data.json", "proto": "ghz.proto",
            },
        },
    ]


def test_grpc_endpoint_downloads_and_warmup() -> None:
    got = spec(
        "tasks={grpc}", "grpc.host=h:1",
        "grpc.endpoints.e1.call=p.S.A", "grpc.endpoints.e1.protoURL=https://u/p",
        "grpc.endpoints.e0.call=p.S.B", "grpc.endpoints.e0.dataURL=https://u/d",
        "grpc.warmupDuration=2s",
    )
    main = {
        "host": "h:1",
        "endpoints": {
            "e1": {"call": "p.S.A", "proto": "e1_ghz.proto"},
            "e0": {"call": "p.S.B", "data-file": "e0_data.json"},
        },
    }
    assert got == [
        {"run": "curl -sSfL -o e0_data.json https://u/d"},
        {"run": "curl -sSfL -o e1_ghz.proto https://u/p"},
        {"task": "grpc", "with": {**main, "duration": "2s", "warmup": True}},
        {"task": "grpc", "with": main},
    ]


def test_grpc_warmup_by_requests_sets_total() -> None:
    got = spec("tasks={grpc}", "grpc.host=h:1", "grpc.call=p.S.M", "grpc.warmupNumRequests=7")
    assert got[0]["with"] == {"host": "h:1", "call": "p.S.M", "total": 7, "warmup": True}
    assert got[1]["with"] == {"host": "h:1", "call": "p.S.M"}


# -- custommetrics ---------------------------------------------------------------------------


def test_custommetrics_is_passed_through() -> None:
    got = spec(
        "tasks={custommetrics}",
        "custommetrics.templates.istio-prom=https://t/istio-prom.tpl",
        "custommetrics.values.labels.destination_workload=w",
        "custommetrics.versionValues[1].labels.v=2",
    )
    assert got == [
        {
            "task": "custommetrics",
            "with": {
                "templates": {"istio-prom": "https://t/istio-prom.tpl"},
                "values": {"labels": {"destination_workload": "w"}},
                "versionValues": [None, {"labels": {"v": 2}}],
            },
        }
    ]


# -- assess ----------------------------------------------------------------------------------


def test_assess_slos_are_sorted_by_metric_name() -> None:
    got = spec(
        "tasks={assess}",
        "assess.SLOs.upper.http/latency-mean=50",
        "assess.SLOs.upper.http/error-count=0",
    )
    assert got == [
        {
            "task": "assess",
            "with": {
                "SLOs": {
                    "upper": [
                        {"metric": "http/error-count", "limit": 0},
                        {"metric": "http/latency-mean", "limit": 50},
                    ]
                }
            },
        }
    ]


def test_assess_sorting_is_bytewise() -> None:
    got = spec(
        "tasks={assess}",
        "assess.SLOs.lower.b/x=1",
        "assess.SLOs.lower.a/Z=1",
        "assess.SLOs.lower.a/a=1",
        "assess.SLOs.lower.a/\u00e9=1",
        "assess.SLOs.upper.grpc/latency/p97\\.5=7500",
        "assess.SLOs.upper.grpc/latency/p50=100",
    )
    slos = got[0]["with"]["SLOs"]
    assert [s["metric"] for s in slos["lower"]] == ["a/Z", "a/a", "a/\u00e9", "b/x"]
    assert slos["upper"] == [
        {"metric": "grpc/latency/p50", "limit": 100},
        {"metric": "grpc/latency/p97.5", "limit": 7500},
    ]


def test_assess_limits_are_numbers() -> None:
    values = {
        "tasks": ["assess"],
        "assess": {"SLOs": {"upper": {"a/x": "0.5", "a/y": 2.5, "a/z": "-3", "a/w": "1e2"}}},
    }
    got = render_experiment(values, now=NOW)["spec"][0]["with"]["SLOs"]["upper"]
    assert got == [
        {"metric": "a/w", "limit": 100.0},
        {"metric": "a/x", "limit": 0.5},
        {"metric": "a/y", "limit": 2.5},
        {"metric": "a/z", "limit": -3},
    ]


def test_assess_from_a_set_float_string() -> None:
    got = spec("tasks={assess}", "assess.SLOs.upper.http/error-rate=0.01")
    assert got[0]["with"]["SLOs"]["upper"] == [{"metric": "http/error-rate", "limit": 0.01}]


# -- notifications ---------------------------------------------------------------------------


def test_slack() -> None:
    got = spec("tasks={slack}", "slack.url=https://hooks.slack.com/x", "slack.if=not SLOs()")
    assert got == [
        {
            "task": "notify",
            "if": "not SLOs()",
            "with": {
                "url": "https://hooks.slack.com/x",
                "method": "POST",
                "payloadTemplate": "slack",
                "softFailure": True,
            },
        }
    ]


def test_slack_soft_failure_false_is_honoured() -> None:
    got = spec("tasks={slack}", "slack.url=https://h", "slack.softFailure=false")
    assert got[0]["with"]["softFailure"] is False
    assert "if" not in got[0]


def test_slack_payload_template_url() -> None:
    got = spec("tasks={slack}", "slack.url=https://h", "slack.payloadTemplateURL=https://t")
    assert got[0]["with"] == {
        "url": "https://h", "method": "POST", "payloadTemplateURL": "https://t",
        "softFailure": True,
    }


def test_github_with_token() -> None:
    got = spec(
        "tasks={github}", "github.owner=me", "github.repo=models", "github.token=secret",
        "github.if=SLOs()", "github.softFailure=false",
    )
    assert got == [
        {
            "task": "notify",
            "if": "SLOs()",
            "with": {
                "url": "https://api.github.com/repos/me/models/dispatches",
                "method": "POST",
                "headers": {
                    "Accept": "application/vnd.github+json",
                    "Authorization": "token secret",
                },
                "payloadTemplate": "github",
                "softFailure": False,
            },
        }
    ]


@pytest.mark.parametrize(("key", "value"), [("tokenEnv", "GH_TOKEN"), ("tokenFile", "/s/t")])
def test_github_token_from_env_or_file_stays_out_of_the_experiment(key: str, value: str) -> None:
    got = spec("tasks={github}", "github.owner=me", "github.repo=r", f"github.{key}={value}")
    assert got[0]["with"] == {
        "url": "https://api.github.com/repos/me/r/dispatches",
        "method": "POST",
        key: value,
        "tokenScheme": "token",
        "headers": {"Accept": "application/vnd.github+json"},
        "payloadTemplate": "github",
        "softFailure": True,
    }


def test_notify_directly() -> None:
    got = spec(
        "tasks={notify}", "notify.url=https://n", "notify.method=GET",
        "notify.params.a=1", "notify.if=Result.NumLoops == 10",
    )
    assert got == [
        {
            "task": "notify",
            "if": "Result.NumLoops == 10",
            "with": {"url": "https://n", "method": "GET", "params": {"a": 1}},
        }
    ]


# -- runner ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule", ["*/1 * * * *", "0,30 9-17 * * MON-FRI", "@every 1m", "@hourly"]
)
def test_cron_schedules_accepted(schedule: str) -> None:
    values = {"tasks": ["notify"], "notify": {"url": "u"}, "runner": "cronjob",
              "cronjobSchedule": schedule}
    # the schedule is the runner's (the CronJob): the experiment is the tasks alone
    assert render_experiment(values, now=NOW)["spec"] == [{"task": "notify", "with": {"url": "u"}}]


@pytest.mark.parametrize("runner", ["none", "job"])
def test_runners_accepted(runner: str) -> None:
    assert render(f"runner={runner}", "tasks={notify}", "notify.url=u")["spec"] == [
        {"task": "notify", "with": {"url": "u"}}]


# -- every error message ---------------------------------------------------------------------

ERRORS: list[tuple[list[str], list[str]]] = [
    ([], ['tasks: expected a non-empty list of task names, e.g. --set "tasks={http,assess}"']),
    (["tasks=http"],
     ['tasks: expected a non-empty list of task names, e.g. --set "tasks={http,assess}"']),
    (["tasks={foo}"],
     ['tasks[0]: unknown task "foo", expected one of agreement, assess, custommetrics, grpc, http, ready, '
      "rollout, slack, github, notify"]),
    (["tasks={1}"], ["tasks[0]: unknown task 1, expected one of agreement, assess, custommetrics, grpc, "
                     "http, ready, rollout, slack, github, notify"]),
    (["tasks={abnmetrics}"],
     ["tasks[0]: abnmetrics is not supported (the A/B/n service it reads was removed "
      "upstream); remove it from tasks"]),
    (["tasks={notify}", "notify.url=u", "runner=pod"],
     ['runner: expected one of none, job, cronjob, got "pod"']),
    (["tasks={notify}", "notify.url=u", "runner=cronjob"],
     ['cronjobSchedule: required when runner is cronjob, e.g. '
      '--set cronjobSchedule="*/1 * * * *"']),
    (["tasks={notify}", "notify.url=u", "runner=cronjob", "cronjobSchedule=* * *"],
     ['cronjobSchedule: "* * *" is not a CronJob schedule Kubernetes accepts: expected 5 '
      'fields (minute hour day-of-month month day-of-week), got 3']),
    (["tasks={notify}", "notify.url=u", "runner=cronjob", "cronjobSchedule=99 * * * *"],
     ['cronjobSchedule: "99 * * * *" is not a CronJob schedule Kubernetes accepts: minute '
      '"99": 99 is above 59, the highest minute']),
    (["tasks={notify}", "notify.url=u", "logLevel=loud"],
     ['logLevel: expected one of trace, debug, info, warning, warn, error, fatal, panic, '
      'got "loud"']),
    (["tasks={notify}", "notify.url=u", "majorMinor=null"],
     ["majorMinor: expected a version string such as v0.13, got null"]),
    # ready
    (["tasks={ready}"],
     ["ready: please set at least one of ready.service, ready.deploy, ready.ksvc, ready.isvc, "
      "ready.chaosengine"]),
    (["tasks={ready}", "ready=x"], ['ready: expected a map of ready parameters, got "x"']),
    (["tasks={ready}", "ready.isvc=m", "ready.pod=p"],
     ['ready.pod: unknown key "pod"; expected one of service, deploy, ksvc, isvc, chaosengine, '
      "timeout, namespace"]),
    (["tasks={ready}", "ready.isvc={a,b}"], ["ready.isvc: expected a resource name, got a list"]),
    (["tasks={ready}", "ready.isvc=m", "ready.namespace={a}"],
     ["ready.namespace: expected a namespace name"]),
    # http
    (["tasks={http}", "http.endpoints=x"],
     ['http.endpoints: expected a map from endpoint id to endpoint parameters, got "x"']),
    (["tasks={http}", "http.url=u", "http.endpoints.a=x"],
     ['http.endpoints.a: expected a map of endpoint parameters, got "x"']),
    (["tasks={http}", "http.url=u", "http.payloadURL={a}"],
     ["http.payloadURL: expected a URL, got a list"]),
    (["tasks={http}", "http.url=u", "http.endpoints.e.payloadURL=5"],
     ["http.endpoints.e.payloadURL: expected a URL, got 5"]),
    (["tasks={http}", "http.url=u", r"http.endpoints.\.\./x.payloadURL=https://p"],
     [r"http.endpoints.\.\./x: an endpoint id that names a downloaded file may use only "
      "letters, digits, '.', '_' and '-'"]),
    # grpc
    (["tasks={grpc}", "grpc.host=h", "grpc.call=c", "grpc.protoURL=true"],
     ["grpc.protoURL: expected a URL, got true"]),
    # custommetrics
    (["tasks={custommetrics}"],
     ["custommetrics.templates: please set at least one provider template, e.g. "
      "custommetrics.templates.kserve-prometheus=<template name or URL>"]),
    (["tasks={custommetrics}", "custommetrics.templates={a}"],
     ["custommetrics.templates: expected a map from provider name to template, got a list"]),
    (["tasks={custommetrics}", "custommetrics.templates.p=1", "custommetrics.values=x",
      "custommetrics.versionValues[0]=y"],
     ["custommetrics.templates.p: expected a template name or URL, got 1",
      'custommetrics.values: expected a map of values, got "x"',
      'custommetrics.versionValues[0]: expected a map of values for version 0, got "y"']),
    (["tasks={custommetrics}", "custommetrics.templates.p=u", "custommetrics.versionValues=v"],
     ['custommetrics.versionValues: expected a list with one map of values per version, '
      'got "v"']),
    # assess
    (["tasks={assess}"],
     ["assess.SLOs: please set at least one SLO, e.g. assess.SLOs.upper.http/latency-mean=50, "
      "or a relative objective, e.g. assess.relative.upper.http/latency-p90=20%"]),
    (["tasks={assess}", "assess.SLOs=x"],
     ['assess.SLOs: expected a map with upper and lower, got "x"']),
    (["tasks={assess}", "assess.SLOs.upper.a/b=1", "assess.rewards.max={a}",
      "assess.SLOs.middle.a/b=1"],
     ['assess.rewards: unknown key "rewards"; expected one of SLOs, relative, baseline, '
      'confidence',
      'assess.SLOs.middle: unknown key "middle"; expected one of upper, lower']),
    (["tasks={assess}", "assess.SLOs.upper={a}"],
     ["assess.SLOs.upper: expected a map from metric name to limit, got a list"]),
    (["tasks={assess}", "assess.SLOs.upper.http/latency-mean=fast",
      "assess.SLOs.lower.latency=true", "assess.SLOs.lower.a/b=nan"],
     ['assess.SLOs.upper.http/latency-mean: expected a number, got "fast"',
      'assess.SLOs.lower.a/b: expected a number, got "nan"',
      "assess.SLOs.lower.latency: metric names must be of the form a/b or a/b/c, where a is the "
      "id of the metrics backend, b is the id of a metric name, and c is a valid aggregation "
      "function",
      "assess.SLOs.lower.latency: expected a number, got true"]),
    (["tasks={assess}", "assess.SLOs.upper.x\\.y=1"],
     ["assess.SLOs.upper.x\\.y: metric names must be of the form a/b or a/b/c, where a is the "
      "id of the metrics backend, b is the id of a metric name, and c is a valid aggregation "
      "function"]),
    # slack, github, notify
    (["tasks={slack}"], ["slack.url: please set a value for the url parameter"]),
    (["tasks={slack}", "slack.url=u", "slack.channel=c", "slack.softFailure=no",
      "slack.if=", "slack.payloadTemplateURL=7"],
     ['slack.channel: unknown key "channel"; expected one of url, if, softFailure, '
      'payloadTemplateURL',
      'slack.if: expected a condition such as SLOs(), got ""',
      "slack.payloadTemplateURL: expected a URL, got 7",
      'slack.softFailure: expected true or false, got "no"']),
    (["tasks={slack}", "slack.url={a}"], ["slack.url: expected a Slack webhook URL, got a list"]),
    (["tasks={github}"],
     ["github.owner: please set a value for the owner parameter",
      "github.repo: please set a value for the repo parameter",
      "github.token: please set a value for the token parameter (or github.tokenEnv or "
      "github.tokenFile, which keep the token out of the experiment)"]),
    (["tasks={github}", "github.owner=a/b", "github.repo=r", "github.token=t",
      "github.tokenEnv=E"],
     ["github.owner: expected a GitHub owner name (letters, digits, '.', '_', '-'), "
      'got "a/b"',
      "github.token: set only one of github.token, github.tokenEnv, github.tokenFile "
      "(got github.token, github.tokenEnv)"]),
    (["tasks={github}", "github.owner=o", "github.repo=r", "github.tokenFile={a}"],
     ["github.tokenFile: expected a non-empty string, got a list"]),
    (["tasks={github}", "github.owner=o", "github.repo=r", "github.token=t", "github.user=u"],
     ['github.user: unknown key "user"; expected one of owner, repo, token, tokenEnv, tokenFile, '
      'if, softFailure, payloadTemplateURL']),
    (["tasks={notify}"], ["notify.url: no URL was provided for notify task"]),
    (["tasks={notify}", "notify.url=u", "notify.if=5"],
     ["notify.if: expected a condition such as SLOs(), got 5"]),
]


@pytest.mark.parametrize(("sets", "expected"), ERRORS, ids=[";".join(e[0]) for e in ERRORS])
def test_errors(sets: list[str], expected: list[str]) -> None:
    assert problems(*sets) == expected


def test_all_problems_are_collected_at_once() -> None:
    got = problems(
        "tasks={http,foo,assess,http}", "runner=cronjob",
        "assess.SLOs.upper.a/b=x",
    )
    assert got == [
        'cronjobSchedule: required when runner is cronjob, e.g. '
        '--set cronjobSchedule="*/1 * * * *"',
        'tasks[1]: unknown task "foo", expected one of agreement, assess, custommetrics, grpc, http, '
        "ready, rollout, slack, github, notify",
        'assess.SLOs.upper.a/b: expected a number, got "x"',
    ]


def test_section_that_is_not_a_map() -> None:
    assert problems(values={"tasks": ["http"], "http": ["u"]}) == [
        "http: expected a map of http parameters, got a list"
    ]


def test_spec_error_is_an_input_error() -> None:
    with pytest.raises(SpecError) as info:
        render_experiment({}, now=NOW)
    assert info.value.exit_code == 2


# -- properties ------------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(), st.text(max_size=4),
    st.sampled_from(["http://u", "10s", "a/b", "SLOs()", "* * * * *", "cronjob", "job"]),
)
_keys = st.sampled_from(
    ["url", "host", "call", "endpoints", "payloadURL", "protoURL", "warmupNumRequests",
     "warmupDuration", "SLOs", "upper", "lower", "a/b", "templates", "values", "versionValues",
     "isvc", "timeout", "namespace", "owner", "repo", "token", "tokenEnv", "if",
     "softFailure", "x"]
)
_trees = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(["http", "grpc", "ready", "assess", "custommetrics", "slack",
                              "github", "notify", "abnmetrics", "x", 3]), max_size=4),
    st.dictionaries(
        st.sampled_from(["http", "grpc", "ready", "assess", "custommetrics", "slack", "github",
                         "notify", "runner", "cronjobSchedule", "logLevel", "majorMinor"]),
        _trees, max_size=5,
    ),
)
def test_arbitrary_values_raise_only_spec_errors(tasks: list[Any], rest: dict[str, Any]) -> None:
    values = {"tasks": tasks, **rest}
    before = copy.deepcopy(values)
    try:
        data = render_experiment(values, now=NOW)
    except SpecError as exc:
        assert exc.problems
        assert all(len(p.splitlines()) == 1 for p in exc.problems)
    else:
        assert set(data) == {"spec", "result"}
    assert values == before
